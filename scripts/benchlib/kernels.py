"""``--kernels``: the lagged-sum operators alone (``brainfit.kernels``: ``lagged_sum`` and its
weight gradient ``lagged_dot``), native (numba on CPU, Triton on CUDA) against their tensor-op
reference, per block of steps."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from benchlib.builders import _sync, _torch_setup
from benchlib.launch import common_spec, launch
from benchlib.measure import median
from benchlib.report import _err, _ratio, emit, md_table, note


def run_kernels(spec: dict[str, Any]) -> dict[str, Any]:
    """The lagged-sum operators alone (``brainfit.kernels``): native vs reference, per block."""
    torch, dtype, device = _torch_setup(spec)
    from brainfit import kernels

    B, N, k, L = spec["batch"], spec["regions"], spec["block"], spec["max_lag"]
    g = torch.Generator().manual_seed(spec["seed"])
    n_blocks = spec["blocks"]
    T = L + 1 + n_blocks * k
    buf = torch.randn(B, 1, N, T, generator=g).to(device, dtype)
    nb = B if spec["sc"] == "per-element" else 1
    A = torch.rand(nb, N, N, generator=g).to(device, dtype)
    off = torch.randint(k - 1, L + 1, (nb, N, N), generator=g).to(device)
    gU = torch.randn(B, 1, N, k, generator=g).to(device, dtype)
    out = {"kind": "kernels", "batch": B, "regions": N, "block": k, "max_lag": L,
           "sc": spec["sc"], "backend": kernels.backend(device)}
    for impl in ("native", "reference"):
        ctx = kernels.reference() if impl == "reference" else torch.no_grad()
        with ctx, torch.no_grad():
            for op in ("lagged_sum", "lagged_dot"):
                def call(s, op=op):
                    if op == "lagged_sum":
                        return kernels.lagged_sum(buf, A, off, L + s * k, k)
                    return kernels.lagged_dot(gU, buf, off, L + s * k)

                for s in range(min(3, n_blocks)):  # warm-up (numba compiles, Triton JITs)
                    call(s)
                runs = []
                for _ in range(spec["repeats"]):
                    _sync(torch, device)
                    t0 = time.perf_counter()
                    for s in range(n_blocks):
                        call(s)
                    _sync(torch, device)
                    runs.append((time.perf_counter() - t0) / n_blocks)
                t = median(runs)
                out[f"{impl}_{op}_us_per_block"] = t * 1e6
                out[f"{impl}_{op}_ns_per_edge_step"] = t / (B * N * N * k) * 1e9
    return out


def main_kernels(args: argparse.Namespace, tree: Path) -> list[dict[str, Any]]:
    results, rows = [], []
    for sc in args.kernel_sc:
        for B in args.kernel_batch:
            spec = {**common_spec(args, tree), "kind": "kernels", "batch": B,
                    "regions": args.kernel_regions, "block": args.kernel_block,
                    "max_lag": args.kernel_max_lag, "blocks": args.kernel_blocks, "sc": sc}
            note(f"kernels: B={B} N={args.kernel_regions} k={args.kernel_block} lags {sc}")
            r = launch(spec, args.timeout, args.max_rss_mib, tree=tree)
            results.append(r)
            if "error" in r:
                emit(_err(r, 300))
                continue
            for op in ("lagged_sum", "lagged_dot"):
                nat, ref = r[f"native_{op}_us_per_block"], r[f"reference_{op}_us_per_block"]
                rows.append([op, sc, str(B), r["backend"], f"{nat:.1f}", f"{ref:.1f}",
                             f"{nat / args.kernel_block:.2f}",
                             f"{r[f'native_{op}_ns_per_edge_step']:.3f}",
                             f"{r[f'reference_{op}_ns_per_edge_step']:.3f}", _ratio(ref, nat)])
    emit(f"\n### The lagged-sum operators: {args.kernel_regions} regions, every edge, blocks of "
         f"k = {args.kernel_block} steps, lags {args.kernel_block - 1}..{args.kernel_max_lag}\n")
    md_table(rows, ["operator", "lags and weights", "B", "native", "native us/block",
                    "reference us/block", "native us/step", "native ns/edge-step",
                    "reference ns/edge-step", "speed-up"], left=4)
    emit("\nPer call of the operator (``torch.ops.brainfit``), its dispatch included; median of "
         "--repeats passes over --kernel-blocks consecutive blocks. 'shared': one weight and "
         "lag table for the batch (a batch of 1, broadcast); 'per-element': one per element.")
    return results
