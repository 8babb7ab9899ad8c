"""The report: what ``bench.py`` prints to stdout (kept for ``--markdown``), progress on stderr,
markdown tables and the formats of their cells."""

from __future__ import annotations

import math
import sys
from typing import Any

REPORT: list[str] = []  # everything printed to stdout, for --markdown


def emit(text: str = "") -> None:
    """Print to stdout and keep the line for ``--markdown``."""
    print(text, flush=True)
    REPORT.append(text)


def note(text: str) -> None:
    """Progress to stderr (not part of the report)."""
    print(text, file=sys.stderr, flush=True)


def md_table(rows: list[list[str]], header: list[str], left: int = 1) -> None:
    """A markdown table; the first ``left`` columns left-aligned, the rest right-aligned."""
    emit("| " + " | ".join(header) + " |")
    emit("|" + "|".join("---" if i < left else "---:" for i in range(len(header))) + "|")
    for r in rows:
        cells = [str(c).replace("|", "/") for c in r] + [""] * (len(header) - len(r))
        emit("| " + " | ".join(cells[: len(header)]) + " |")


def _fmt(v: Any, spec: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec)


def _ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "-"
    return f"{a / b:.2f}x"


def _err(r: dict[str, Any], width: int = 70) -> str:
    return "ERROR: " + r["error"].replace("\n", " ")[:width]


def variant_name(engine: str, compiled: bool) -> str:
    return engine + (" +compile" if compiled else "")
