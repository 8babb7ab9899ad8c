#!/usr/bin/env python
"""Speed and memory benchmarks of brainfit's simulation path.

What is measured (each configuration in a fresh subprocess, so that each peak memory is that
configuration's own):

- ``network``: a delay-coupled :class:`~brainfit.network.BrainNetwork` of Stuart-Landau (Hopf)
  nodes with additive white noise, stochastic Heun, diffusive coupling, tract lengths drawn up to
  150 mm at 10 mm/ms and dt = 0.1 ms (so ~150 delay steps in the ring buffer).
- ``bold``: the same network chained to the Balloon-Windkessel head through
  :class:`~brainfit.simulator.BoldSimulator` (network + BOLD, chunked).

Each is timed forward only (under ``torch.no_grad()``) and forward + backward (loss = 1 - FC
similarity to a fixed target FC, gradients to the global coupling G and the regional Hopf
bifurcation parameter ``a``). Throughput is reported as node-steps per second: ``B * N * steps /
s`` (all batch elements) and ``N * steps / s`` (per batch element). Peak memory is the peak
resident set size (``ru_maxrss``) of the subprocess on CPU and ``torch.cuda.max_memory_allocated``
on CUDA; "delta" subtracts the resident size measured right after ``import torch, brainfit``.
Warm-up steps are run first and excluded from the timings.

Two optional modes:

- ``--long``: BOLD of 80 regions at dt = 0.1 ms for ``--long-seconds`` seconds (default 300 s,
  3 million steps) under ``torch.no_grad()`` through ``BoldSimulator`` in chunks; prints progress
  and the resident memory per chunk. The neural trajectory is never stored, so the peak must not
  grow with the length (compare ``--long-seconds 30 300``).
- ``--memory``: forward + backward peak memory of a BOLD run (default 60 s) with full
  backpropagation and with ``checkpoint=True`` (and optionally ``truncate=k``).

Examples::

    python scripts/bench.py                                  # default grid, ~3 min on 2 cores
    python scripts/bench.py --device cuda --batch 1 16 64 256 --json bench.json
    python scripts/bench.py --dtype float64 --bench network --regions 80
    python scripts/bench.py --long --long-seconds 30 300     # flat memory, minutes on CPU
    python scripts/bench.py --memory --memory-seconds 60 --memory-dt 1.0
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULT_TAG = "BENCH_RESULT "
DTYPES = ("float32", "float64")
BENCHES = ("network", "bold")
MODES = ("fwd", "fwdbwd")


# ------------------------------------------------------------------------------------- memory


def rss_now_mib() -> float:
    """Current resident set size of this process in MiB (Linux /proc; else the peak)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return rss_peak_mib()


