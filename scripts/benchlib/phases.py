"""``--phases``: a torch.profiler breakdown of one configuration over the engine's
``record_function`` labels, the unlabelled rest of the forward and backward passes, and the
operators that take the most time."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from benchlib.builders import BenchRun
from benchlib.launch import common_spec, launch, variants
from benchlib.measure import median
from benchlib.report import _err, emit, md_table, note, variant_name

PHASE_LABELS = (("gather", "brainfit.gather"), ("model/local", "brainfit.local"),
                ("noise", "brainfit.noise"), ("BOLD", "brainfit.bold"),
                ("custom backward", "brainfit.backward"))


def _windows(events: list) -> dict[str, Any]:
    """The first ``bench.forward`` and ``bench.backward`` events: the two passes."""
    windows = {}
    for e in events:
        if e.name in ("bench.forward", "bench.backward") and e.name not in windows:
            windows[e.name] = e
    return windows


def _window_of(e, windows: dict[str, Any]) -> str:
    """The pass an event ran in: its enclosing window, else the one its start falls in, else by
    thread (autograd's backward runs on its own thread)."""
    p = e.cpu_parent
    while p is not None:
        if p.name in windows:
            return p.name
        p = p.cpu_parent
    start = e.time_range.start
    for name, w in windows.items():
        if w.time_range.start <= start <= w.time_range.end:
            return name
    return "bench.backward" if e.thread != windows["bench.forward"].thread else "bench.forward"


def _label_parent(e, labels: set[str]):
    """The nearest enclosing event with one of the engine's labels, or None."""
    p = e.cpu_parent
    while p is not None:
        if p.name in labels:
            return p
        p = p.cpu_parent
    return None


def _phase_times(events: list, windows: dict[str, Any]
                 ) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
    """Per label: calls, time in the forward and in the backward pass, nested and exclusive
    time; and per pass the time in top-level labels."""
    labels = {label for _, label in PHASE_LABELS}
    phases: dict[str, dict[str, Any]] = {
        label: {"calls": 0, "forward_ms": 0.0, "backward_ms": 0.0, "nested_ms": 0.0,
                "exclusive_ms": 0.0} for _, label in PHASE_LABELS}
    outer = {"bench.forward": 0.0, "bench.backward": 0.0}  # time in top-level labels
    inner: dict[int, float] = {}  # id of a label event -> time of the labels nested in it
    for e in events:
        if e.name in labels:
            parent = _label_parent(e, labels)
            if parent is not None:
                inner[id(parent)] = inner.get(id(parent), 0.0) + e.cpu_time_total / 1000.0
    for e in events:
        if e.name in labels:
            row = phases[e.name]
            ms = e.cpu_time_total / 1000.0
            where = _window_of(e, windows)
            row["calls"] += 1
            row["forward_ms" if where == "bench.forward" else "backward_ms"] += ms
            row["exclusive_ms"] += ms - inner.get(id(e), 0.0)
            if _label_parent(e, labels) is not None:
                row["nested_ms"] += ms  # e.g. recomputation inside the custom backward
            else:
                outer[where] += ms
    return phases, outer


def _operators(events: list, windows: dict[str, Any]) -> list[dict[str, Any]]:
    """The operators (unlabelled events) by self time, largest first, split by pass."""
    by_op: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.name.startswith(("brainfit.", "bench.", "ProfilerStep")):
            continue
        o = by_op.setdefault(e.name, {"name": e.name, "calls": 0, "self_ms": 0.0,
                                      "forward_ms": 0.0, "backward_ms": 0.0})
        ms = e.self_cpu_time_total / 1000.0
        o["calls"] += 1
        o["self_ms"] += ms
        o["forward_ms" if _window_of(e, windows) == "bench.forward" else "backward_ms"] += ms
    return sorted(by_op.values(), key=lambda o: -o["self_ms"])


def run_phases(spec: dict[str, Any]) -> dict[str, Any]:
    """torch.profiler over one run: time per brainfit.* label, the rest, the top operators."""
    r = BenchRun(spec)
    torch, mode = r.torch, spec["mode"]
    from torch.profiler import ProfilerActivity, profile, record_function

    steps = r.legal(spec["steps"])
    for _ in range(2 if spec.get("compile") else 1):
        r.once(steps, mode)
    runs = [r.once(steps, mode) for _ in range(spec["repeats"])]
    for p in r.trainable:
        p.grad = None
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        with record_function("bench.forward"):
            if mode == "fwd":
                with torch.no_grad():
                    y = r.simulate(steps)
            else:
                y = r.simulate(steps)
                loss = r.loss(y)
        if mode == "fwdbwd":
            with record_function("bench.backward"):
                loss.backward()
    r.check(y, mode)
    events = list(prof.events())
    windows = _windows(events)
    phases, outer = _phase_times(events, windows)
    fwd_ms = windows["bench.forward"].cpu_time_total / 1000.0
    bwd_ms = windows["bench.backward"].cpu_time_total / 1000.0 if "bench.backward" in windows \
        else 0.0
    ops = _operators(events, windows)
    return {
        "kind": "phases", "bench": spec["bench"], "mode": mode, "batch": r.B, "regions": r.N,
        "engine": spec.get("engine") or "default", "compile": bool(spec.get("compile")),
        **r.info(), "steps": steps, "repeats": len(runs),
        "unprofiled_s": median([t[0] for t in runs]),
        "unprofiled_forward_s": median([t[1] for t in runs]),
        "unprofiled_backward_s": median([t[2] for t in runs]),
        "profiled_forward_ms": fwd_ms, "profiled_backward_ms": bwd_ms,
        "phases": phases, "forward_unlabelled_ms": fwd_ms - outer["bench.forward"],
        "backward_unlabelled_ms": bwd_ms - outer["bench.backward"],
        "missing_labels": [label for _, label in PHASE_LABELS if not phases[label]["calls"]],
        "top_ops": ops[: spec.get("top_ops", 15)],
        "total_self_ms": sum(o["self_ms"] for o in ops),
    }


def main_phases(args: argparse.Namespace, tree: Path) -> list[dict[str, Any]]:
    results = []
    for engine, compiled in variants(args):
        spec = {**common_spec(args, tree), "kind": "phases", "bench": args.phase_bench,
                "mode": args.phase_mode, "batch": args.phase_batch,
                "regions": args.phase_regions, "steps": args.phase_steps, "engine": engine,
                "compile": compiled}
        note(f"phases: {args.phase_bench} {args.phase_mode} B={args.phase_batch} "
             f"N={args.phase_regions} {args.phase_steps} steps, "
             f"{variant_name(engine, compiled)}")
        r = launch(spec, args.timeout, args.max_rss_mib, tree=tree)
        results.append(r)
        name = variant_name(engine, compiled)
        emit(f"\n### Phase breakdown: {args.phase_bench} {args.phase_mode}, "
             f"B = {args.phase_batch}, N = {args.phase_regions}, engine {name}\n")
        if "error" in r:
            emit(_err(r, 300))
            continue
        total = r["profiled_forward_ms"] + r["profiled_backward_ms"]
        header = ["phase", "label", "calls", "in forward ms", "in backward ms", "own ms",
                  "share (own)"]
        rows = []
        for title, label in PHASE_LABELS:
            p = r["phases"][label]
            own = p.get("exclusive_ms", p["forward_ms"] + p["backward_ms"])
            rows.append([title, f"`{label}`", str(p["calls"]), f"{p['forward_ms']:.1f}",
                         f"{p['backward_ms']:.1f}", f"{own:.1f}",
                         f"{100 * own / total:.1f}%" if p["calls"] else "missing (0)"])
        rows.append(["forward, outside the labels", "", "", f"{r['forward_unlabelled_ms']:.1f}",
                     "", f"{r['forward_unlabelled_ms']:.1f}",
                     f"{100 * r['forward_unlabelled_ms'] / total:.1f}%"])
        if r["mode"] == "fwdbwd":
            rows.append(["autograd backward, outside the labels", "", "", "",
                         f"{r['backward_unlabelled_ms']:.1f}", f"{r['backward_unlabelled_ms']:.1f}",
                         f"{100 * r['backward_unlabelled_ms'] / total:.1f}%"])
        rows.append(["total (profiled)", "", "", f"{r['profiled_forward_ms']:.1f}",
                     f"{r['profiled_backward_ms']:.1f}", f"{total:.1f}", "100%"])
        md_table(rows, header, left=2)
        emit(f"\nunprofiled (median of {r['repeats']}): {r['unprofiled_s'] * 1e3:.1f} ms = "
             f"forward {r['unprofiled_forward_s'] * 1e3:.1f} + backward "
             f"{r['unprofiled_backward_s'] * 1e3:.1f} ms for {r['steps']} steps "
             f"({r['unprofiled_s'] / r['steps'] * 1e6:.0f} us/step); the profiler's own overhead "
             f"inflates the profiled times, so read the shares. Engine in use: "
             f"{r['engine_in_use']}. 'in forward/backward' = inclusive time of the label's calls "
             "in each pass (a label inside another, e.g. the recomputation inside the custom "
             "backward, is also in the outer one); 'own' = without the labels nested in it, so "
             "the shares add up to 100 %."
             + (f" Labels this tree does not emit: {', '.join(r['missing_labels'])}."
                if r["missing_labels"] else ""))
        emit("\nOperators by self time (all threads):\n")
        tot = r["total_self_ms"] or 1.0
        md_table([[f"`{o['name']}`", str(o["calls"]), f"{o['self_ms']:.1f}",
                   f"{o.get('forward_ms', 0.0):.1f}", f"{o.get('backward_ms', 0.0):.1f}",
                   f"{100 * o['self_ms'] / tot:.1f}%"] for o in r["top_ops"]],
                 ["operator", "calls", "self ms", "in forward", "in backward", "share"])
    return results
