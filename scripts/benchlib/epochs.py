"""``--epochs``: seconds per training epoch of ``scripts/train.py`` jobs, each run in a fresh
interpreter with a timer attached to the trainer's hooks (:mod:`brainfit.fit.callbacks`), so that
the epoch, the evaluation and the set-up are reported apart from the whole wall time."""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib.launch import launch
from benchlib.measure import median, rss_now_mib, rss_peak_mib
from benchlib.report import _err, emit, md_table, note

#: the simulated Hopf fit (the default job before it became the linearised one), as the tests'
#: SIMULATED: what the engine's speed and memory were measured on
SIMULATED = ("trainer=default", "bold=friston2003", "loss=fc_fcd", "model.noise.sigma=6.3e-4")
EPOCH_JOBS = {
    "default": (),
    "default_hcp": ("data=hcp",),
    "hopf_sim": SIMULATED,
    "jansen_rit": ("model=jansen_rit",),
    "wc_hcp": ("model=wilson_cowan", "data=hcp"),
    "wong_wang_ei": ("model=wong_wang_ei",),
    "dmf": ("experiment=deco2014_dmf",),
}


#: what each timing times: the hooks of the trainer's callbacks (brainfit.fit.callbacks) that open
#: and close it; a step or evaluation that diverges (and is retried) is not counted
PHASES = {"__init__": ("on_setup_start", "on_setup_end"),
          "step": ("on_step_start", "on_step_end"),
          "evaluate": ("on_evaluation_start", "on_evaluation_end"),
          "save": ("on_save_start", "on_checkpoint_saved"),
          "export": ("on_export_start", "on_export_end")}


def time_trainer(timings: dict[str, list[float]], rss_after: list[float]) -> list[str]:
    """Time every trainer this process builds through its hooks: the set-up (``__init__``), each
    ``step``, ``evaluate`` (validation and held-out), ``save`` and ``export``; each one's seconds
    go to ``timings[name]``, the resident size after each step to ``rss_after``. Returns the
    names timed (none when the tree's trainer has no callbacks: then only the wall time is
    measured).
    """
    try:
        from brainfit.fit.callbacks import Callback, attach
    except Exception as err:  # a tree without the trainer's hooks: fall back to the wall time
        note(f"  (the trainer has no hooks to time: {err!r}; only the wall time is measured)")
        return []

    class Timer(Callback):
        def __init__(self) -> None:
            self.started: dict[str, float] = {}

        def _hook(self, name: str, opens: bool) -> None:
            if opens:
                self.started[name] = time.perf_counter()
                return
            t0 = self.started.pop(name, None)
            if t0 is None:
                return
            timings.setdefault(name, []).append(time.perf_counter() - t0)
            if name == "step":
                rss_after.append(rss_now_mib())

    for name, hooks in PHASES.items():
        for opens, hook in zip((True, False), hooks):
            setattr(Timer, hook, lambda self, *a, _n=name, _o=opens: self._hook(_n, _o))
    attach(Timer())
    return list(PHASES)


def run_epoch(spec: dict[str, Any]) -> dict[str, Any]:
    """One ``scripts/train.py`` job in this process, its trainer timed through its hooks."""
    import runpy

    tree = Path(spec["tree"])
    train = tree / "scripts" / "train.py"
    timings: dict[str, list[float]] = {}
    rss_after: list[float] = []
    timed = time_trainer(timings, rss_after)
    sys.argv = [str(train), *spec["overrides"]]
    status, error = 0, None
    t0 = time.perf_counter()
    try:
        runpy.run_path(str(train), run_name="__main__")
    except SystemExit as err:
        status = err.code if isinstance(err.code, int) else (0 if err.code is None else 1)
    except BaseException as err:  # report, do not hide
        status, error = 1, repr(err)
    wall = time.perf_counter() - t0
    log_lines: list[str] = []
    log = Path(spec["run_dir"]) / "train.log"
    if log.exists():
        log_lines = [ln.rstrip() for ln in log.read_text(errors="replace").splitlines()
                     if re.search(r"epoch|took|fitting", ln)][-8:]
    fit_took = None
    for ln in log_lines:
        m = re.search(r"fit took ([0-9.]+) s", ln)
        if m:
            fit_took = float(m.group(1))
    import torch

    out = {"kind": "epoch", "job": spec["job"], "overrides": spec["overrides"],
           "engine": spec.get("engine") or "default", "compile": spec.get("compile", "default"),
           "status": status, "wall_s": wall, "timings": timings, "timed": timed,
           "rss_after_step_mib": rss_after, "peak_rss_mib": rss_peak_mib(),
           "fit_took_s": fit_took, "log": log_lines, "threads": torch.get_num_threads()}
    steps = timings.get("step", [])
    if steps:
        out["epoch_s"] = median(steps[1:] if len(steps) > 1 else steps)
        out["first_epoch_s"] = steps[0]
    if status or error or (timed and not steps):
        out["error"] = error or f"train.py exited with status {status}" + (
            "" if steps else " before finishing an epoch")
    return out


def epoch_variant(engine: str, comp: str) -> str:
    return engine + ("" if comp == "default" else f", compile={comp}")


