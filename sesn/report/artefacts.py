"""Writing report artefacts: atomic files (sesn.io), PNG figures, Markdown + CSV tables
(the Markdown itself: sesn.markdown)."""

from __future__ import annotations

from pathlib import Path

from sesn.io import atomic_write_bytes, atomic_write_text  # noqa: F401  (re-exported)
from sesn.markdown import dataframe_to_markdown  # noqa: F401  (re-exported)


def save_figure(fig, path: Path, dpi: int = 120) -> None:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def write_table(df, folder: Path, stem: str, intro: list[str]) -> Path:
    """Write ``df`` as ``<stem>.csv`` and as ``<stem>.md`` (the ``intro`` lines, then the
    Markdown table), both atomically; returns the Markdown file's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / f"{stem}.csv", df.to_csv(index=False))
    md = folder / f"{stem}.md"
    atomic_write_text(md, "\n".join([*intro, dataframe_to_markdown(df)]) + "\n")
    return md
