"""Selection never reads the held-out part: the sessions are cut before they are preprocessed,
the validation part (the end of the fitted part) is what eval_every scores and what picks best.pt,
and the held-out part is scored once, on the checkpoint the run hands over."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest
import torch
from test_fit import TINY, _compose, _trainer_run

from brainfit.checkpoint import load_checkpoint, save_atomic
from brainfit.data import Preprocessing, load_bundled
from brainfit.data.preprocess import filter_reach, split_sessions
from brainfit.fit import run
from brainfit.fit.fitted import load_fitted
from brainfit.fit.spec import TrainerConfig


def _with_noise(cohort, start_fraction, seed=0):
    """``cohort`` with every volume from ``start_fraction`` of each session on replaced by
    noise."""
    g = np.random.default_rng(seed)

    def swap(s):
        t = int(round(start_fraction * s.n_times))
        bold = np.array(s.bold, copy=True)
        bold[t:] = g.standard_normal(bold[t:].shape)
        return s.replace(bold=bold)

    return cohort.map(swap)


def test_each_part_is_preprocessed_on_its_own():
    raw = load_bundled("gw", subjects=["NAP_001", "NAP_002"])
    pre = Preprocessing()
    parts = split_sessions(raw, 0.8, 0.2, gap=2, preprocessing=pre)
    other = split_sessions(_with_noise(raw, 0.8), 0.8, 0.2, gap=2, preprocessing=pre)
    for a, b in zip(parts.fit, other.fit):  # the held-out volumes reach neither part before
        np.testing.assert_array_equal(a.bold, b.bold)
    for a, b in zip(parts.val, other.val):
        np.testing.assert_array_equal(a.bold, b.bold)
    assert not np.allclose(parts.test[0].bold, other.test[0].bold)
    T = raw[0].n_times  # 355: 284 before the held-out part, of which 57 validate
    assert [parts.fit[0].n_times, parts.val[0].n_times, parts.test[0].n_times] == [227, 55, 69]
    for part in (parts.fit, parts.val, parts.test):  # z-scored part by part
        x = part[0].bold
        np.testing.assert_allclose(x.mean(0), 0, atol=1e-10)
        np.testing.assert_allclose(x.std(0), 1, atol=1e-10)
    assert T == 355
    # filtering the whole session instead would spread a volume tens of seconds either side
    assert 20 < filter_reach(2.0) < 120


def test_split_settings_are_checked():
    raw = load_bundled("gw", subjects=["NAP_001"])
    with pytest.raises(ValueError, match="val_fraction must be in"):
        split_sessions(raw, 0.8, 1.0)
    with pytest.raises(ValueError, match="gap must be a whole number"):
        split_sessions(raw, 0.8, 0.2, gap=-1)
    with pytest.raises(ValueError, match="smaller gap"):
        split_sessions(raw, 0.8, 0.2, gap=60)
    with pytest.raises(ValueError, match="trainer.val_fraction = 0 leaves none"):
        TrainerConfig(eval_every=5, val_fraction=0.0)


SELECT = ["trainer.epochs=3", "trainer.restarts=2", "model.params.G.scope=subject",
          "trainer.eval_every=1"]


def test_selection_never_reads_the_held_out_part(tmp_path, monkeypatch):
    """The issue's experiment: the same fit with each session's held-out part replaced by noise
    hands over the identical model, restarts and epoch; only its held-out scores differ."""
    honest = _trainer_run(tmp_path, "honest", SELECT)
    run_module = importlib.import_module("brainfit.fit.run")
    real = run_module.load_cohort
    monkeypatch.setattr(run_module, "load_cohort",
                        lambda cfg: (_with_noise(real(cfg)[0], 0.8), real(cfg)[1]))
    swapped = _trainer_run(tmp_path, "swapped", SELECT)
    a, b = load_fitted(honest), load_fitted(swapped)
    assert a.path.name == b.path.name == "best.pt"
    assert a.best == b.best
    sa, sb = a.simulator.state_dict(), b.simulator.state_dict()
    for k, v in sa.items():
        torch.testing.assert_close(sb[k], v, rtol=0, atol=0)
    ma, mb = (json.loads((r / "metrics.json").read_text()) for r in (honest, swapped))
    assert ma["checkpoint"] == mb["checkpoint"] == "best.pt"
    assert ma["selected_epoch"] == mb["selected_epoch"]
    assert ma["best_epoch_score"] == mb["best_epoch_score"]
    ckpt = load_checkpoint(honest / "checkpoints" / "best.pt")
    assert ckpt["epoch"] == ma["selected_epoch"]
    assert ma["mean"]["fc_similarity"] != mb["mean"]["fc_similarity"]  # noise was scored


def test_without_a_validation_part_the_final_parameters_are_handed_over(tmp_path):
    out = _trainer_run(tmp_path, "noval", ["trainer.epochs=2", "trainer.eval_every=0",
                                           "trainer.val_fraction=0"])
    assert not (out / "checkpoints" / "best.pt").exists()
    m = json.loads((out / "metrics.json").read_text())
    assert m["checkpoint"] == "last.pt" and m["selected_epoch"] == 2
    assert m["best_epoch_score"] is None
    assert load_fitted(out).path.name == "last.pt"


def test_a_checkpoint_of_the_old_format_is_refused_with_why(tmp_path):
    cfg = _compose([*TINY, "trainer.epochs=0", "trainer.eval_every=0", "trainer.val_fraction=0",
                    "trainer.figures=false"])
    out = tmp_path / "run"
    run(cfg, out_dir=out)
    ckpt = load_checkpoint(out / "checkpoints" / "last.pt")
    old = tmp_path / "old.pt"
    import brainfit.checkpoint as checkpoint

    previous = checkpoint.FORMAT
    checkpoint.FORMAT = "brainfit-checkpoint-1"
    try:
        save_atomic(ckpt, old)
    finally:
        checkpoint.FORMAT = previous
    with pytest.raises(ValueError, match="chosen on the held-out data"):
        load_fitted(old)
