"""One reader of the environment: every SESN_* variable is declared in sesn.settings, read
only there, documented in docs/settings.md, and a bad value names the variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sesn import settings

REPO = Path(__file__).resolve().parents[1]
READ = re.compile(r"""(environ\.get\(|environ\[|getenv\()\s*["'](SESN_[A-Z_]+)""")
NAME = re.compile(r"\bSESN_[A-Z][A-Z_]*[A-Z]\b")
OWN_CODE = ["sesn", "bench", "equivariance_tests", "tests", "scripts", ".ci"]
# the example plug-in is a user's module: its own switch is not one of ours
NOT_OURS = {"SESN_EXAMPLE_BROKEN", "SESN_EXAMPLE_REGRESSION", "SESN_USER_LAYERS"}


def _files():
    for top in OWN_CODE:
        for p in sorted((REPO / top).rglob("*")):
            if (
                p.suffix in (".py", ".sh", "")
                and p.is_file()
                and ".venv" not in p.parts
                and "__pycache__" not in p.parts
            ):
                yield p


def test_only_the_settings_module_reads_sesn_variables():
    readers = {}
    for p in _files():
        if p == REPO / "sesn" / "settings.py":
            continue
        for m in READ.finditer(p.read_text(errors="replace")):
            if m.group(2) not in NOT_OURS:
                readers.setdefault(str(p.relative_to(REPO)), []).append(m.group(2))
    assert not readers, f"SESN_* variables read outside sesn/settings.py: {readers}"


def test_every_sesn_variable_named_in_the_code_is_declared():
    named = set()
    for p in _files():
        named |= set(NAME.findall(p.read_text(errors="replace")))
    undeclared = named - {v.name for v in settings.VARIABLES} - NOT_OURS
    assert not undeclared, f"not declared in sesn.settings.VARIABLES: {sorted(undeclared)}"


def test_docs_table_is_current():
    text = (REPO / "docs" / "settings.md").read_text()
    assert text == settings.DOC_HEADER + settings.markdown_table(), (
        "docs/settings.md is stale: python -m sesn.settings > docs/settings.md"
    )


@pytest.mark.parametrize("name,value", [("SESN_AUTO", "fastest"), ("SESN_COMPUTE_MODE", "fft2"),
                                        ("SESN_ALLOCATOR", "jemalloc")])  # fmt: skip
def test_a_bad_value_names_the_variable_and_its_choices(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=rf"{name} must be one of .*got '{value}'"):
        settings.get(name)


def test_values_are_read_at_call_time_and_empty_is_unset(monkeypatch):
    monkeypatch.setenv("SESN_AUTO", "cost-model")
    assert not settings.auto_measures()
    monkeypatch.setenv("SESN_AUTO", "")
    assert settings.auto_measures()  # default: measure
    monkeypatch.setenv("SESN_BENCH_THREADS", "x")
    with pytest.raises(ValueError, match="SESN_BENCH_THREADS must be an integer"):
        settings.bench_threads()
    with pytest.raises(KeyError, match="not a declared setting"):
        settings.get("SESN_" + "UNDECLARED")