def rss_peak_mib() -> float:
    """Peak resident set size of this process so far in MiB (``getrusage``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB else


# ------------------------------------------------------------------------------------- builders


def _torch_setup(spec: dict[str, Any]):
    import torch

    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    dtype = {"float32": torch.float32, "float64": torch.float64}[spec["dtype"]]
    # parameters and buffers are created in the default dtype
    torch.set_default_dtype(dtype)
    device = torch.device(spec["device"])
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked but torch.cuda.is_available() is False")
    return torch, dtype, device


def build_network(n_regions: int, batch: int, seed: int, device, max_length: float,
                  speed: float, sigma: float):
    """The benchmark network: Hopf nodes, random SC, delays, white noise, stochastic Heun."""
    import torch

    from brainfit.models import create
    from brainfit.network import BrainNetwork
    from brainfit.noise import WhiteNoise

    g = torch.Generator().manual_seed(seed)
    n = n_regions
    # heavy-tailed symmetric weights without self-connections; symmetric lengths in (0, max]
    W = torch.exp(2.0 * torch.randn(n, n, generator=g, dtype=torch.float64))
    W = torch.triu(W, 1)
    W = W + W.T
    L = torch.rand(n, n, generator=g, dtype=torch.float64) * max_length
    L = torch.triu(L, 1)
    L = L + L.T
    model = create("hopf", n_regions=n,
                   a={"value": -0.05, "trainable": True, "scope": "regional"})
    net = BrainNetwork(model, W, L, speed=speed, G={"value": 0.5, "trainable": True},
                       normalize="row_sum", noise=WhiteNoise(model.state_names, sigma),
                       integrator="stochastic_heun", n_batch=batch)
    return net.to(device)



def build_bold_simulator(spec: dict[str, Any], device):
    """The benchmark network chained to a Balloon-Windkessel head: ``(network, simulator)``."""
    from brainfit.bold import BalloonWindkessel
    from brainfit.simulator import BoldSimulator

    N = spec["regions"]
    net = build_network(N, spec["batch"], spec["seed"], device, spec["max_length"],
                        spec["speed"], spec["sigma"])
    return net, BoldSimulator(net, BalloonWindkessel(dt=spec["bold_dt"], n_regions=N).to(device))


def _target_fc(n_regions: int, seed: int, dtype, device):
    import torch

    from brainfit import metrics

    g = torch.Generator().manual_seed(seed + 1)
    return metrics.fc(torch.randn(64, n_regions, generator=g, dtype=dtype)).to(device)


def _params_with_grad(module) -> list:
    return [p for p in module.parameters() if p.requires_grad]


def _sync(torch, device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------------------------- child runs


def run_speed(spec: dict[str, Any]) -> dict[str, Any]:
    """One (bench, mode, B, N) configuration: warm-up, then a timed run; peak memory."""
    torch, dtype, device = _torch_setup(spec)
    import brainfit.network  # noqa: F401  (counted in the baseline resident size)
    from brainfit import metrics

    rss_base = rss_now_mib()
    B, N, dt = spec["batch"], spec["regions"], spec["dt"]
    target = _target_fc(N, spec["seed"], dtype, device)
    bench, mode = spec["bench"], spec["mode"]
    sim = None
    bold_steps = 1
    if bench == "network":
        net = build_network(N, B, spec["seed"], device, spec["max_length"], spec["speed"],
                            spec["sigma"])
    else:
        net, sim = build_bold_simulator(spec, device)
        bold_steps = round(spec["bold_dt"] * 1000.0 / dt)
        if abs(bold_steps * dt - spec["bold_dt"] * 1000.0) > 1e-9 * bold_steps:
            raise ValueError(f"the BOLD step {spec['bold_dt']} s is not a multiple of dt {dt} ms")
    trainable = _params_with_grad(sim if sim is not None else net)
    gen = torch.Generator().manual_seed(spec["seed"] + 2)

    def simulate(steps: int):
        if sim is None:
            x, _ = net.simulate(steps * dt, dt, record="x", generator=gen, batch=B)
            return x
        # TR = one BOLD step: one volume per BOLD step, no burn-in; chunks of 5 BOLD steps
        return sim(steps // bold_steps, tr=spec["bold_dt"], dt=dt, burn_in=0.0,
                   chunk=5 * spec["bold_dt"], generator=gen, batch=B)

    def once(steps: int) -> float:
        _sync(torch, device)
        t0 = time.perf_counter()
        if mode == "fwd":
            with torch.no_grad():
                y = simulate(steps)
        else:
            for p in trainable:
                p.grad = None
            y = simulate(steps)
            loss = (1.0 - metrics.fc_similarity(metrics.fc(y), target)).mean()
            loss.backward()
        _sync(torch, device)
        elapsed = time.perf_counter() - t0
        if not bool(torch.isfinite(y).all()):
            raise FloatingPointError("the benchmark simulation produced NaN/inf")
        if mode == "fwdbwd":
            missing = [i for i, p in enumerate(trainable)
                       if p.grad is None or not bool(torch.isfinite(p.grad).all())]
            if missing:
                raise FloatingPointError(f"missing or non-finite gradients {missing}")
        return elapsed

    # BOLD runs need whole BOLD steps and at least 4 volumes for an FC
    def legal(steps: int) -> int:
        if sim is None:
            return max(2, steps)
        return max(4, math.ceil(steps / bold_steps)) * bold_steps

    warm = legal(spec["warmup_steps"])
    t_warm = once(warm)
    if spec["steps"]:
        steps = legal(spec["steps"])
    else:
        per_step = t_warm / warm
        steps = round(spec["target_seconds"] / max(per_step, 1e-9))
        steps = legal(min(max(steps, spec["min_steps"]), spec["max_steps"]))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    elapsed = once(steps)
    peak = rss_peak_mib()
    out = {
        "kind": "speed", "bench": bench, "mode": mode, "batch": B, "regions": N, "dt_ms": dt,
        "steps": steps, "warmup_steps": warm, "seconds": elapsed,
        "delay_steps": int(round(net.max_delay() / dt)),
        "steps_per_s": steps / elapsed,
        "node_steps_per_s": B * N * steps / elapsed,
        "node_steps_per_s_per_element": N * steps / elapsed,
        "us_per_step": elapsed / steps * 1e6,
        "rss_base_mib": rss_base, "peak_rss_mib": peak, "peak_delta_mib": peak - rss_base,
    }
    if device.type == "cuda":
        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def run_long(spec: dict[str, Any]) -> dict[str, Any]:
    """A long BOLD run under no_grad, with per-chunk progress and resident memory."""
    torch, dtype, device = _torch_setup(spec)

    rss_base = rss_now_mib()
    B, N, dt = spec["batch"], spec["regions"], spec["dt"]
    net, sim = build_bold_simulator(spec, device)
    seconds, tr = float(spec["seconds"]), float(spec["tr"])
    n_volumes = int(round(seconds / tr))
    total_steps = round(seconds * 1000.0 / dt)
    t0 = time.perf_counter()
    trace: list[dict[str, float]] = []
    simulate = net.simulate

    def observed(*args, **kwargs):
        # watch each chunk BoldSimulator asks of the network (public simulate signature)
        result = simulate(*args, **kwargs)
        state = result[1]
        wall = time.perf_counter() - t0
        sim_s = state.step * dt / 1000.0
        row = {"sim_s": sim_s, "wall_s": wall, "rss_mib": rss_now_mib(),
               "peak_rss_mib": rss_peak_mib()}
        if device.type == "cuda":
            row["cuda_mib"] = torch.cuda.memory_allocated(device) / 2**20
        trace.append(row)
        rate = state.step / wall if wall > 0 else float("nan")
        eta = (total_steps - state.step) / rate if rate > 0 else float("nan")
        print(f"  [long {seconds:g} s] simulated {sim_s:7.1f} s of {seconds:g} s | wall "
              f"{wall:7.1f} s | {1e6 / rate:6.1f} us/step | RSS {row['rss_mib']:7.1f} MiB, peak "
              f"{row['peak_rss_mib']:7.1f} MiB | ETA {eta:6.0f} s", file=sys.stderr, flush=True)
        return result

    net.simulate = observed  # instance attribute: shadows the method for this object only
    gen = torch.Generator().manual_seed(spec["seed"] + 3)
    with torch.no_grad():
        y = sim(n_volumes, tr=tr, dt=dt, burn_in=0.0, chunk=spec["chunk"], generator=gen,
                batch=B)
    _sync(torch, device)
    elapsed = time.perf_counter() - t0
    if y.shape != (B, n_volumes, N) or not bool(torch.isfinite(y).all()):
        raise FloatingPointError(f"unexpected BOLD output: shape {tuple(y.shape)}, finite "
                                 f"{bool(torch.isfinite(y).all())}")
    itemsize = torch.finfo(dtype).bits // 8
    out = {
        "kind": "long", "batch": B, "regions": N, "dt_ms": dt, "seconds_simulated": seconds,
        "tr_s": tr, "chunk_s": spec["chunk"], "steps": total_steps, "n_volumes": n_volumes,
        "wall_s": elapsed, "us_per_step": elapsed / total_steps * 1e6,
        "node_steps_per_s": B * N * total_steps / elapsed,
        "rss_base_mib": rss_base, "peak_rss_mib": rss_peak_mib(),
        "rss_after_first_chunk_mib": trace[0]["rss_mib"] if trace else float("nan"),
        "rss_end_mib": rss_now_mib(),
        "stored_trajectory_would_be_mib": B * total_steps * 2 * N * itemsize / 2**20,
        "bold_std": float(y.std()),
        "trace": trace,
    }
    out["peak_delta_mib"] = out["peak_rss_mib"] - rss_base
    return out


def run_memory(spec: dict[str, Any]) -> dict[str, Any]:
    """Forward + backward through a BOLD run, full backprop or checkpointed / truncated."""
    torch, dtype, device = _torch_setup(spec)
    from brainfit import metrics

    rss_base = rss_now_mib()
    B, N, dt = spec["batch"], spec["regions"], spec["dt"]
    net, sim = build_bold_simulator(spec, device)
    target = _target_fc(N, spec["seed"], dtype, device)
    seconds, tr = float(spec["seconds"]), float(spec["tr"])
    n_volumes = int(round(seconds / tr))
    gen = torch.Generator().manual_seed(spec["seed"] + 4)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _sync(torch, device)
    t0 = time.perf_counter()
    y = sim(n_volumes, tr=tr, dt=dt, burn_in=spec["burn_in"], chunk=spec["chunk"], generator=gen,
            batch=B, checkpoint=spec["variant"] == "checkpoint",
            truncate=spec["truncate"] if spec["variant"] == "truncate" else None)
    loss = (1.0 - metrics.fc_similarity(metrics.fc(y), target)).mean()
    _sync(torch, device)
    t_fwd = time.perf_counter() - t0
    rss_after_fwd = rss_now_mib()
    loss.backward()
    _sync(torch, device)
    elapsed = time.perf_counter() - t0
    grads = {name: float(p.grad.norm()) for name, p in sim.named_parameters()
             if p.grad is not None}
    steps = round((seconds + spec["burn_in"]) * 1000.0 / dt)
    out = {
        "kind": "memory", "variant": spec["variant"], "truncate": spec["truncate"],
        "batch": B, "regions": N, "dt_ms": dt, "seconds_simulated": seconds,
        "burn_in_s": spec["burn_in"], "chunk_s": spec["chunk"], "tr_s": tr, "steps": steps,
        "forward_s": t_fwd, "wall_s": elapsed, "loss": float(loss.detach()),
        "grad_norms": grads, "rss_base_mib": rss_base, "rss_after_forward_mib": rss_after_fwd,
        "peak_rss_mib": rss_peak_mib(),
    }
    out["peak_delta_mib"] = out["peak_rss_mib"] - rss_base
    if device.type == "cuda":
        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def child_main(spec_json: str) -> int:
    spec = json.loads(spec_json)
    runner = {"speed": run_speed, "long": run_long, "memory": run_memory}[spec["kind"]]
    result = runner(spec)
    import torch

    result.update(threads=torch.get_num_threads(), device=spec["device"], dtype=spec["dtype"])
    print(RESULT_TAG + json.dumps(result), flush=True)
    return 0


# ------------------------------------------------------------------------------------- parent


def launch(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run one configuration in a fresh interpreter; its stderr (progress) passes through."""
    cmd = [sys.executable, os.path.abspath(__file__), "--one", json.dumps(spec)]
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {**spec, "error": f"timed out after {timeout:g} s"}
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    tail = proc.stdout.strip().splitlines()[-3:]
    return {**spec, "error": f"exit status {proc.returncode}; " + " | ".join(tail)}


