"""Write each notebook (``notebooks/<name>.ipynb``) from its py:percent twin (``<name>.py``).

The twins are the source: plain Python in jupytext's percent format (``# %%`` opens a code
cell, ``# %% [markdown]`` a markdown cell whose lines are comments), readable in a diff and
runnable as a script. The notebooks are generated, without outputs, so that they cannot drift:
``tests/test_notebooks.py`` checks that each notebook holds its twin's cells.

Usage::

    python scripts/sync_notebooks.py           # rewrite every notebook from its twin
    python scripts/sync_notebooks.py --check   # exit 1, naming them, if any is out of date

A commented IPython magic on its own line in a code cell (``# %matplotlib inline``) is a magic
in the notebook, as jupytext writes it; the script ignores it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
#: the first line of a twin (the jupytext header follows it, ended by another "# ---")
HEADER = "# ---"
_CELL = re.compile(r"^# %%(?: \[(?P<kind>markdown|md)\])?\s*$")
_MAGIC = re.compile(r"^# (%[a-z]\w*.*)$")


def twins(folder: Path = NOTEBOOKS) -> list[Path]:
    """The py:percent twins in ``folder``: ``.py`` files that open with a jupytext header."""
    return sorted(p for p in folder.glob("*.py") if p.read_text().startswith(HEADER + "\n"))


def cells(text: str) -> list[dict[str, str]]:
    """The cells of a py:percent text, ``{"cell_type", "source"}`` each, in order.

    Raises:
        ValueError: the text has no jupytext header or no cells.
    """
    lines = text.splitlines()
    if not lines or lines[0] != HEADER or HEADER not in lines[1:]:
        raise ValueError("a py:percent twin must open with a jupytext header between '# ---' "
                         "lines; copy one from notebooks/quickstart.py")
    body = lines[lines.index(HEADER, 1) + 1:]
    out: list[dict] = []
    for line in body:
        m = _CELL.match(line)
        if m:
            out.append({"cell_type": "markdown" if m.group("kind") else "code", "lines": []})
        elif out:
            out[-1]["lines"].append(line)
        elif line.strip():
            raise ValueError(f"text before the first '# %%' cell marker: {line!r}")
    if not out:
        raise ValueError("no '# %%' cells found")
    result = []
    for cell in out:
        src = cell["lines"]
        while src and not src[-1].strip():
            src.pop()
        while src and not src[0].strip():
            src.pop(0)
        if cell["cell_type"] == "markdown":
            src = [re.sub(r"^# ?", "", ln) for ln in src]
        else:
            src = [_MAGIC.sub(r"\1", ln) for ln in src]
        result.append({"cell_type": cell["cell_type"], "source": "\n".join(src)})
    return result


def notebook(text: str) -> dict:
    """The nbformat 4.5 notebook of a py:percent text, without outputs."""
    nb_cells = []
    for i, c in enumerate(cells(text)):
        lines = c["source"].splitlines(keepends=True)
        cell = {"cell_type": c["cell_type"], "id": f"cell-{i}", "metadata": {}, "source": lines}
        if c["cell_type"] == "code":
            cell.update(execution_count=None, outputs=[])
        nb_cells.append(cell)
    return {
        "cells": nb_cells,
        "metadata": {
            "jupytext": {"formats": "ipynb,py:percent"},
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def render(text: str) -> str:
    """The notebook file's text for a py:percent text."""
    return json.dumps(notebook(text), indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only check that every notebook matches its twin")
    args = parser.parse_args(argv)
    stale = []
    for twin in twins():
        target = twin.with_suffix(".ipynb")
        text = render(twin.read_text())
        if target.is_file() and target.read_text() == text:
            continue
        stale.append(target.name)
        if not args.check:
            target.write_text(text)
    if args.check and stale:
        print(f"out of date: {', '.join(stale)}; run python scripts/sync_notebooks.py",
              file=sys.stderr)
        return 1
    for name in stale if not args.check else []:
        print(f"wrote notebooks/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
