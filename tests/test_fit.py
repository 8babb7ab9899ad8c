"""The main job: configs compose, scripts/train.py fits and exports, runs resume and reload."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, MissingConfigException
from hydra.utils import get_class
from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError
from problems import SIMULATED

import brainfit
from brainfit import metrics
from brainfit.checkpoint import load_checkpoint
from brainfit.fit import FitDiverged, register_configs, run
from brainfit.fit.build import components_from_config, instantiate
from brainfit.fit.fitted import load_fitted
from brainfit.fit.spec import TrainerConfig, build_simulator
from brainfit.losses import Objective

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
TINY = ["data.subjects=[NAP_001,NAP_002]", "trainer.epochs=2", "trainer.sim_seconds=40",
        "trainer.burn_in=4", "trainer.chunk=20", "trainer.eval_every=1", "trainer.eval_seeds=1",
        "loss=fc", "trainer.progress=false", "trainer.eval_seconds=80",
        *SIMULATED]

register_configs()


def _compose(overrides=()):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


def _options(group):
    if group == "coupling":  # generated from the registry by register_configs, no files
        return brainfit.coupling.available()
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("model", _options("model"))
def test_every_model_config_composes_builds_steps_and_makes_bold(model, gen):
    """Each model config composes, builds, steps its network at its own dt, and gives finite BOLD
    through the configured head (three volumes at a TR of one BOLD step, no burn-in)."""
    cfg = _compose([f"model={model}"])
    assert cfg.model.name == model
    spec, coupling, bold = components_from_config(cfg)
    W = torch.rand(2, 4, 4, generator=gen)
    L = torch.rand(2, 4, 4, generator=gen) * 50
    sim = build_simulator(spec, coupling, bold, W, L)
    out, _ = sim.network.simulate(20 * spec.dt, spec.dt, generator=gen)
    assert out.shape == (2, 20, 4) and torch.isfinite(out).all()
    assert any(p.requires_grad for p in sim.parameters())
    y = sim(n_volumes=3, tr=sim.bold.dt, dt=spec.dt, burn_in=0.0, chunk=3 * sim.bold.dt,
            generator=gen)
    assert y.shape == (2, 3, 4) and torch.isfinite(y).all()
    assert y.std() > 0  # the neural drive reached the haemodynamics


@pytest.mark.parametrize("group", ["coupling", "bold", "loss", "optim", "scheduler", "trainer"])
def test_every_option_of_the_other_groups_instantiates(group):
    """Every option builds the object its config names, with the config's settings: a coupling
    and a BOLD head from their factories (4 regions, 2 batch elements), the loss with its
    weights, an optimiser and a scheduler of the named class, the trainer's settings."""
    for option in _options(group):
        cfg = _compose([f"{group}={option}"])
        node = cfg[group]
        obj = instantiate(node)
        if group == "coupling":
            obj = obj(n_regions=4, n_batch=2)
            assert isinstance(obj, brainfit.coupling.Coupling) and obj.name == option
        elif group == "bold":
            obj = obj(n_regions=4, n_batch=2)
            assert type(obj) is get_class(node._target_) and obj.dt == node.dt, option
        elif group == "loss":
            assert isinstance(obj, Objective) and obj.weights == dict(node.weights), option
            assert (obj.fcd_window, obj.fcd_step) == (node.fcd_window, node.fcd_step)
        elif group == "optim":
            obj = obj([torch.nn.Parameter(torch.zeros(1))])
            assert type(obj) is get_class(node._target_) and obj.defaults["lr"] == node.lr
        elif group == "scheduler":
            obj = obj(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1))
            assert type(obj) is get_class(node._target_), option
        else:
            assert isinstance(obj, TrainerConfig), option
            for key, value in node.items():
                if key != "_target_":
                    assert getattr(obj, key) == value, (option, key)


def _leaves(node, prefix=""):
    """``{dotted path: value}`` of a plain (nested dict) config."""
    if not isinstance(node, dict) or not node:
        return {prefix[:-1]: node}
    return {k: v for key, sub in node.items() for k, v in _leaves(sub, f"{prefix}{key}.").items()}


