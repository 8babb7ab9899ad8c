"""Every model config fits one epoch through its BOLD head to finite numbers.

A real training epoch through :func:`brainfit.fit.run` (loss, backward, clipping, optimiser step,
then one evaluation and the exports) on two bundled hcp subjects, as short as the pipeline allows:
4 volumes at TR 0.72 s (2.88 s of BOLD) after a 1.44 s burn-in, in training and in evaluation.
What must hold: the run ends (the trainer raises ``FitDiverged`` on a non-finite loss, gradient or
parameter, and the haemodynamics raise ``SimulationDiverged`` when the drive empties the vessels,
as FitzHugh-Nagumo's v ~ -1 did before the models' BOLD offsets), and the loss, the gradient norm
and the held-out scores it records are finite. Only Hopf (80 ms steps, ~3 s) and the identity
head run by default; the models stepped at 0.05-1 ms are ``slow``, and ``mpr_ei`` (0.05 ms steps,
six states: minutes more than the others) is ``long``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from brainfit.checkpoint import load_checkpoint
from brainfit.fit import register_configs, run
from brainfit.fit.fitted import load_fitted

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
ONE_EPOCH = ["data=hcp", "data.subjects=[101309,102311]", "trainer.epochs=1",
             "trainer.sim_seconds=2.88", "trainer.burn_in=1.44", "trainer.chunk=2.88",
             "trainer.eval_every=1", "trainer.val_fraction=0.2", "trainer.eval_seeds=1",
             "trainer.eval_seconds=2.88", "loss=fc",
             "trainer.progress=false", "trainer.figures=false",
             "trainer.compile=false"]  # compiling (minutes on CPU) has its own test: test_engine
#: the rest step at 0.05-1 ms: 4,300-86,000 steps forward and backward per epoch
FAST = {"hopf"}
LONG = {"mpr_ei"}

register_configs()


def _compose(overrides=()):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


def _models():
    names = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
    return [m if m in FAST else pytest.param(
        m, marks=pytest.mark.long if m in LONG else pytest.mark.slow) for m in names]


def _fit_one_epoch(out: Path, overrides) -> dict:
    score = run(_compose([*ONE_EPOCH, *overrides]), out_dir=out)
    assert np.isfinite(score)
    ckpt = load_checkpoint(out / "checkpoints" / "last.pt")
    assert ckpt["epoch"] == 1
    (row,) = ckpt["history"]
    assert np.isfinite(row["loss"]) and np.isfinite(row["grad_norm"]), row
    assert row["grad_norm"] > 0, "no gradient reached the parameters"
    metrics = json.loads((out / "metrics.json").read_text())
    for sid, scores in metrics["held_out"].items():
        for key in ("fc_similarity", "sc_fc_r"):
            assert np.isfinite(scores[key]), (sid, key, scores[key])
    return ckpt


@pytest.mark.parametrize("model", _models())
def test_every_model_fits_one_epoch_through_bold(model, tmp_path):
    _fit_one_epoch(tmp_path / model, [f"model={model}"])


def test_bold_none_fits_and_reloads(tmp_path):
    """The identity head (``bold=none``) through a fit, its checkpoint and ``load_fitted``."""
    out = tmp_path / "none"
    _fit_one_epoch(out, ["model=hopf", "bold=none"])
    model = load_fitted(out / "checkpoints" / "last.pt")
    assert type(model.simulator.bold).__name__ == "IdentityBold"
    y = model.simulate(n_volumes=6, filtered=False)
    assert y.shape == (2, 6, 80) and np.isfinite(y.numpy()).all() and y.std() > 0
