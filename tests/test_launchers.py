"""Sweeps on Hydra's launcher plugins: every preset of conf/hydra/launcher composes on its
plugin's schema, a per-subject sweep runs in local processes (joblib) and ends with its summary
table, and the SLURM presets submit a job array with their resources (to a stand-in sbatch)."""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from problems import SIMULATED

from brainfit.fit import register_configs
from brainfit.fit.sweep import SweepSummary, format_table, summarize_sweep

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
PRESETS = CONF / "hydra" / "launcher"
TRAIN = str(ROOT / "scripts" / "train.py")
#: the plugins' own launcher configs and the packages that register them
PLUGINS = {"joblib": "hydra_plugins.hydra_joblib_launcher",
           "submitit_slurm": "hydra_plugins.hydra_submitit_launcher"}
TINY = ["trainer.epochs=1", "trainer.sim_seconds=8", "trainer.burn_in=2", "trainer.chunk=4",
        "trainer.eval_seconds=8", "trainer.eval_every=1", "trainer.eval_seeds=1", "loss=fc",
        "trainer.progress=false", "trainer.figures=false",
        *SIMULATED]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}

register_configs()


def _chain(preset: str) -> list[str]:
    """The preset, the presets it extends, and last the plugin's config they all extend."""
    chain = [preset]
    while (PRESETS / f"{chain[-1]}.yaml").is_file():
        chain.append(OmegaConf.load(PRESETS / f"{chain[-1]}.yaml").defaults[0])
    return chain


def _launcher(name: str, overrides=()):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"hydra/launcher={name}", *overrides],
                      return_hydra_config=True)
    return cfg.hydra.launcher


@pytest.mark.parametrize("preset", sorted(p.stem for p in PRESETS.glob("*.yaml")))
def test_every_launcher_preset_composes_on_its_plugins_schema(preset):
    *presets, plugin = _chain(preset)
    assert plugin in PLUGINS, f"{preset} extends {plugin}, not a launcher plugin's config"
    pytest.importorskip(PLUGINS[plugin])
    base, launcher = _launcher(plugin), _launcher(preset)
    assert OmegaConf.get_type(launcher) is OmegaConf.get_type(base)  # the plugin's dataclass
    expected = OmegaConf.to_container(base)
    for name in reversed(presets):  # each preset's own values over those it extends
        own = OmegaConf.to_container(OmegaConf.load(PRESETS / f"{name}.yaml"))
        expected.update({k: v for k, v in own.items() if k != "defaults"})
    assert OmegaConf.to_container(launcher) == expected


def test_a_per_subject_sweep_runs_in_local_processes_and_ends_with_its_table(tmp_path):
    pytest.importorskip(PLUGINS["joblib"])
    sweep = tmp_path / "sweep"
    res = subprocess.run([sys.executable, TRAIN, "-m", "hydra/launcher=local",
                          "data.subjects=[NAP_001],[NAP_002]", *TINY, f"hydra.sweep.dir={sweep}"],
                         capture_output=True, text=True, timeout=600, env=ENV)
    assert res.returncode == 0, res.stderr[-3000:]
    launcher = OmegaConf.load(sweep / "multirun.yaml").hydra.launcher
    assert launcher._target_.endswith("JoblibLauncher") and launcher.n_jobs == 2
    rows = list(csv.DictReader(open(sweep / "sweep_summary.csv")))
    assert [(r["job"], r["swept"], r["status"]) for r in rows] == [
        ("0", "data.subjects=[NAP_001]", "done"), ("1", "data.subjects=[NAP_002]", "done")]
    for row, subject in zip(rows, ("NAP_001", "NAP_002")):
        metrics = json.loads((sweep / row["dir"] / "metrics.json").read_text())
        assert list(metrics["held_out"]) == [subject]
        assert float(row["fc_similarity"]) == metrics["mean"]["fc_similarity"]
        assert f"data.subjects=[{subject}]  done    {metrics['mean']['fc_similarity']:.3f}" in (
            res.stdout + res.stderr)  # the logged table


