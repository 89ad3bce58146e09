"""Markdown pipe tables of pandas data frames (without the optional ``tabulate`` dependency):
used by the reports and by the plug-in CLI, below both."""

from __future__ import annotations


def dataframe_to_markdown(df) -> str:
    """Markdown pipe table without the optional ``tabulate`` dependency."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _fmt(v) -> str:
    if isinstance(v, float):
        if v != v:
            return ""
        return f"{v:.2e}"
    return str(v)
