"""Checkpoints in the authors' layout load into all 32 paper models and give their outputs.

The authors' code is not available offline, so each model's state_dict is built in the
reference's layout by hand: ours, plus the buffers only the reference stores (every
steerable layer's basis ``[N_b, S, k, k]``; DSS's Gaussian lifting as dense C x C kernels
``kernelx_j`` ``[C, C, 1, L]`` and ``kernely_j`` ``[C, C, L, 1]``). The buffer counts of the
authors' models (docs/baselines.md) confirm the layout where they are known; the layout
loads strictly, gives bit-identical outputs, and a reference buffer that disagrees with
ours is refused.
"""

from __future__ import annotations

import pytest
import torch

import sesn.models as m
from sesn.baselines.dss import BesselConv2d
from sesn.nn.steerable import SteerableConvBase

OTHER_PREFIXES = ("test_", "mnist_disco_", "mnist_sesr_", "mnist_sesw_", "disco_", "stir_")  # not the authors' models
PAPER_MODELS = [n for n in m.list_models() if not n.startswith(OTHER_PREFIXES)]
# buffer elements of the authors' checkpoints (docs/baselines.md)
REFERENCE_BUFFERS = {
    "mnist_cnn": 896,
    "mnist_kanazawa": 896,
    "mnist_xu": 3_176,
    "mnist_sevf_scalar": 705,
    "mnist_sevf_vector": 581,
    "mnist_dss_scalar": 90_788,
    "mnist_dss_vector": 914,
    "mnist_ss": 1_057,
    "wrn_16_8": 7_213,
    "wrn_16_8_kanazawa": 7_213,
    "wrn_16_8_xu": 21_613,
    "wrn_16_8_ss": 4_963,
    "wrn_16_8_dss": 8_147,
}


def reference_layout(model: torch.nn.Module) -> dict:
    """``model``'s state_dict as the authors' code stores it."""
    state = dict(model.state_dict())
    for prefix, mod in model.named_modules():
        if isinstance(mod, SteerableConvBase):
            state[f"{prefix}.basis"] = mod.basis.detach().clone()
        if isinstance(mod, BesselConv2d):
            eye = torch.eye(mod.n_channels)
            for j in range(1, mod.n_scales):
                g = getattr(mod, f"kernel_{j}")
                state[f"{prefix}.kernelx_{j}"] = eye[:, :, None, None] * g.view(1, 1, 1, -1)
                state[f"{prefix}.kernely_{j}"] = eye[:, :, None, None] * g.view(1, 1, -1, 1)
    return state


def _buffer_elements(model, state) -> int:
    params = {k for k, _ in model.named_parameters()}
    return sum(v.numel() for k, v in state.items() if k not in params)


def test_the_paper_has_32_models():
    assert len(PAPER_MODELS) == 32


@pytest.mark.parametrize("name", PAPER_MODELS)
def test_reference_layout_loads_and_gives_the_same_outputs(name):
    small = (
        {"in_size": 48} if name.startswith("wrn") else {}
    )  # state_dicts do not depend on it; 48 px keeps the test fast
    torch.manual_seed(0)
    ours = m.get_model(name, **small).eval()
    state = reference_layout(ours)
    key = name.removesuffix("_28").removesuffix("_56")
    if key in REFERENCE_BUFFERS:
        assert _buffer_elements(ours, state) == REFERENCE_BUFFERS[key]
    if any(isinstance(mod, SteerableConvBase) for mod in ours.modules()):
        assert any(k.endswith(".basis") for k in state)
    torch.manual_seed(1)
    loaded = m.get_model(name, **small).eval()
    result = loaded.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    c, h, w = m.get_model_info(name).input_shape
    size = small.get("in_size", h)
    x = torch.randn(1, c, size, size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(loaded(x), ours(x))


@pytest.mark.parametrize("name", ["mnist_dss_scalar_28", "mnist_ses_vector_56p"])
def test_a_reference_buffer_that_disagrees_is_refused(name):
    model = m.get_model(name)
    state = reference_layout(model)
    key = next(k for k in state if k.endswith((".kernelx_1", ".basis")))
    state[key] = state[key] * 1.01
    with pytest.raises(RuntimeError, match="differs"):
        model.load_state_dict(state, strict=True)
