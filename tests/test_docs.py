"""The repository stands alone: no reference to files a user does not have, and every
docs/ page the code or README points to exists."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = [
    *REPO.glob("sesn/**/*.py"),
    *REPO.glob("tests/*.py"),
    *REPO.glob("equivariance_tests/*.py"),
    *REPO.glob("bench/*.py"),
    REPO / "README.md",
    *REPO.glob("docs/*.md"),
]


def test_no_reference_to_the_internal_spec():
    pattern = re.compile(r"SPEC(?:-baselines| §)")
    hits = [
        f"{p.relative_to(REPO)}:{i}"
        for p in SOURCES
        if p.name != "test_docs.py"
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not hits, f"references to a SPEC users do not have: {hits}"


def test_every_docs_page_referenced_exists():
    pages = {m for p in SOURCES for m in re.findall(r"docs/([\w\-]+\.md)", p.read_text())}
    assert pages, "no docs/ references found"
    missing = sorted(p for p in pages if not (REPO / "docs" / p).is_file())
    assert not missing, f"referenced but missing: {missing}"
    index = (REPO / "docs" / "README.md").read_text()
    assert all(p in index for p in pages if p != "README.md"), "every page is listed in docs/README.md"
