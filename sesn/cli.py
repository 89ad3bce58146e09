"""``sesn`` command line: ``sesn <group> <command> [options]``; ``--help`` on each."""

from __future__ import annotations

import argparse
import sys


def _report_equivariance(argv):
    from sesn.report import equivariance

    return equivariance.main(equivariance.get_args_parser().parse_args(argv))


def _data_mnist_scale(argv):
    from sesn.data.cli import mnist_scale_main

    return mnist_scale_main(argv)


def _data_stl10(argv):
    from sesn.data.cli import stl10_main

    return stl10_main(argv)


def _report_methods(argv):
    from sesn.report import methods

    return methods.main(methods.get_args_parser().parse_args(argv))


def _report_bench(argv):
    from sesn.report import bench

    return bench.main(bench.get_args_parser().parse_args(argv))


def _reproduce(argv):
    if argv[:1] == ["table"]:
        from sesn.report import reproduce_table

        return reproduce_table.main(argv[1:])
    from sesn import reproduce

    return reproduce.main(reproduce.get_args_parser().parse_args(argv))


def _train(argv):
    from sesn.train.train import cli

    return cli(argv)


COMMANDS = {
    ("report", "equivariance"): (_report_equivariance, "measure Delta of SESN layers vs a plain conv (the main job)"),
    ("report", "methods"): (_report_methods, "Delta vs depth / step / pair for every method and basis (smooth fields and digits)"),
    ("report", "bench"): (_report_bench, "turn pytest-benchmark JSON into Markdown/CSV tables and a PNG"),
    ("reproduce", None): (_reproduce, "retrain the paper's models and print our table beside the paper's ('sesn reproduce table': aggregate only)"),
    ("train", None): (_train, "train / evaluate one model (torchvision-references style)"),
    ("data", "mnist-scale"): (_data_mnist_scale, "generate / verify MNIST-scale realizations with checksums"),
    ("data", "stl10"): (_data_stl10, "download (on request) and check STL-10"),
}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) >= 2 and (argv[0], argv[1]) in COMMANDS:
        return COMMANDS[(argv[0], argv[1])][0](argv[2:]) or 0
    if len(argv) >= 1 and (argv[0], None) in COMMANDS:
        return COMMANDS[(argv[0], None)][0](argv[1:]) or 0
    p = argparse.ArgumentParser(
        "sesn",
        description="Scale-equivariant steerable networks: reports, data, benchmarks, reproduction.",
        epilog="commands:\n" + "\n".join(f"  sesn {g} {c or '':<14s} {h}" for (g, c), (_, h) in COMMANDS.items())
        + "\n\nRun 'sesn <group> <command> --help' for the options of one command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("group", nargs="?")
    p.add_argument("command", nargs="?")
    args, _ = p.parse_known_args(argv)
    if args.group is None:
        p.print_help()
        return 0
    p.error(f"unknown command {' '.join(a for a in (args.group, args.command) if a)!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
