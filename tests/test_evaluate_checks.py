"""Evaluating a finished run never scores the wrong data or loses a good result: the run's own
data must be those it was fitted on, seeds are checked before anything, evaluation.json is
written atomically, another cohort is simulated at its own TR, and ``load_fitted`` takes a run
directory."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from problems import SIMULATED

from brainfit import metrics
from brainfit.fit import register_configs, run
from brainfit.fit.fitted import load_fitted
from brainfit.fit.rescore import evaluate_run, simulate_run, write_json
from brainfit.fit.scoring import Evaluator
from brainfit.losses import Targets

CONF = Path(__file__).resolve().parents[1] / "conf"
TR = 2.0

register_configs()


def _compose(overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


def _data(folder: Path, volumes: int, tr: float = TR) -> list[str]:
    """sc.npy and bold.npy of one synthetic subject in ``folder``; the data overrides."""
    rng = np.random.default_rng(0)
    W = rng.random((6, 6))
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "sc.npy", (W + W.T) / 2)
    np.save(folder / "bold.npy", rng.standard_normal((volumes, 6)))
    return ["data=arrays", f"data.weights={folder / 'sc.npy'}", f"data.bold={folder / 'bold.npy'}",
            f"data.tr={tr}"]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One tiny fit (6 regions, 120 volumes at TR 2 s, one epoch); returns its run directory."""
    base = tmp_path_factory.mktemp("evaluate")
    out = base / "run"
    run(_compose([*_data(base / "data", 120), "trainer.epochs=1", "trainer.sim_seconds=80",
                  "trainer.burn_in=4", "trainer.chunk=40", "trainer.eval_seeds=1",
                  "trainer.progress=false", "loss=fc_fcd", "loss.fcd_window=20", "loss.fcd_step=2",
                  *SIMULATED]),
        out_dir=out)
    return out


def _other(tmp_path: Path, volumes: int, tr: float):
    """The data config of another cohort (``data=arrays`` on other files)."""
    return _compose(_data(tmp_path / "other", volumes, tr)).data


def test_evaluation_scores_the_runs_own_held_out_data(fitted):
    result = evaluate_run(fitted, seeds=1)
    assert result["own_cohort"] and result["tr"] == TR and result["seeds"] == 1
    s = result["subjects"]["bold"]
    assert -1 <= s["fc_similarity"] <= 1 and 0 <= s["fcd_ks"] <= 1 and "own_fc_r" in s
    # the held-out scores of the run itself, first evaluation seed
    saved = json.loads((fitted / "metrics.json").read_text())["held_out"]["bold"]
    assert s["fc_similarity"] == pytest.approx(saved["fc_similarity"], abs=1e-5)


def test_a_replaced_bold_file_is_refused_not_scored(fitted, tmp_path):
    """The checkpoint stores each subject's data checksum; a file changed since the fit (one
    value moved) is refused, naming the subject and the way to score it on purpose."""
    bold = Path(_compose_data_path(fitted))
    original = bold.read_bytes()
    try:
        b = np.load(bold)
        b[5, 2] += 0.5
        np.save(bold, b)
        with pytest.raises(ValueError, match=r"data of subject\(s\) \['bold'\] differ from those "
                                             r".*\.pt was fitted on.*another cohort"):
            evaluate_run(fitted, seeds=1)
        # on purpose, as another cohort: scored (whole sessions, nothing compared)
        other = _compose(["data=arrays", f"data.weights={bold.parent / 'sc.npy'}",
                          f"data.bold={bold}", f"data.tr={TR}"]).data
        assert not evaluate_run(fitted, data_cfg=other, seeds=1)["own_cohort"]
    finally:
        bold.write_bytes(original)
    assert evaluate_run(fitted, seeds=1)["own_cohort"]


def _compose_data_path(run_dir: Path) -> str:
    return load_fitted(run_dir).config["data"]["bold"]


