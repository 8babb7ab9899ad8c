r"""Figures of a fit: empirical vs simulated FC and FCD, loss curves, fitted parameters, BOLD.

Every function takes NumPy arrays, Python lists or tensors and draws one figure. Given a ``path``
it writes the figure there as a PNG at :data:`DPI` dots per inch and returns ``path`` as a
:class:`~pathlib.Path`; with ``path=None`` it returns the :class:`~matplotlib.figure.Figure`
itself, which a notebook shows inline (it is the cell's last value) and ``fig.savefig`` writes.
Figures are built on :class:`matplotlib.figure.Figure` directly, never through ``pyplot``: no
backend is selected, no window opens, no global figure state is touched, so the functions are safe
in scripts, in notebooks and on headless cluster nodes. Missing parent directories of ``path`` are
created. matplotlib is imported when a figure is drawn, not when this module is.

What there is, one module per subject (every function is imported here, as
``brainfit.plotting.plot_fc`` and so on):

- :mod:`brainfit.plotting.fit`, how a fit went: :func:`plot_fc_comparison`,
  :func:`plot_fcd_histograms`, :func:`plot_baselines`, :func:`plot_loss_curves`;
- :mod:`brainfit.plotting.parameters`, what a fit found: :func:`plot_parameters`,
  :func:`plot_connectivity`;
- :mod:`brainfit.plotting.data`, data and simulations: :func:`plot_bold`, :func:`plot_fc`,
  :func:`plot_fcd`, :func:`plot_timeseries`;
- :mod:`brainfit.plotting.dynamics`, dynamics: :func:`plot_phase_portrait`,
  :func:`plot_spectrum`, :func:`plot_oscillator`, :func:`plot_bifurcation`;
- :mod:`brainfit.plotting.regions`: regions are ordered and labelled with ``labels`` (region
  names) and ``groups`` (a group per region, such as the hemispheres :func:`hemispheres` reads
  from the names, or resting-state networks; :func:`region_order`).

Conventions of the figures:

- Functional connectivity (FC, Pearson correlation of BOLD between regions, unitless) is drawn with
  the diverging colour map :data:`FC_CMAP` (``"RdBu_r"``) on fixed limits [-1, 1], so white means
  r = 0 and colours are comparable between panels, subjects and runs.
- Figures with one panel (or row) per subject show at most :data:`MAX_SUBJECTS` (10) subjects, the
  first ones in the order given, and say so in the figure title when subjects were left out.
- The similarity of two FC matrices is the Pearson correlation of their upper triangles (diagonal
  excluded), the score used throughout the FC-fitting literature (e.g. Honey et al. 2009,
  PNAS 106:2035; Deco et al. 2013, J Neurosci 33:11239). The FCD distributions are compared with the
  Kolmogorov-Smirnov distance :math:`D = \sup_x |F_{emp}(x) - F_{sim}(x)|` (Hansen et al. 2015,
  NeuroImage 105:525). Scores not passed in are computed by the functions that score a fit,
  :func:`brainfit.metrics.fc_similarity`, :func:`brainfit.metrics.ks_distance` and
  :func:`brainfit.metrics.ks_distance_hist`.
- Bad input (mismatched subjects, wrong shapes, values that are not numbers or not finite, a
  step or TR that is not positive) raises ``ValueError`` naming what was expected and what was
  received; a container of the wrong kind (not a dict or a list where one is expected, a
  ``path`` that is neither a path nor None) raises ``TypeError``.
"""

from brainfit.plotting._common import (
    DPI,
    FC_CMAP,
    MAX_SUBJECTS,
    _ks_distance,  # noqa: F401  (the scores drawn in the FCD titles, checked by the tests)
    _ks_distance_hist,  # noqa: F401
)
from brainfit.plotting.data import plot_bold, plot_fc, plot_fcd, plot_timeseries
from brainfit.plotting.dynamics import (
    plot_bifurcation,
    plot_oscillator,
    plot_phase_portrait,
    plot_spectrum,
)
from brainfit.plotting.fit import (
    plot_baselines,
    plot_fc_comparison,
    plot_fcd_histograms,
    plot_loss_curves,
)
from brainfit.plotting.parameters import plot_connectivity, plot_parameters
from brainfit.plotting.regions import hemispheres, region_order

__all__ = [
    "DPI",
    "FC_CMAP",
    "MAX_SUBJECTS",
    "hemispheres",
    "plot_baselines",
    "plot_bifurcation",
    "plot_bold",
    "plot_connectivity",
    "plot_fc",
    "plot_fc_comparison",
    "plot_fcd",
    "plot_fcd_histograms",
    "plot_loss_curves",
    "plot_oscillator",
    "plot_parameters",
    "plot_phase_portrait",
    "plot_spectrum",
    "plot_timeseries",
    "region_order",
]
