"""One module per data format; :mod:`brainfit.data.loaders` is the front (:func:`load`).

=============  ================================================================================
module         reads
=============  ================================================================================
``readers``    array and text files (:func:`read_matrix`), .mat, checks and error helpers
``neurolib``   neurolib-format directories (:func:`load_neurolib_dir`)
``tvb``        TVB connectivity zips (:func:`load_tvb_zip`)
``nifti``      4D BOLD NIfTI + label atlas (:func:`from_nifti`, :func:`load_nifti`,
               :func:`nifti_tr`)
``bids``       BIDS-like trees (:func:`load_bids`)
``arrays``     plain arrays and array files (:func:`load_arrays`), brainfit ``.npz``
               (:func:`save_npz`, :func:`load_npz`)
``targets``    precomputed FC/FCD targets (:func:`from_targets`)
=============  ================================================================================

These modules depend only on :mod:`brainfit.data.subject` (and, lazily, on
:mod:`brainfit.data.preprocess` and :mod:`brainfit.data.aal2`), never on
:mod:`brainfit.data.bundled` or :mod:`brainfit.data.loaders`.
"""
