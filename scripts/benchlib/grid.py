"""The speed grid (the default mode): forward and forward + backward of the benches over batch
sizes and region counts, engine variants side by side, and the ratio to an earlier ``--json``."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from benchlib.builders import BenchRun
from benchlib.launch import common_spec, launch, variants
from benchlib.measure import median, rss_now_mib, rss_peak_mib
from benchlib.report import _err, _fmt, _ratio, emit, md_table, note, variant_name


def run_speed(spec: dict[str, Any]) -> dict[str, Any]:
    """One grid configuration: probe, choose steps, warm up, ``repeats`` timed runs; peak memory."""
    r = BenchRun(spec)
    torch, device, mode = r.torch, r.device, spec["mode"]
    probe = r.legal(spec["warmup_steps"])
    rss0 = rss_now_mib()
    t_first = r.once(probe, mode)[0]  # lazy initialisation, compilation
    rss_probe = rss_peak_mib()
    if t_first > spec["max_run_seconds"] and not spec.get("compile"):
        t_probe = t_first  # a slow configuration: no second probe
    else:
        t_probe = r.once(probe, mode)[0]
    per_step = t_probe / probe
    capped = []
    if spec["steps"]:
        steps = r.legal(spec["steps"])
    else:
        steps = round(spec["target_seconds"] / max(per_step, 1e-9))
        steps = min(max(steps, spec["min_steps"]), spec["max_steps"])
        most = int(spec["max_run_seconds"] / max(per_step, 1e-9))
        if most < steps:
            steps, capped = max(most, 2), capped + ["time"]
        limit = spec.get("max_rss_mib")
        if limit and mode == "fwdbwd" and device.type == "cpu":
            # graph memory per step, from the first probe (overestimates: it includes set-up)
            per_step_mib = max(rss_probe - rss0, 1.0) / probe
            most = int((0.5 * limit - r.rss_base) / per_step_mib)
            if most < steps:
                steps, capped = max(most, 2), capped + ["memory"]
        steps = r.legal(steps)
    if steps != probe or spec.get("compile"):
        r.once(steps, mode)  # warm-up at the timed shapes
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    runs = [r.once(steps, mode) for _ in range(spec["repeats"])]
    peak = rss_peak_mib()
    elapsed = median([t[0] for t in runs])
    B, N = r.B, r.N
    out = {
        "kind": "speed", "bench": spec["bench"], "mode": mode, "batch": B, "regions": N,
        "engine": spec.get("engine") or "default", "compile": bool(spec.get("compile")),
        "sc": spec.get("sc", "shared"), **r.info(),
        "steps": steps, "probe_steps": probe, "first_call_s": t_first, "capped": capped,
        "repeats": len(runs), "seconds": elapsed, "seconds_all": [t[0] for t in runs],
        "forward_s": median([t[1] for t in runs]), "backward_s": median([t[2] for t in runs]),
        "steps_per_s": steps / elapsed,
        "node_steps_per_s": B * N * steps / elapsed,
        "node_steps_per_s_per_element": N * steps / elapsed,
        "us_per_step": elapsed / steps * 1e6,
        "spread": (max(t[0] for t in runs) - min(t[0] for t in runs)) / elapsed,
        "rss_base_mib": r.rss_base, "peak_rss_mib": peak, "peak_delta_mib": peak - r.rss_base,
    }
    if device.type == "cuda":
        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def main_grid(args: argparse.Namespace, tree: Path) -> list[dict[str, Any]]:
    specs = []
    for bench in args.bench:
        regions = args.bold_regions if bench == "bold" else args.regions
        batches = args.bold_batch if bench == "bold" else args.batch
        for mode in args.modes:
            for n in regions:
                for b in batches:
                    for engine, compiled in variants(args):
                        specs.append({**common_spec(args, tree), "kind": "speed", "bench": bench,
                                      "mode": mode, "batch": b, "regions": n, "engine": engine,
                                      "compile": compiled, "warmup_steps": args.warmup_steps,
                                      "steps": args.steps, "min_steps": args.min_steps,
                                      "max_steps": args.max_steps,
                                      "target_seconds": args.target_seconds,
                                      "max_run_seconds": args.max_run_seconds})
    results = []
    t0 = time.perf_counter()
    for i, spec in enumerate(specs, 1):
        note(f"[{i}/{len(specs)}] {spec['bench']} {spec['mode']} B={spec['batch']} "
             f"N={spec['regions']} {variant_name(spec['engine'], spec['compile'])} ...")
        results.append(launch(spec, args.timeout, args.max_rss_mib, tree=tree))
        r = results[-1]
        if "error" in r:
            note(f"    {r['error']}")
        else:
            note(f"    {r['node_steps_per_s']:.3g} node-steps/s, peak {r['peak_rss_mib']:.0f} MiB")
    cuda = args.device.startswith("cuda")
    emit(f"\n### Grid: node-steps/s and peak memory ({len(specs)} configurations, "
         f"{time.perf_counter() - t0:.0f} s)\n")
    header = ["bench", "mode", "engine", "B", "N", "dt ms", "steps", "median s", "us/step",
              "node-steps/s", "per element/s", "fwd s", "bwd s", "spread", "peak RSS MiB",
              "delta MiB"] + (["CUDA peak MiB"] if cuda else [])
    rows = []
    for r in results:
        head = [r["bench"], r["mode"], variant_name(r.get("engine", "default"),
                                                     r.get("compile", False)),
                str(r["batch"]), str(r["regions"])]
        if "error" in r:
            rows.append(head + [_err(r)])
            continue
        steps = str(r["steps"]) + ("*" if r.get("capped") else "")
        row = head + [_fmt(r["dt_ms"], "g"), steps, _fmt(r["seconds"], ".3f"),
                      _fmt(r["us_per_step"], ".0f"), _fmt(r["node_steps_per_s"], ".3g"),
                      _fmt(r["node_steps_per_s_per_element"], ".3g"),
                      _fmt(r["forward_s"], ".3f"),
                      _fmt(r["backward_s"], ".3f") if r["mode"] == "fwdbwd" else "-",
                      f"{100 * r['spread']:.0f}%", _fmt(r["peak_rss_mib"], ".0f"),
                      _fmt(r["peak_delta_mib"], ".0f")]
        if cuda:
            row.append(_fmt(r.get("cuda_peak_mib"), ".1f"))
        rows.append(row)
    md_table(rows, header, left=3)
    emit(f"\nmedian of {args.repeats} timed runs after warm-up; node-steps/s = B*N*steps/s; "
         "spread = (max - min)/median of the runs; steps* = fewer steps than --target-seconds "
         "asked, to stay within --max-run-seconds or half of --max-rss-gb; peak RSS = ru_maxrss "
         "of the configuration's subprocess, delta = minus the size after `import torch, "
         "brainfit`. Engines: " + ", ".join(sorted({f"{r.get('engine')} -> "
                                                   f"{r.get('engine_in_use')}" for r in results
                                                   if "error" not in r})) + ".")
    if len(variants(args)) > 1:
        grid_comparison(results, args)
    if args.baseline:
        baseline_comparison(results, args.baseline)
    return results


def _key(r: dict[str, Any]) -> tuple:
    return (r["bench"], r["mode"], r["batch"], r["regions"])


def grid_comparison(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    names = [variant_name(e, c) for e, c in variants(args)]
    table: dict[tuple, dict[str, dict[str, Any]]] = {}
    for r in results:
        table.setdefault(_key(r), {})[variant_name(r.get("engine", "default"),
                                                   r.get("compile", False))] = r
    emit(f"\n### Side by side (ratio = throughput / {names[0]})\n")
    header = ["bench", "mode", "B", "N"]
    for n in names:
        header += [f"{n} node-steps/s", f"{n} peak MiB"]
    header += [f"{n} / {names[0]}" for n in names[1:]]
    rows = []
    for key, by in table.items():
        row = [key[0], key[1], str(key[2]), str(key[3])]
        for n in names:
            r = by.get(n, {"error": "not run"})
            if "error" in r:
                row += ["error", "-"]
            else:
                row += [_fmt(r["node_steps_per_s"], ".3g"), _fmt(r["peak_rss_mib"], ".0f")]
        first = by.get(names[0], {})
        for n in names[1:]:
            row.append(_ratio(by.get(n, {}).get("node_steps_per_s"),
                              first.get("node_steps_per_s")))
        rows.append(row)
    md_table(rows, header, left=2)


def baseline_comparison(results: list[dict[str, Any]], path: str) -> None:
    try:
        old = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        emit(f"\n(--baseline {path}: cannot read it: {err})")
        return
    base = {}
    for r in old.get("results", []):
        if r.get("kind") == "speed" and "error" not in r:
            base.setdefault(_key(r), r)
    label = old.get("machine", {}).get("commit") or Path(path).name
    emit(f"\n### Against the baseline {path} ({label})\n")
    header = ["bench", "mode", "engine", "B", "N", "baseline node-steps/s", "node-steps/s",
              "speed-up", "baseline peak MiB", "peak MiB", "memory ratio"]
    rows = []
    for r in results:
        if "error" in r:
            continue
        b = base.get(_key(r))
        rows.append([r["bench"], r["mode"], variant_name(r["engine"], r["compile"]),
                     str(r["batch"]), str(r["regions"]),
                     _fmt(b["node_steps_per_s"], ".3g") if b else "-",
                     _fmt(r["node_steps_per_s"], ".3g"),
                     _ratio(r["node_steps_per_s"], b["node_steps_per_s"]) if b else "-",
                     _fmt(b["peak_rss_mib"], ".0f") if b else "-",
                     _fmt(r["peak_rss_mib"], ".0f"),
                     _ratio(r["peak_rss_mib"], b["peak_rss_mib"]) if b else "-"])
    md_table(rows, header, left=3)
