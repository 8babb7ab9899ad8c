"""Timing never fails late: any TR works (the BOLD and neural steps are fitted to it), lengths too
short for an FC or an FCD are refused before a fit starts with the minimum that works, conduction
delays that round to zero steps are warned about, and a diverging BOLD head raises
``SimulationDiverged`` like the network."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from problems import SIMULATED

import brainfit
from brainfit.bold import BalloonWindkessel, BoldStream, IdentityBold, sampling_steps
from brainfit.checkpoint import load_checkpoint
from brainfit.data import Cohort, Subject
from brainfit.fit import TrainerConfig, register_configs, run
from brainfit.fit.targets import FitData
from brainfit.losses import Objective
from brainfit.network import BrainNetwork
from brainfit.noise import WhiteNoise
from brainfit.runtime import SimulationDiverged
from brainfit.simulator import BoldSimulator

CONF = Path(__file__).resolve().parents[1] / "conf"
F64 = torch.float64
#: TRs of common scanners (s): HCP 0.72, multiband 0.5-1.5, classic 2-3
SCANNER_TRS = (0.5, 0.72, 1.0, 1.5, 2.0, 2.5, 3.0)

register_configs()


def _ratio(a: float, b: float) -> int:
    """``a / b``, asserted to be a whole number."""
    k = round(a / b)
    assert k >= 1 and abs(a / b - k) < 1e-6 * k, (a, b)
    return k


# -- the steps -------------------------------------------------------------------------------------
@pytest.mark.parametrize("tr", SCANNER_TRS + (0.505, 1.16, 0.8))
@pytest.mark.parametrize("bold_dt, neural_dt", [(0.08, 80.0), (0.08, 0.1), (0.01, 0.1),
                                                (0.08, 0.05), (0.2, 1.0)])
def test_steps_fit_every_tr_and_are_the_largest_not_above_the_configured(tr, bold_dt, neural_dt):
    """The BOLD step divides TR and holds whole neural steps; neither exceeds its configured
    value; no larger BOLD step that is a multiple of the chosen neural step divides TR; the
    neural step is kept when it divides TR, else it is TR / ceil(TR / dt)."""
    b, n = sampling_steps(tr, bold_dt, neural_dt)
    per_tr, per_step = _ratio(tr, b), _ratio(b * 1000, n)
    assert b <= bold_dt * (1 + 1e-9) and n <= neural_dt * (1 + 1e-9)
    if math.isclose(tr * 1000 / neural_dt, round(tr * 1000 / neural_dt), rel_tol=1e-9):
        assert n == neural_dt
    else:
        assert n == pytest.approx(tr * 1000 / math.ceil(tr * 1000 / neural_dt), rel=1e-12)
    larger = [m for m in range(per_step + 1, int(bold_dt * 1000 / n + 1e-6) + 1)
              if (per_tr * per_step) % m == 0]
    assert not larger, f"BOLD steps of {[m * n for m in larger]} ms would also fit"


@pytest.mark.parametrize("tr", [2.0, 0.72, 0.8])
def test_steps_that_fit_are_kept_exactly(tr):
    """The bundled cohorts' TRs with the default steps: nothing changes (bit for bit)."""
    for bold_dt, neural_dt in ((0.08, 80.0), (0.08, 0.1), (0.01, 0.1), (0.08, 0.05)):
        assert sampling_steps(tr, bold_dt, neural_dt) == (bold_dt, neural_dt)


def test_examples_in_the_docs():
    assert sampling_steps(0.5, 0.08, 80.0) == pytest.approx((0.5 / 7, 500 / 7))
    assert sampling_steps(2.5, 0.08, 0.1) == pytest.approx((0.0625, 0.1))


def test_a_neural_step_longer_than_the_bold_step_is_refused_with_a_fix_that_works():
    with pytest.raises(ValueError, match=r"neural step dt = 80 ms is longer than the BOLD step "
                                         r"bold.dt = 0.01 s.*bold.dt=0.08"):
        sampling_steps(2.0, 0.01, 80.0)
    assert sampling_steps(2.0, 0.08, 80.0) == (0.08, 80.0)
    with pytest.raises(ValueError, match="TR must be a positive, finite number"):
        sampling_steps(0.0, 0.08, 80.0)


