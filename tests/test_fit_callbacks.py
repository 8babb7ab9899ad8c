"""The trainer's parts: the hooks a fit calls (brainfit.fit.callbacks), in the documented order,
and its resumable state (brainfit.fit.state), whose checkpoint, snapshot and restore come from one
definition. A tiny synthetic fit: four Hopf nodes, 20-s simulations."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from brainfit.bold import BalloonWindkessel
from brainfit.checkpoint import load_checkpoint
from brainfit.coupling import create as create_coupling
from brainfit.data import Cohort, Subject
from brainfit.fit import Callback, Components, NetworkSpec, Trainer, TrainerConfig
from brainfit.fit.callbacks import HOOKS, Hooks, attached
from brainfit.fit.state import CHECKPOINT_KEYS, RECOVERED, STATE_KEYS
from brainfit.losses import Objective

N, TR = 4, 1.0


class Recorder(Callback):
    """Every hook call, by name (and the part of an evaluation, the name of a checkpoint)."""

    def __init__(self) -> None:
        self.calls: list[str] = []


def _record(self, trainer, *args, _hook):
    self.calls.append(":".join([_hook, *(a for a in args if isinstance(a, str))]))


for _hook in HOOKS:
    setattr(Recorder, _hook, functools.partialmethod(_record, _hook=_hook))


def _trainer(out, callbacks=None, **config) -> Trainer:
    rng = np.random.default_rng(0)
    W = rng.random((N, N))
    W = (W + W.T) / 2
    np.fill_diagonal(W, 0)
    cohort = Cohort([Subject(f"s{k}", weights=W, bold=rng.standard_normal((100, N)), tr=TR)
                     for k in range(2)], name="synthetic")
    spec = NetworkSpec(name="hopf", params={"a": -5.0e-5, "gamma": 1.0e-3, "omega": 2.8e-4,
                                            "G": {"value": 4.0e-5, "trainable": True,
                                                  "low": 0.0, "high": 4.0e-4}},
                       noise={"kind": "white", "sigma": 2.0e-4}, delays=False, dt=200.0)
    components = Components(spec, functools.partial(create_coupling, "diffusive"),
                            functools.partial(BalloonWindkessel, dt=0.2))
    cfg = {"epochs": 3, "sim_seconds": 20.0, "burn_in": 2.0, "chunk": 10.0, "eval_every": 2,
           "eval_seeds": 1, "eval_seconds": 10.0, "val_fraction": 0.25, "progress": False,
           "compile": False, **config}
    return Trainer(cohort, components, Objective(weights={"fc_corr": 1.0}),
                   lambda p: torch.optim.Adam(p, lr=0.05), TrainerConfig(**cfg), out,
                   callbacks=callbacks)


def test_a_fit_calls_its_hooks_in_the_documented_order(tmp_path):
    """Three epochs validated at epoch 2: each epoch's step, its validation, the epoch accepted
    and last.pt; best.pt when the validation is the best yet; then the last epoch's validation,
    the held-out evaluation, the exports and the end. Callbacks given to the trainer replace
    TensorBoard and the figures; attached ones join every trainer of the process."""
    mine, everyone = Recorder(), Recorder()
    with attached(everyone):
        trainer = _trainer(tmp_path / "run", callbacks=[mine])
    assert Hooks([]).callbacks == []  # detached after the block
    trainer.fit()
    epoch = ["on_step_start", "on_step_end", "on_epoch_end", "on_save_start:last.pt",
             "on_checkpoint_saved:last.pt"]
    validated = ["on_step_start", "on_step_end", "on_evaluation_start:validation",
                 "on_evaluation_end:validation", "on_save_start:best.pt",
                 "on_checkpoint_saved:best.pt", "on_epoch_end", "on_save_start:last.pt",
                 "on_checkpoint_saved:last.pt"]
    final = ["on_evaluation_start:validation", "on_evaluation_end:validation",
             *([] if trainer.state.selected["epoch"] == 2 else
               ["on_save_start:best.pt", "on_checkpoint_saved:best.pt"]),
             "on_evaluation_start:held_out", "on_evaluation_end:held_out",
             "on_final_validation", "on_save_start:last.pt", "on_checkpoint_saved:last.pt",
             "on_export_start", "on_export_end", "on_save_start:last.pt",
             "on_checkpoint_saved:last.pt", "on_fit_end"]
    assert mine.calls == ["on_setup_start", "on_setup_end", "on_fit_start", *epoch, *validated,
                          *epoch, *final]
    assert everyone.calls == mine.calls
    assert not (tmp_path / "run" / "tensorboard").exists()
    assert not (tmp_path / "run" / "figures").exists()
    assert (tmp_path / "run" / "metrics.json").is_file()
    with pytest.raises(ValueError, match="no hook 'on_nothing'"):
        trainer.hooks("on_nothing", trainer)


def test_the_state_is_checkpointed_snapshotted_and_restored_from_one_definition(tmp_path):
    """A checkpoint holds the run's description and every value of the state, in the documented
    order; a snapshot holds copies of the recovered values, which restore the state after a step
    (parameters, optimiser moments, epoch, history, running losses) and leave the random state
    going on."""
    trainer = _trainer(tmp_path / "run", callbacks=[], epochs=2, eval_every=0)
    st = trainer.state
    assert set(STATE_KEYS) <= set(CHECKPOINT_KEYS) and set(RECOVERED) <= set(STATE_KEYS)
    snap = st.snapshot()
    assert list(snap) == list(RECOVERED)
    row = trainer.step()
    st.history.append(row)
    moved = {k: v.clone() for k, v in st.model.state_dict().items()}
    rng = st.generator.get_state()
    assert st.epoch == 1 and st.element_loss is not None and st.optimizer.state
    assert any(not torch.equal(moved[k], snap["model_state"][k]) for k in moved)
    st.restore(snap)
    assert st.epoch == 0 and st.history == [] and st.element_loss is None
    assert not st.optimizer.state  # Adam's moments as before the step
    for k, v in st.model.state_dict().items():
        assert torch.equal(v, snap["model_state"][k]), k
    assert torch.equal(st.generator.get_state(), rng)  # a retry draws new noise
    ckpt = trainer.checkpoint()
    assert list(ckpt) == list(CHECKPOINT_KEYS)
    assert ckpt["epoch"] == 0 and ckpt["finished"] is False and ckpt["selected"] is None
    trainer.fit()
    last = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert list(last) == list(CHECKPOINT_KEYS) and last["finished"] and last["epoch"] == 2
    for k, v in st.model.state_dict().items():
        assert torch.equal(last["model_state"][k], v), k
