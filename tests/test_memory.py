"""Training memory (issue 22): the tracker, the measuring function on meta vs CPU, the
memory-saving levels (same results, less memory), auto's memory rule, fitting a budget."""

from __future__ import annotations

import copy

import pytest
import torch

import sesn.models as models
from sesn.io import parse_bytes
from sesn.memory import fit_memory_saving, training_memory
from sesn.memtrack import SavedTensorCounter, StorageTracker
from sesn.nn import SESConv_H_H, dispatch
from sesn.nn.recompute import set_memory_saving
from sesn.nn.steerable import SteerableConvBase

WRN_TINY = ["test_wrn", "test_wrn_ses_a", "test_wrn_ses_b", "test_wrn_ses_c"]


def test_tracker_counts_each_storage_once_and_follows_lifetimes():
    with StorageTracker() as tr:
        a = torch.empty(1000)  # 4000 bytes
        v = a.view(10, 100)  # a view: same storage
        b = a + 1
        assert tr.current == 8000 and tr.peak == 8000
        del a, v
        assert tr.current == 4000  # a's storage died with its last view
        c = b * 2
        del b, c
        assert tr.current == 0 and tr.peak == 8000


def test_saved_tensor_counter_counts_what_backward_keeps():
    x = torch.randn(100, requires_grad=True)
    with SavedTensorCounter() as c:
        y = x.exp()  # keeps its result: 400 bytes
        z = y.sin()  # keeps its input y (same storage): nothing new
    assert c.bytes == 400
    z.sum().backward()


@pytest.mark.parametrize("name", ["test_wrn_ses_a", "test_ses_scalar", "test_wrn"])
def test_meta_measurement_equals_the_cpu_run(name):
    """The meta device runs the same ops on the same shapes: its figure is the real one."""
    cpu = training_memory(name, 4, device="cpu", compute_mode="direct" if "ses" in name else None)
    meta = training_memory(name, 4, device="meta", compute_mode="direct" if "ses" in name else None)
    assert cpu.peak_bytes == meta.peak_bytes > 0
    assert cpu.forward_bytes == meta.forward_bytes and cpu.state_bytes == meta.state_bytes


def test_activation_memory_is_affine_in_the_batch():
    a = [training_memory("test_wrn_ses_a", b, compute_mode="direct").activation_bytes for b in (2, 4, 6, 8)]
    steps = {a[i + 1] - a[i] for i in range(3)}
    assert len(steps) == 1 and steps.pop() > 0, a


def _steps(model, x, steps=3):
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    outs = []
    for _ in range(steps):
        opt.zero_grad()
        out = model(x)
        out.square().mean().backward()
        opt.step()
        outs.append(out.detach())
    return outs, [p.grad.clone() for p in model.parameters()], copy.deepcopy(model.state_dict())


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name", WRN_TINY)
@pytest.mark.parametrize("mode", ["direct", "fft"])
def test_memory_saving_levels_give_the_plain_runs_result(name, dtype, mode):
    """Outputs, gradients and the whole state (weights after SGD steps, batch-norm running
    statistics, num_batches_tracked) equal the plain run's bit for bit (dropout active)."""
    torch.manual_seed(0)
    base = models.get_model(name).to(dtype).train()
    for m in base.modules():
        if isinstance(m, SteerableConvBase):
            m.compute_mode = mode if m.stride == 1 else "direct"  # fft: stride 1 only
    x = torch.randn(4, 3, 32, 32, dtype=dtype)
    results = {}
    for level in ("off", "layers", "blocks:1", "blocks"):
        model = set_memory_saving(copy.deepcopy(base), level)
        torch.manual_seed(1)
        results[level] = _steps(model, x)
    ref_out, ref_grads, ref_state = results["off"]
    for level in ("layers", "blocks:1", "blocks"):
        outs, grads, state = results[level]
        for a, b in zip(ref_out, outs):
            assert torch.equal(a, b), level
        for a, b in zip(ref_grads, grads):
            assert torch.equal(a, b), level
        for k in ref_state:
            assert torch.equal(ref_state[k], state[k]), (level, k)


def test_eval_and_no_grad_ignore_the_level():
    model = models.get_model("test_wrn_ses_a", memory_saving="blocks")
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    ref = model(x)
    set_memory_saving(model, "off")
    assert torch.equal(model(x), ref)


def _conv_input_bytes(name, batch):
    """Bytes of the inputs of every block's convolutions (the batch-norm -> ReLU outputs
    that "layers" must not keep), from forward hooks on a plain meta run."""
    model = models.get_model(name).to("meta").train()
    sizes = {}
    for block in (m for m in model.modules() if hasattr(type(m), "memory_saving")):
        for conv in (block.conv1, block.conv2):
            conv.register_forward_hook(lambda m, i, o: sizes.__setitem__(id(i[0]), i[0].nbytes))
    model(torch.empty(batch, *models.get_model_info(name).input_shape, device="meta"))
    return sum(sizes.values())


