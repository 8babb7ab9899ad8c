"""The command line of ``bench.py``: every option, in groups by mode."""

from __future__ import annotations

import argparse

from benchlib.epochs import EPOCH_JOBS
from benchlib.measure import total_memory_mib
from benchlib.vs_neurolib import NL_MODELS

DTYPES = ("float32", "float64")
BENCHES = ("network", "jansen_rit", "hopf_fit", "bold")
DEFAULT_BENCHES = ("network", "jansen_rit", "hopf_fit")
MODES = ("fwd", "fwdbwd")
ENGINES = ("default", "reference", "fast")
COMPILE = ("off", "on")
EPOCH_COMPILE = ("default", "false", "true", "auto")


def positive_float(text: str) -> float:
    v = float(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return v


def positive_int(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return v


def _mode_options(p: argparse.ArgumentParser) -> None:
    """The modes, one per run (default: the speed grid)."""
    mode = p.add_argument_group("mode (default: the speed grid)")
    ex = mode.add_mutually_exclusive_group()
    ex.add_argument("--vs-neurolib", action="store_true",
                    help="(a) brainfit next to neurolib (Hopf, Wilson-Cowan) on the gw "
                         "connectome at B = 1 and 64")
    ex.add_argument("--epochs", action="store_true",
                    help="(c) seconds per training epoch of scripts/train.py jobs")
    ex.add_argument("--phases", action="store_true",
                    help="(d) profiler breakdown of one configuration over the engine's labels")
    ex.add_argument("--long", action="store_true",
                    help="a long no_grad BOLD simulation: memory must stay flat")
    ex.add_argument("--memory", action="store_true",
                    help="forward+backward memory with and without checkpoint=True")
    ex.add_argument("--kernels", action="store_true",
                    help="the lagged-sum operators alone: native (numba / Triton) vs reference")
    ex.add_argument("--scale", action="store_true",
                    help="one epoch of the simulated Hopf fit of a synthetic --scale-subjects "
                         "cohort on 1..K processes (torchrun) and with trainer.batch_subjects: "
                         "time and peak memory")


def _scale_options(p: argparse.ArgumentParser) -> None:
    """``--scale``: the cohort, the process counts and subject batches."""
    sc = p.add_argument_group("--scale")
    sc.add_argument("--scale-subjects", type=positive_int, default=100,
                    help="subjects of the synthetic cohort (80 regions, gw's SCs)")
    sc.add_argument("--scale-procs", type=positive_int, nargs="+", default=[1, 2],
                    help="process counts (more than 1: torchrun, gloo on CPU, nccl on CUDA)")
    sc.add_argument("--scale-batch", type=int, nargs="+", default=[0],
                    help="trainer.batch_subjects values (0: the whole share at once)")
    sc.add_argument("--scale-overrides", nargs="+", default=[], metavar="KEY=VALUE",
                    help="extra Hydra overrides for every run")


def _general_options(p: argparse.ArgumentParser) -> None:
    """The tree, device, dtype, threads, variants, repeats, outputs and limits."""
    g = p.add_argument_group("general")
    g.add_argument("--tree", default=None,
                   help="brainfit source tree to measure (default: PYTHONPATH's brainfit, else "
                        "this script's repository)")
    g.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, ...")
    g.add_argument("--dtype", default="float32", choices=DTYPES, help="floating-point type")
    g.add_argument("--threads", type=positive_int, default=None,
                   help="torch.set_num_threads in every run (default: torch's own default; "
                        "train.py jobs: the config's threads: 1)")
    g.add_argument("--engine", nargs="+", choices=ENGINES, default=["default"],
                   help="BrainNetwork(engine=...) variants to run side by side (default: the "
                        "tree's default engine, no engine= argument)")
    g.add_argument("--compile", nargs="+", choices=COMPILE, default=["off"],
                   help="BrainNetwork(compile=...) variants (compilation excluded from timings)")
    g.add_argument("--repeats", type=positive_int, default=3,
                   help="timed runs per configuration (the median is reported)")
    g.add_argument("--seed", type=int, default=0, help="seed of connectome, state and noise")
    g.add_argument("--json", metavar="PATH", help="also write all results as JSON to PATH")
    g.add_argument("--markdown", metavar="PATH", help="also write the printed report to PATH")
    g.add_argument("--timeout", type=positive_float, default=600.0,
                   help="seconds before a configuration is abandoned")
    mem_total = total_memory_mib()
    g.add_argument("--max-rss-gb", type=positive_float,
                   default=round(0.5 * mem_total / 1024, 1) if mem_total else None,
                   help="kill a configuration whose resident size passes this (GiB; default: "
                        "half the machine's memory); fwdbwd grid runs also pick their steps to "
                        "stay within half of it")


def _grid_options(p: argparse.ArgumentParser) -> None:
    """The speed grid: benches, modes, batch sizes, region counts, steps."""
    s = p.add_argument_group("(b) speed grid (the default mode)")
    s.add_argument("--bench", nargs="+", choices=BENCHES, default=list(DEFAULT_BENCHES),
                   help="network: Hopf/diffusive with delays; jansen_rit: conf/model/"
                        "jansen_rit.yaml; hopf_fit: the default fit's model + BOLD; bold: "
                        "network + Balloon-Windkessel")
    s.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES),
                   help="fwd: forward under torch.no_grad; fwdbwd: forward + FC loss + backward")
    s.add_argument("--batch", nargs="+", type=positive_int, default=[1, 16, 64, 256],
                   help="batch sizes B")
    s.add_argument("--regions", nargs="+", type=positive_int, default=[80, 400, 1000],
                   help="region counts N")
    s.add_argument("--bold-batch", nargs="+", type=positive_int, default=[1, 16],
                   help="batch sizes B of the bold bench")
    s.add_argument("--bold-regions", nargs="+", type=positive_int, default=[80],
                   help="region counts N of the bold bench")
    s.add_argument("--sc", choices=("shared", "per-element"), default="shared",
                   help="one (N, N) connectome for the batch, or (B, N, N) copies as the "
                        "trainer passes per-subject connectomes")
    s.add_argument("--steps", type=positive_int, default=None,
                   help="timed steps per configuration (default: chosen from a probe so that a "
                        "run takes about --target-seconds)")
    s.add_argument("--target-seconds", type=positive_float, default=0.6,
                   help="aimed duration of a timed run when --steps is not given")
    s.add_argument("--min-steps", type=positive_int, default=200, help="fewest timed steps")
    s.add_argument("--max-steps", type=positive_int, default=1000, help="most timed steps")
    s.add_argument("--max-run-seconds", type=positive_float, default=5.0,
                   help="fewer steps than --min-steps where a run would take longer")
    s.add_argument("--warmup-steps", type=positive_int, default=20,
                   help="steps of the probe runs (rounded up to 4 BOLD steps for BOLD benches)")
    s.add_argument("--baseline", metavar="JSON",
                   help="an earlier --json of the grid: print the speed-up against it")


