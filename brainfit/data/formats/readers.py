"""Readers shared by the format modules: array and text files, .mat, checks, error helpers.

:func:`read_matrix` reads a numeric array and any region names from ``.npy``, ``.csv``/``.tsv``/
``.txt`` or ``.mat`` (MATLAB v7.3/HDF5 needs h5py). Text matrices may have one header row and/or
one index column of region names; they become the region labels. Delimiter: comma (``.csv`` or a
comma in the first line), else tab, else whitespace; lines starting with ``#`` are comments.
The private helpers check that files exist, take an array given directly or as a path, name
subjects after their files, and apply ``preprocessing`` after loading.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from brainfit.data.subject import Cohort, DataError, to_numpy

PathLike = str | os.PathLike

_MATRIX_EXTS = (".npy", ".csv", ".tsv", ".txt", ".mat")


def _require_file(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(
            f"{what}: file not found: {path}; check the path (relative paths are resolved from "
            f"{Path.cwd()})"
        )
    if not path.is_file():
        raise DataError(f"{what}: {path} is a directory, expected a file")
    return path


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _read_text_matrix(path: Path, what: str) -> tuple[np.ndarray, list[str] | None]:
    """Read a numeric text matrix file (see :func:`_parse_text_matrix`)."""
    try:
        text = path.read_text()
    except UnicodeDecodeError as err:
        raise DataError(
            f"{what}: {path} is not a text file ({err}); the file is corrupt or binary: export "
            "the matrix as plain text (.csv/.txt) or .npy"
        ) from err
    return _parse_text_matrix(text, str(path), what, comma=path.suffix.lower() == ".csv")


def _parse_text_matrix(
    text: str, path: str, what: str, comma: bool = False
) -> tuple[np.ndarray, list[str] | None]:
    """Parse a numeric text matrix with an optional header row and index column of names.

    Delimiter: comma (``.csv`` or a comma in the first line), else tab, else whitespace. Lines
    starting with ``#`` are comments.
    """
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise DataError(f"{what}: {path} is empty; it should hold a numeric matrix")
    first = lines[0]
    delim = "," if (comma or "," in first) else ("\t" if "\t" in first else None)
    rows = [[c.strip() for c in (ln.split(delim) if delim else ln.split())] for ln in lines]
    header = None
    if not all(_is_number(c) for c in rows[0]):
        header, rows = rows[0], rows[1:]
    index = None
    if rows and all(r and not _is_number(r[0]) for r in rows):
        index = [r[0] for r in rows]
        rows = [r[1:] for r in rows]
    if not rows:
        raise DataError(f"{what}: {path} has a header but no numeric rows")
    width = len(rows[0])
    for k, r in enumerate(rows):
        if len(r) != width:
            raise DataError(
                f"{what}: {path} data row {k + 1}: {len(r)} values where the first row has "
                f"{width}; every row must have the same number of columns"
            )
        for c in r:
            if not _is_number(c):
                raise DataError(
                    f"{what}: {path} data row {k + 1}: non-numeric value {c!r}; the file "
                    "must hold numbers (one optional header row and index column of names)"
                )
    arr = np.array([[float(c) for c in r] for r in rows], dtype=np.float64)
    if header is not None and index is not None and len(header) == width + 1:
        header = header[1:]  # the top-left cell names the index column
    labels = index if index is not None else header
    if labels is not None and len(labels) != arr.shape[-1]:
        labels = None
    return arr, labels


def _read_mat(path: Path, what: str, keys: Sequence[str] = ()) -> np.ndarray:
    """The array in a MATLAB .mat file: the first of ``keys`` present, or the only variable.

    MATLAB v7.3 (HDF5) files need h5py (optional; not a brainfit dependency).
    """
    import scipy.io

    _require_file(path, what)
    try:
        contents = scipy.io.loadmat(str(path))
    except NotImplementedError:  # scipy's signal for a v7.3 (HDF5) file
        contents = _read_mat_v73(path, what)
    except Exception as err:
        raise DataError(
            f"{what}: cannot read {path} as a MATLAB .mat file ({type(err).__name__}: {err}); the "
            "file is corrupt, truncated or not a .mat file: export it again (MATLAB: save(..., "
            "'-v7'))"
        ) from err
    arrays = {
        k: v
        for k, v in contents.items()
        if not k.startswith("__")
        and isinstance(v, np.ndarray)
        and np.issubdtype(v.dtype, np.number)
    }
    for k in keys:
        if k in arrays:
            return np.asarray(arrays[k])
    if len(arrays) == 1:
        return np.asarray(next(iter(arrays.values())))
    raise DataError(
        f"{what}: {path} holds the numeric variables {sorted(arrays)}, none of the expected "
        f"{list(keys)}; save the matrix as the only variable, or name it with mat_keys="
    )


def _read_mat_v73(path: Path, what: str) -> dict[str, np.ndarray]:
    try:
        import h5py
    except ImportError as err:
        raise DataError(
            f"{what}: {path} is a MATLAB v7.3 (HDF5) file, which needs h5py: pip install h5py, or "
            "save it again in MATLAB with save(..., '-v7')"
        ) from err
    try:
        with h5py.File(path, "r") as f:
            # MATLAB stores column-major: transpose to get MATLAB's row/column order back
            return {k: np.asarray(f[k]).T for k in f if isinstance(f[k], h5py.Dataset)}
    except Exception as err:
        raise DataError(
            f"{what}: cannot read {path} as MATLAB v7.3/HDF5 ({err}); is it corrupt?"
        ) from err


def read_matrix(path: PathLike, what: str = "matrix") -> tuple[np.ndarray, list[str] | None]:
    """Read a numeric array and any region names from .npy, .csv/.tsv/.txt or .mat.

    Args:
        path: The file.
        what: What the file should hold, for error messages (e.g. ``"weights"``).

    Returns:
        ``(array (float64), labels or None)``; labels come from a text header row or index column.

    Raises:
        FileNotFoundError: the file does not exist.
        DataError: unknown extension, corrupt or non-numeric content.
    """
    path = _require_file(Path(path), what)
    ext = path.suffix.lower()
    if ext == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as err:
            raise DataError(
                f"{what}: cannot read {path} as a NumPy .npy array ({err}); the file is corrupt "
                "or holds Python objects: save a numeric array with np.save"
            ) from err
        return to_numpy(arr, what, str(path)), None
    if ext in (".csv", ".tsv", ".txt", ".dat"):
        return _read_text_matrix(path, what)
    if ext == ".mat":
        return _read_mat(path, what).astype(np.float64), None
    raise DataError(
        f"{what}: {path} has an unsupported extension {ext!r}; use one of {list(_MATRIX_EXTS)}"
    )


def _array_or_file(x: Any, what: str) -> tuple[np.ndarray, list[str] | None, str | None]:
    """An array given directly or as a path; returns (array, labels from the file, source)."""
    if isinstance(x, (str, os.PathLike)):
        arr, labels = read_matrix(x, what)
        return arr, labels, str(x)
    return to_numpy(x, what, f"{what} array"), None, None


def _finish(cohort: Cohort, preprocessing: Any) -> Cohort:
    if preprocessing is None:
        return cohort
    from brainfit.data.preprocess import preprocess

    return preprocess(cohort, preprocessing)


def _stem(path: Path) -> str:
    name = Path(path).name
    for ext in (".nii.gz", ".nii", ".zip", ".npz", ".npy", ".csv", ".tsv", ".txt", ".mat"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return Path(path).stem


def _select_dirs(parent: Path, dirs: list[Path], subjects: Sequence[Any] | None,
                 what: str) -> list[Path]:
    """The subject folders named in ``subjects`` (all ``dirs`` when None), in that order.

    Raises:
        DataError: a named folder does not exist (the message lists the available ones).
    """
    if subjects is None:
        return dirs
    wanted = [str(s) for s in subjects]
    missing = [s for s in wanted if not (parent / s).is_dir()]
    if missing:
        raise DataError(f"{what}: no subject folder(s) {missing}; available: "
                        f"{[d.name for d in dirs]}")
    return [parent / s for s in wanted]
