"""The documentation builds offline without a warning, and the README's links hold."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_docs_build_strict(tmp_path):
    """``mkdocs build --strict``: every page, every docstring of the API reference (griffe) and
    every link resolves; any warning fails the build."""
    pytest.importorskip("mkdocs", reason="the docs tools are in the dev and docs extras")
    pytest.importorskip("mkdocstrings_handlers.python")
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q",
                          "-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path / "site")],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    site = tmp_path / "site"
    assert (site / "index.html").is_file()
    plotting = (site / "api" / "plotting" / "index.html").read_text()
    assert "plot_fc_comparison" in plotting and "plot_bifurcation" in plotting
    assert "Add a model" in (site / "contributing" / "index.html").read_text()


def test_readme_and_contributing_name_files_that_exist():
    """Every repository path the README and CONTRIBUTING.md name in backticks exists."""
    for doc in ("README.md", "CONTRIBUTING.md", "docs/notebooks.md"):
        text = (ROOT / doc).read_text()
        paths = set(re.findall(r"`((?:docs|notebooks|conf|scripts|tests|brainfit|datasets)/"
                               r"[\w./-]+?\.(?:md|py|yaml|ipynb))`", text))
        missing = [p for p in sorted(paths) if "<" not in p and not (ROOT / p).exists()]
        assert not missing, f"{doc} names files that do not exist: {missing}"