def machine_info(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    info = {
        "python": platform.python_version(), "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "device": args.device, "dtype": args.dtype,
    }
    if args.device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(args.device))
    return info


def _fmt(v: Any, spec: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec)


def print_table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    line = "  ".join(h.rjust(w) for h, w in zip(header, widths))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))
    sys.stdout.flush()


def speed_rows(results: list[dict[str, Any]], cuda: bool) -> tuple[list[list[str]], list[str]]:
    header = ["bench", "mode", "B", "N", "steps", "time s", "us/step", "node-steps/s",
              "per-element/s", "peak RSS MiB", "delta MiB"]
    if cuda:
        header.append("CUDA peak MiB")
    rows = []
    for r in results:
        if "error" in r:
            rows.append([r["bench"], r["mode"], str(r["batch"]), str(r["regions"]),
                         "ERROR: " + r["error"][:60]] + [""] * (len(header) - 5))
            continue
        row = [r["bench"], r["mode"], str(r["batch"]), str(r["regions"]), str(r["steps"]),
               _fmt(r["seconds"], ".2f"), _fmt(r["us_per_step"], ".0f"),
               _fmt(r["node_steps_per_s"], ".3g"), _fmt(r["node_steps_per_s_per_element"], ".3g"),
               _fmt(r["peak_rss_mib"], ".0f"), _fmt(r["peak_delta_mib"], ".0f")]
        if cuda:
            row.append(_fmt(r.get("cuda_peak_mib"), ".1f"))
        rows.append(row)
    return rows, header