def test_memory_saving_levels_keep_less():
    """On the meta device at batch 32: "layers" keeps at least the blocks' conv inputs less
    than "off", "blocks" less again (only block inputs), and the peaks follow."""
    peaks = {
        lv: training_memory("test_wrn_ses_a", 32, memory_saving=lv, compute_mode="direct")
        for lv in ("off", "layers", "blocks")
    }
    act = {lv: r.activation_bytes for lv, r in peaks.items()}
    assert act["off"] - act["layers"] >= _conv_input_bytes("test_wrn_ses_a", 32) > 0, act
    assert act["layers"] > act["blocks"], act
    assert peaks["off"].peak_bytes > peaks["layers"].peak_bytes >= peaks["blocks"].peak_bytes


def test_memory_saving_refuses_a_second_backward_and_an_outer_checkpoint():
    model = models.get_model("test_wrn_ses_a", memory_saving="layers").train()
    x = torch.randn(2, 3, 32, 32)
    out = model(x).sum()
    out.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="retain_graph"):
        out.backward()
    with pytest.raises(RuntimeError, match="saved_tensors_hooks"):
        torch.utils.checkpoint.checkpoint(model, x, use_reentrant=False).sum().backward()


def test_blocks_k_recomputes_the_first_k_blocks():
    from sesn.nn.recompute import memory_blocks, memory_saving_of

    model = models.get_model("test_wrn_ses_a", memory_saving="blocks:2")
    assert [b.memory_saving for b in memory_blocks(model)] == ["blocks", "blocks", "layers"]
    assert memory_saving_of(model) == "blocks:2"
    assert memory_saving_of(set_memory_saving(model, "blocks:3")) == "blocks"
    memory_blocks(model)[1].memory_saving = "off"
    assert memory_saving_of(model) == "mixed"
    from sesn.memory import saving_levels

    assert saving_levels("test_wrn_ses_a") == ["off", "layers", "blocks:1", "blocks:2", "blocks:3"]
    assert saving_levels("test_cnn") == ["off"]


def test_unknown_level_and_unsupported_model_are_errors():
    for bad in ("everything", "blocks:", "blocks:-1", "blocks:x"):
        with pytest.raises(ValueError, match="memory_saving must be one of"):
            models.get_model("test_wrn_ses_a", memory_saving=bad)
    with pytest.raises(ValueError, match="has 3 blocks"):
        models.get_model("test_wrn_ses_a", memory_saving="blocks:4")
    with pytest.raises(ValueError, match="not supported"):
        set_memory_saving(models.get_model("test_cnn"), "blocks")
    set_memory_saving(models.get_model("test_cnn"), "off")  # "off" is always fine


def test_fit_memory_saving_picks_the_cheapest_level_that_fits():
    kw = dict(compute_mode="direct")
    level, res = fit_memory_saving("test_wrn_ses_a", 32, 10**12, **kw)
    assert level == "off" and list(res) == ["off"]
    layers_peak = training_memory("test_wrn_ses_a", 32, memory_saving="layers", **kw).peak_bytes
    level, res = fit_memory_saving("test_wrn_ses_a", 32, layers_peak, **kw)
    assert level == "layers" and res["off"].peak_bytes > layers_peak
    level, res = fit_memory_saving("test_wrn_ses_a", 32, layers_peak - 1, **kw)  # recompute some blocks
    assert level.startswith("blocks:") and res[level].peak_bytes < layers_peak
    assert all(r.peak_bytes >= layers_peak for lv, r in res.items() if lv != level)
    with pytest.raises(ValueError, match="does not fit"):
        fit_memory_saving("test_wrn_ses_a", 32, 1000, **kw)


def test_parse_bytes():
    assert parse_bytes("12GB") == 12 * 10**9 and parse_bytes("1.5 GiB") == 3 * 2**29
    assert parse_bytes("800MB") == 8 * 10**8 and parse_bytes(1024) == 1024 and parse_bytes("2e9") == 2 * 10**9
    with pytest.raises(ValueError, match="not a memory size"):
        parse_bytes("twelve gigs")