def test_the_streams_tr_error_suggests_steps_that_work():
    """BoldStream takes its steps as given; the fix it names (from sampling_steps) works."""
    head = BalloonWindkessel(dt=0.08)
    with pytest.raises(ValueError, match=r"TR = 0.5 s .* step=0.0714286 s with neural_dt = "
                                         r"71.4286 ms") as err:
        BoldStream(head, 1, 1, neural_dt=80.0, tr=0.5)
    assert "sampling_steps" in str(err.value)
    b, n = sampling_steps(0.5, 0.08, 80.0)
    stream = BoldStream(head, 1, 1, neural_dt=n, tr=0.5, step=b)
    assert stream.steps_per_tr == 7 and stream.steps_per_window == 1
    with pytest.raises(ValueError, match="use a multiple such as 5.04 s"):
        BoldStream(head, 1, 1, neural_dt=80.0, tr=2.0, burn_in=5.0)


def _network(lengths=None, **kw) -> BrainNetwork:
    g = torch.Generator().manual_seed(0)
    W = torch.rand(4, 4, generator=g, dtype=F64)
    m = brainfit.create_model("hopf", n_regions=4, a=-2e-5, omega=3.14e-4, gamma=1e-3).double()
    noise = WhiteNoise(m.state_names, 6.3e-4)
    return BrainNetwork(m, W, lengths, G=2e-4, normalize="max", noise=noise, **kw).double()


@pytest.mark.parametrize("head", ["balloon", "identity"])
def test_simulator_at_a_tr_the_steps_do_not_fit_equals_the_fitted_steps(head, caplog):
    """TR 0.5 s with a head of 0.08 s and a neural step of 80 ms: the simulator runs at 500/7 ms
    for both, and the burn-in of 5 s is rounded up to 70 steps (5.0 s) - exactly what a head
    built with those steps gives; the change is logged once."""
    net = _network()
    make = (lambda dt: BalloonWindkessel(dt=dt, n_regions=4)) if head == "balloon" else \
        (lambda dt: IdentityBold(dt=dt, n_regions=4))
    sim = BoldSimulator(net, make(0.08).double())
    b, n = sampling_steps(0.5, 0.08, 80.0)
    ref = BoldSimulator(net, make(b).double())
    kw = dict(burn_in=5.0, chunk=3.0)
    with caplog.at_level(logging.INFO, logger="brainfit.simulator"):
        y = sim(12, 0.5, 80.0, generator=torch.Generator().manual_seed(3), **kw)
        sim(12, 0.5, 80.0, generator=torch.Generator().manual_seed(3), **kw)
    expected = ref(12, 0.5, n, generator=torch.Generator().manual_seed(3), **kw)
    torch.testing.assert_close(y, expected, rtol=0, atol=0)
    assert y.shape == (1, 12, 4) and torch.isfinite(y).all() and y.std() > 0
    logged = [r.getMessage() for r in caplog.records if "BOLD step" in r.getMessage()]
    assert len(logged) == 1, logged
    assert "BOLD step 0.0714286 s (bold.dt = 0.08 s)" in logged[0]
    assert "neural step 71.4286 ms (dt = 80 ms)" in logged[0]


def test_burn_in_is_rounded_up_to_whole_bold_steps(caplog):
    """``burn_in=5`` with a BOLD step of 0.08 s (62.5 steps): 63 steps, 5.04 s, logged."""
    net = _network()
    sim = BoldSimulator(net, BalloonWindkessel(dt=0.08, n_regions=4).double())
    with caplog.at_level(logging.INFO, logger="brainfit.simulator"):
        assert sim.sampling(2.0, 80.0, 5.0) == pytest.approx((0.08, 80.0, 5.04))
    assert "burn-in 5.04 s (5 s, not a whole number of BOLD steps)" in caplog.text
    assert sim.sampling(2.0, 80.0, 4.0) == (0.08, 80.0, 4.0)  # a multiple: unchanged
    g = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    torch.testing.assert_close(sim(5, 2.0, 80.0, burn_in=5.0, generator=g()),
                               sim(5, 2.0, 80.0, burn_in=5.04, generator=g()), rtol=0, atol=0)
    with pytest.raises(ValueError, match="burn_in must be a finite time >= 0"):
        sim.sampling(2.0, 80.0, -1.0)


