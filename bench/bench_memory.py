"""Training memory of every model family at its paper batch and input size (issue 22).

Each case measures one training step (forward, loss, backward, optimizer step) with
:func:`sesn.memory.training_memory`: on CPU on the ``meta`` device (exact tensor sizes, no
data), on CUDA on the GPU itself (tracked peak and ``max_memory_allocated``). The figures go
to ``extra_info`` (``peak_memory_bytes`` ...); the time pytest-benchmark records is that of
the measurement, not of training (training-step times are the ``*-fwdbwd`` groups).
"""

from __future__ import annotations

import pytest
import torch
from conftest import environment
from settings import SETTINGS

from sesn.memory import training_memory
from sesn.models import get_model_info
from sesn.nn import dispatch

# family -> (paper batch, baseline model, SESN models); MNIST 128 @ 28/56, STL-10 128 @ 96,
# STIR 16 @ 64 (the protocols of docs/protocols.md and docs/scale-generalization.md)
FAMILIES = (
    {
        "mnist-28": (2, "test_cnn", ["test_ses_scalar", "test_ses_vector"]),
        "stl10": (2, "test_wrn", ["test_wrn_ses_a", "test_wrn_ses_b", "test_wrn_ses_c"]),
    }
    if SETTINGS.quick
    else {
        "mnist-28": (128, "mnist_cnn_28", ["mnist_ses_scalar_28", "mnist_ses_vector_28"]),
        "mnist-56": (128, "mnist_cnn_56", ["mnist_ses_scalar_56", "mnist_ses_vector_56"]),
        "stl10": (128, "wrn_16_8", ["wrn_16_8_ses_a", "wrn_16_8_ses_b", "wrn_16_8_ses_c"]),
        "stir": (16, "stir_cnn", ["stir_sesn_b", "stir_sesn_a", "stir_sesn_d"]),
    }
)
PATHS = ("naive", "direct", "fft", "separable", "auto")
LEVELS = ("off", "layers", "blocks:2", "blocks")
DEVICE = "cuda" if SETTINGS.cuda else "meta"


def _cases():
    for family, (batch, base, ses) in FAMILIES.items():
        wrn = family == "stl10"
        for level in LEVELS if wrn else ("off",):
            yield family, batch, base, None, level, "fp32"
        for name in ses:
            for path in PATHS:
                yield family, batch, name, path, "off", "fp32"
            if wrn:
                for level in LEVELS[1:]:
                    yield family, batch, name, "auto", level, "fp32"
                for level in LEVELS:
                    yield family, batch, name, "auto", level, "amp"


@pytest.mark.parametrize(
    "family, batch, name, path, level, precision",
    list(_cases()),
    ids=lambda v: str(v),
)
def test_training_memory(benchmark, family, batch, name, path, level, precision):
    info = get_model_info(name)
    kw = dict(device=DEVICE, memory_saving=level, precision=precision)
    if path is not None:
        kw["compute_mode"] = path
    meta_peak = None
    if SETTINGS.cuda:  # what would not fit the GPU is measured on meta first, and skipped
        need = meta_peak = training_memory(name, batch, **{**kw, "device": "meta"}).peak_bytes
        total = torch.cuda.get_device_properties(0).total_memory
        if need > 0.9 * total:
            pytest.skip(f"needs {need / 2**30:.1f} GiB of tensors (meta), the GPU has {total / 2**30:.1f} GiB")
    result = {}

    def measure():
        dispatch.clear()  # auto's picks of this case only
        result["m"] = training_memory(name, batch, **kw)
        result["picks"] = [f"{d.layer} in {list(d.input_shape)}: {d.pick}" for d in dispatch.decisions() if d.training]

    benchmark.group = f"memory-{family}"
    variant = path or "baseline"
    suffix = ("" if level == "off" else f"+{level}") + ("" if precision == "fp32" else f"-{precision}")
    benchmark.name = f"{name}/{variant}{suffix}"
    benchmark.pedantic(measure, rounds=1, iterations=1)
    m = result["m"]
    benchmark.extra_info.update(environment())
    benchmark.extra_info.update(
        {
            "case": "memory",
            "model": name,
            "variant": variant,
            "role": "baseline" if path is None else "ses",
            "pass": "train",
            "precision": precision,
            "memory_saving": level,
            "batch": batch,
            "input_shape": [batch, *info.input_shape],
            "params": info.num_params,
            "peak_memory_bytes": m.peak_bytes,
            "activation_bytes": m.activation_bytes,
            "state_bytes": m.state_bytes,
            "cuda_max_allocated_bytes": m.cuda_max_allocated_bytes,
            "meta_peak_bytes": meta_peak if meta_peak is not None else (m.peak_bytes if m.device == "meta" else None),
            "memory_kind": f"tracked tensor storages on {m.device}"
            + (", and cuda max_memory_allocated" if SETTINGS.cuda else ""),
            "memory_device": m.device,
            "memory_precision": m.precision,
            "compute_modes": m.compute_mode,
        }
    )
    if path == "auto":
        benchmark.extra_info["auto_picks"] = result["picks"]