# -- auto's memory rule ---------------------------------------------------------------
@pytest.fixture
def fresh_dispatch(monkeypatch):
    for var in ("SESN_COMPUTE_MODE", "SESN_AUTO", "SESN_DISPATCH_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(dispatch, "MEASURE_MIN_MACS", 0.0)
    monkeypatch.setattr(dispatch, "PRUNE_FACTOR", float("inf"))
    dispatch.clear()
    yield
    dispatch.clear()


def _hh(memory_factor):
    torch.manual_seed(0)
    layer = SESConv_H_H(
        8, 8, 1, 7, 3, [1.0, 1.4, 2.0], padding=3, basis_type="A", memory_factor=memory_factor, memory_allowance=0
    )
    return layer, torch.randn(16, 8, 3, 12, 12, requires_grad=True)


@pytest.mark.parametrize("factor", [1.25, float("inf")])
def test_auto_never_takes_a_memory_hungry_path_for_speed(fresh_dispatch, monkeypatch, factor):
    """A candidate the rule excludes (here: the FFT path, whose peak during its own forward
    and backward -- chunked spectra, the kernel matrix and its gradient -- is several times
    the direct path's; allowance 0), made the fastest by a fake clock, is still not taken
    under the default factor, and is taken with ``memory_factor=inf`` (time alone)."""
    layer, x = _hh(factor)
    out_shape = layer.evaluate_output_shape(x.shape)
    mem = {m: layer.path_memory(m, x, out_shape) for m in ("direct", "fft", "separable")}
    least = [min(v[i] for v in mem.values()) for i in (0, 1)]
    strict = dispatch.MemoryRule(1.25, 0)
    hungry = [m for m, v in mem.items() if not strict.admits(*v, *least)]
    assert hungry, mem
    fast = hungry[0]

    def fake_times(fns, device, reps=dispatch.REPS):
        return {m: (0.001 if m == fast else 1.0) for m in fns}

    monkeypatch.setattr(dispatch, "time_interleaved", fake_times)
    layer(x)
    (decision,) = dispatch.decisions()
    assert decision.training and decision.saved_bytes == {m: v[0] for m, v in mem.items()}
    assert decision.peak_bytes == {m: v[1] for m, v in mem.items()}
    if factor == 1.25:
        assert decision.pick != fast and fast in decision.reason
        assert strict.admits(*mem[decision.pick], *least)
    else:
        assert decision.pick == fast
    assert fast in dispatch.format_decisions()


def test_auto_memory_rule_does_not_apply_without_autograd(fresh_dispatch, monkeypatch):
    layer, x = _hh(1.25)
    monkeypatch.setattr(
        dispatch, "time_interleaved", lambda fns, device, reps=3: {m: float(m != "separable") for m in fns}
    )
    with torch.no_grad():
        layer(x)
    (decision,) = dispatch.decisions()
    assert decision.pick == "separable" and not decision.training and not decision.saved_bytes


def test_memory_factor_must_be_at_least_one():
    with pytest.raises(ValueError, match="memory_factor"):
        SESConv_H_H(2, 2, 1, 7, 3, [1.0, 2.0], memory_factor=0.5)


# -- sesn train's memory options --------------------------------------------------------
def _config(**kw):
    from sesn.train.config import TrainConfig

    return TrainConfig(model="test_wrn_ses_a", data="unused", dataset="stl10", device="cpu", batch_size=32, **kw)


def test_train_fit_memory_picks_and_records_the_level():
    from sesn.train.train import configure_memory

    layers_peak = training_memory("test_wrn_ses_a", 32, memory_saving="layers").peak_bytes
    cfg = _config(fit_memory=str(layers_peak)).resolved()
    model = models.get_model("test_wrn_ses_a")
    info = configure_memory(model, cfg, torch.device("cpu"), 1)
    assert info["memory_saving"] == "layers" and info["fit_memory"]["budget_bytes"] == layers_peak
    assert {m.memory_saving for m in model.modules() if hasattr(type(m), "memory_saving")} == {"layers"}
    with pytest.raises(ValueError, match="does not fit"):
        configure_memory(models.get_model("test_wrn_ses_a"), _config(fit_memory="1kB").resolved(), None, 1)


def test_train_memory_rule_options_reach_every_layer():
    from sesn.train.train import configure_memory

    model = models.get_model("test_wrn_ses_a")
    cfg = _config(memory_factor=float("inf"), memory_allowance="1GiB", memory_saving="blocks").resolved()
    info = configure_memory(model, cfg, torch.device("cpu"), 1)
    layers = [m for m in model.modules() if isinstance(m, SteerableConvBase)]
    assert layers and all(m.memory_factor == float("inf") and m.memory_allowance == 2**30 for m in layers)
    assert info == {"memory_saving": "blocks", "memory_factor": float("inf"), "memory_allowance": 2**30}


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(memory_saving="all"), "memory_saving must be one of"),
        (dict(fit_memory="12GB", memory_saving="layers"), "give one of them"),
        (dict(fit_memory="lots"), "not a memory size"),
        (dict(memory_factor=0.5), "--memory-factor"),
    ],
)
def test_train_memory_options_are_checked(kw, match):
    with pytest.raises(ValueError, match=match):
        _config(**kw).resolved()