def _epoch_base(args: argparse.Namespace) -> list[str]:
    """The overrides every job gets: one (or --epoch-count) epoch, dtype, device, threads and a
    short evaluation."""
    base = [f"trainer.epochs={args.epoch_count}", "trainer.progress=false",
            f"dtype={args.dtype}"]
    if args.device != "cpu":
        base.append(f"device={args.device}")
    if args.threads:
        base.append(f"threads={args.threads}")
    if args.epoch_eval_seeds:
        base.append(f"trainer.eval_seeds={args.epoch_eval_seeds}")
    if args.epoch_eval_seconds:
        base.append(f"trainer.eval_seconds={args.epoch_eval_seconds:g}")
    return base


def _run_jobs(args: argparse.Namespace, tree: Path, train: Path, outdir: Path,
              base: list[str]) -> list[dict[str, Any]]:
    """Every job x engine x compile variant x repeat, each in its own run directory."""
    results = []
    k = 0
    for job in args.epoch_jobs:
        for engine in args.epoch_engine:
            for comp in args.epoch_compile:
                for rep in range(args.epoch_repeats):
                    k += 1
                    run_dir = outdir / f"{k:02d}-{job}-{engine}-{comp}-{rep}"
                    overrides = [*EPOCH_JOBS[job], *base, *args.epoch_overrides]
                    if engine != "default":
                        overrides.append(f"trainer.engine={engine}")
                    if comp != "default":
                        overrides.append(f"trainer.compile={comp}")
                    overrides.append(f"hydra.run.dir={run_dir}")
                    spec = {"kind": "epoch", "job": job, "engine": engine, "compile": comp,
                            "overrides": overrides, "run_dir": str(run_dir), "tree": str(tree)}
                    note(f"epoch [{job} {epoch_variant(engine, comp)} #{rep + 1}] python {train} "
                         f"{' '.join(overrides)}")
                    r = launch(spec, args.epoch_timeout, args.max_rss_mib, tree=tree, cwd=tree)
                    r.setdefault("job", job)
                    r.setdefault("engine", engine)
                    r.setdefault("compile", comp)
                    results.append(r)
                    note("    " + (r["error"] if "error" in r else
                                   f"epoch {r.get('epoch_s', float('nan')):.1f} s, wall "
                                   f"{r['wall_s']:.0f} s, peak {r['peak_rss_mib']:.0f} MiB"))
    return results


def _epoch_table(args: argparse.Namespace, results: list[dict[str, Any]]) -> None:
    """One row per job and variant: medians over its runs."""
    header = ["job", "engine", "epoch s", "1st epoch s", "evaluation s", "set-up s",
              "whole run s", "peak RSS MiB", "threads", "runs"]
    rows = []
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["job"], r["engine"], r["compile"]), []).append(r)
    for (job, engine, comp), rs in groups.items():
        ok = [r for r in rs if "error" not in r and "epoch_s" in r]
        head = [f"{job} ({' '.join(EPOCH_JOBS[job]) or 'defaults'})",
                epoch_variant(engine, comp)]
        if not ok:
            rows.append(head + [_err(rs[0], 80)])
            continue
        ev = [sum(r["timings"].get("evaluate", [0.0])) for r in ok]
        setup = [sum(r["timings"].get("__init__", [0.0])) for r in ok]
        rows.append(head + [
            f"{median([r['epoch_s'] for r in ok]):.2f}",
            f"{median([r['first_epoch_s'] for r in ok]):.2f}" if args.epoch_count > 1 else "-",
            f"{median(ev):.1f}", f"{median(setup):.1f}",
            f"{median([r['wall_s'] for r in ok]):.0f}",
            f"{max(r['peak_rss_mib'] for r in ok):.0f}", str(ok[0].get("threads", "-")),
            f"{len(ok)}" + (f" ({len(rs) - len(ok)} failed)" if len(rs) > len(ok) else "")])
    md_table(rows, header, left=2)


def main_epochs(args: argparse.Namespace, tree: Path) -> list[dict[str, Any]]:
    train = tree / "scripts" / "train.py"
    if not train.exists():
        emit(f"no {train}: --epochs needs the tree's scripts/train.py")
        return [{"kind": "epoch", "error": f"no {train}"}]
    outdir = Path(args.epoch_outdir) if args.epoch_outdir else Path(
        tempfile.mkdtemp(prefix="brainfit-bench-epochs-"))
    base = _epoch_base(args)
    results = _run_jobs(args, tree, train, outdir, base)
    emit(f"\n### Seconds per training epoch ({train.relative_to(tree)}, "
         f"{' '.join(base)}{' ' + ' '.join(args.epoch_overrides) if args.epoch_overrides else ''}"
         ")\n")
    _epoch_table(args, results)
    emit("\nepoch = Trainer.step (simulate the batch -> BOLD -> filter -> loss -> backward -> "
         "clip -> optimiser step), timed inside the job through the trainer's hooks; evaluation "
         "= Trainer.evaluate (the validations and the final held-out evaluation, no gradient); "
         "set-up = Trainer.__init__ (data, preprocessing, "
         "building the model); whole run = the interpreter's wall time from train.py's start "
         "(imports, config, set-up, epochs, evaluation, checkpoints, figures); peak RSS = "
         "ru_maxrss of the job. With more than one epoch, 'epoch s' is the median of the "
         "epochs after the first.")
    if not args.epoch_outdir and not args.keep_outputs:
        shutil.rmtree(outdir, ignore_errors=True)
    else:
        emit(f"\nrun directories: {outdir}")
    return results
