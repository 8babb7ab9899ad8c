"""A fit survives preemption, a changed mind on resume, a diverging evaluation and a corrupted or
hostile checkpoint; nothing it leaves is partial or silently wrong."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from problems import SIMULATED

from brainfit.checkpoint import load_checkpoint, save_atomic
from brainfit.fit import FitDiverged, register_configs, run
from brainfit.fit.callbacks import Callback, attached
from brainfit.runtime import SimulationDiverged
from brainfit.simulator import BoldSimulator

ROOT = Path(__file__).resolve().parents[1]
TINY = ["data.subjects=[NAP_001,NAP_002]", "trainer.sim_seconds=40", "trainer.burn_in=4",
        "trainer.chunk=20", "trainer.eval_seeds=1", "loss=fc", "trainer.progress=false",
        "trainer.figures=false",
        "trainer.eval_seconds=80", "threads=1",
        *SIMULATED]

register_configs()


def _compose(overrides=()):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


def _fit(out: Path, *extra: str) -> Path:
    run(_compose([*TINY, "trainer.eval_every=0", *extra]), out_dir=out)
    return out


def _train_script(out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "train.py"), *TINY, "trainer.eval_every=0",
         f"hydra.run.dir={out}", *extra], cwd=out.parent, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _same_results(a: Path, b: Path) -> None:
    """Bit-identical fits: parameters, exported tables and held-out scores."""
    ca, cb = (load_checkpoint(p / "checkpoints" / "last.pt") for p in (a, b))
    assert ca["epoch"] == cb["epoch"]
    for k, v in ca["model_state"].items():
        assert torch.equal(cb["model_state"][k], v), k
    assert (a / "fitted_params.csv").read_bytes() == (b / "fitted_params.csv").read_bytes()
    ma, mb = (json.loads((p / "metrics.json").read_text()) for p in (a, b))
    assert ma["held_out"] == mb["held_out"] and ma["mean"] == mb["mean"]


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """The uninterrupted 6-epoch fit that interrupted ones must reproduce."""
    return _fit(tmp_path_factory.mktemp("straight") / "run", "trainer.epochs=6")


@pytest.mark.parametrize("sig", [signal.SIGTERM,  # SIGINT (Ctrl-C) takes SIGTERM's path
                                 pytest.param(signal.SIGINT, marks=pytest.mark.slow),
                                 signal.SIGKILL], ids=["SIGTERM", "SIGINT", "SIGKILL"])
def test_a_signalled_fit_resumes_to_the_uninterrupted_result(straight, tmp_path, sig):
    out = tmp_path / "killed"
    proc = _train_script(out, "trainer.epochs=6")
    last = out / "checkpoints" / "last.pt"
    deadline = time.time() + 300
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert last.exists(), proc.communicate()[0][-3000:]
    proc.send_signal(sig)
    log = proc.communicate(timeout=120)[0]
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:  # a clean exit: the shell's code for death by that signal, and a line saying so
        assert proc.returncode == 128 + sig, log[-3000:]
        name = signal.Signals(sig).name
        assert f"{name} during epoch" in log and "trainer.resume=" in log, log[-3000:]
        assert "Traceback" not in log
    done = load_checkpoint(last)["epoch"]
    assert 1 <= done < 6  # interrupted mid-fit, with a whole checkpoint
    assert not (out / "metrics.json").exists()
    resumed = _fit(tmp_path / "resumed", "trainer.epochs=6", f"trainer.resume={last}")
    _same_results(straight, resumed)


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory) -> Path:
    return _fit(tmp_path_factory.mktemp("two") / "run", "trainer.epochs=2")


def test_resume_takes_the_new_learning_rate_and_says_what_changed(two_epochs, tmp_path, caplog):
    ckpt = two_epochs / "checkpoints" / "last.pt"
    with caplog.at_level("INFO", logger="brainfit.fit"):
        out = _fit(tmp_path / "lr", "trainer.epochs=3", "optim.lr=0.0001",
                   f"trainer.resume={ckpt}")
    assert "optim.lr 0.05 -> 0.0001" in caplog.text
    last = load_checkpoint(out / "checkpoints" / "last.pt")
    assert [r["lr"] for r in last["history"]] == pytest.approx([0.05, 0.05, 0.0001])
    assert last["config"]["optim"]["lr"] == 0.0001
    # Adam's moments came from the checkpoint: the third step equals one taken by an optimiser
    # that carried them, at the new rate
    assert last["optimizer"]["state"][0]["step"] == 3


def test_resume_with_another_optimiser_starts_its_state_afresh(two_epochs, tmp_path, caplog):
    ckpt = two_epochs / "checkpoints" / "last.pt"
    with caplog.at_level("WARNING", logger="brainfit.fit"):
        out = _fit(tmp_path / "sgd", "trainer.epochs=3", "optim=sgd", f"trainer.resume={ckpt}")
    assert "the optimiser changed" in caplog.text
    last = load_checkpoint(out / "checkpoints" / "last.pt")
    assert last["epoch"] == 3 and last["config"]["optim"]["_target_"].endswith("SGD")


@pytest.mark.parametrize("epochs, words", [(1, "already done 2:"), (2, "already done 2 and "
                                                                      "finished")])
def test_resume_refuses_epochs_that_would_fit_nothing(two_epochs, tmp_path, epochs, words):
    ckpt = two_epochs / "checkpoints" / "last.pt"
    with pytest.raises(ValueError, match=f"trainer.epochs={epochs} is the total.*{words}.*"
                                         f"above 2"):
        _fit(tmp_path / "e", f"trainer.epochs={epochs}", f"trainer.resume={ckpt}")
    assert not (tmp_path / "e" / "checkpoints").exists()


class _DivergeOnce(Callback):
    """The first evaluation diverges (batch element 1: NAP_002), as a NaN simulation would."""

    def __init__(self) -> None:
        self.calls = 0

    def on_evaluation_start(self, trainer, part):
        self.calls += 1
        if self.calls == 1:
            raise SimulationDiverged("the simulation diverged by t = 1 ms (NaN/inf)", [1])


def test_a_diverging_evaluation_goes_back_and_lowers_the_rate(tmp_path, caplog):
    out = tmp_path / "ev"
    with caplog.at_level("WARNING", logger="brainfit.fit"), attached(_DivergeOnce()):
        run(_compose([*TINY, "trainer.epochs=3", "trainer.eval_every=2"]), out_dir=out)
    assert "epoch 2 (evaluation): the simulation diverged" in caplog.text
    assert "[subjects NAP_002]" in caplog.text
    last = load_checkpoint(out / "checkpoints" / "last.pt")
    assert last["epoch"] == 3 and last["divergences"] == 1
    assert last["history"][-1]["lr"] == pytest.approx(0.005)


def test_a_fit_that_cannot_start_leaves_no_result_folders(tmp_path, monkeypatch):
    def diverge(self, *args, **kwargs):  # every simulation
        raise SimulationDiverged("the simulation diverged by t = 1 ms (NaN/inf)", [0])

    monkeypatch.setattr(BoldSimulator, "forward", diverge)
    with pytest.raises(FitDiverged, match="starting parameters do not simulate"):
        _fit(tmp_path / "x", "trainer.epochs=2")
    assert not (tmp_path / "x" / "checkpoints").exists()
    assert not (tmp_path / "x" / "tensorboard").exists()


# -- checkpoints -------------------------------------------------------------------------------
def test_a_corrupted_or_truncated_checkpoint_is_refused(two_epochs, tmp_path):
    good = (two_epochs / "checkpoints" / "last.pt").read_bytes()
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF
    (tmp_path / "flipped.pt").write_bytes(bytes(flipped))
    (tmp_path / "short.pt").write_bytes(good[: len(good) // 3])
    for name in ("flipped.pt", "short.pt"):
        with pytest.raises(ValueError, match="corrupted|truncated") as err:
            load_checkpoint(tmp_path / name)
        assert "best.pt or last.pt" in str(err.value)
    with pytest.raises(ValueError, match="truncated, corrupted"):
        _fit(tmp_path / "r", "trainer.epochs=3", f"trainer.resume={tmp_path / 'short.pt'}")


def test_a_file_of_another_format_is_refused_naming_the_format_read(tmp_path):
    """The module docstring names the format the code writes; a file of another format (an
    older one, say) is refused naming the one read, not a brainfit version."""
    from brainfit import checkpoint

    assert f'"format": "{checkpoint.FORMAT}"' in checkpoint.__doc__
    torch.save({"format": "brainfit-checkpoint-0", "sha256": "", "payload": b"old"},
               tmp_path / "old.pt")
    with pytest.raises(ValueError, match=f"format 'brainfit-checkpoint-0', expected "
                                         f"'{checkpoint.FORMAT}'") as err:
        load_checkpoint(tmp_path / "old.pt")
    assert "brainfit <" not in str(err.value)


class _Payload:
    """Unpickling this runs code (it would create the file named by ``flag``)."""

    def __init__(self, flag: Path) -> None:
        self.flag = flag

    def __reduce__(self):
        return (Path.touch, (self.flag,))


def test_a_checkpoint_that_would_run_code_is_not_executed(tmp_path):
    flag = tmp_path / "pwned"
    with open(tmp_path / "evil.pt", "wb") as fh:  # a plain pickle, as torch.save(..., False)
        torch.save({"model_state": _Payload(flag), "config": {}}, fh)
    save_atomic({"model_state": {}, "config": {}, "x": 1}, tmp_path / "ok.pt")
    assert load_checkpoint(tmp_path / "ok.pt")["x"] == 1
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")
    with open(tmp_path / "evil2.pt", "wb") as fh:
        pickle.dump(_Payload(flag), fh, protocol=2)
    with pytest.raises(ValueError):
        load_checkpoint(tmp_path / "evil2.pt")
    assert not flag.exists()


def test_outputs_are_replaced_whole_and_no_temporary_files_stay(two_epochs):
    names = {p.name for p in two_epochs.rglob("*") if p.is_file()}
    assert not [n for n in names if n.endswith(".tmp")]
    assert {"metrics.json", "simulated_fc.npz", "fitted_params.csv", "last.pt"} <= names
