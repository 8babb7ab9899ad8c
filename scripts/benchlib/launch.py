"""Every configuration in a fresh interpreter: ``bench.py --one SPEC`` runs it (child side,
``bench.py``'s ``child_main``) and prints its result on a line tagged :data:`RESULT_TAG`; the
parent launches it with a memory watchdog and reads that line back."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchlib.measure import rss_of_pid_mib

RESULT_TAG = "BENCH_RESULT "
#: the script every configuration runs in (``bench.py --one SPEC``), beside this package
BENCH_SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench.py")


def launch(spec: dict[str, Any], timeout: float, max_rss_mib: float | None = None,
           python: str | None = None, tree: Path | None = None,
           cwd: Path | None = None) -> dict[str, Any]:
    """Run one configuration in a fresh interpreter, with a memory watchdog.

    The child's stderr (progress) passes through; its stdout is scanned for the result line and
    echoed to stderr otherwise.
    """
    cmd = [python or sys.executable, BENCH_SCRIPT, "--one", json.dumps(spec)]
    env = dict(os.environ)
    if tree is not None:
        old = env.get("PYTHONPATH")
        env["PYTHONPATH"] = str(tree) + (os.pathsep + old if old else "")
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=cwd)
    except OSError as err:
        return {**spec, "error": f"could not start {cmd[0]}: {err}"}
    lines: list[str] = []

    def reader() -> None:
        for line in proc.stdout:
            lines.append(line)
            if not line.startswith(RESULT_TAG):
                sys.stderr.write("  | " + line)
                sys.stderr.flush()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    watched_peak = 0.0
    killed = None
    while proc.poll() is None:
        rss = rss_of_pid_mib(proc.pid)
        if rss is not None:
            watched_peak = max(watched_peak, rss)
            if max_rss_mib and rss > max_rss_mib:
                killed = (f"killed: resident size {rss / 1024:.1f} GiB passed the limit "
                          f"--max-rss-gb {max_rss_mib / 1024:.1f}")
        if time.perf_counter() - t0 > timeout:
            killed = f"killed: ran past --timeout {timeout:g} s"
        if killed:
            proc.kill()
            break
        time.sleep(0.2)
    proc.wait()
    thread.join(timeout=5)
    if killed:
        return {**spec, "error": killed, "watched_peak_rss_mib": watched_peak}
    for line in lines:
        if line.startswith(RESULT_TAG):
            result = json.loads(line[len(RESULT_TAG):])
            result["watched_peak_rss_mib"] = watched_peak
            result["child_wall_s"] = time.perf_counter() - t0
            return result
    tail = " | ".join(ln.strip() for ln in lines[-3:])
    return {**spec, "error": f"exit status {proc.returncode}; {tail}".strip("; "),
            "watched_peak_rss_mib": watched_peak}


def common_spec(args: argparse.Namespace, tree: Path) -> dict[str, Any]:
    return {"device": args.device, "dtype": args.dtype, "threads": args.threads,
            "seed": args.seed, "dt": args.dt, "bold_dt": args.bold_dt,
            "max_length": args.max_length, "speed": args.speed, "sigma": args.sigma,
            "sc": args.sc, "tree": str(tree), "repeats": args.repeats,
            "max_rss_mib": args.max_rss_mib}


def variants(args: argparse.Namespace) -> list[tuple[str, bool]]:
    return [(e, c == "on") for e in args.engine for c in args.compile]