@pytest.mark.parametrize("experiment", _options("experiment"))
def test_experiments_compose(experiment):
    """An experiment composes into its groups' options with its own values over them, and its
    model builds."""
    cfg = OmegaConf.to_container(_compose([f"experiment={experiment}"]), resolve=True)
    preset = OmegaConf.to_container(OmegaConf.load(CONF / "experiment" / f"{experiment}.yaml"))
    groups = {}
    for entry in preset.pop("defaults"):
        ((key, option),) = entry.items()  # "override /model": "hopf"
        groups[key.split("/")[-1]] = option
    assert groups and cfg["model"]["name"] == groups.get("model", cfg["model"]["name"])
    own = _leaves(preset)
    for path, value in own.items():  # the experiment's values win
        node = cfg
        for key in path.split("."):
            node = node[key]
        assert node == value, path
    for group, option in groups.items():  # the rest is the option's
        alone = OmegaConf.to_container(_compose([f"{group}={option}"])[group], resolve=True)
        for path, value in _leaves(alone, f"{group}.").items():
            if any(path == p or path.startswith(p + ".") for p in own):
                continue
            node = cfg
            for key in path.split("."):
                node = node[key]
            assert node == value, (group, path)
    spec = components_from_config(_compose([f"experiment={experiment}"])).spec
    assert spec.name == cfg["model"]["name"]


def test_the_default_job_fits_hopf_effective_connectivity_on_the_linearised_fc():
    """``python scripts/train.py`` with no overrides: Hopf nodes below the bifurcation, x read as
    BOLD, each subject's effective connectivity (a group gain plus shrunken subject deviations)
    fitted on the linearised FC, the same fit as ``experiment=hopf_gec``, and scored with noise
    weak enough that the simulation follows the linearisation. Other models keep the
    general defaults (Balloon head, FC + FCD, simulated), and the command line wins over what the
    hopf config picks."""
    cfg = _compose()
    assert cfg.model.name == "hopf" and cfg.trainer.linearized
    assert cfg.bold._target_ == "brainfit.bold.IdentityBold"
    assert dict(cfg.loss.weights) == {"fc_corr": 1.0, "fc_mse": 5.0, "acf": 1.0}
    assert cfg.model.params.omega.trainable and cfg.model.params.omega.scope == \
        cfg.model.params.a.scope == "subject_regional"  # each subject's own dynamics
    assert cfg.model.params.W.scope == "subject_edge" and cfg.model.params.a.high < 0
    assert OmegaConf.to_container(_compose(["experiment=hopf_gec"])) == \
        OmegaConf.to_container(cfg)
    other = _compose(["model=wilson_cowan"])
    assert not other.trainer.linearized and "fcd" in other.loss.weights
    assert other.bold._target_ == "brainfit.bold.BalloonWindkessel"
    simulated = _compose(["trainer=default", "loss=fc_fcd", "bold=friston2003"])
    assert simulated.model.name == "hopf" and not simulated.trainer.linearized
    assert "fcd" in simulated.loss.weights
    assert simulated.bold._target_ == "brainfit.bold.BalloonWindkessel"
    deco = _compose(["experiment=deco2017_hopf"])  # the SC as given, simulated for the FCD
    assert deco.model.params.W is None and not deco.trainer.linearized
    # the paper's noise (the default's is weaker: its nodes are fitted nearer the bifurcation)
    assert deco.model.noise.sigma == 6.3e-4 > cfg.model.noise.sigma
    assert deco.model.noise.kind == "white" and deco.model.noise.scope == "global"
    assert "W" not in components_from_config(deco)[0].params


def test_unknown_keys_and_options_fail_at_compose_time():
    with pytest.raises((ConfigCompositionException, ConfigAttributeError, ConfigKeyError),
                       match="epoch"):
        _compose(["trainer.epoch=5"])
    with pytest.raises(MissingConfigException, match="nope"):
        _compose(["model=nope"])
    with pytest.raises((ConfigCompositionException, ConfigAttributeError, ConfigKeyError)):
        _compose(["model.params.G.scpe=subject"])


