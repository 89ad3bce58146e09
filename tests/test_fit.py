"""The one fit loop (sesn.train.fit): early stopping after ``patience`` epochs without a
validation gain (checked before each epoch), the best-validation weights, the schedule
stepped once per epoch after its lr is recorded, resume from its own checkpoint and from the
two older formats (the generalization benchmark's: no schedule or scaler; sesn train's: no
``stale``), and the one optimizer factory."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from sesn.train import fit as F
from sesn.train.checkpoint import SettingsMismatch, atomic_torch_save, rng_state

ARGS = SimpleNamespace(epochs=8, amp=False, channels_last=False)
SETTINGS = {"model": "linear", "lr": 0.1, "seed": 0}


def _problem():
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    return model, (lambda epoch: [(x[i : i + 8], y[i : i + 8]) for i in range(0, 32, 8)])


def _fit(model, batches, vals, tmp_path, state=None, **kw):
    it = iter(vals)
    optimizer = kw.pop("optimizer", None) or F.make_optimizer("sgd", model.parameters(), 0.1)
    return F.fit(model, optimizer, state or F.FitState(), epochs=kw.pop("epochs", len(vals)), batches=batches,
                 validate=lambda: next(it), checkpoint=tmp_path / "checkpoint.pt", settings=SETTINGS,
                 device=torch.device("cpu"), loop_args=ARGS, **kw)  # fmt: skip


def test_patience_stops_after_that_many_epochs_without_a_gain(tmp_path):
    model, batches = _problem()
    vals = [0.5, 0.6, 0.6, 0.55, 0.6, 0.9, 0.9, 0.9]  # no gain after epoch 2 (equal is no gain)
    state = _fit(model, batches, vals, tmp_path, patience=3)
    assert [h["val_acc"] for h in state.history] == vals[:5]  # epochs 3, 4, 5 without a gain: stop before 6
    assert state.best_val == 0.6 and state.stale == 3 and state.epoch == 5
    model2, batches2 = _problem()
    assert len(_fit(model2, batches2, vals, tmp_path / "b", patience=None).history) == 8  # no early stop


def test_best_weights_are_the_best_epochs_and_the_schedule_steps_after_recording_lr(tmp_path):
    model, batches = _problem()
    opt = F.make_optimizer("adam", model.parameters(), 0.1)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[2], gamma=0.1)
    seen = {}

    def after_epoch(epoch, entry):
        if epoch == 1:
            seen["weights"] = {k: v.clone() for k, v in model.state_dict().items()}

    state = _fit(model, batches, [0.1, 0.8, 0.3, 0.2], tmp_path, optimizer=opt, scheduler=sched,
                 after_epoch=after_epoch)  # fmt: skip
    assert [h["lr"] for h in state.history] == pytest.approx([0.1, 0.1, 0.01, 0.01])
    assert all(torch.equal(state.best_state[k], v) for k, v in seen["weights"].items())  # epoch 2's weights
    assert list(state.history[0]) == ["epoch", "loss", "train_acc", "val_acc", "lr", "seconds"]


def test_resume_from_its_own_checkpoint_equals_the_uninterrupted_fit(tmp_path):
    vals = [0.1, 0.2, 0.3, 0.4]
    model, batches = _problem()
    whole = _fit(model, batches, vals, tmp_path / "whole")
    model, batches = _problem()
    _fit(model, batches, vals[:2], tmp_path / "cut", epochs=2)  # stopped after 2 epochs
    model, batches = _problem()  # a new process: fresh weights, restored from the checkpoint
    opt = F.make_optimizer("sgd", model.parameters(), 0.1)
    state = F.resume(tmp_path / "cut" / "checkpoint.pt", model, opt, SETTINGS, tmp_path / "cut")
    assert state.epoch == 2 and state.resumed is not None
    resumed = _fit(model, batches, vals[2:], tmp_path / "cut", state=state, optimizer=opt, epochs=4)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in whole.history]
    with pytest.raises(SettingsMismatch, match="lr"):
        F.resume(tmp_path / "cut" / "checkpoint.pt", model, opt, {**SETTINGS, "lr": 0.5}, tmp_path / "cut")
    assert F.resume(tmp_path / "none.pt", model, opt, SETTINGS, tmp_path) == F.FitState()


@pytest.mark.parametrize("fmt", ["generalization", "train"])
def test_checkpoints_of_the_older_loops_still_resume(tmp_path, fmt):
    model, _ = _problem()
    opt = F.make_optimizer("adam", model.parameters(), 0.1)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[1], gamma=0.5)
    opt.step()  # (no gradients: nothing moves) before the schedule, as torch expects
    sched.step()
    old = {"epoch": 2, "model": model.state_dict(), "optimizer": opt.state_dict(), "rng": rng_state(),
           "best_val": 0.7, "best_model": model.state_dict(), "history": [{"epoch": 1}, {"epoch": 2}, {"epoch": 3}],
           "settings": SETTINGS, "dispatch": None}  # fmt: skip
    if fmt == "generalization":
        old["stale"] = 1  # and no scheduler / scaler
    else:
        old.update(scheduler=sched.state_dict(), scaler=None, args={}, code_version="0.1.0+gold")  # no stale
    atomic_torch_save(old, tmp_path / "checkpoint.pt")
    model2, _ = _problem()
    opt2 = F.make_optimizer("adam", model2.parameters(), 0.1)
    sched2 = torch.optim.lr_scheduler.MultiStepLR(opt2, milestones=[1], gamma=0.5)
    state = F.resume(tmp_path / "checkpoint.pt", model2, opt2, SETTINGS, tmp_path, scheduler=sched2)
    assert (state.epoch, state.best_val, len(state.history)) == (3, 0.7, 3)
    assert state.stale == (1 if fmt == "generalization" else 0)
    assert sched2.last_epoch == (1 if fmt == "train" else 0)  # restored where the checkpoint has one


def test_one_optimizer_factory():
    p = [nn.Parameter(torch.zeros(2))]
    sgd = F.make_optimizer("sgd", p, 0.1, 5e-4)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["nesterov"] and sgd.defaults["momentum"] == 0.9
    adam = F.make_optimizer("adam", p, 1e-3)
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["weight_decay"] == 0.0
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        F.make_optimizer("rmsprop", p, 0.1)
