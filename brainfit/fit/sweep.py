"""The table that ends a Hydra sweep: one row per job of ``scripts/train.py -m``.

``conf/train.yaml`` registers :class:`SweepSummary` under ``hydra.callbacks``. When a multirun
ends, with whichever launcher ran its jobs (Hydra's basic one, joblib's local processes,
submitit's SLURM jobs), it reads each job's ``metrics.json`` from the sweep directory, writes
``sweep_summary.csv`` there and logs the table. The jobs' directories are found on disk, not
passed from the jobs, so the head process never needs their return values (a SLURM job writes
to the shared sweep directory and nothing else); :func:`summarize_sweep` makes the same table
later for a sweep whose head process did not live to its end.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from brainfit.checkpoint import write_text

log = logging.getLogger("brainfit.fit")

#: top-level entries of ``metrics.json`` copied beside its ``mean`` scores
SCALARS = ("best_epoch_score", "epochs", "fit_seconds", "n_subjects", "restarts")
#: the columns of the logged table (the CSV has every score), those that the jobs report
TABLE_COLUMNS = ("fc_similarity", "fcd_ks", "best_epoch_score", "fit_seconds")
#: the longest job directory name (file systems allow 255 bytes)
MAX_DIRNAME = 120


def job_dirname(num: int | str, overrides: str, limit: int = MAX_DIRNAME) -> str:
    """A job directory's name: ``<num>_<overrides>``, shortened when longer than ``limit``.

    ``conf/train.yaml`` names each job of a sweep ``${brainfit.job_dirname:${hydra.job.num},
    ${hydra.job.override_dirname}}``. A sweep with many overrides would otherwise name its jobs
    past the file system's 255 bytes and fail before the first job; a long name keeps its start
    and ends in a hash of the whole, so that it stays unique and tells jobs apart at a glance
    (each job's overrides are in its ``.hydra/overrides.yaml`` and ``sweep_summary.csv``).
    """
    name = f"{num}_{overrides}" if overrides else str(num)
    if len(name.encode()) <= limit:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:10]
    head = name.encode()[:limit - len(digest) - 1].decode(errors="ignore")
    return f"{head}_{digest}"


def register_resolver() -> None:
    """Register ``${brainfit.job_dirname:...}`` with OmegaConf (once; every process that names
    a job, the head and a launcher's workers, imports :mod:`brainfit.fit`, which calls this)."""
    if not OmegaConf.has_resolver("brainfit.job_dirname"):
        OmegaConf.register_new_resolver("brainfit.job_dirname", job_dirname)


def find_jobs(sweep_dir: str | Path) -> list[Path]:
    """The job directories of a sweep (those holding ``.hydra/hydra.yaml``), in job order.

    Args:
        sweep_dir: the sweep's ``hydra.sweep.dir``.

    Raises:
        FileNotFoundError: when ``sweep_dir`` holds no job directory.
    """
    sweep_dir = Path(sweep_dir)
    jobs = [p.parent.parent for p in sweep_dir.rglob(".hydra/hydra.yaml")]
    if not jobs:
        raise FileNotFoundError(
            f"no job directory (one holding .hydra/hydra.yaml) under {sweep_dir}: pass the "
            f"sweep's hydra.sweep.dir; on a cluster it must be on a file system that the nodes "
            f"share with the submitting host")
    return sorted(jobs, key=lambda job: (_job_num(job), str(job)))


def _job_num(job_dir: Path) -> int:
    num = OmegaConf.select(OmegaConf.load(job_dir / ".hydra" / "hydra.yaml"), "hydra.job.num")
    return int(num) if num is not None else -1


def job_overrides(job_dir: str | Path) -> list[str]:
    """The command-line overrides of a job (its ``.hydra/overrides.yaml``)."""
    return [str(o) for o in OmegaConf.load(Path(job_dir) / ".hydra" / "overrides.yaml")]


def job_row(job_dir: str | Path, sweep_dir: str | Path,
            shared: Collection[str] = ()) -> dict[str, Any]:
    """One job's row: its number, directory, overrides, the swept ones, status and scores.

    The scores are ``metrics.json``'s ``mean`` entries (held-out FC similarity, FCD KS, the
    baselines) and its :data:`SCALARS`; a job without ``metrics.json`` (failed, or still
    running) has its status say so and no scores.

    Args:
        job_dir: the job's output directory.
        sweep_dir: the sweep directory, which the row's ``dir`` is relative to.
        shared: the overrides that every job of the sweep has; the others are ``swept``.
    """
    job_dir = Path(job_dir)
    overrides = job_overrides(job_dir)
    row: dict[str, Any] = {"job": _job_num(job_dir),
                           "dir": str(job_dir.relative_to(sweep_dir)),
                           "overrides": " ".join(overrides),
                           "swept": " ".join(o for o in overrides if o not in shared)}
    path = job_dir / "metrics.json"
    if not path.is_file():
        return {**row, "status": "no metrics.json"}
    metrics = json.loads(path.read_text())
    return {**row, "status": "done", **metrics.get("mean", {}),
            **{k: metrics[k] for k in SCALARS if k in metrics}}


def summarize_sweep(sweep_dir: str | Path,
                    filename: str = "sweep_summary.csv") -> list[dict[str, Any]]:
    """Write ``sweep_dir/filename``, one row per job (:func:`job_row`), and return the rows.

    A row's ``swept`` overrides are those that not every job has: what the sweep varied.

    Args:
        sweep_dir: the sweep's ``hydra.sweep.dir``.
        filename: the CSV's name inside ``sweep_dir``.

    Raises:
        FileNotFoundError: when ``sweep_dir`` holds no job directory.
    """
    jobs = find_jobs(sweep_dir)
    shared = set.intersection(*(set(job_overrides(job)) for job in jobs))
    rows = [job_row(job, sweep_dir, shared) for job in jobs]
    fields = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    write_text(Path(sweep_dir) / filename, buf.getvalue())
    return rows


def format_table(rows: Sequence[dict[str, Any]],
                 columns: Sequence[str] = TABLE_COLUMNS) -> str:
    """A plain-text table of the rows: job, swept overrides, status and the ``columns`` that
    any row has (numbers to 3 decimals, blank where a row has none)."""
    columns = ["job", "swept", "status", *(c for c in columns if any(c in r for r in rows))]
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [columns, *cells]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip()
                     for line in lines)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


class SweepSummary(Callback):
    """Hydra callback: at the end of a multirun, ``sweep_summary.csv`` and a logged table.

    Args:
        filename: the CSV's name inside the sweep directory.
        columns: the scores shown in the logged table (the CSV has them all).
    """

    def __init__(self, filename: str = "sweep_summary.csv",
                 columns: Sequence[str] = TABLE_COLUMNS) -> None:
        self.filename = filename
        self.columns = list(columns)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = summarize_sweep(sweep_dir, self.filename)
        log.info("sweep of %d jobs, %s:\n%s", len(rows), sweep_dir / self.filename,
                 format_table(rows, self.columns))
        missing = [str(r["job"]) for r in rows if r["status"] != "done"]
        if missing:
            log.warning("jobs %s wrote no metrics.json: see their train.log",
                        ", ".join(missing))