def _model_options(p: argparse.ArgumentParser) -> None:
    """The model of the ``network`` and ``bold`` benches."""
    m = p.add_argument_group("model of the network / bold benches")
    m.add_argument("--dt", type=positive_float, default=None,
                   help="neural step, ms (default: 0.1; jansen_rit and hopf_fit: their config's)")
    m.add_argument("--bold-dt", type=positive_float, default=0.01,
                   help="Balloon-Windkessel step of the bold bench, s (a multiple of dt)")
    m.add_argument("--max-length", type=positive_float, default=150.0,
                   help="tract lengths are uniform in (0, this], mm")
    m.add_argument("--speed", type=positive_float, default=10.0,
                   help="conduction speed of the network bench, mm/ms")
    m.add_argument("--sigma", type=float, default=0.05, help="white-noise amplitude, 1/sqrt(ms)")
    m.add_argument("--chunk", type=positive_float, default=10.0,
                   help="seconds of neural simulation per BoldSimulator chunk (--long, "
                        "--vs-neurolib)")


def _neurolib_options(p: argparse.ArgumentParser) -> None:
    """``--vs-neurolib``."""
    a = p.add_argument_group("(a) --vs-neurolib")
    a.add_argument("--neurolib-python", default=None,
                   help="interpreter with neurolib installed (default: this one); the neurolib "
                        "side never imports brainfit or torch")
    a.add_argument("--nl-models", nargs="+", choices=NL_MODELS, default=list(NL_MODELS),
                   help="hopf: neurolib HopfModel; wc: neurolib WCModel")
    a.add_argument("--nl-batch", nargs="+", type=positive_int, default=[1, 64],
                   help="brainfit batch sizes (neurolib: B x one run)")
    a.add_argument("--nl-seconds", type=positive_float, default=10.0,
                   help="seconds simulated per neurolib run (>= 2 for a BOLD sample)")
    a.add_argument("--nl-bf-seconds", type=positive_float, default=2.0,
                   help="seconds simulated per brainfit run (results are per simulated ms)")
    a.add_argument("--nl-tr", type=positive_float, default=2.0, help="BOLD sampling, s")
    a.add_argument("--nl-speed", type=positive_float, default=20.0,
                   help="conduction speed, mm/ms (neurolib's signalV)")
    a.add_argument("--nl-sigma", type=float, default=0.01,
                   help="OU noise amplitude (neurolib sigma_ou; brainfit OU sigma)")
    a.add_argument("--nl-G", type=float, default=0.6, help="global coupling (neurolib K_gl)")
    a.add_argument("--nl-bold-dt", type=positive_float, default=0.01,
                   help="brainfit's BOLD step, s (neurolib integrates BOLD at the neural dt; "
                        "0.0001 makes brainfit do the same)")
    a.add_argument("--nl-integrator", default="euler_maruyama",
                   help="brainfit's scheme (neurolib uses Euler)")