@pytest.mark.parametrize("preset", ["slurm", "slurm_gpu"])
def test_slurm_presets_submit_a_job_array_with_their_resources(tmp_path, preset):
    pytest.importorskip(PLUGINS["submitit_slurm"])
    bin_dir, script = tmp_path / "bin", tmp_path / "submitted.sh"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(  # keeps the batch script it is given, submits nothing
        f'#!/bin/sh\ncp "$1" "{script}"\necho "sbatch stand-in: no cluster" >&2\nexit 1\n')
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")  # submitit looks for it
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    res = subprocess.run([sys.executable, TRAIN, "-m", f"hydra/launcher={preset}",
                          "hydra.launcher.partition=debug", "seed=0,1,2",
                          f"hydra.sweep.dir={tmp_path / 'sweep'}"], capture_output=True, text=True,
                         timeout=300, env={**ENV, "PATH": f"{bin_dir}{os.pathsep}{ENV['PATH']}"})
    assert res.returncode != 0 and "sbatch stand-in: no cluster" in res.stderr, res.stderr[-3000:]
    sbatch = dict(line.removeprefix("#SBATCH --").split("=", 1)
                  for line in script.read_text().splitlines() if line.startswith("#SBATCH --"))
    want = _launcher(preset)
    assert sbatch["partition"] == "debug" and sbatch["array"] == "0-2%3"  # 3 jobs, all at once
    assert sbatch["time"] == str(want.timeout_min) and sbatch["mem"] == f"{want.mem_gb}GB"
    assert sbatch["cpus-per-task"] == str(want.cpus_per_task)
    assert sbatch.get("gpus-per-node") == (None if want.gpus_per_node is None
                                           else str(want.gpus_per_node))


def _job(sweep: Path, num: int, overrides: list[str], metrics: dict | None) -> None:
    job = sweep / f"{num}_{'_'.join(overrides)}"
    (job / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create({"hydra": {"job": {"num": num}}}), job / ".hydra/hydra.yaml")
    OmegaConf.save(OmegaConf.create(overrides), job / ".hydra/overrides.yaml")
    if metrics is not None:
        (job / "metrics.json").write_text(json.dumps(metrics))


def test_the_summary_lists_jobs_in_order_and_says_which_wrote_no_metrics(tmp_path, caplog):
    _job(tmp_path, 10, ["loss=fc", "seed=10"], None)  # failed: no metrics.json
    _job(tmp_path, 2, ["loss=fc", "seed=2"], {"mean": {"fc_similarity": 0.25}, "fit_seconds": 3.0,
                                             "held_out": {"NAP_001": {"fc_similarity": 0.25}}})
    with caplog.at_level(logging.INFO, logger="brainfit.fit"):
        SweepSummary().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": tmp_path}}}))
    rows = list(csv.DictReader(open(tmp_path / "sweep_summary.csv")))
    assert [(r["job"], r["swept"], r["status"], r["fc_similarity"]) for r in rows] == [
        ("2", "seed=2", "done", "0.25"), ("10", "seed=10", "no metrics.json", "")]
    assert rows[0]["overrides"] == "loss=fc seed=2" and rows[0]["fit_seconds"] == "3.0"
    table = format_table(summarize_sweep(tmp_path)).splitlines()
    assert table[0].split() == ["job", "swept", "status", "fc_similarity", "fit_seconds"]
    assert table[1].split() == ["2", "seed=2", "done", "0.250", "3.000"]
    assert table[2].split() == ["10", "seed=10", "no", "metrics.json"]
    assert "\n".join(table) in caplog.text and "jobs 10 wrote no metrics.json" in caplog.text
    with pytest.raises(FileNotFoundError, match="no job directory .* hydra.sweep.dir"):
        summarize_sweep(tmp_path / "empty")


def test_a_job_with_many_overrides_gets_a_short_unique_directory_name():
    """conf/train.yaml names a sweep's jobs <num>_<overrides>; past 120 characters the name keeps
    its start and ends in a hash of the whole (Hydra's own name broke the 255-byte limit)."""
    overrides = [f"trainer.{k}=1" for k in ("epochs", "burn_in", "chunk", "eval_every")]
    long = [*overrides, "model.params.G.value=0.5", *SIMULATED, *TINY]
    names = []
    for num, extra in ((0, overrides), (1, long), (2, [*long, "seed=1"])):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(config_name="train", overrides=extra, return_hydra_config=True)
        cfg.hydra.job.num = num
        cfg.hydra.job.override_dirname = ",".join(sorted(extra))
        names.append(str(cfg.hydra.sweep.subdir))
    assert names[0] == "0_" + ",".join(sorted(overrides))
    assert [n[:2] for n in names] == ["0_", "1_", "2_"] and all(len(n) <= 120 for n in names)
    assert names[1][2:-11] == names[2][2:-11] and names[1][-10:] != names[2][-10:]
