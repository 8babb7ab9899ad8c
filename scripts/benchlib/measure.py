"""Measuring: resident memory (this process, another one, the machine's), medians, and what was
measured on (the tree, its commit, the machine)."""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


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


def rss_of_pid_mib(pid: int) -> float | None:
    """Resident size of another process (Linux /proc), None where unavailable."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        return None
    return None


def total_memory_mib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        return None
    return None


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


# -- the tree and the machine ----------------------------------------------------------------------


def resolve_tree(args: argparse.Namespace) -> Path:
    """The brainfit tree to measure: --tree, else PYTHONPATH's brainfit, else this repository."""
    if args.tree:
        return Path(args.tree).resolve()
    for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        if entry and (Path(entry) / "brainfit" / "__init__.py").exists():
            return Path(entry).resolve()
    return Path(__file__).resolve().parents[2]  # scripts/benchlib/measure.py


def tree_info(tree: Path) -> dict[str, Any]:
    info: dict[str, Any] = {"tree": str(tree)}
    try:
        head = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=10).stdout.strip()
        if head:
            info["commit"] = head + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def machine_info(args: argparse.Namespace, tree: Path) -> dict[str, Any]:
    import torch

    info = {
        "python": platform.python_version(), "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "torch": torch.__version__, "threads": args.threads or torch.get_num_threads(),
        "device": args.device, "dtype": args.dtype, **tree_info(tree),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    if args.device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(args.device))
    return info
