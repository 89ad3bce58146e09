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


def _data_stir(argv):
    from sesn.data.cli import stir_main

    return stir_main(argv)


def _report_methods(argv):
    from sesn.report import methods

    return methods.main(methods.get_args_parser().parse_args(argv))


def _report_frontier(argv):
    from sesn.report import frontier

    return frontier.main(frontier.get_args_parser().parse_args(argv))


def _report_trained(argv):
    from sesn.report import trained_equivariance

    return trained_equivariance.main(trained_equivariance.get_args_parser().parse_args(argv))


def _report_verdict_power(argv):
    from sesn.report import verdict_power

    return verdict_power.main(verdict_power.get_args_parser().parse_args(argv))


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


def _generalization(argv):
    from sesn.generalization_cli import cli

    return cli(argv)


def _bench_generalization(argv):
    print(
        "note: 'sesn bench generalization' is now 'sesn generalization' (it measures accuracy; "
        "bench/ and 'sesn report bench' measure speed); running it",
        file=sys.stderr,
    )
    return _generalization(argv)


COMMANDS = {
    ("report", "equivariance"): (_report_equivariance, "measure Delta of SESN layers vs a plain conv (the main job)"),
    ("report", "methods"): (
        _report_methods,
        "Delta vs depth / step / pair for every method and basis (smooth fields and digits)",
    ),
    ("report", "verdict-power"): (
        _report_verdict_power,
        "how often the plug-in verdict fails layers with a sigma error of 1-20 % (bases A, B, D)",
    ),
    ("report", "bench"): (_report_bench, "turn pytest-benchmark JSON into Markdown/CSV tables and a PNG"),
    ("report", "frontier"): (
        _report_frontier,
        "equivariance vs test error for each basis of one model, Pareto front marked",
    ),
    ("report", "trained-equivariance"): (
        _report_trained,
        "the trained models' own Delta on their test data (a reproduce results folder)",
    ),
    ("reproduce", None): (
        _reproduce,
        "retrain the paper's models and print our table beside the paper's ('sesn reproduce table': aggregate only)",
    ),
    ("train", None): (_train, "train / evaluate one model (torchvision-references style)"),
    ("data", "mnist-scale"): (_data_mnist_scale, "generate / verify MNIST-scale realizations with checksums"),
    ("data", "stl10"): (_data_stl10, "download (on request) and check STL-10"),
    ("data", "stir"): (_data_stir, "rebuild STIR's mnist scale-generalization set offline / verify it"),
    ("generalization", None): (
        _generalization,
        "train on some object sizes, test on others (STIR protocol), every method ('sesn generalization table': "
        "aggregate only)",
    ),
    ("bench", "generalization"): (_bench_generalization, "the old name of 'sesn generalization' (still runs it)"),
}


def _user_errors() -> tuple:
    """Exceptions that mean 'the input is wrong' (one clear line, no traceback)."""
    from sesn.errors import SesnError
    from sesn.io import CorruptFileError

    errors = [SesnError, ValueError, FileNotFoundError, FileExistsError, CorruptFileError]
    try:
        from sesn.data.idx import DataFileError

        errors.append(DataFileError)
    except ImportError:  # pragma: no cover
        pass
    try:
        from sesn.train.train import RunInProgress, SettingsMismatch

        errors += [RunInProgress, SettingsMismatch]
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


def _parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        "sesn",
        description="Scale-equivariant steerable networks: reports, data, benchmarks, reproduction.",
        epilog="commands:\n"
        + "\n".join(f"  sesn {g} {c or '':<14s} {h}" for (g, c), (_, h) in COMMANDS.items())
        + "\n\nRun 'sesn <group> <command> --help' for the options of one command. Add --debug to any command "
        "to see the full traceback of an error, and --import MODULE (repeatable) to load a plug-in module that "
        "registers your own layers, methods or models (docs/extending.md; also $SESN_IMPORT and the 'sesn.plugins' "
        "entry points). --cpu-allocator {heap,system}: glibc's malloc from the heap only (faster SESN training on "
        "CPU; the process keeps its peak memory) or left alone; default heap for train, reproduce and "
        "generalization, system for the others (also $SESN_ALLOCATOR; docs/speed.md).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