def _epoch_options(p: argparse.ArgumentParser) -> None:
    """``--epochs``: the jobs, their variants and overrides."""
    c = p.add_argument_group("(c) --epochs")
    c.add_argument("--epoch-jobs", nargs="+", choices=list(EPOCH_JOBS), default=list(EPOCH_JOBS),
                   help="default: the default fit; jansen_rit: model=jansen_rit; wong_wang_ei: "
                        "model=wong_wang_ei; wc_hcp: "
                        "model=wilson_cowan data=hcp; dmf: experiment=deco2014_dmf")
    c.add_argument("--epoch-engine", nargs="+", choices=ENGINES, default=["default"],
                   help="trainer.engine=... variants (default: no override)")
    c.add_argument("--epoch-compile", nargs="+", choices=EPOCH_COMPILE, default=["default"],
                   help="trainer.compile=... variants (default: no override, the job's own; "
                        "where a run compiles, use --epoch-count 2 or more: the first epoch "
                        "includes the compilation)")
    c.add_argument("--epoch-overrides", nargs="+", default=[], metavar="KEY=VALUE",
                   help="extra Hydra overrides for every job, e.g. trainer.sim_seconds=90")
    c.add_argument("--epoch-count", type=positive_int, default=1,
                   help="trainer.epochs of each run (more: the first epoch is reported apart)")
    c.add_argument("--epoch-repeats", type=positive_int, default=1,
                   help="runs per job (each takes minutes on a CPU)")
    c.add_argument("--epoch-eval-seeds", type=int, default=1,
                   help="trainer.eval_seeds (0: the job's own)")
    c.add_argument("--epoch-eval-seconds", type=float, default=30.0,
                   help="trainer.eval_seconds (0: the job's own, the held-out length)")
    c.add_argument("--epoch-timeout", type=positive_float, default=3600.0,
                   help="seconds before a job is abandoned")
    c.add_argument("--epoch-outdir", default=None,
                   help="where the run directories go (default: a temporary folder, removed)")
    c.add_argument("--keep-outputs", action="store_true", help="keep the run directories")


