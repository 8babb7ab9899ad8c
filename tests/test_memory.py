"""The training step's memory is estimated before a fit starts; a fit that would not fit says so."""

from __future__ import annotations

import pytest
import torch
from test_fit import TINY, _compose

import brainfit
from brainfit.fit import memory, run
from brainfit.network import BrainNetwork


def _net(engine: str, n: int = 80) -> BrainNetwork:
    g = torch.Generator().manual_seed(0)
    m = brainfit.create_model("wilson_cowan", n_regions=n, n_batch=7)
    return BrainNetwork(m, torch.rand(n, n, generator=g), torch.rand(n, n, generator=g) * 200,
                        speed=20.0, coupling="linear", n_batch=7, engine=engine)


def test_the_fast_engine_memory_does_not_follow_the_neural_steps():
    """What grows with the run is the BOLD-rate part; ten times more neural steps (a finer dt)
    barely changes it."""
    net = _net("fast")
    est = {dt: memory.training_step_bytes(net, 7, dt, 260, 0.08, 60.0, False)
           for dt in (1.0, 0.1)}
    assert est[0.1] < 2 * 2**30  # the bound: a few GB at most
    assert est[0.1] < 1.5 * est[1.0]
    ref = _net("reference")
    assert memory.training_step_bytes(ref, 7, 0.1, 260, 0.08, 60.0, False) > 8 * \
        memory.training_step_bytes(ref, 7, 1.0, 260, 0.08, 60.0, False)


def test_the_reference_engine_without_checkpointing_grows_with_the_run():
    net = _net("reference")
    full = memory.training_step_bytes(net, 7, 0.2, 260, 0.08, 60.0, False)
    chunked = memory.training_step_bytes(net, 7, 0.2, 260, 0.08, 6.0, True)
    # wilson_cowan data=hcp with the reference loop: far beyond a 24 GB machine (it was seen to
    # exhaust one), bounded by checkpointing
    assert full > 24 * 2**30
    assert chunked < full / 10


def test_check_fits_names_the_fixes():
    with pytest.raises(MemoryError, match=r"engine=fast.*checkpoint_chunks=true"):
        memory.check_fits(10 * 2**30, 4 * 2**30, "reference", False)
    with pytest.raises(MemoryError, match="sim_seconds") as err:
        memory.check_fits(10 * 2**30, 4 * 2**30, "fast", False)
    assert "engine=fast" not in str(err.value)
    memory.check_fits(2**30, 4 * 2**30, "reference", False)
    memory.check_fits(2**40, None, "reference", False)  # unknown: no claim


def test_a_fit_that_would_not_fit_stops_before_it_starts(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda device: 2**20)
    with pytest.raises(MemoryError, match="GiB are available"):
        run(_compose(TINY), out_dir=tmp_path / "out")
    assert not (tmp_path / "out" / "checkpoints").exists()


def test_the_reference_engine_fits_through_the_config(tmp_path):
    out = tmp_path / "ref"
    score = run(_compose([*TINY, "trainer.epochs=1", "trainer.engine=reference"]), out_dir=out)
    assert -1 <= score <= 1 and (out / "checkpoints" / "last.pt").exists()