# the commands whose CPU speed gains from the heap-only allocator (sesn.allocator)
ALLOCATOR_COMMANDS = {("reproduce", None), ("train", None), ("generalization", None), ("bench", "generalization")}


def pop_allocator_option(argv: list[str]) -> tuple[str | None, list[str]]:
    """``--cpu-allocator X`` / ``--cpu-allocator=X`` taken out of ``argv``: (X or None, the rest)."""
    choice, rest, i = None, [], 0
    while i < len(argv):
        a = argv[i]
        if a == "--cpu-allocator":
            if i + 1 >= len(argv):
                raise ValueError("--cpu-allocator needs a value: heap or system")
            choice, i = argv[i + 1], i + 2
            continue
        if a.startswith("--cpu-allocator="):
            choice = a.split("=", 1)[1]
        else:
            rest.append(a)
        i += 1
    if choice is not None and choice not in ("heap", "system"):
        raise ValueError(f"--cpu-allocator must be heap or system, got {choice!r}")
    return choice, rest


def choose_allocator(key, option: str | None) -> str | None:
    """Configure the CPU allocator for command ``key``; returns what is in use when it was
    configured (printed once by the caller), None when malloc is left alone."""
    from sesn import settings
    from sesn.allocator import configure_cpu_allocator

    if option is not None:
        settings.export("SESN_ALLOCATOR", option)  # torchrun workers and subprocesses follow the option
        return configure_cpu_allocator(option)
    if settings.allocator():
        return configure_cpu_allocator()  # as SESN_ALLOCATOR says
    if key in ALLOCATOR_COMMANDS:
        return configure_cpu_allocator("heap")
    return None  # a command that does not gain from it: malloc untouched, nothing to say


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    if debug:
        from sesn import settings

        settings.set_debug()  # commands that print their own errors re-raise
    from sesn.plugin_loader import load_plugins, pop_import_options

    try:
        modules, argv = pop_import_options(argv)
        allocator_option, argv = pop_allocator_option(argv)
        load_plugins(modules)
    except ValueError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    if len(argv) >= 2 and (argv[0], argv[1]) in COMMANDS:
        command, rest = COMMANDS[(argv[0], argv[1])][0], argv[2:]
    elif len(argv) >= 1 and (argv[0], None) in COMMANDS:
        command, rest = COMMANDS[(argv[0], None)][0], argv[1:]
    else:
        return _no_command(argv)
    key = (argv[0], argv[1] if len(argv) >= 2 and (argv[0], argv[1]) in COMMANDS else None)
    choose_allocator(key, allocator_option)  # printed once when a run starts (sesn.allocator.announce)
    try:
        return command(rest) or 0
    except _user_errors() as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2


def _no_command(argv) -> int:
    import difflib

    groups = sorted({g for g, _ in COMMANDS})
    if not argv or argv[0] in ("-h", "--help"):
        _parser().print_help()
        return 0
    if argv[0] in groups and (len(argv) == 1 or argv[1] in ("-h", "--help")):
        print(f"sesn {argv[0]}: one of")
        for (g, c), (_, h) in COMMANDS.items():
            if g == argv[0]:
                print(f"  sesn {g} {c:<14s} {h}")
        return 0 if len(argv) > 1 else 2
    asked = " ".join(argv[:2] if argv[0] in groups else argv[:1])
    names = [f"{g} {c}" if c else g for g, c in COMMANDS]
    close = difflib.get_close_matches(asked, names, n=3, cutoff=0.5)
    hint = f"; did you mean: {', '.join('sesn ' + c for c in close)}?" if close else "; run 'sesn --help' for the list"
    print(f"error: unknown command 'sesn {asked}'{hint}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