# -- a fit at every scanner TR ---------------------------------------------------------------------
def _compose(overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


@pytest.mark.parametrize("tr", SCANNER_TRS)
def test_one_epoch_fits_at_every_scanner_tr(tr, tmp_path, caplog):
    """The default model, head (0.08 s) and loss (FC + FCD) fit one tiny epoch at each TR, with a
    burn-in of 5 s (not a whole number of 0.08 s steps), and score the held-out FC and FCD."""
    rng = np.random.default_rng(0)
    W = rng.random((6, 6))
    np.save(tmp_path / "sc.npy", (W + W.T) / 2)
    # 240 s: at TR 3 s the held-out part (48 s) is still long enough for the band-pass alone
    np.save(tmp_path / "bold.npy", rng.standard_normal((round(240 / tr), 6)))
    out = tmp_path / "out"
    with caplog.at_level(logging.INFO, logger="brainfit.simulator"):
        score = run(_compose([
            "data=arrays", f"data.weights={tmp_path / 'sc.npy'}",
            f"data.bold={tmp_path / 'bold.npy'}", f"data.tr={tr}", "trainer.epochs=1",
            "trainer.sim_seconds=40", "trainer.burn_in=5", "trainer.chunk=20",
            "trainer.eval_seeds=1", "trainer.progress=false", "trainer.figures=false",
            "trainer.eval_every=0", "trainer.val_fraction=0",  # 80 volumes at TR 1.5 s
            "loss=fc_fcd", "loss.fcd_window=10",
            *SIMULATED,
            "loss.fcd_step=2"]), out_dir=out)
    assert np.isfinite(score)
    (row,) = load_checkpoint(out / "checkpoints" / "last.pt")["history"]
    assert np.isfinite(row["loss"]) and row["grad_norm"] > 0
    held_out = json.loads((out / "metrics.json").read_text())["held_out"]["bold"]
    assert -1 <= held_out["fc_similarity"] <= 1 and 0 <= held_out["fcd_ks"] <= 1
    assert ("BOLD step 0" in caplog.text) == (tr not in (0.72, 2.0))  # 0.08 s divides these
    step, _ = sampling_steps(tr, 0.08, 80.0)
    assert ("(5 s, not a whole number of BOLD steps)" in caplog.text) == \
        (abs(5 / step - round(5 / step)) > 1e-6)


# -- lengths refused before the fit ----------------------------------------------------------------
def _cohort(volumes: int, tr: float = 2.0) -> Cohort:
    rng = np.random.default_rng(1)
    W = rng.random((5, 5))
    return Cohort([Subject("s1", weights=(W + W.T) / 2, bold=rng.standard_normal((volumes, 5)),
                           tr=tr)], name="synthetic")


def _fit_data(volumes=300, loss="fc_fcd", **trainer):
    weights = {"fc_corr": 1.0, "fcd": 1.0} if loss == "fc_fcd" else {"fc_corr": 1.0}
    objective = Objective(weights=weights, fcd_window=60.0, fcd_step=2.0)
    config = TrainerConfig(**{"sim_seconds": 240.0, "progress": False, "eval_every": 0,
                              "val_fraction": 0.0, **trainer})
    return FitData.from_cohort(_cohort(volumes), config, objective)


def test_an_fc_from_two_volumes_is_refused_with_the_minimum_that_works(caplog):
    """``eval_seconds=4`` at TR 2 s: 2 volumes, every correlation +-1. The minimum named is the
    one that works: two FCD windows (62 s) when the held-out FCD is scored, else 10 volumes."""
    with pytest.raises(ValueError, match=r"trainer.eval_seconds = 4 s gives evaluation "
                                         r"simulations of 2 volumes \(4 s at TR = 2 s\).*"
                                         r"eval_seconds >= 62 \(two FCD windows"):
        _fit_data(eval_seconds=4)
    assert _fit_data(eval_seconds=62).n_eval_volumes == 31
    with pytest.raises(ValueError, match=r"eval_seconds >= 20$"):
        _fit_data(eval_seconds=4, loss="fc")
    with pytest.raises(ValueError, match=r"sim_seconds = 4 s gives training simulations of 2 "):
        _fit_data(sim_seconds=4, loss="fc")
    with caplog.at_level(logging.WARNING, logger="brainfit.fit"):
        assert _fit_data(sim_seconds=8, loss="fc").n_volumes == 4  # works, with a warning
    assert "4 volumes (8 s at TR = 2 s): an FC from fewer than 10 volumes" in caplog.text


def test_a_simulation_shorter_than_two_fcd_windows_is_refused_before_the_fit():
    """``sim_seconds=60`` used to fail after the first 60 s simulation ("fcd_values needs at
    least 2 windows")."""
    with pytest.raises(ValueError, match=r"sim_seconds = 60 s gives training simulations of 30 "
                                         r"volumes \(60 s at TR = 2 s\), shorter than the two FCD "
                                         r"windows.*31 volumes \(62 s.*sim_seconds >= 62"):
        _fit_data(sim_seconds=60)
    assert _fit_data(sim_seconds=62).n_volumes == 31
    assert _fit_data(sim_seconds=60, loss="fc").n_volumes == 30


def test_bold_shorter_than_the_fcd_windows_names_its_length():
    """25 volumes of BOLD at TR 2 s: the fitted part (20 volumes) has no FCD for the loss."""
    with pytest.raises(ValueError, match=r"fitted part of each session \(trainer.train_fraction "
                                         r"= 0.8\) is 20 volumes \(40 s at TR = 2 s\), shorter "
                                         r"than the two FCD windows"):
        _fit_data(volumes=25)
    with pytest.raises(ValueError, match=r"held-out part of each session \(trainer.train_fraction"
                                         r" = 0.8\) is 20 volumes \(40 s.*smaller trainer"):
        _fit_data(volumes=100)  # fitted 80 volumes, held out 20
    assert _fit_data(volumes=100, train_fraction=0.65).n_eval_volumes == 35


def test_an_evaluation_too_short_for_the_held_out_fcd_is_a_warning_without_an_fcd_loss(caplog):
    with caplog.at_level(logging.WARNING, logger="brainfit.fit"):
        _fit_data(eval_seconds=40, loss="fc")
    assert "the FCD KS distance is not scored (trainer.eval_seconds >= 62 scores it)" in caplog.text


# -- delays and divergence -------------------------------------------------------------------------
def test_delays_shorter_than_half_a_step_are_warned_about_once(caplog):
    """Two of the connections are 0.1 and 0.3 ms long at 1 mm/ms; at dt = 1 ms they round to 0
    steps (instantaneous coupling): warned once, naming the count and a dt that keeps them."""
    L = torch.full((4, 4), 20.0, dtype=F64)
    L[0, 1], L[2, 3] = 0.1, 0.3
    L.fill_diagonal_(0.0)
    net = _network(L, speed=1.0)
    with caplog.at_level(logging.WARNING, logger="brainfit.network"):
        net.simulate(10.0, 1.0, generator=torch.Generator().manual_seed(0))
        net.simulate(10.0, 1.0, generator=torch.Generator().manual_seed(0))
    (record,) = [r for r in caplog.records if r.name == "brainfit.network"]
    msg = record.getMessage()
    assert "2 of 12 connections" in msg and "below dt/2 = 0.5 ms" in msg
    assert "smaller dt (below 0.2 ms" in msg and "interpolate_delays" in msg
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="brainfit.network"):
        assert net.check_zero_delays(0.1) == 0  # 0.1 ms is 1 step at 0.1 ms
        assert _network(L, speed=1.0, interpolate_delays=True).check_zero_delays(1.0) == 0
        assert _network(L, speed=1.0).check_zero_delays(0.5) == 1  # 0.1 ms only
    assert len(caplog.records) == 1


def test_the_bold_heads_divergence_is_simulation_diverged():
    """A drive that empties the vessels (f -> 0) raises the network's SimulationDiverged, from
    the stream, the head's forward and the simulator alike."""
    head = BalloonWindkessel(dt=0.08)
    drive = torch.full((1, 2000, 1), -50.0)
    with pytest.raises(SimulationDiverged, match="haemodynamic state became NaN"):
        BoldStream(head, 1, 1, neural_dt=80.0, tr=0.8).push(drive)
    with pytest.raises(SimulationDiverged, match="blood inflow f reached 0"):
        head(drive, 0.08)
    with pytest.raises(SimulationDiverged, match="neural drive"):
        head(torch.full((1, 5, 1), float("nan")), 0.08)
    net = _network()
    sim = BoldSimulator(net, BalloonWindkessel(dt=0.08, n_regions=4,
                                               params={"efficacy": 10.0}).double())
    net.model.bold_offset, net.model.bold_scale = 100.0, 1e-3  # u ~ -1e5: vessels empty
    with pytest.raises(SimulationDiverged):
        sim(5, 2.0, 80.0, burn_in=0.0, generator=torch.Generator().manual_seed(0))
