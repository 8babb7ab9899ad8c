"""Behaviours of a fit that used to be silent: each now says what it does, or no longer does it."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from test_fit import _compose

from brainfit.fit import memory, run
from brainfit.fit.spec import TrainerConfig
from brainfit.fit.targets import DEFAULT_TR, FitData
from brainfit.losses import Objective

LINEAR = ["data.subjects=[NAP_001,NAP_002]", "trainer.epochs=0", "trainer.progress=false",
          "trainer.figures=false", "trainer.eval_seconds=40", "trainer.eval_seeds=1"]


def test_a_run_leaves_the_default_dtype_as_it_was(tmp_path):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        run(_compose(LINEAR), out_dir=tmp_path / "run")
        assert torch.get_default_dtype() == torch.float64
    finally:
        torch.set_default_dtype(previous)


def test_a_linearised_fit_estimates_its_own_memory(tmp_path, monkeypatch, caplog):
    """The memory check of a linearised fit counts its Jacobian and spectra, not a simulated
    step, and names the fixes that apply to it."""
    seen = {}
    real = memory.linearized_step_bytes

    def spy(*args, **kwargs):
        seen["need"] = real(*args, **kwargs)
        return seen["need"]

    monkeypatch.setattr(memory, "linearized_step_bytes", spy)
    with caplog.at_level(logging.INFO, logger="brainfit.fit"):
        run(_compose(LINEAR), out_dir=tmp_path / "ok")
    assert f"about {seen['need'] / 2**30:.2f} GiB per training step (linearised)" in caplog.text
    monkeypatch.setattr(memory, "available_bytes", lambda device: seen["need"])
    with pytest.raises(MemoryError, match=r"linearised training step.*trainer.batch_subjects"):
        run(_compose(LINEAR), out_dir=tmp_path / "small")


def test_targets_without_a_tr_say_which_tr_is_assumed(caplog):
    from brainfit.data import from_targets

    rng = np.random.default_rng(0)
    W = rng.random((6, 6))
    fc = np.corrcoef(rng.standard_normal((6, 50)))
    cohort = from_targets(weights=(W + W.T) / 2, fc=fc)
    with caplog.at_level(logging.WARNING, logger="brainfit.fit"):
        data = FitData.from_cohort(cohort, TrainerConfig(sim_seconds=60.0, eval_every=0,
                                                         val_fraction=0.0),
                                   Objective(weights={"fc_corr": 1.0}))
    assert data.tr == DEFAULT_TR
    assert f"TR = {DEFAULT_TR:g} s is assumed" in caplog.text and "data.tr" in caplog.text
