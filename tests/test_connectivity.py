"""Connection-level parameters: the fitted (effective) connectivity, its prior, a fit with it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from test_fit import CONF, TINY

from brainfit.connectome import EffectiveConnectivity
from brainfit.fit import register_configs, run
from brainfit.fit.fitted import load_fitted

F64 = torch.float64


def _sc(n=5, batch=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    W = torch.rand(n, n, generator=g, dtype=F64)
    W = W * (W > 0.4)
    W.fill_diagonal_(0)
    return W if batch is None else W.expand(batch, n, n).clone()


def test_starts_at_the_sc_and_stays_on_its_connections():
    sc = _sc(batch=3)
    c = EffectiveConnectivity(sc, 3)
    torch.testing.assert_close(c(), sc)
    with torch.no_grad():
        c.group.normal_()
        c.subject.normal_()
    W = c()
    assert (W >= 0).all() and W.shape == (3, 5, 5)
    assert torch.equal(W == 0, sc == 0)  # mask "sc": absent connections stay absent
    assert not torch.allclose(W, W.transpose(-1, -2))  # may become asymmetric
    assert not torch.allclose(W[0], W[1])  # one per subject


def test_mask_all_opens_every_pair_but_the_diagonal():
    sc = _sc()
    c = EffectiveConnectivity(sc, 2, scope="edge", mask="all", fill=0.1)
    W = c()
    off = ~torch.eye(5, dtype=torch.bool)
    assert (W[off] > 0).all() and (W.diagonal() == 0).all()
    floor = 0.1 * sc[sc > 0].mean()
    torch.testing.assert_close(W[(sc == 0) & off], floor.expand(int(((sc == 0) & off).sum())))
    assert c.subject is None and W.shape == (5, 5)


def test_the_gain_keeps_its_bounds():
    c = EffectiveConnectivity(_sc(), 1, scope="edge", low=0.5, high=2.0)
    with torch.no_grad():
        c.group.fill_(50.0)
    sc = _sc()
    assert torch.allclose(c()[sc > 0], 2.0 * sc[sc > 0])
    with torch.no_grad():
        c.group.fill_(-50.0)
    assert torch.allclose(c()[sc > 0], 0.5 * sc[sc > 0])


def test_penalty_is_the_gaussian_prior_on_the_group_and_the_shrinkage_of_subjects():
    sc = _sc(batch=2)
    c = EffectiveConnectivity(sc, 2, prior=2.0, shrinkage=3.0)
    torch.testing.assert_close(c.penalty(), torch.zeros(2, dtype=F64))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        c.group.copy_(torch.randn(5, 5, generator=g, dtype=F64))
        c.subject.copy_(torch.randn(2, 5, 5, generator=g, dtype=F64))
    m = sc[0] > 0
    for b in range(2):
        expect = 0.5 * 2.0 * c.group[m].pow(2).mean() + 0.5 * 3.0 * c.subject[b][m].pow(2).mean()
        assert c.penalty()[b].item() == pytest.approx(expect.item())


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="scope must be one of"):
        EffectiveConnectivity(_sc(), 1, scope="regional")
    with pytest.raises(ValueError, match="mask must be"):
        EffectiveConnectivity(_sc(), 1, mask="dense")
    with pytest.raises(ValueError, match="prior and shrinkage"):
        EffectiveConnectivity(_sc(), 1, prior=-1.0)
    with pytest.raises(ValueError, match="lower bound must be >= 0"):
        EffectiveConnectivity(_sc(), 1, low=-1.0)
    with pytest.raises(ValueError, match="above its upper bound"):
        EffectiveConnectivity(_sc(), 1, value=20.0)
    from brainfit.fit.spec import NetworkSpec

    with pytest.raises(ValueError, match="model.params.W"):
        NetworkSpec(name="hopf", params={"W": 2.0})
    with pytest.raises(ValueError, match="model.params.W"):
        NetworkSpec(name="hopf", params={"W": {"scope": "edge", "bogus": 1}})


def test_the_default_hopf_fit_shrinks_subjects_weakly_and_takes_the_mask_from_the_command_line():
    """conf/model/hopf.yaml's W (prior and shrinkage 0.1, docs/benchmarks.md) builds the
    connectivity it names, and ``model.params.W.mask=all`` needs no ``+``: absent connections are
    then fitted too."""
    from brainfit.fit.build import components_from_config
    from brainfit.fit.spec import build_simulator

    register_configs()
    sc = _sc(n=6, batch=2)
    for overrides, kind in (([], "sc"), (["model.params.W.mask=all"], "all")):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(config_name="train", overrides=overrides)
        spec, coupling, bold = components_from_config(cfg)
        c = build_simulator(spec, coupling, bold, sc, None).network.connectivity
        assert (c.mask_kind, c.prior, c.shrinkage) == (kind, 0.1, 0.1)
        off = ~torch.eye(6, dtype=torch.bool)
        fitted = c.mask.bool()
        assert torch.equal(fitted, (sc > 0) & off if kind == "sc" else off.expand_as(sc))


def test_a_fit_of_the_connectivity_is_exported_and_reloaded(tmp_path):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[
            *TINY, "trainer.epochs=3", "optim.lr=0.1",
            "+model.params.W={scope:subject_edge,prior:0.1,shrinkage:1.0}"])
    run(cfg, out_dir=tmp_path)
    out = np.load(tmp_path / "fitted_connectivity.npz")
    assert list(out["ids"]) == ["NAP_001", "NAP_002"]
    sc, fit = out["structural"], out["fitted"]
    assert sc.shape == fit.shape == (2, 80, 80) and (fit >= 0).all()
    assert np.array_equal(fit == 0, sc == 0)
    assert not np.allclose(fit, sc), "three epochs moved the weights"
    assert (tmp_path / "figures" / "connectivity.png").is_file()
    history = json.loads((tmp_path / "metrics.json").read_text())
    assert "held_out" in history
    model = load_fitted(tmp_path)  # the checkpoint the run hands over and exported
    W = model.simulator.network.coupling_weights.detach()
    best = list(model.best.values())
    np.testing.assert_allclose(W[best].numpy(), fit, rtol=1e-6)


def test_target_shrinkage_mixes_each_fc_target_with_the_other_subjects_fitted_fc(caplog):
    """``trainer.target_shrinkage = lam``: each subject's fitted FC target becomes
    ``(1 - lam) * own + lam * mean of the others'``, computed from the fitted parts only (the
    held-out targets stay the subject's own), restarts repeating their subject's target."""
    from brainfit.data import Cohort, Subject
    from brainfit.fit import TrainerConfig
    from brainfit.fit.targets import FitData
    from brainfit.losses import Objective
    from brainfit.metrics import fc

    rng = np.random.default_rng(0)
    W = rng.random((4, 4))
    subjects = [Subject(f"s{i}", weights=(W + W.T) / 2, bold=rng.standard_normal((60, 4)) +
                        i * rng.standard_normal((60, 1)), tr=2.0) for i in range(3)]
    cohort = Cohort(subjects, name="synthetic")
    objective = Objective(weights={"fc_corr": 1.0})

    def data(lam, restarts=2):
        cfg = TrainerConfig(sim_seconds=100.0, progress=False, restarts=restarts,
                            target_shrinkage=lam, eval_every=0, val_fraction=0.0)
        return FitData.from_cohort(cohort, cfg, objective, dtype=torch.float64)

    own = torch.stack([fc(torch.as_tensor(s.bold[:48])) for s in subjects])
    shrunk = data(0.25)
    for i in range(3):
        others = (own.sum(0) - own[i]) / 2
        for r in range(2):
            torch.testing.assert_close(shrunk.targets.fc[2 * i + r], 0.75 * own[i] + 0.25 * others)
    plain = data(0.0)
    torch.testing.assert_close(plain.targets.fc, own.repeat_interleave(2, 0))
    torch.testing.assert_close(shrunk.test_targets.fc, plain.test_targets.fc)
    with pytest.raises(ValueError, match="target_shrinkage"):
        TrainerConfig(target_shrinkage=1.0)
    cohort = cohort.select(["s0"])  # nothing to shrink toward: said, not silently dropped
    torch.testing.assert_close(data(0.25).targets.fc, own[:1].repeat_interleave(2, 0))
    assert "target_shrinkage = 0.25 is not applied" in caplog.text


def test_the_fcd_baseline_is_the_ks_distance_to_the_own_fitted_parts_fcd_in_pieces():
    """``own_fcd_ks``: the held-out FCD against the fitted part's FCD pooled over pieces as long
    as the held-out part; 0 for a session that repeats one piece, none when a part is shorter
    than two FCD windows."""
    from brainfit.data import Cohort, Subject
    from brainfit.fit import TrainerConfig
    from brainfit.fit.targets import FitData
    from brainfit.losses import Objective
    from brainfit.metrics import fcd_values, ks_distance

    rng = np.random.default_rng(1)
    W = rng.random((5, 5))
    piece = rng.standard_normal((20, 5))
    bolds = {"repeats": np.tile(piece, (5, 1)), "varies": rng.standard_normal((100, 5)) *
             np.linspace(0.2, 3.0, 100)[:, None] ** np.arange(5)}
    cohort = Cohort([Subject(k, weights=W + W.T, bold=b, tr=2.0) for k, b in bolds.items()])
    cfg = TrainerConfig(sim_seconds=100.0, progress=False, eval_every=0, val_fraction=0.0)

    def baselines(window):
        objective = Objective(weights={"fc_corr": 1.0}, fcd_window=window, fcd_step=2.0)
        return FitData.from_cohort(cohort, cfg, objective, dtype=torch.float64).baselines

    base = baselines(10.0)
    assert base["repeats"]["own_fcd_ks"] == 0.0
    x = torch.as_tensor(bolds["varies"])
    expected = ks_distance(fcd_values(x[:80], 2.0, 10.0, 2.0, segment=20),
                           fcd_values(x[80:], 2.0, 10.0, 2.0))
    assert base["varies"]["own_fcd_ks"] == pytest.approx(float(expected)) and expected > 0.1
    assert "own_fc_r" in base["varies"]  # beside the FC baselines
    assert "own_fcd_ks" not in baselines(40.0)["varies"]  # 20 held-out volumes: one 40-s window
