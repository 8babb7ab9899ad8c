"""The notebooks run as shipped, and each holds exactly the cells of its py:percent twin.

The twins (``notebooks/<name>.py``, jupytext's percent format) are the source; the notebooks are
generated from them by ``scripts/sync_notebooks.py``. A notebook test executes the twin as a
script (headless, matplotlib's Agg backend) in an empty folder and counts the figures it draws
through :mod:`brainfit.plotting`. The quick start runs in the default test run; the longer
notebooks are marked slow (``pytest -m slow``).
"""

from __future__ import annotations

import importlib.util
import json
import runpy
from pathlib import Path

import matplotlib
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("sync_notebooks", ROOT / "scripts" /
                                               "sync_notebooks.py")
sync = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sync)

TWINS = sync.twins(ROOT / "notebooks")
#: notebooks quick enough for the default run (the rest take minutes on 2 cores: slow)
FAST = {"quickstart", "own_data"}
#: the fewest figures each notebook must draw
MIN_FIGURES = {"quickstart": 6, "model_ladder": 8, "perturbation": 4, "fitting": 5,
               "own_data": 2}


def test_every_notebook_has_its_twin_and_holds_its_cells():
    """Same cells, same order, same text (a magic commented in the twin is live in the
    notebook); no notebook without a twin, and the notebook file is what the sync writes."""
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert {p.stem for p in notebooks} == {p.stem for p in TWINS}, \
        "every notebooks/*.ipynb needs a py:percent twin (and the reverse)"
    for twin in TWINS:
        nb = json.loads(twin.with_suffix(".ipynb").read_text())
        got = [{"cell_type": c["cell_type"], "source": "".join(c["source"])} for c in nb["cells"]]
        assert got == sync.cells(twin.read_text()), \
            f"{twin.name} and its notebook differ: run python scripts/sync_notebooks.py"
        assert all(not c.get("outputs") for c in nb["cells"]), \
            "notebooks are stored without outputs"
    assert sync.main(["--check"]) == 0


def test_sync_cells_magics_and_bad_input():
    text = "\n".join([sync.HEADER, "# jupyter: {}", sync.HEADER, "", "# %% [markdown]",
                      "# # Title", "#", "# text", "", "# %%", "# %matplotlib inline",
                      "x = 1  # %% not a marker", "", ""])
    assert sync.cells(text) == [
        {"cell_type": "markdown", "source": "# Title\n\ntext"},
        {"cell_type": "code", "source": "%matplotlib inline\nx = 1  # %% not a marker"}]
    nb = sync.notebook(text)
    assert nb["nbformat"] == 4 and nb["cells"][1]["outputs"] == []
    with pytest.raises(ValueError, match="jupytext header"):
        sync.cells("# %%\nx = 1\n")
    with pytest.raises(ValueError, match="before the first"):
        sync.cells("\n".join([sync.HEADER, sync.HEADER, "x = 1", "# %%"]))


@pytest.fixture
def figures(monkeypatch) -> list:
    """Every Figure brainfit.plotting makes during the test (``_new_figure`` wrapped in each of
    the package's modules that calls it)."""
    import importlib
    import pkgutil

    from brainfit import plotting
    from brainfit.plotting import _common

    made: list = []
    original = _common._new_figure

    def spy(*args, **kwargs):
        fig = original(*args, **kwargs)
        made.append(fig)
        return fig

    for info in pkgutil.iter_modules(plotting.__path__):
        module = importlib.import_module(f"{plotting.__name__}.{info.name}")
        if getattr(module, "_new_figure", None) is original:
            monkeypatch.setattr(module, "_new_figure", spy)
    return made


@pytest.mark.parametrize("twin", [
    pytest.param(t, id=t.stem, marks=() if t.stem in FAST else pytest.mark.slow) for t in TWINS])
def test_notebook_runs(twin, monkeypatch, tmp_path, figures):
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)  # nothing may depend on being run from the repository
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    runpy.run_path(str(twin), run_name="__main__")
    assert len(figures) >= MIN_FIGURES.get(twin.stem, 1), \
        f"{twin.name} drew {len(figures)} figures"
    for fig in figures:
        assert fig.axes and any(ax.has_data() for ax in fig.axes)