def test_zero_seeds_are_refused_before_anything_and_a_good_result_stays(fitted, tmp_path):
    """``seeds=0`` used to overwrite a good evaluation.json with an empty one, then crash."""
    path = write_json(evaluate_run(fitted, seeds=1), tmp_path / "evaluation.json")
    good = path.read_text()
    for bad in (0, -1, 1.5, "abc", True):
        with pytest.raises(ValueError, match="seeds must be a whole number of noise realisations "
                                             ">= 1"):
            evaluate_run(tmp_path / "no_such_run", seeds=bad)  # refused before the run is read
    assert path.read_text() == good
    assert json.loads(good)["seeds"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["evaluation.json"]  # no temporary file left
    with pytest.raises(ValueError, match="dt must be a positive neural step"):
        evaluate_run(fitted, seeds=1, dt=0)
    for bad in (0, -5.0, float("nan"), "long"):
        with pytest.raises(ValueError, match="seconds must be a positive length of BOLD in s"):
            evaluate_run(tmp_path / "no_such_run", seconds=bad)


def test_another_cohort_is_simulated_at_its_own_tr(fitted, tmp_path):
    """A run fitted at TR 2 s scored on a cohort at TR 0.5 s (the README's ``data=hcp`` on a gw
    run): the simulation is sampled at 0.5 s, as many volumes as the cohort's sessions."""
    result = evaluate_run(fitted, data_cfg=_other(tmp_path, 240, 0.5), seeds=1)
    assert result["tr"] == 0.5 and not result["own_cohort"]
    s = result["subjects"]["bold"]
    assert -1 <= s["fc_similarity"] <= 1 and 0 <= s["fcd_ks"] <= 1
    y = load_fitted(fitted).simulate(n_volumes=240, tr=0.5)
    assert y.shape == (1, 240, 6) and np.isfinite(y.numpy()).all()


def test_sessions_shorter_than_two_fcd_windows_skip_the_fcd_with_their_length(fitted, tmp_path,
                                                                             caplog):
    with caplog.at_level(logging.WARNING, logger="brainfit.evaluate"):
        result = evaluate_run(fitted, data_cfg=_other(tmp_path, 16, 1.0), seeds=1)
    assert "fcd_ks" not in result["subjects"]["bold"]
    assert "FCD KS is not scored: the scored sessions of the cohort are 16 volumes (16 s at " \
           "TR = 1 s), shorter than two FCD windows" in caplog.text


def test_load_fitted_takes_a_run_directory(fitted, tmp_path):
    """A run directory (or its checkpoints/): best.pt, else last.pt; neither: a clear error."""
    assert load_fitted(fitted).path == fitted / "checkpoints" / "best.pt"
    assert load_fitted(fitted / "checkpoints").path == fitted / "checkpoints" / "best.pt"
    copy = tmp_path / "run"
    (copy / "checkpoints").mkdir(parents=True)
    shutil.copy(fitted / "checkpoints" / "last.pt", copy / "checkpoints" / "last.pt")
    model = load_fitted(copy)
    assert model.path == copy / "checkpoints" / "last.pt" and model.subject_ids == ["bold"]
    (copy / "checkpoints" / "last.pt").unlink()
    with pytest.raises(FileNotFoundError, match=r"is a directory without best.pt or last.pt in "
                                                r".*checkpoints: give the output directory"):
        load_fitted(copy)


def test_simulate_run_writes_its_file_atomically(fitted, tmp_path):
    out = simulate_run(fitted, seconds=20, out=tmp_path / "sim.npz")
    with np.load(out) as f:
        assert f["bold"].shape == (1, 10, 6) and float(f["tr"]) == TR
    assert [p.name for p in tmp_path.iterdir()] == ["sim.npz"]
    with pytest.raises(ValueError, match="seconds must be a positive length"):
        simulate_run(fitted, seconds=-5)


def test_a_long_evaluation_scores_the_fcd_of_recordings_as_long_as_the_data():
    """An evaluation that simulates longer than the held-out part compares the FCD of pieces of
    the held-out length, pooled, with the held-out FCD (the FCD distribution depends on the
    recording's length); its FC is still that of the whole simulation."""
    g = torch.Generator().manual_seed(0)
    held = torch.randn(1, 40, 6, generator=g)
    targets = Targets(fc=metrics.fc(held), fcd=metrics.fcd_values(held, TR, 20.0, 2.0))
    long = torch.randn(1, 400, 6, generator=g)
    pooled = Evaluator(targets, TR, 20.0, 2.0, seeds=1, fcd_segment=40).score(long)
    whole = Evaluator(targets, TR, 20.0, 2.0, seeds=1).score(long)
    pieces = metrics.fcd_values(long, TR, 20.0, 2.0, segment=40)
    assert pieces.shape[1] == 10 * metrics.fcd_values(held, TR, 20.0, 2.0).shape[1]
    assert torch.equal(pooled["fcd_ks"], metrics.ks_distance(pieces, targets.fcd))
    assert torch.equal(whole["fcd_ks"],
                       metrics.ks_distance(metrics.fcd_values(long, TR, 20.0, 2.0), targets.fcd))
    assert not torch.equal(pooled["fcd_ks"], whole["fcd_ks"])
    assert torch.equal(pooled["fc_similarity"], whole["fc_similarity"])
