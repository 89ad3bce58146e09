"""Hypothesis settings profiles for the property tests, chosen by SESN_HYPOTHESIS_PROFILE.

* ``ci`` (default): few examples, no deadline, drawn from a seed taken from the commit
  (``git rev-parse HEAD``; ``SESN_HYPOTHESIS_SEED`` or ``--hypothesis-seed`` override it):
  one commit always draws the same cases, and successive commits cover different ones. The
  seed is printed in the header; ``pytest --hypothesis-seed=<seed>`` replays a run.
* ``dev``: random, more examples.
* ``nightly``: many examples.
* ``mutant``: as ``ci`` without shrinking (a killed mutant only needs its first failure);
  used by ``python -m equivariance_tests.mutants run``.

``SESN_MUTANT=<name>`` runs the whole session with one mutant of
:mod:`equivariance_tests.mutants` active (a deliberately broken library, patched at run
time): the suite must then fail.

Test names carry the layer kind (``th``, ``hh``, ``hh_interscale``, ``proj``, ``model``,
``tester``; ``tt`` for a plug-in's T->T layer) so ``pytest equivariance_tests -k hh`` selects
exactly the H->H cases; the hook below refuses a test whose name would be selected by the
wrong ``-k``.
"""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import HealthCheck, Phase, settings

from sesn import settings as sesn_settings

settings.register_profile(
    "ci",
    max_examples=6,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.register_profile(
    "mutant",
    max_examples=6,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.register_profile(
    "dev", max_examples=25, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "nightly", max_examples=300, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(sesn_settings.hypothesis_profile())

KINDS = ("th", "hh_interscale", "hh", "tt", "proj", "model", "tester")
_KIND_RE = re.compile(r"^test_(th|hh_interscale|hh|tt|proj|model|tester)_")


HERE = os.path.dirname(os.path.abspath(__file__))
# Layer properties run on explicitly chosen paths; models built in `auto` pick theirs by the
# cost model (no timing: fast, and the same pick on every machine).
os.environ.setdefault("SESN_AUTO", "cost-model")

# plug-in modules named in $SESN_IMPORT (and the 'sesn.plugins' entry points) register their
# layers' equivariance cases before collection (sesn/testing/plugins.py)
from sesn.plugin_loader import load_plugins  # noqa: E402

load_plugins()
_MUTANT_PATCH = None


def commit_seed() -> tuple[int, str]:
    """(seed, where it came from) of the ``ci`` profile's draws."""
    env = sesn_settings.hypothesis_seed()
    if env is not None:
        return env, "SESN_HYPOTHESIS_SEED"
    import subprocess

    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        return int(head[:8], 16), f"commit {head[:12]}"
    except (OSError, subprocess.SubprocessError, ValueError):
        return 0, "no git checkout: fixed seed 0"


_SEED_NOTE = None


def pytest_configure(config):
    global _MUTANT_PATCH, _SEED_NOTE
    if settings.get_current_profile_name() == "ci" and config.getoption("hypothesis_seed", None) is None:
        import hypothesis.core

        seed, origin = commit_seed()
        if not hasattr(hypothesis.core, "global_force_seed"):  # hypothesis changed: fall back to fixed draws
            settings.register_profile("ci-fixed", settings.get_profile("ci"), derandomize=True)
            settings.load_profile("ci-fixed")
            _SEED_NOTE = "hypothesis profile ci: derandomized (this hypothesis version takes no global seed)"
        else:
            hypothesis.core.global_force_seed = seed  # what --hypothesis-seed sets
            _SEED_NOTE = f"hypothesis profile ci: seed {seed} ({origin}); replay: pytest --hypothesis-seed={seed}"
    name = sesn_settings.mutant()
    if name and _MUTANT_PATCH is None:
        from equivariance_tests.mutants import get_mutant

        _MUTANT_PATCH = pytest.MonkeyPatch()
        get_mutant(name).apply(_MUTANT_PATCH)


def pytest_unconfigure(config):
    global _MUTANT_PATCH
    if _MUTANT_PATCH is not None:
        _MUTANT_PATCH.undo()
        _MUTANT_PATCH = None


def pytest_report_header(config):
    name = sesn_settings.mutant()
    lines = [_SEED_NOTE] if _SEED_NOTE else []
    if name:
        lines.append(f"MUTANT ACTIVE: {name} (equivariance_tests.mutants) -- this run is expected to fail")
    return lines or None


def pytest_collection_modifyitems(config, items):
    # a session-wide hook: only judge the items of this folder
    bad = []
    for item in items:
        if not str(item.path).startswith(HERE + os.sep):
            continue
        name = item.name
        m = _KIND_RE.match(name)
        if not m:
            bad.append(f"{item.nodeid}: name must start with test_<kind>_ for a kind in {KINDS}")
            continue
        kind = m.group(1)
        # no accidental 'th'/'hh' elsewhere in the node id (module, params) that -k would match
        rest = item.nodeid.replace(f"test_{kind}_", "test__", 1)
        for token in ("th", "hh"):
            if token in rest and not kind.startswith(token):
                bad.append(f"{item.nodeid}: contains {token!r}, so '-k {token}' would select it")
    if bad:
        raise pytest.UsageError("equivariance_tests naming convention:\n" + "\n".join(bad))
