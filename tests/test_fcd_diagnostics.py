"""scripts/fcd_diagnostics.py: its figures are the metrics of the run's data and model."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from brainfit import metrics
from brainfit.data.preprocess import split_sessions
from brainfit.fit import register_configs, run
from brainfit.fit.targets import load_cohort

ROOT = Path(__file__).resolve().parents[1]


def test_the_fcd_diagnostics_of_a_run(tmp_path, monkeypatch, capsys):
    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[
            "data.subjects=[NAP_001,NAP_002]", "trainer.epochs=2", "trainer.eval_seeds=1",
            "trainer.eval_seconds=200", "trainer.progress=false", "threads=1"])
    run(cfg, out_dir=tmp_path / "run")
    script = runpy.run_path(str(ROOT / "scripts" / "fcd_diagnostics.py"))
    d = script["diagnose"](str(tmp_path / "run"), pieces=2, surrogates=2)
    raw, preprocessing = load_cohort(cfg.data)  # cut, then preprocessed part by part
    parts = split_sessions(raw, 0.8, preprocessing=preprocessing)
    fitted, held = (c.batch(crop=True).bold.double() for c in (parts.fit, parts.test))
    T = held.shape[1]
    assert d["held_out_volumes"] == T == 71 and d["tr"] == 2.0
    own = metrics.fcd_values(fitted, 2.0, 60.0, 2.0, segment=T)
    target = metrics.fcd_values(held, 2.0, 60.0, 2.0)
    acf = metrics.autocorrelation(fitted, 16).mean(-1)
    held_out = json.loads((tmp_path / "run" / "metrics.json").read_text())["held_out"]
    for i, sid in enumerate(["NAP_001", "NAP_002"]):
        r = d["subjects"][sid]
        assert r["ks_own"] == float(metrics.ks_distance(own[i], target[i]))
        assert r["ks_own"] == held_out[sid]["own_fcd_ks"]  # the run's baseline
        assert r["acf_data"] == [float(acf[i, k - 1]) for k in d["lags"]]
        assert r["fc_sd_data"] == float(metrics.upper_triangle(metrics.fc(fitted))[i].std())
        assert 0 < r["ks_surrogate"] < 1 and 0 < r["ks_model"] < 1 and r["fc_sd_model"] > 0
    monkeypatch.setattr(sys, "argv", ["fcd_diagnostics.py", str(tmp_path / "run"),
                                      "--pieces", "2", "--surrogates", "1"])
    script["main"]()
    out = capsys.readouterr().out
    assert "| NAP_002 |" in out and out.count("\n") == 6
    assert torch.isfinite(torch.tensor(d["subjects"]["NAP_001"]["acf_model"])).all()