def common_spec(args: argparse.Namespace) -> dict[str, Any]:
    return {"device": args.device, "dtype": args.dtype, "threads": args.threads,
            "seed": args.seed, "dt": args.dt, "bold_dt": args.bold_dt,
            "max_length": args.max_length, "speed": args.speed, "sigma": args.sigma}


def main_speed(args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    specs = []
    for bench in args.bench:
        regions = args.bold_regions if bench == "bold" else args.regions
        batches = args.bold_batch if bench == "bold" else args.batch
        for mode in args.modes:
            for n in regions:
                for b in batches:
                    specs.append({**common_spec(args), "kind": "speed", "bench": bench,
                                  "mode": mode, "batch": b, "regions": n,
                                  "warmup_steps": args.warmup_steps, "steps": args.steps,
                                  "min_steps": args.min_steps, "max_steps": args.max_steps,
                                  "target_seconds": args.target_seconds})
    t0 = time.perf_counter()
    for i, spec in enumerate(specs, 1):
        print(f"[{i}/{len(specs)}] {spec['bench']} {spec['mode']} B={spec['batch']} "
              f"N={spec['regions']} ...", file=sys.stderr, flush=True)
        results.append(launch(spec, args.timeout))
    print(f"\nspeed: {len(specs)} configurations in {time.perf_counter() - t0:.0f} s "
          f"(each in its own subprocess; warm-up excluded)\n")
    rows, header = speed_rows(results, args.device.startswith("cuda"))
    print_table(rows, header)
    print("\nnode-steps/s = B*N*steps/s (whole batch); per-element/s = N*steps/s (one batch "
          "element).\npeak RSS = ru_maxrss of the configuration's subprocess; delta = peak minus "
          "the resident size after `import torch, brainfit`.")
    return results


def main_long(args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    for seconds in args.long_seconds:
        spec = {**common_spec(args), "kind": "long", "batch": args.long_batch,
                "regions": args.long_regions, "seconds": seconds, "tr": args.long_tr,
                "chunk": args.chunk}
        print(f"long run: {seconds:g} s of BOLD, N={args.long_regions}, B={args.long_batch}, "
              f"dt={args.dt} ms ({round(seconds * 1000 / args.dt)} steps), no_grad, chunks of "
              f"{args.chunk:g} s", file=sys.stderr, flush=True)
        results.append(launch(spec, args.long_timeout))
    header = ["seconds", "steps", "wall s", "us/step", "node-steps/s", "RSS base",
              "RSS 1st chunk", "RSS end", "peak RSS", "peak delta", "stored traj. would be"]
    rows = []
    for r in results:
        if "error" in r:
            rows.append([f"{r['seconds']:g}", "ERROR: " + r["error"][:80]] + [""] * 9)
            continue
        rows.append([f"{r['seconds_simulated']:g}", str(r["steps"]), _fmt(r["wall_s"], ".0f"),
                     _fmt(r["us_per_step"], ".0f"), _fmt(r["node_steps_per_s"], ".3g"),
                     _fmt(r["rss_base_mib"], ".0f"), _fmt(r["rss_after_first_chunk_mib"], ".0f"),
                     _fmt(r["rss_end_mib"], ".0f"), _fmt(r["peak_rss_mib"], ".0f"),
                     _fmt(r["peak_delta_mib"], ".0f"),
                     _fmt(r["stored_trajectory_would_be_mib"], ".0f")])
    print("\nlong run (torch.no_grad, BoldSimulator in chunks); memory in MiB\n")
    print_table(rows, header)
    ok = [r for r in results if "error" not in r]
    if len(ok) > 1:
        lo, hi = ok[0]["peak_rss_mib"], ok[-1]["peak_rss_mib"]
        print(f"\npeak RSS {ok[0]['seconds_simulated']:g} s -> {ok[-1]['seconds_simulated']:g} s:"
              f" {lo:.0f} -> {hi:.0f} MiB ({100 * (hi - lo) / lo:+.1f} %)")
    return results


def main_memory(args: argparse.Namespace) -> list[dict[str, Any]]:
    variants = ["full", "checkpoint"] + (["truncate"] if args.memory_truncate else [])
    results = []
    for variant in variants:
        spec = {**common_spec(args), "kind": "memory", "variant": variant,
                "truncate": args.memory_truncate, "batch": args.memory_batch,
                "regions": args.memory_regions, "seconds": args.memory_seconds,
                "burn_in": args.memory_burn_in, "tr": args.memory_tr,
                "chunk": args.memory_chunk, "dt": args.memory_dt}
        print(f"memory: forward+backward, {variant}, {args.memory_seconds:g} s of BOLD, "
              f"N={args.memory_regions}, B={args.memory_batch}, dt={args.memory_dt} ms",
              file=sys.stderr, flush=True)
        results.append(launch(spec, args.long_timeout))
    cuda = args.device.startswith("cuda")
    header = ["variant", "steps", "chunk s", "fwd s", "fwd+bwd s", "loss", "RSS base",
              "RSS after fwd", "peak RSS", "peak delta"] + (["CUDA peak"] if cuda else [])
    rows = []
    for r in results:
        if "error" in r:
            rows.append([r["variant"], "ERROR: " + r["error"][:80]] + [""] * (len(header) - 2))
            continue
        name = r["variant"] + (f" (k={r['truncate']})" if r["variant"] == "truncate" else "")
        row = [name, str(r["steps"]), f"{r['chunk_s']:g}", _fmt(r["forward_s"], ".1f"),
               _fmt(r["wall_s"], ".1f"), _fmt(r["loss"], ".6f"), _fmt(r["rss_base_mib"], ".0f"),
               _fmt(r["rss_after_forward_mib"], ".0f"), _fmt(r["peak_rss_mib"], ".0f"),
               _fmt(r["peak_delta_mib"], ".0f")]
        if cuda:
            row.append(_fmt(r.get("cuda_peak_mib"), ".1f"))
        rows.append(row)
    print("\nforward + backward memory of a BOLD run (loss = 1 - FC similarity); memory in MiB\n")
    print_table(rows, header)
    by = {r["variant"]: r for r in results if "error" not in r}
    if "full" in by and "checkpoint" in by:
        key = "cuda_peak_mib" if cuda else "peak_delta_mib"
        f, c = by["full"][key], by["checkpoint"][key]
        print(f"\ncheckpointing: peak {'CUDA' if cuda else 'delta RSS'} {f:.0f} -> {c:.0f} MiB "
              f"(x{f / max(c, 1e-9):.1f} less)")
        gf, gc = by["full"]["grad_norms"], by["checkpoint"]["grad_norms"]
        rel = max(abs(gf[k] - gc[k]) / max(abs(gf[k]), 1e-30) for k in gf) if gf else float("nan")
        print(f"gradient norms, full vs checkpoint: max relative difference {rel:.2e}")
    return results


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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="See the module docstring (and docs/benchmarks.md) for what is measured.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("general")
    g.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, ...")
    g.add_argument("--dtype", default="float32", choices=DTYPES, help="floating-point type")
    g.add_argument("--threads", type=positive_int, default=None,
                   help="torch.set_num_threads in every run (default: torch's own default)")
    g.add_argument("--seed", type=int, default=0, help="seed of connectome, state and noise")
    g.add_argument("--json", metavar="PATH", help="also write all results as JSON to PATH")
    g.add_argument("--timeout", type=positive_float, default=600.0,
                   help="seconds before a speed configuration is abandoned")
    s = p.add_argument_group("speed grid (the default mode)")
    s.add_argument("--bench", nargs="+", choices=BENCHES, default=list(BENCHES),
                   help="network: BrainNetwork.simulate; bold: BoldSimulator (network + BOLD)")
    s.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES),
                   help="fwd: forward under torch.no_grad; fwdbwd: forward + FC loss + backward")
    s.add_argument("--batch", nargs="+", type=positive_int, default=[1, 4, 16, 64],
                   help="batch sizes B")
    s.add_argument("--regions", nargs="+", type=positive_int, default=[20, 80, 200],
                   help="region counts N")
    s.add_argument("--bold-batch", nargs="+", type=positive_int, default=[1, 16],
                   help="batch sizes B of the bold bench")
    s.add_argument("--bold-regions", nargs="+", type=positive_int, default=[80],
                   help="region counts N of the bold bench")
    s.add_argument("--steps", type=positive_int, default=None,
                   help="timed steps per configuration (default: chosen from the warm-up so "
                        "that a run takes about --target-seconds, within --min/--max-steps)")
    s.add_argument("--target-seconds", type=positive_float, default=0.6,
                   help="aimed duration of a timed run when --steps is not given")
    s.add_argument("--min-steps", type=positive_int, default=200, help="fewest timed steps")
    s.add_argument("--max-steps", type=positive_int, default=1000, help="most timed steps")
    s.add_argument("--warmup-steps", type=positive_int, default=20,
                   help="untimed steps first (rounded up to 4 BOLD steps for the bold bench)")
    m = p.add_argument_group("model")
    m.add_argument("--dt", type=positive_float, default=0.1, help="neural step, ms")
    m.add_argument("--bold-dt", type=positive_float, default=0.01,
                   help="Balloon-Windkessel step, s (a multiple of dt)")
    m.add_argument("--max-length", type=positive_float, default=150.0,
                   help="tract lengths are uniform in (0, this], mm")
    m.add_argument("--speed", type=positive_float, default=10.0, help="conduction speed, mm/ms")
    m.add_argument("--sigma", type=float, default=0.05, help="white-noise amplitude, 1/sqrt(ms)")
    m.add_argument("--chunk", type=positive_float, default=10.0,
                   help="seconds of neural simulation per BoldSimulator chunk (--long)")
    lg = p.add_argument_group("long run (--long)")
    lg.add_argument("--long", action="store_true",
                    help="run the long no_grad BOLD simulation instead of the speed grid")
    lg.add_argument("--long-seconds", nargs="+", type=positive_float, default=[300.0],
                    help="simulated seconds; several values run one after the other, each in "
                         "its own process (e.g. 30 300 to compare peak memory)")
    lg.add_argument("--long-regions", type=positive_int, default=80, help="N of the long run")
    lg.add_argument("--long-batch", type=positive_int, default=1, help="B of the long run")
    lg.add_argument("--long-tr", type=positive_float, default=1.0, help="TR of the long run, s")
    lg.add_argument("--long-timeout", type=positive_float, default=7200.0,
                    help="seconds before a --long or --memory run is abandoned")
    me = p.add_argument_group("forward+backward memory (--memory)")
    me.add_argument("--memory", action="store_true",
                    help="measure forward+backward memory with and without checkpoint=True")
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
    p.add_argument("--one", metavar="SPEC", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.long and args.memory:
        p.error("--long and --memory are separate runs: give one of them")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.one is not None:
        return child_main(args.one)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is available (torch "
              f"{torch.__version__}); use --device cpu", file=sys.stderr)
        return 2
    info = machine_info(args)
    print(f"brainfit benchmark | torch {info['torch']} | {info['device']} "
          f"{info.get('gpu', info['processor'])} | {info['cpu_count']} CPUs | threads "
          f"{info['threads']} | {info['dtype']} | dt {args.memory_dt if args.memory else args.dt}"
          f" ms | python {info['python']}")
    if args.long:
        results = main_long(args)
    elif args.memory:
        results = main_memory(args)
    else:
        results = main_speed(args)
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"machine": info, "argv": sys.argv[1:], "results": results},
                                   indent=1))
        print(f"\nresults written to {path}")
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