def _phase_options(p: argparse.ArgumentParser) -> None:
    """``--phases``: the configuration profiled."""
    d = p.add_argument_group("(d) --phases")
    d.add_argument("--phase-bench", choices=BENCHES, default="bold", help="the bench profiled")
    d.add_argument("--phase-mode", choices=MODES, default="fwdbwd", help="fwd or fwdbwd")
    d.add_argument("--phase-batch", type=positive_int, default=16, help="B")
    d.add_argument("--phase-regions", type=positive_int, default=80, help="N")
    d.add_argument("--phase-steps", type=positive_int, default=1000,
                   help="steps profiled (whole BOLD steps for BOLD benches)")


def _kernel_options(p: argparse.ArgumentParser) -> None:
    """``--kernels``: the operators' shapes."""
    kn = p.add_argument_group("--kernels")
    kn.add_argument("--kernel-batch", nargs="+", type=positive_int, default=[1, 16, 64],
                    help="B")
    kn.add_argument("--kernel-regions", type=positive_int, default=80, help="N")
    kn.add_argument("--kernel-block", type=positive_int, default=16, help="k, steps per call")
    kn.add_argument("--kernel-max-lag", type=positive_int, default=120, help="longest lag")
    kn.add_argument("--kernel-blocks", type=positive_int, default=100, help="calls per pass")
    kn.add_argument("--kernel-sc", nargs="+", choices=("shared", "per-element"),
                    default=["shared", "per-element"], help="lag and weight tables")


def _long_options(p: argparse.ArgumentParser) -> None:
    """``--long``."""
    lg = p.add_argument_group("--long")
    lg.add_argument("--long-seconds", nargs="+", type=positive_float, default=[300.0],
                    help="simulated seconds; several values run one after the other, each in "
                         "its own process (e.g. 30 300 to compare peak memory)")
    lg.add_argument("--long-regions", type=positive_int, default=80, help="N of the long run")
    lg.add_argument("--long-batch", type=positive_int, default=1, help="B of the long run")
    lg.add_argument("--long-tr", type=positive_float, default=1.0, help="TR of the long run, s")
    lg.add_argument("--long-timeout", type=positive_float, default=7200.0,
                    help="seconds before a --long or --memory run is abandoned")


def _memory_options(p: argparse.ArgumentParser) -> None:
    """``--memory``."""
    me = p.add_argument_group("--memory")
    me.add_argument("--memory-seconds", type=positive_float, default=60.0,
                    help="seconds of BOLD (after the burn-in) with gradients")
    me.add_argument("--memory-dt", type=positive_float, default=1.0,
                    help="neural step for --memory, ms (0.1 ms x 60 s without checkpointing "
                         "needs tens of GiB on CPU)")
    me.add_argument("--memory-chunk", type=positive_float, default=2.0,
                    help="seconds per chunk (the checkpointing unit)")
    me.add_argument("--memory-regions", type=positive_int, default=80, help="N for --memory")
    me.add_argument("--memory-batch", type=positive_int, default=1, help="B for --memory")
    me.add_argument("--memory-tr", type=positive_float, default=1.0, help="TR for --memory, s")
    me.add_argument("--memory-burn-in", type=float, default=0.0,
                    help="seconds of burn-in (no gradient) before the measured BOLD")
    me.add_argument("--memory-truncate", type=positive_int, default=None,
                    help="also run truncate=K (truncated backprop every K chunks)")


def parse_args(argv: list[str] | None = None,
               description: str = "") -> argparse.Namespace:
    """The command line of ``bench.py`` (``description``: the first paragraph of its
    docstring)."""
    p = argparse.ArgumentParser(
        description=description,
        epilog="See the module docstring (and docs/benchmarks.md) for what is measured.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _mode_options(p)
    _scale_options(p)
    _general_options(p)
    _grid_options(p)
    _model_options(p)
    _neurolib_options(p)
    _epoch_options(p)
    _phase_options(p)
    _kernel_options(p)
    _long_options(p)
    _memory_options(p)
    p.add_argument("--one", metavar="SPEC", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.max_rss_mib = args.max_rss_gb * 1024 if args.max_rss_gb else None
    return args
