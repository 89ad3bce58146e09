"""Interleaved timing: the CNN and mnist_ses_scalar_28 on each compute path, timed in turn
within one process (round r times every variant once), so that a variant is never measured
in a different process state than another -- the check that pytest-benchmark's row-by-row
run cannot give (docs/speed.md).

    python bench/interleaved.py [--rounds 5] [--batch 128] [--model mnist_ses_scalar_28] [--train]

``--train`` times a training step (train mode, forward, ``square().mean()`` loss,
backward; the bench suite's fwd+bwd) instead of an eval forward.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from sesn.models.registry import get_model


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--model", default="mnist_ses_scalar_28")
    p.add_argument("--baseline", default="mnist_cnn_28")
    p.add_argument("--modes", nargs="*", default=["auto", "direct", "fft", "naive"])
    p.add_argument("--train", action="store_true", help="time a training step (forward + backward)")
    p.add_argument(
        "--system-allocator", action="store_true", help="leave malloc as it is (default: sesn.allocator's heap-only)"
    )
    args = p.parse_args(argv)
    if not args.system_allocator:
        from sesn.allocator import configure_cpu_allocator

        print("allocator:", configure_cpu_allocator())
    variants = {}
    for name, mode in [(args.baseline, None)] + [(args.model, m) for m in args.modes]:
        torch.manual_seed(0)
        model = get_model(name).train(args.train)
        for module in model.modules():
            if mode and hasattr(module, "compute_mode"):
                module.compute_mode = mode
        variants[f"{name}" + (f" ({mode})" if mode else "")] = model
    size = 56 if args.model.endswith(("_56", "_56p")) else 28
    x = torch.randn(args.batch, 1, size, size)
    times = {k: [] for k in variants}

    def call(model):
        if not args.train:
            with torch.no_grad():
                return model(x)
        for param in model.parameters():
            param.grad = None
        model(x).square().mean().backward()

    for model in variants.values():  # warm-up; auto measures its candidates here
        call(model)
        call(model)
    for _ in range(args.rounds):
        for key, model in variants.items():
            t0 = time.perf_counter()
            call(model)
            times[key].append(1000 * (time.perf_counter() - t0))
    from sesn.nn import dispatch

    for key, mode in dispatch.choices().items():
        print(f"auto picked {mode} for {key[0]} {key[2]}->{key[3]} in {list(key[7])}")
    base = statistics.median(times[next(iter(times))])
    what = "training step" if args.train else "forward"
    print(f"{what}, batch {args.batch}, {args.rounds} interleaved rounds, {torch.get_num_threads()} threads")
    for key, v in times.items():
        med = statistics.median(v)
        print(f"{key:40s} median {med:8.1f} ms  ({med / base:.2f}x baseline)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
