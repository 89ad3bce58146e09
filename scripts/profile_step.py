"""Time (and optionally profile) one model's forward and training step on CPU, the way
docs/speed.md's STIR steps were measured: batch 16 of random inputs, median of 5 after two
warm-ups, the CPU allocator configured as the commands do.

    python scripts/profile_step.py stir_sesn_b --mode auto [--batch 16] [--profile]
"""

import argparse
import time

import torch

from sesn.allocator import configure_cpu_allocator


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="registered model name, e.g. stir_sesn_b")
    p.add_argument("--mode", default="auto", help="compute mode of every steerable layer (auto, direct, fft, ...)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--profile", action="store_true", help="torch.profiler table over 3 training steps")
    args = p.parse_args()
    configure_cpu_allocator()
    import sesn.models as models
    from sesn.nn.steerable import SteerableConvBase

    model = models.get_model(args.model)
    for layer in model.modules():
        if isinstance(layer, SteerableConvBase):
            layer.compute_mode = args.mode
    x = torch.randn(args.batch, *models.get_model_info(args.model).input_shape)
    model.train()

    def step():
        for q in model.parameters():
            q.grad = None
        model(x).square().mean().backward()

    def forward():
        with torch.no_grad():
            model(x)

    for fn, label in ((forward, "forward"), (step, "training step")):
        fn()
        fn()
        times = []
        for _ in range(5):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        print(f"{args.model} {args.mode} {label}: {1000 * sorted(times)[2]:.1f} ms (median of 5)")
    if args.profile:
        from torch.profiler import profile

        with profile() as prof:
            for _ in range(3):
                step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


if __name__ == "__main__":
    main()
