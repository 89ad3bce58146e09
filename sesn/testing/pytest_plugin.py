"""The pytest plug-in of the installed package (entry point ``pytest11: sesn``): a user's registered
layers become hypothesis property tests in *their own* repository, judged against this package's
references (:mod:`sesn.testing.verdict`)::

    pytest --sesn-import mypkg.layers            # or, in pytest.ini / pyproject: sesn_import = mypkg.layers
    pytest --sesn-import mypkg.layers -k th      # only the T->H cases
    pytest --sesn                                # the cases of $SESN_IMPORT and 'sesn.plugins' entry points

Each registered case (``sesn.testing.plugins.register_equivariance_case``) becomes one test item,
``test_<kind>_plugin_verdict[p<i>]`` (kind ``th``, ``hh`` or ``tt``, so ``-k th`` / ``-k hh``
select by kind). The item runs a hypothesis property: each example draws a seed (the layer's
weights and a smooth input) and a scale step, and the verdict at that step and step 1 must pass
at the case's level (``--sesn-level`` overrides every case's). Nothing happens unless one of the
options above asks for it, so installing the package does not change any other pytest run, and
this module imports neither torch nor hypothesis until then.
"""

from __future__ import annotations

import os
import sys

import pytest

_KIND_TOKEN = {"T->H": "th", "H->H": "hh", "T->T": "tt"}
DEFAULT_EXAMPLES = 10


def pytest_addoption(parser):
    group = parser.getgroup("sesn", "scale-equivariance verdicts of registered layers (sesn)")
    group.addoption(
        "--sesn-import",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE (repeatable, or comma-separated) and collect the equivariance cases it registers",
    )
    group.addoption(
        "--sesn",
        action="store_true",
        default=False,
        help="collect the equivariance cases of $SESN_IMPORT and of installed 'sesn.plugins' entry points",
    )
    group.addoption(
        "--sesn-level",
        default=None,
        metavar="LEVEL",
        help="verdict level for every case: reference[:worst|:best|:BASIS][:F], method:NAME[:F], rank:K, regression "
        "(default: each case's declared level)",
    )
    group.addoption(
        "--sesn-examples",
        type=int,
        default=None,
        metavar="N",
        help=f"hypothesis examples per case (default: ini sesn_examples, else {DEFAULT_EXAMPLES})",
    )
    parser.addini("sesn_import", "modules whose equivariance cases are collected (as --sesn-import)", type="args")
    parser.addini("sesn_level", "verdict level for every case (as --sesn-level)", default="")
    parser.addini("sesn_examples", "hypothesis examples per case (as --sesn-examples)", default="")


def _modules(config) -> list[str]:
    out = []
    for v in list(config.getoption("sesn_import") or []) + list(config.getini("sesn_import") or []):
        out += [m.strip() for m in str(v).split(",") if m.strip()]
    return out


def _active(config) -> bool:
    return bool(_modules(config)) or bool(config.getoption("sesn"))


def _examples(config) -> int:
    n = config.getoption("sesn_examples")
    if n is None:
        text = str(config.getini("sesn_examples") or "").strip()
        n = int(text) if text else DEFAULT_EXAMPLES
    if n < 1:
        raise pytest.UsageError(f"--sesn-examples must be >= 1, got {n}")
    return n


def _level(config):
    return config.getoption("sesn_level") or (str(config.getini("sesn_level") or "").strip() or None)


def pytest_configure(config):
    if not _active(config):
        return
    try:
        import hypothesis  # noqa: F401
    except ImportError as e:  # pragma: no cover - the test extra installs it
        raise pytest.UsageError("the sesn plug-in needs hypothesis: pip install 'sesn[test]'") from e
    from sesn.plugin_loader import load_plugins
    from sesn.testing.verdict import VerdictError, parse_level

    if os.getcwd() not in sys.path and "" not in sys.path:  # a module in the folder pytest runs from imports
        sys.path.insert(0, os.getcwd())
    try:
        load_plugins(_modules(config), entry_points=bool(config.getoption("sesn")))
    except ValueError as e:
        raise pytest.UsageError(str(e)) from e
    level = _level(config)
    if level is not None:
        try:
            parse_level(level)
        except VerdictError as e:
            raise pytest.UsageError(str(e)) from e
    config.stash[_STATE] = {"examples": _examples(config), "level": level}


_STATE = pytest.StashKey[dict]()


def pytest_report_header(config):
    if _STATE not in config.stash:
        return None
    from sesn.testing.plugins import CASES
    from sesn.testing.verdict import default_cache, parse_level

    state = config.stash[_STATE]
    lines = [f"sesn: {len(CASES)} equivariance case(s), {state['examples']} hypothesis examples each; "
             f"reference cache {default_cache().folder}"]  # fmt: skip
    for i, case in enumerate(CASES.values()):
        level = parse_level(state["level"]) if state["level"] else case.level
        lines.append(f"  p{i}: {case.name} ({case.kind}, level {level})")
    return lines


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    """Add one item per registered case before -k / -m deselect (tryfirst)."""
    if _STATE not in config.stash:
        return
    from sesn.testing.plugins import CASES

    if not CASES:
        raise pytest.UsageError(
            "sesn: no equivariance cases registered by "
            f"{_modules(config) or 'SESN_IMPORT / sesn.plugins entry points'} "
            "(call sesn.testing.plugins.register_equivariance_case in the module)"
        )
    parent = SesnCases.from_parent(session, name="sesn", nodeid="sesn")
    for i, case in enumerate(CASES.values()):
        items.append(
            SesnCaseItem.from_parent(
                parent, name=f"test_{_KIND_TOKEN[case.kind]}_plugin_verdict[p{i}]", case=case,
                state=config.stash[_STATE],
            )
        )  # fmt: skip


class SesnCases(pytest.Collector):
    """The parent of the case items (node ids ``sesn::test_..._plugin_verdict[p<i>]``)."""

    def collect(self):  # the items are made by pytest_collection_modifyitems
        return []


class SesnVerdictFailure(AssertionError):
    """A case's verdict failed on a hypothesis example."""


class SesnCaseItem(pytest.Item):
    """One registered case as a hypothesis property test."""

    def __init__(self, *, case, state, **kwargs):
        super().__init__(**kwargs)
        self.case, self.state = case, state
        self.user_properties.append(("sesn_case", case.name))

    def runtest(self):
        from hypothesis import HealthCheck, given, settings
        from hypothesis import strategies as st

        from sesn.testing.verdict import verdict

        case, level = self.case, self.state["level"]
        steps = st.integers(min_value=1, max_value=len(case.scales) - 1)

        @settings(
            max_examples=self.state["examples"],
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(seed=st.integers(min_value=0, max_value=2**20), step=steps)
        def prop(seed, step):
            v = verdict(case, seed, step, level=level)
            if not v.passed:
                raise SesnVerdictFailure(v.message())

        prop()

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, SesnVerdictFailure):
            return f"sesn verdict failed for case {self.case.name!r}:\n{excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"sesn case {self.case.name!r} ({self.case.kind})"
