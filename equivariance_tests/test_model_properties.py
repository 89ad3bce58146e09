"""Model-level properties of the registered tiny models.

Measured numbers (this machine, torch 2.14, seeds 0-2; Delta_c = centred logit error
``||M(L f) - M(f)||^2 / ||M(f) - mean_batch M(f)||^2`` on 64 synthetic shapes):

* randomly initialised, factor 0.707: CNN 1.34 / 11 / 2.56, SESN scalar 1.24 / 1.30 / 3.64,
  SESN vector 3.06 / 1.78 / 3.14 -- at initialisation SESN logits are **not** measurably
  more stable (the head, a Linear over the 2x2 pooled grid, and random channel mixing
  dominate), so no advantage is asserted there;
* after 40 Adam steps on shapes at scales 0.9-1.0 (``_train`` below), factor 0.707:
  CNN 0.94 / 1.84 / 1.10 (mean 1.29), SESN scalar 0.88 / 0.56 / 0.29 (mean 0.58),
  SESN vector 0.94 / 0.57 / 0.84 (mean 0.78); accuracy on the shrunk test shapes:
  CNN 0.42 / 0.27 / 0.59, SESN scalar 0.73 / 1.00 / 1.00, SESN vector 0.97 / 0.69 / 0.58.
  Asserted: mean Delta_c of each SESN model < 0.8 x the CNN's, and its mean accuracy on
  shrunk inputs exceeds the CNN's by >= 0.1.

Translations: every stage up to its pooling is exactly translation equivariant; through a
2x2 max-pool only shifts by multiples of 2 are (a 1-px shift changes the pooled map); the
head (flatten -> Linear) is not translation equivariant at all, so none is claimed for logits.
"""

import functools

import pytest
import torch
import torch.nn.functional as F

import sesn.models as m
from equivariance_tests.synthetic import shapes
from equivariance_tests.tolerances import EXACT
from sesn.equivariance import translation_equivariance
from sesn.testing import assert_equivariant
from sesn.transforms import rescale

SEEDS = (0, 1, 2)
FACTOR = 0.707


def centred_logit_error(model, x, factor):
    with torch.no_grad():
        a, b = model(x), model(rescale(x, factor))
    return float((a - b).pow(2).sum() / (a - a.mean(0)).pow(2).sum())


def _accuracy(model, x, y):
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


@functools.lru_cache(maxsize=None)
def _data():
    g = torch.Generator().manual_seed(0)
    train = shapes(512, g, min_scale=0.9, max_scale=1.0)
    test = shapes(64, g, min_scale=0.9, max_scale=1.0)
    return train, test


@functools.lru_cache(maxsize=None)
def _train(name, seed):
    (xtr, ytr, _), (xte, yte, _) = _data()
    torch.manual_seed(seed)
    model = m.get_model(name)
    opt = torch.optim.Adam(model.parameters(), 0.01)
    model.train()
    for it in range(40):
        idx = torch.randint(0, len(xtr), (64,), generator=torch.Generator().manual_seed(it))
        loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return centred_logit_error(model, xte, FACTOR), _accuracy(model, rescale(xte, FACTOR), yte)


@pytest.mark.parametrize("name", ["test_ses_scalar", "test_ses_vector"])
def test_model_trained_sesn_logits_more_stable_vs_cnn(name):
    ses = [_train(name, s) for s in SEEDS]
    cnn = [_train("test_cnn", s) for s in SEEDS]
    ses_err = sum(e for e, _ in ses) / len(SEEDS)
    cnn_err = sum(e for e, _ in cnn) / len(SEEDS)
    ses_acc = sum(a for _, a in ses) / len(SEEDS)
    cnn_acc = sum(a for _, a in cnn) / len(SEEDS)
    assert ses_err < 0.8 * cnn_err, f"{name}: Delta_c {ses_err:.3f} vs CNN {cnn_err:.3f}"
    assert ses_acc >= cnn_acc + 0.1, f"{name}: accuracy on shrunk shapes {ses_acc:.2f} vs CNN {cnn_acc:.2f}"


# seed 0, factor 0.707, the 64 test shapes of _data(): measured on this project's CI machine
RANDOM_INIT_DELTA_C = {"test_cnn": 1.3442, "test_ses_scalar": 1.2368, "test_ses_vector": 3.0647}


@pytest.mark.pinned
def test_model_random_init_logit_errors_are_measured():
    """At initialisation no advantage is claimed, but the measurement is pinned: the
    identity rescale gives exactly 0, and factor 0.707 reproduces the documented values
    (1 % slack for float32 kernels that differ between CPUs), so a broken measurement or a
    changed model shows here."""
    _, (xte, _, _) = _data()
    for name, expected in RANDOM_INIT_DELTA_C.items():
        torch.manual_seed(0)
        model = m.get_model(name).eval()
        assert centred_logit_error(model, xte, 1.0) == 0.0
        err = centred_logit_error(model, xte, FACTOR)
        assert err == pytest.approx(expected, rel=1e-2), (name, err)


def _stage1(name):
    torch.manual_seed(0)
    model = m.get_model(name)
    x = torch.randn(8, 1, 28, 28)
    model.train()
    model(x)  # non-trivial BN running statistics
    model.eval()
    # model[0] is the input check (fixed 28x28); stage 1 = conv [, projection], ReLU, pool, BN
    end = 6 if "scalar" in name else 5
    k = model[1].kernel_size
    return torch.nn.Sequential(*list(model)[1:end]).double(), k if isinstance(k, int) else k[0]


@pytest.mark.parametrize("name", ["test_cnn", "test_ses_scalar", "test_ses_vector"])
def test_model_stage1_translation_exact_for_even_shifts(name):
    stage, k = _stage1(name)
    x = torch.randn(2, 1, 48, 48, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for shift in [(2, 0), (-4, 2), (6, -6)]:
        err = translation_equivariance(stage, x, shift, stride=2, radius=k // 2 + 1)
        assert_equivariant(err, EXACT[torch.float64], f"{name} stage 1, shift {shift}")


@pytest.mark.parametrize("name", ["test_cnn", "test_ses_scalar", "test_ses_vector"])
def test_model_stage1_pooling_breaks_odd_shifts(name):
    stage, k = _stage1(name)
    x = torch.randn(2, 1, 48, 48, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    # compare the 1-px-shifted input's features with the unshifted ones: no integer output
    # shift can match, the best candidate (0) is measurably off
    with torch.no_grad():
        a = stage(x)
        b = stage(torch.roll(x, 1, dims=-1))
    crop = 6
    err = float((a - b)[..., crop:-crop, crop:-crop].pow(2).sum() / a[..., crop:-crop, crop:-crop].pow(2).sum())
    assert err > 1e-2, f"{name}: a 1-px shift unexpectedly commutes with 2x2 pooling ({err:.2e})"
