"""``--long`` (a long no_grad BOLD run: the resident memory must not grow with its length) and
``--memory`` (forward + backward peak memory of a BOLD run, full backpropagation against
``checkpoint=True`` and ``truncate=k``)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from benchlib.builders import _sync, _target_fc, _torch_setup, build_bench, engine_in_use
from benchlib.launch import common_spec, launch
from benchlib.measure import rss_now_mib, rss_peak_mib
from benchlib.report import _err, _fmt, emit, md_table, note


def run_long(spec: dict[str, Any]) -> dict[str, Any]:
    """A long BOLD run under no_grad, with per-chunk progress and resident memory."""
    torch, dtype, device = _torch_setup(spec)

    rss_base = rss_now_mib()
    B, N, dt = spec["batch"], spec["regions"], spec["dt"]
    b = build_bench({**spec, "bench": "bold"}, device)
    net, sim = b.net, b.sim
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
        note(f"  [long {seconds:g} s] simulated {sim_s:7.1f} s of {seconds:g} s | wall "
             f"{wall:7.1f} s | {1e6 / rate:6.1f} us/step | RSS {row['rss_mib']:7.1f} MiB, peak "
             f"{row['peak_rss_mib']:7.1f} MiB | ETA {eta:6.0f} s")
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
        "engine": spec.get("engine") or "default", "engine_in_use": engine_in_use(net),
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


def main_long(args: argparse.Namespace, tree: Path) -> list[dict[str, Any]]:
    results = []
    dt = args.dt or 0.1
    for seconds in args.long_seconds:
        spec = {**common_spec(args, tree), "kind": "long", "batch": args.long_batch,
                "regions": args.long_regions, "seconds": seconds, "tr": args.long_tr,
                "chunk": args.chunk, "dt": dt, "engine": args.engine[0],
                "compile": args.compile[0] == "on"}
        note(f"long run: {seconds:g} s of BOLD, N={args.long_regions}, B={args.long_batch}, "
             f"dt={dt} ms ({round(seconds * 1000 / dt)} steps), no_grad, chunks of "
             f"{args.chunk:g} s")
        results.append(launch(spec, args.long_timeout, args.max_rss_mib, tree=tree))
    header = ["seconds", "steps", "wall s", "us/step", "node-steps/s", "RSS base",
              "RSS 1st chunk", "RSS end", "peak RSS", "peak delta", "stored traj. would be"]
    rows = []
    for r in results:
        if "error" in r:
            rows.append([f"{r['seconds']:g}", _err(r, 80)])
            continue
        rows.append([f"{r['seconds_simulated']:g}", str(r["steps"]), _fmt(r["wall_s"], ".0f"),
                     _fmt(r["us_per_step"], ".0f"), _fmt(r["node_steps_per_s"], ".3g"),
                     _fmt(r["rss_base_mib"], ".0f"), _fmt(r["rss_after_first_chunk_mib"], ".0f"),
                     _fmt(r["rss_end_mib"], ".0f"), _fmt(r["peak_rss_mib"], ".0f"),
                     _fmt(r["peak_delta_mib"], ".0f"),
                     _fmt(r["stored_trajectory_would_be_mib"], ".0f")])
    emit("\n### Long run (torch.no_grad, BoldSimulator in chunks); memory in MiB\n")
    md_table(rows, header)
    ok = [r for r in results if "error" not in r]
    if len(ok) > 1:
        lo, hi = ok[0]["peak_rss_mib"], ok[-1]["peak_rss_mib"]
        emit(f"\npeak RSS {ok[0]['seconds_simulated']:g} s -> {ok[-1]['seconds_simulated']:g} s:"
             f" {lo:.0f} -> {hi:.0f} MiB ({100 * (hi - lo) / lo:+.1f} %)")
    return results


def run_memory(spec: dict[str, Any]) -> dict[str, Any]:
    """Forward + backward through a BOLD run, full backprop or checkpointed / truncated."""
    torch, dtype, device = _torch_setup(spec)
    from brainfit import metrics

    rss_base = rss_now_mib()
    B, N, dt = spec["batch"], spec["regions"], spec["dt"]
    b = build_bench({**spec, "bench": "bold"}, device)
    sim = b.sim
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
        "engine": spec.get("engine") or "default", "engine_in_use": engine_in_use(b.net),
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


def main_memory(args: argparse.Namespace, tree: Path) -> list[dict[str, Any]]:
    variants_ = ["full", "checkpoint"] + (["truncate"] if args.memory_truncate else [])
    results = []
    for variant in variants_:
        spec = {**common_spec(args, tree), "kind": "memory", "variant": variant,
                "truncate": args.memory_truncate, "batch": args.memory_batch,
                "regions": args.memory_regions, "seconds": args.memory_seconds,
                "burn_in": args.memory_burn_in, "tr": args.memory_tr,
                "chunk": args.memory_chunk, "dt": args.memory_dt, "engine": args.engine[0],
                "compile": args.compile[0] == "on"}
        note(f"memory: forward+backward, {variant}, {args.memory_seconds:g} s of BOLD, "
             f"N={args.memory_regions}, B={args.memory_batch}, dt={args.memory_dt} ms")
        results.append(launch(spec, args.long_timeout, args.max_rss_mib, tree=tree))
    cuda = args.device.startswith("cuda")
    header = ["variant", "steps", "chunk s", "fwd s", "fwd+bwd s", "loss", "RSS base",
              "RSS after fwd", "peak RSS", "peak delta"] + (["CUDA peak"] if cuda else [])
    rows = []
    for r in results:
        if "error" in r:
            rows.append([r["variant"], _err(r, 80)])
            continue
        name = r["variant"] + (f" (k={r['truncate']})" if r["variant"] == "truncate" else "")
        row = [name, str(r["steps"]), f"{r['chunk_s']:g}", _fmt(r["forward_s"], ".1f"),
               _fmt(r["wall_s"], ".1f"), _fmt(r["loss"], ".6f"), _fmt(r["rss_base_mib"], ".0f"),
               _fmt(r["rss_after_forward_mib"], ".0f"), _fmt(r["peak_rss_mib"], ".0f"),
               _fmt(r["peak_delta_mib"], ".0f")]
        if cuda:
            row.append(_fmt(r.get("cuda_peak_mib"), ".1f"))
        rows.append(row)
    emit("\n### Forward + backward memory of a BOLD run (loss = 1 - FC similarity); MiB\n")
    md_table(rows, header)
    by = {r["variant"]: r for r in results if "error" not in r}
    if "full" in by and "checkpoint" in by:
        key = "cuda_peak_mib" if cuda else "peak_delta_mib"
        f, c = by["full"][key], by["checkpoint"][key]
        emit(f"\ncheckpointing: peak {'CUDA' if cuda else 'delta RSS'} {f:.0f} -> {c:.0f} MiB "
             f"(x{f / max(c, 1e-9):.1f} less)")
        gf, gc = by["full"]["grad_norms"], by["checkpoint"]["grad_norms"]
        rel = max(abs(gf[k] - gc[k]) / max(abs(gf[k]), 1e-30) for k in gf) if gf else float("nan")
        emit(f"gradient norms, full vs checkpoint: max relative difference {rel:.2e}")
    return results
