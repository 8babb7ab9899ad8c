"""``--scale``: one epoch of the simulated Hopf fit of a synthetic cohort on 1..K processes
(torchrun) and with ``trainer.batch_subjects``: time and peak memory per process."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib.epochs import SIMULATED
from benchlib.launch import BENCH_SCRIPT, RESULT_TAG
from benchlib.report import emit, md_table, note


def scale_cohort(n_subjects: int, folder: Path) -> list[str]:
    """A synthetic cohort of ``n_subjects`` (gw's five SCs and tract lengths in turn, random BOLD
    of 150 volumes at TR 2 s) as .npy files; returns the ``data=arrays`` overrides that load it."""
    import numpy as np

    import brainfit

    gw = brainfit.data.load("gw")
    rng = np.random.default_rng(0)
    files: dict[str, list[str]] = {"weights": [], "lengths": [], "bold": []}
    for k in range(n_subjects):
        s = gw[k % len(gw)]
        arrays = {"weights": np.asarray(s.weights), "lengths": np.asarray(s.lengths),
                  "bold": rng.standard_normal((200, s.weights.shape[0]))}
        for key, a in arrays.items():
            path = folder / f"{key}_{k:04d}.npy"
            np.save(path, a)
            files[key].append(str(path))
    ids = [f"sub{k:04d}" for k in range(n_subjects)]
    return ["data=arrays", "data.tr=2.0", f"data.subject_ids=[{','.join(ids)}]",
            *(f"data.{key}=[{','.join(paths)}]" for key, paths in files.items())]


def main_scale(args: argparse.Namespace, tree: Path) -> list[dict[str, Any]]:
    outdir = Path(tempfile.mkdtemp(prefix="brainfit-bench-scale-"))
    data = scale_cohort(args.scale_subjects, outdir)
    base = [*SIMULATED, "trainer.epochs=2", "trainer.eval_every=0", "trainer.eval_seeds=1",
            "trainer.eval_seconds=70", "trainer.progress=false", f"dtype={args.dtype}",
            f"threads={args.threads or 1}", *args.scale_overrides]
    if args.device != "cpu":
        base.append(f"device={args.device}")
    results = []
    for procs in args.scale_procs:
        for batch in args.scale_batch:
            run_dir = outdir / f"p{procs}-b{batch}"
            overrides = [*data, *base, f"hydra.run.dir={run_dir}"]
            if batch:
                overrides.append(f"trainer.batch_subjects={batch}")
            spec = {"kind": "epoch", "job": f"{procs} process(es), batch_subjects {batch or '-'}",
                    "overrides": overrides, "run_dir": str(run_dir), "tree": str(tree)}
            launcher = ([sys.executable] if procs == 1 else
                        [sys.executable, "-m", "torch.distributed.run", "--standalone",
                         f"--nproc_per_node={procs}"])
            note(f"scale [{procs} process(es), batch_subjects {batch or '-'}]")
            env = {**os.environ, "OMP_NUM_THREADS": str(args.threads or 1),
                   "PYTHONPATH": str(tree)}
            t0 = time.perf_counter()
            proc = subprocess.run([*launcher, BENCH_SCRIPT, "--one",
                                   json.dumps(spec)], capture_output=True, text=True, env=env,
                                  cwd=tree, timeout=args.epoch_timeout)
            wall = time.perf_counter() - t0
            ranks = [json.loads(ln[len(RESULT_TAG):]) for ln in proc.stdout.splitlines()
                     if ln.startswith(RESULT_TAG)]
            if proc.returncode != 0 or not ranks or not all(r.get("epoch_s") for r in ranks):
                tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
                results.append({"procs": procs, "batch": batch, "error": tail[-300:]})
                note("    " + results[-1]["error"])
                continue
            r = {"procs": procs, "batch": batch, "subjects": args.scale_subjects,
                 "epoch_s": max(r["epoch_s"] for r in ranks), "wall_s": wall,
                 "peak_rss_mib": [r["peak_rss_mib"] for r in ranks]}
            results.append(r)
            note(f"    epoch {r['epoch_s']:.1f} s, peak {max(r['peak_rss_mib']):.0f} MiB")
    emit(f"\n### One epoch of a {args.scale_subjects}-subject cohort (80 regions, "
         f"{' '.join(base)})\n")
    rows = [[str(r["procs"]), str(r["batch"] or "all")] +
            ([r["error"][:80]] if "error" in r else
             [f"{r['epoch_s']:.1f}", f"{max(r['peak_rss_mib']):.0f}",
              " / ".join(f"{m:.0f}" for m in r["peak_rss_mib"])])
            for r in results]
    md_table(rows, ["processes", "batch_subjects", "epoch s", "peak RSS MiB (largest process)",
                    "per process"], left=0)
    emit("\nepoch = Trainer.step (the slowest process's median after the first epoch: simulate "
         "-> BOLD -> loss -> backward -> all-reduce -> optimiser step); peak RSS = ru_maxrss of "
         "each process (threads per process as given).")
    shutil.rmtree(outdir, ignore_errors=True)
    return results