def test_an_autocorrelation_longer_than_the_fitted_part_is_refused_before_fitting(tmp_path):
    """gw's fitted part is 284 volumes (568 s); lags over 600 s cannot be estimated from it."""
    with pytest.raises(ValueError, match=r"too few for the autocorrelation over 600 s.*acf_sec"):
        run(_compose(["loss.acf_seconds=600", "trainer.progress=false"]), out_dir=tmp_path / "x")
    assert not (tmp_path / "x" / "checkpoints").exists()


def test_nonsense_loss_weights_are_rejected():
    cfg = _compose(["loss.weights.fc_corr=-1"])
    with pytest.raises(Exception, match="makes no sense"):
        instantiate(cfg.loss)
    cfg = _compose(["loss=fc_fcd", "loss.weights.fc_corr=0", "loss.weights.fcd=0"])
    with pytest.raises(Exception, match="positive weight"):
        instantiate(cfg.loss)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One tiny fit through the installed command, as a user runs it."""
    out = tmp_path_factory.mktemp("run") / "out"
    cmd = [sys.executable, str(ROOT / "scripts" / "train.py"), *TINY, f"hydra.run.dir={out}"]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path_factory.getbasetemp(),
                         env={**os.environ, "PYTHONWARNINGS": "ignore"}, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def test_train_script_writes_every_output(fitted):
    expected = [".hydra/config.yaml", "train.log", "checkpoints/last.pt", "checkpoints/best.pt",
                "fitted_params.csv", "metrics.json", "simulated_fc.npz",
                "figures/fc_comparison.png", "figures/loss_curves.png",
                "figures/fitted_parameters.png", "figures/baselines.png",
                "fitted_connectivity.npz", "figures/connectivity.png"]  # hopf fits W by default
    for rel in expected:
        assert (fitted / rel).is_file(), rel
    table = (fitted / "train.log").read_text().split("per subject")[-1]
    for row in ("NAP_001", "NAP_002", "mean"):  # the log's table: scores beside the baselines
        assert re.search(rf"{row}( +-?\d\.\d{{3}}){{8}}", table), row
    assert list((fitted / "tensorboard").glob("events.out.tfevents.*"))
    rows = list(csv.DictReader(open(fitted / "fitted_params.csv")))
    assert {r["subject"] for r in rows} == {"NAP_001", "NAP_002"}
    a_rows = [r for r in rows if r["parameter"] == "a" and r["subject"] == "NAP_001"]
    assert len(a_rows) == 80 and a_rows[0]["unit"] == "1/ms"
    m = json.loads((fitted / "metrics.json").read_text())
    for sid in ("NAP_001", "NAP_002"):
        s = m["held_out"][sid]
        assert -1 <= s["fc_similarity"] <= 1 and 0 <= s["fcd_ks"] <= 1 and "sc_fc_r" in s
        assert 0 <= s["own_fcd_ks"] <= 1
        for baseline in ("sc_fc_r", "log_sc_fc_r", "group_fc_r", "own_fc_r"):
            assert -1 <= s[baseline] <= 1
    # the ceiling (the subject's own fitted-part FC) predicts its held-out FC best
    assert m["mean"]["own_fc_r"] > m["mean"]["group_fc_r"] > m["mean"]["sc_fc_r"]
    ckpt = load_checkpoint(fitted / "checkpoints" / "last.pt")
    assert ckpt["epoch"] == 2 and ckpt["brainfit_version"] == brainfit.__version__
    assert set(ckpt["rng"]) == {"generator", "torch", "numpy", "python"}
    assert set(ckpt["data"]["checksums"]) == {"NAP_001", "NAP_002"}
    assert ckpt["optimizer"]["state"], "the optimiser state is saved"
    # the checkpoint module's docstring describes the format as the trainer writes it
    from brainfit import checkpoint

    assert f'"format": "{checkpoint.FORMAT}"' in checkpoint.__doc__
    assert not [key for key in ckpt if f"``{key}``" not in checkpoint.__doc__]


def test_tensorboard_has_each_step_once_and_regional_parameters_as_histograms(fitted):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(fitted / "tensorboard"), size_guidance={"scalars": 0,
                                                                       "histograms": 0})
    acc.Reload()
    for tag in acc.Tags()["scalars"]:
        steps = [e.step for e in acc.Scalars(tag)]
        assert len(steps) == len(set(steps)), tag
    assert [e.step for e in acc.Scalars("loss")] == [1, 2]
    assert [e.step for e in acc.Scalars("eval/fc_similarity")] == [1, 2]
    assert "params/a" in acc.Tags()["histograms"]  # the Hopf bifurcation parameter, per region
    assert acc.Histograms("params/a")[-1].histogram_value.num == 80


def test_load_fitted_reproduces_the_runs_simulated_fc(fitted):
    model = load_fitted(fitted)  # the checkpoint the run hands over, which metrics.json scored
    assert model.path.name == json.loads((fitted / "metrics.json").read_text())["checkpoint"]
    assert model.subject_ids == ["NAP_001", "NAP_002"]
    fc = metrics.fc(model.simulate()).numpy()
    saved = np.load(fitted / "simulated_fc.npz")["fc"]
    np.testing.assert_allclose(fc, saved, rtol=1e-5, atol=1e-6)


def test_evaluate_and_simulate_scripts(fitted):
    for script, args, made in (
            ("evaluate.py", [], "evaluation.json"),
            ("simulate.py", ["seconds=20", "seed=3"], "simulated_bold.npz")):
        res = subprocess.run([sys.executable, str(ROOT / "scripts" / script), f"run={fitted}",
                              *args], capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-3000:]
        assert (fitted / made).is_file()
    ev = json.loads((fitted / "evaluation.json").read_text())
    assert set(ev["subjects"]) == {"NAP_001", "NAP_002"}
    metrics_json = json.loads((fitted / "metrics.json").read_text())
    held_out = metrics_json["held_out"]
    # by default, the checkpoint the run hands over and scored: best.pt (a validation part)
    assert Path(ev["checkpoint"]).name == metrics_json["checkpoint"] == "best.pt"
    for sid, s in ev["subjects"].items():  # the same baselines as the run's
        for k in ("sc_fc_r", "log_sc_fc_r", "group_fc_r", "own_fc_r", "own_fcd_ks"):
            assert s[k] == pytest.approx(held_out[sid][k], abs=1e-12)
        # and the run's scores: its evaluation's length (trainer.eval_seconds=80, not the
        # 142-s held-out part), seeds and FCD pieces
        for k in ("fc_similarity", "fcd_ks"):
            assert s[k] == pytest.approx(held_out[sid][k], abs=1e-5)
    assert ev["seconds"] == 80.0 and ev["seeds"] == 1
    assert -1 <= ev["mean"]["fc_similarity"] <= 1 and 0 <= ev["mean"]["fcd_ks"] <= 1
    sim = np.load(fitted / "simulated_bold.npz")
    assert sim["bold"].shape == (2, 10, 80) and float(sim["tr"]) == 2.0


def test_restarts_run_side_by_side_and_the_best_is_kept(tmp_path):
    out = _trainer_run(tmp_path, "restarts", ["trainer.restarts=3", "model.params.G.scope=subject",
                                               "trainer.eval_every=0"])
    ckpt = load_checkpoint(out / "checkpoints" / "last.pt")
    assert [tuple(e) for e in ckpt["elements"]] == [
        (s, r) for s in ("NAP_001", "NAP_002") for r in range(3)]
    G = ckpt["model_state"]["network.params.raw.G"]
    assert G.shape == (6,) and len(set(G.tolist())) == 6  # restarts start from different G
    loss = ckpt["element_loss"]
    rows = list(csv.DictReader(open(out / "fitted_params.csv")))
    model = load_fitted(out / "checkpoints" / "last.pt")
    values = model.simulator.network.params.natural("G")
    for s, sid in enumerate(("NAP_001", "NAP_002")):
        best = s * 3 + int(loss[s * 3:(s + 1) * 3].argmin())
        assert ckpt["best"][sid] == best
        (g_row,) = [r for r in rows if r["subject"] == sid and r["parameter"] == "G"]
        assert float(g_row["value"]) == pytest.approx(values[best].item(), rel=1e-6)


@pytest.mark.slow
def test_multirun_sweeps_models_and_seeds(tmp_path):
    tiny = [a for a in TINY if not a.startswith("data.subjects")] + [
        "data.subjects=[NAP_001]", "trainer.epochs=1", "trainer.sim_seconds=8",
        "trainer.burn_in=2", "trainer.chunk=4", "trainer.eval_seconds=8"]
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), "-m",
                          "model=hopf,wong_wang_ei", "seed=0,1", *tiny,
                          f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                         capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stderr[-3000:]
    runs = sorted((tmp_path / "sweep").glob("*/metrics.json"))
    assert len(runs) == 4


def _trainer_run(tmp_path, name, extra=()):
    out = tmp_path / name
    run(_compose([*TINY, "trainer.figures=false", *extra]), out_dir=out)
    return out


def test_resume_continues_exactly_and_same_seed_gives_same_fit(tmp_path):
    straight = _trainer_run(tmp_path, "straight", ["trainer.epochs=3"])
    again = _trainer_run(tmp_path, "again", ["trainer.epochs=3"])
    first = _trainer_run(tmp_path, "first", ["trainer.epochs=2"])
    resumed = _trainer_run(tmp_path, "resumed", [
        "trainer.epochs=3", f"trainer.resume={first / 'checkpoints' / 'last.pt'}"])
    a = load_checkpoint(straight / "checkpoints" / "last.pt")
    for other in (again, resumed):
        b = load_checkpoint(other / "checkpoints" / "last.pt")
        assert b["epoch"] == 3
        for k, v in a["model_state"].items():
            torch.testing.assert_close(b["model_state"][k], v, rtol=0, atol=0)
    assert (straight / "fitted_params.csv").read_text() == (again / "fitted_params.csv").read_text()
    assert not (straight / "figures").exists()  # trainer.figures=false: tables only


def test_resume_from_another_model_or_cohort_is_refused(fitted, tmp_path):
    ckpt = fitted / "checkpoints" / "last.pt"
    with pytest.raises(ValueError, match="different model"):
        _trainer_run(tmp_path, "m", ["model.params.G.scope=subject", f"trainer.resume={ckpt}"])
    with pytest.raises(ValueError, match="different cohort"):
        _trainer_run(tmp_path, "c", ["data.subjects=[NAP_001,NAP_007]", f"trainer.resume={ckpt}"])
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        _trainer_run(tmp_path, "f", [f"trainer.resume={tmp_path / 'missing.pt'}"])


def _poison(monkeypatch, bad_calls):
    """Objective calls numbered in ``bad_calls`` (from 1) return a NaN loss."""
    from brainfit import losses

    calls = {"n": 0}
    original = losses.Objective.__call__

    def poisoned(self, bold, *args, **kwargs):
        calls["n"] += 1
        total, parts = original(self, bold, *args, **kwargs)
        return (total * float("nan") if calls["n"] in bad_calls else total), parts

    monkeypatch.setattr(losses.Objective, "__call__", poisoned)


def test_a_diverging_fit_stops_with_only_good_states_saved(tmp_path, monkeypatch):
    """Every step from the second on diverges: three recoveries, then a clear stop with last.pt
    and best.pt both holding epoch 1, the last state that simulated and evaluated finitely."""
    _poison(monkeypatch, range(2, 100))
    out = tmp_path / "nan"
    with pytest.raises(FitDiverged, match=r"(?s)epoch 2 \(step\): the loss is nan.*"
                                          r"Stopped after 3 recoveries.*last.pt holds the last "
                                          r"good state \(epoch 1\).*smaller optim.lr"):
        run(_compose([*TINY, "trainer.epochs=3"]), out_dir=out)
    last = load_checkpoint(out / "checkpoints" / "last.pt")
    best = load_checkpoint(out / "checkpoints" / "best.pt")
    assert last["epoch"] == best["epoch"] == 1
    for k, v in last["model_state"].items():
        assert torch.equal(v, best["model_state"][k]), k
        assert not v.is_floating_point() or torch.isfinite(v).all()
    assert last["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.05 * 0.1**3)


def test_a_diverged_step_is_retried_from_the_last_good_state_at_a_lower_rate(tmp_path,
                                                                             monkeypatch, caplog):
    _poison(monkeypatch, {2})
    out = tmp_path / "once"
    with caplog.at_level("WARNING", logger="brainfit.fit"):
        run(_compose([*TINY, "trainer.epochs=3", "trainer.eval_every=0"]), out_dir=out)
    assert "Back to epoch 0 with the learning rate x 0.1 (now 0.005; recovery 1 of 3)" \
        in caplog.text
    ckpt = load_checkpoint(out / "checkpoints" / "last.pt")
    assert ckpt["epoch"] == 3 and ckpt["divergences"] == 1
    assert [r["lr"] for r in ckpt["history"]] == pytest.approx([0.005] * 3)
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 3


def test_max_divergences_zero_stops_at_the_first(tmp_path, monkeypatch):
    _poison(monkeypatch, {1})
    with pytest.raises(FitDiverged, match="starting parameters do not simulate"):
        run(_compose([*TINY, "trainer.max_divergences=0"]), out_dir=tmp_path / "z")
    assert not (tmp_path / "z" / "checkpoints").exists()
    assert not (tmp_path / "z" / "tensorboard").exists()


def test_a_cohort_of_precomputed_targets_fits_and_is_scored_against_them(tmp_path, caplog):
    """Group SC + group FC + an FCD histogram (no time series): loss, evaluation and exports."""
    cohort = brainfit.data.load("gw")
    np.save(tmp_path / "sc.npy", np.mean([s.weights for s in cohort], axis=0))
    fc = np.mean([np.corrcoef(s.bold.T) for s in cohort], axis=0)
    np.savetxt(tmp_path / "fc.csv", fc, delimiter=",")
    fcd = np.concatenate([m[np.triu_indices_from(m, 1)] for m in
                          (brainfit.data.empirical_fcd(s) for s in cohort)])
    counts, edges = np.histogram(fcd, bins=40, range=(-1, 1))
    np.savez(tmp_path / "fcd.npz", edges=edges, counts=counts)
    out = tmp_path / "out"
    targets = ["data=targets", f"data.weights={tmp_path / 'sc.npy'}",
               f"data.fc={tmp_path / 'fc.csv'}", f"data.fcd={tmp_path / 'fcd.npz'}",
               "data.tr=2.0", "trainer.epochs=1", "trainer.sim_seconds=160",
               "trainer.burn_in=4", "trainer.chunk=40", "trainer.eval_seeds=1",
               "trainer.eval_seconds=400", "trainer.progress=false", "trainer.figures=false"]
    with pytest.raises(ValueError, match="acf.*FC only: use loss=fc"):  # the default loss
        run(_compose(targets), out_dir=tmp_path / "refused")
    assert not (tmp_path / "refused" / "checkpoints").exists()
    with caplog.at_level("INFO", logger="brainfit.fit"):
        run(_compose([*targets, "loss=fc"]), out_dir=out)
    s = json.loads((out / "metrics.json").read_text())["held_out"]["group"]
    sim_fc = np.load(out / "simulated_fc.npz")["fc"][0]
    iu = np.triu_indices(80, 1)
    assert s["fc_similarity"] == pytest.approx(np.corrcoef(sim_fc[iu], fc[iu])[0, 1], abs=1e-4)
    assert 0 < s["fcd_ks"] <= 1
    assert "FC similarity to the targets (nothing held out)" in caplog.text
