"""Figures of brainfit.plotting: files, sizes, content of the drawn artists, input errors.

Each figure test draws once on small synthetic inputs (3 subjects, 10 regions) and checks
(a) the PNG exists at the returned path, has the pixel size the docstring states (figure inches x
DPI; a tight bounding box or a layout change would alter it) and is not blank (pixel variance > 0),
and (b) what was drawn, read back from the Figure that was saved: colour limits and colour map,
plotted data against NumPy reference computations, labels with units. The Figure is captured by
wrapping ``Figure.savefig``. Bad input must raise before anything is drawn.
"""

from __future__ import annotations

import math

import matplotlib.image as mpimg
import numpy as np
import pytest
from matplotlib.figure import Figure
from scipy import stats

from brainfit import plotting

N_REGIONS = 10
SUBJECTS = ["S1", "S2", "S3"]


# ----------------------------------------------------------------------------- helpers


@pytest.fixture
def saved(monkeypatch) -> list[Figure]:
    """Every Figure saved during the test, in order (savefig still writes the file)."""
    figs: list[Figure] = []
    original = Figure.savefig

    def spy(self, *args, **kwargs):
        figs.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    return figs


def check_png(path, width_in: float, height_in: float) -> np.ndarray:
    """The PNG exists, is non-empty, has figure-size x DPI pixels (+-1 for rounding), not blank."""
    assert path.is_file() and path.stat().st_size > 1000
    img = mpimg.imread(path)
    h, w = img.shape[:2]
    assert abs(w - width_in * plotting.DPI) <= 1, (w, width_in * plotting.DPI)
    assert abs(h - height_in * plotting.DPI) <= 1, (h, height_in * plotting.DPI)
    assert img[..., :3].var() > 0
    return img


def random_fc(rng: np.random.Generator, n: int = N_REGIONS, t: int = 60) -> np.ndarray:
    """A valid FC matrix: correlations of a random series with shared components."""
    x = rng.standard_normal((t, 3)) @ rng.standard_normal((3, n)) + rng.standard_normal((t, n))
    return np.corrcoef(x.T)


def fc_pair(seed: int = 0, subjects=SUBJECTS):
    rng = np.random.default_rng(seed)
    emp = {s: random_fc(rng) for s in subjects}
    sim = {s: 0.5 * emp[s] + 0.5 * random_fc(rng) for s in subjects}
    return emp, sim


def upper(m: np.ndarray) -> np.ndarray:
    return m[np.triu_indices(m.shape[0], k=1)]


# ----------------------------------------------------------------------------- FC


def test_fc_comparison_png_and_content(tmp_path, saved):
    """3 rows of (empirical, simulated, scatter); FC drawn on RdBu_r with limits [-1, 1]; the
    scatter holds the upper triangles; computed r equals numpy's Pearson r; a given score is shown
    instead."""
    emp, sim = fc_pair()
    out = plotting.plot_fc_comparison(emp, sim, {"S2": 0.123}, tmp_path / "fc.png")
    assert out == tmp_path / "fc.png"
    check_png(out, 11.75, 0.5 + 3.3 * 3)

    fig = saved[-1]
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 6  # two matrices per subject
    for im in images:
        assert im.get_cmap().name == "RdBu_r"
        assert im.get_clim() == (-1.0, 1.0)
    np.testing.assert_array_equal(images[0].get_array(), emp["S1"])
    np.testing.assert_array_equal(images[1].get_array(), sim["S1"])

    titles = [ax.get_title() for ax in fig.axes]
    r1 = np.corrcoef(upper(emp["S1"]), upper(sim["S1"]))[0, 1]
    assert f"S1: r = {r1:.3f}" in titles
    assert "S2: r = 0.123" in titles  # the given score, not a recomputed one
    scatter = next(ax for ax in fig.axes if ax.get_title().startswith("S1: r"))
    pts = scatter.collections[0].get_offsets()
    np.testing.assert_allclose(pts[:, 0], upper(emp["S1"]))
    np.testing.assert_allclose(pts[:, 1], upper(sim["S1"]))
    assert "empirical" in scatter.get_xlabel() and "simulated" in scatter.get_ylabel()
    # the colour bar is labelled and the subject ids label the rows
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert any("Pearson correlation" in lab for lab in labels)
    assert all(any(lab.startswith(s) for lab in labels) for s in SUBJECTS)


def test_fc_comparison_caps_rows(tmp_path, saved, monkeypatch):
    """With more subjects than MAX_SUBJECTS only the first MAX_SUBJECTS rows are drawn and the
    title says so (the cap lowered to 2 to keep the test fast, in plotting.fit, which reads it)."""
    monkeypatch.setattr(plotting.fit, "MAX_SUBJECTS", 2)
    emp, sim = fc_pair()
    out = plotting.plot_fc_comparison(emp, sim, None, tmp_path / "fc.png")
    check_png(out, 11.75, 0.5 + 3.3 * 2)
    fig = saved[-1]
    assert len([im for ax in fig.axes for im in ax.get_images()]) == 4
    assert "first 2 of 3 subjects" in fig.get_suptitle()


def test_fc_comparison_undefined_similarity_is_shown_as_na(tmp_path, saved):
    """r is undefined for a single region pair (N = 2) or a constant upper triangle: the title
    says n/a rather than a number."""
    two = np.array([[1.0, 0.3], [0.3, 1.0]])
    flat = np.ones((4, 4))
    emp, sim = fc_pair(subjects=["S1"])
    plotting.plot_fc_comparison({"two": two, "flat": flat, "S1": emp["S1"]},
                                {"two": two, "flat": 0.5 * flat, "S1": sim["S1"]}, None,
                                tmp_path / "fc.png")
    titles = [ax.get_title() for ax in saved[-1].axes]
    assert "two: r = n/a" in titles and "flat: r = n/a" in titles
    r1 = np.corrcoef(upper(emp["S1"]), upper(sim["S1"]))[0, 1]
    assert f"S1: r = {r1:.3f}" in titles


@pytest.mark.parametrize("case, exc, match", [
    ("keys", ValueError, "same subject keys"),
    ("not_square", ValueError, "square FC matrix"),
    ("shape_mismatch", ValueError, "must have the shape"),
    ("nan", ValueError, "non-finite"),
    ("not_dict", TypeError, "dict mapping subject id"),
    ("empty", ValueError, "empty"),
])
def test_fc_comparison_bad_input(tmp_path, case, exc, match):
    """Each malformed input raises with a message that names the problem."""
    emp, sim = fc_pair()
    if case == "keys":
        sim = {"S1": sim["S1"], "S2": sim["S2"], "S9": sim["S3"]}
    elif case == "not_square":
        emp["S1"] = emp["S1"][:, :5]
    elif case == "shape_mismatch":
        sim["S2"] = sim["S2"][:5, :5]
    elif case == "nan":
        sim["S3"] = sim["S3"].copy()
        sim["S3"][0, 1] = np.nan
    elif case == "not_dict":
        emp = list(emp.values())
    elif case == "empty":
        emp, sim = {}, {}
    with pytest.raises(exc, match=match):
        plotting.plot_fc_comparison(emp, sim, None, tmp_path / "fc.png")
    assert not (tmp_path / "fc.png").exists()


# ----------------------------------------------------------------------------- FCD


def fcd_samples(seed: int = 1):
    rng = np.random.default_rng(seed)
    emp = {s: np.tanh(rng.normal(0.4, 0.2, 400)) for s in SUBJECTS}
    sim = {s: np.tanh(rng.normal(0.5, 0.3, 300)) for s in SUBJECTS}
    return emp, sim


def test_ks_distances_shown_match_scipy(tmp_path, saved):
    """The KS distances shown in the titles (brainfit.metrics, which the figures call):
    two-sample against scipy.stats.ks_2samp (ties included) and one-sample against a histogram's
    piecewise-linear CDF against scipy.stats.kstest with that CDF."""
    rng = np.random.default_rng(2)
    a = np.round(rng.normal(0, 1, 200), 1)  # rounding makes ties
    b = np.round(rng.normal(0.3, 1.2, 150), 1)
    assert plotting._ks_distance(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)

    edges = np.linspace(-1, 1, 21)
    counts = rng.integers(0, 30, 20).astype(float)
    cdf = np.concatenate([[0], np.cumsum(counts) / counts.sum()])
    v = rng.uniform(-1.2, 1.2, 300)
    ref = stats.kstest(v, lambda x: np.interp(x, edges, cdf)).statistic
    assert plotting._ks_distance_hist(v, edges, counts) == pytest.approx(ref, abs=1e-12)
    # and the titles show them
    plotting.plot_fcd_histograms({"A": a, "H": (edges, counts)}, {"A": b, "H": v},
                                 tmp_path / "fcd.png")
    titles = [ax.get_title() for ax in saved[-1].axes if ax.get_visible()]
    assert titles == [f"A: KS = {stats.ks_2samp(a, b).statistic:.3f}", f"H: KS = {ref:.3f}"]


def test_fcd_histograms_values_and_histogram_input(tmp_path, saved):
    """Values and a precomputed (edges, counts) histogram are both drawn as densities (area 1);
    the titles give the computed KS distance or the one passed in."""
    emp, sim = fcd_samples()
    counts, edges = np.histogram(emp["S2"], bins=25, range=(-1, 1))
    emp_mixed = {"S1": emp["S1"], "S2": (edges, counts), "S3": emp["S3"]}
    out = plotting.plot_fcd_histograms(emp_mixed, sim, tmp_path / "fcd.png", ks={"S3": 0.456})
    check_png(out, 0.6 + 3.4 * 3, 0.7 + 2.9 * 1)

    fig = saved[-1]
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 3
    titles = [ax.get_title() for ax in axes]
    assert titles[0] == f"S1: KS = {stats.ks_2samp(emp['S1'], sim['S1']).statistic:.3f}"
    cdf = np.concatenate([[0], np.cumsum(counts) / counts.sum()])
    ks2 = stats.kstest(sim["S2"], lambda x: np.interp(x, edges, cdf)).statistic
    assert titles[1] == f"S2: KS = {ks2:.3f}"
    assert titles[2] == "S3: KS = 0.456"
    # the empirical histogram of S2 is drawn as a density: sum(density * width) = 1
    stairs = [p for p in axes[1].patches if type(p).__name__ == "StepPatch"]
    assert len(stairs) == 1
    values, drawn_edges = stairs[0].get_data()[:2]
    np.testing.assert_allclose(drawn_edges, edges)
    assert float(np.sum(values * np.diff(drawn_edges))) == pytest.approx(1.0)
    for ax in axes:
        assert "FCD" in ax.get_xlabel()
    assert axes[0].get_ylabel() == "probability density"


@pytest.mark.parametrize("case, match", [
    ("keys", "same subject keys"),
    ("matrix", "1-D array of FCD values"),
    ("hist_lengths", "edges of length"),
    ("hist_edges", "strictly increasing"),
    ("hist_counts", "non-negative"),
])
def test_fcd_histograms_bad_input(tmp_path, case, match):
    """Mismatched subjects, a 2-D FCD matrix instead of its values, malformed histograms."""
    emp, sim = fcd_samples()
    if case == "keys":
        del sim["S2"]
    elif case == "matrix":
        sim["S1"] = np.eye(5)
    elif case == "hist_lengths":
        emp["S1"] = (np.linspace(-1, 1, 5), np.ones(5))
    elif case == "hist_edges":
        emp["S1"] = (np.array([0.0, 0.5, 0.2]), np.ones(2))
    elif case == "hist_counts":
        emp["S1"] = (np.linspace(-1, 1, 3), np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match=match):
        plotting.plot_fcd_histograms(emp, sim, tmp_path / "fcd.png")


# ----------------------------------------------------------------------------- loss curves


def history_rows(n: int = 12, eval_every: int = 4, positive: bool = True):
    rows = []
    for ep in range(1, n + 1):
        loss = math.exp(-ep / 5) + 0.1 if positive else -1.0 + 0.05 * ep
        row = {"epoch": ep, "loss": loss, "grad_norm": 1.0 / ep, "lr": 0.01,
               "fc_corr": 0.8 - 0.02 * ep, "fcd": float("nan") if ep == 3 else 0.1, "note": "x"}
        if ep % eval_every == 0:
            row["eval/fc_corr"] = 0.2 + 0.01 * ep
        rows.append(row)
    return rows


def line(ax, label):
    return next(ln for ln in ax.get_lines() if ln.get_label() == label)


def test_loss_curves_panels_log_scale_and_eval_epochs(tmp_path, saved):
    """Three panels (loss, metrics, optimiser); the loss axis is logarithmic for a positive loss;
    eval/ series appear only at the epochs where they were logged; NaN and strings are skipped."""
    hist = history_rows()
    out = plotting.plot_loss_curves(hist, tmp_path / "loss.png")
    check_png(out, 11.0, 0.5 + 3.2 * 3)
    ax_loss, ax_metric, ax_opt = saved[-1].axes
    assert ax_loss.get_yscale() == "log"
    np.testing.assert_allclose(line(ax_loss, "loss").get_ydata(), [r["loss"] for r in hist])
    ev = line(ax_metric, "eval/fc_corr")
    np.testing.assert_array_equal(ev.get_xdata(), [4, 8, 12])
    np.testing.assert_allclose(ev.get_ydata(), [0.24, 0.28, 0.32])
    assert 3 not in line(ax_metric, "fcd").get_xdata()  # the NaN epoch is left out
    assert {ln.get_label() for ln in ax_opt.get_lines()} == {"lr", "grad_norm"}
    assert "note" not in {ln.get_label() for ax in saved[-1].axes for ln in ax.get_lines()}
    assert ax_opt.get_xlabel() == "epoch"


def test_loss_curves_negative_loss_is_linear_and_empty_history(tmp_path, saved):
    """A loss with negative values cannot be on a log axis; an empty history still gives a figure
    (a run with no epochs must not lose its other figures)."""
    plotting.plot_loss_curves(history_rows(positive=False), tmp_path / "a.png")
    assert saved[-1].axes[0].get_yscale() == "linear"
    out = plotting.plot_loss_curves([], tmp_path / "empty.png")
    check_png(out, 11.0, 0.5 + 3.2)


@pytest.mark.parametrize("hist, exc, match", [
    ([{"loss": 1.0}], ValueError, "no 'epoch' key"),
    ([{"epoch": "one", "loss": 1.0}], ValueError, "must be a number"),
    ([{"epoch": 1, "note": "x"}], ValueError, "no numeric values"),
    ({"epoch": 1, "loss": 1.0}, TypeError, "list of dicts"),
])
def test_loss_curves_bad_input(tmp_path, hist, exc, match):
    with pytest.raises(exc, match=match):
        plotting.plot_loss_curves(hist, tmp_path / "loss.png")


# ----------------------------------------------------------------------------- parameters


def parameter_rows(region_names: list[str] | None = None):
    """Rows like fitted_params.csv: 2 regional parameters x 10 regions + 2 scalars per subject."""
    rng = np.random.default_rng(3)
    rows = []
    for s in SUBJECTS:
        for j in range(N_REGIONS):
            region = region_names[j] if region_names else j
            rows.append({"subject": s, "region": region, "parameter": "a",
                         "value": -0.02 + 0.01 * rng.standard_normal(), "unit": "1/ms",
                         "scope": "subject_regional"})
            rows.append({"subject": s, "region": region, "parameter": "omega",
                         "value": 0.06 + 0.005 * rng.standard_normal(), "unit": "rad/ms"})
        rows.append({"subject": s, "region": "", "parameter": "G", "value": 0.5, "unit": "1"})
        rows.append({"subject": s, "region": None, "parameter": "speed", "value": 10.0,
                     "unit": "mm/ms"})
    return rows


def test_parameters_regional_lines_and_scalar_table(tmp_path, saved):
    """One panel per regional parameter with one line per subject holding its values in region
    order, the unit in the y label; the scalars in a table with units in the row labels."""
    rows = parameter_rows()
    out = plotting.plot_parameters(rows, tmp_path / "params.png")
    check_png(out, 12.0, 0.6 + 2.6 * 2 + 0.5 + 0.24 * (2 + 1))
    fig = saved[-1]
    ax_a, ax_w, ax_table = fig.axes
    assert ax_a.get_ylabel() == "a [1/ms]" and ax_w.get_ylabel() == "omega [rad/ms]"
    assert ax_w.get_xlabel() == "region (index)"
    assert [ln.get_label() for ln in ax_a.get_lines()] == SUBJECTS
    s2 = line(ax_a, "S2")
    want = [r["value"] for r in rows if r["subject"] == "S2" and r["parameter"] == "a"]
    np.testing.assert_array_equal(s2.get_xdata(), np.arange(N_REGIONS))
    np.testing.assert_allclose(s2.get_ydata(), want)
    cells = {c.get_text().get_text() for c in ax_table.tables[0].get_celld().values()}
    assert {"G [1]", "speed [mm/ms]", "0.5", "10", "S1", "S3"} <= cells


def test_parameters_region_names_placed_by_labels(tmp_path, saved):
    """Regions given by name (as the trainer writes them) go to their index in ``labels``, which
    label the x axis; rows given in shuffled order are still drawn in region order."""
    labels = [f"ROI_{j}" for j in range(N_REGIONS)]
    rows = parameter_rows(labels)
    rows = rows[::-1]
    plotting.plot_parameters(rows, tmp_path / "params.png", labels=labels)
    ax_a = next(ax for ax in saved[-1].axes if ax.get_ylabel() == "a [1/ms]")
    ax_bottom = saved[-1].axes[1]  # the lower regional panel carries the region names
    s1 = line(ax_a, "S1")
    np.testing.assert_array_equal(s1.get_xdata(), np.arange(N_REGIONS))
    want = [r["value"] for r in parameter_rows(labels)
            if r["subject"] == "S1" and r["parameter"] == "a"]
    np.testing.assert_allclose(s1.get_ydata(), want)
    assert [t.get_text() for t in ax_bottom.get_xticklabels()] == labels
    assert ax_bottom.get_xlabel() == "region"


def test_parameters_shared_values_and_fixed_marker(tmp_path, saved):
    """A regional parameter with the same values for every subject (a group-level parameter) is
    one black line, not three hidden under each other; a parameter with trainable False (also the
    string "False" of a CSV) is marked fixed in its title or table row."""
    rows = parameter_rows()
    shared = {j: 0.1 * j for j in range(N_REGIONS)}
    for r in rows:
        if r["parameter"] == "omega":
            r["value"] = shared[r["region"]]
            r["trainable"] = False
        if r["parameter"] == "speed":
            r["trainable"] = "False"
    plotting.plot_parameters(rows, tmp_path / "params.png", fitted_only=False)
    ax_a, ax_w, ax_table = saved[-1].axes
    assert len(ax_a.get_lines()) == 3
    (only,) = ax_w.get_lines()
    assert only.get_label() == "all subjects (shared)"
    np.testing.assert_allclose(only.get_ydata(), [shared[j] for j in range(N_REGIONS)])
    assert ax_w.get_title().endswith("(fixed)") and not ax_a.get_title().endswith("(fixed)")
    cells = {c.get_text().get_text() for c in ax_table.tables[0].get_celld().values()}
    assert {"speed [mm/ms] (fixed)", "G [1]"} <= cells


def test_parameters_fitted_only_with_bounds_and_regime(tmp_path, saved):
    """By default only the fitted parameters are drawn (the fixed ones named in the title); the
    rows of a Hopf network carry bounds and the regime boundary a = 0, drawn as lines."""
    import torch

    import brainfit

    model = brainfit.create_model("hopf", n_regions=4, a={"value": -2e-5, "trainable": True,
                                                          "scope": "regional", "low": -2e-4,
                                                          "high": 1e-4}, omega=3e-4)
    net = brainfit.BrainNetwork(model, torch.ones(4, 4) - torch.eye(4), G={"value": 1e-4,
                                                                            "high": 2e-3})
    rows = [{**r, "subject": "S1"} for r in net.param_table()]
    fig = plotting.plot_parameters(rows, None)
    assert isinstance(fig, Figure) and not saved  # path None: the Figure back, nothing written
    ax_a, ax_table = fig.axes
    assert ax_a.get_ylabel() == "a [1/ms]"
    flat = {ln.get_label(): ln.get_ydata()[0] for ln in ax_a.get_lines()
            if ln.get_label()[0] != "S"}
    assert flat == {"lower bound a = -0.0002": -2e-4, "upper bound a = 0.0001": 1e-4,
                    "a = 0: the model changes regime": 0.0}
    cells = {c.get_text().get_text() for c in ax_table.tables[0].get_celld().values()}
    assert "G [1] in [0, 0.002]" in cells
    assert not any(c.startswith(("omega", "gamma", "beta")) for c in cells)
    assert "not fitted (held at their values): omega, gamma, beta" in fig.get_suptitle()
    # bounds and regimes given by hand override the rows' (as for rows read from a CSV)
    fig = plotting.plot_parameters(rows, None, bounds={"a": (None, 5e-5)}, regimes={"a": -1e-5})
    labels = {ln.get_label() for ln in fig.axes[0].get_lines()}
    assert {"upper bound a = 5e-05", "a = -1e-05: the model changes regime"} <= labels
    assert not any(lab.startswith("lower bound") for lab in labels)


@pytest.mark.parametrize("case, exc, match", [
    ("empty", ValueError, "empty"),
    ("missing_key", ValueError, "lacks key"),
    ("value", ValueError, "must be a number"),
    ("units", ValueError, "two units"),
    ("duplicate", ValueError, "given twice"),
    ("unknown_label", ValueError, "not one of the"),
    ("not_rows", TypeError, "list of dicts"),
])
def test_parameters_bad_input(tmp_path, case, exc, match):
    rows = parameter_rows()
    labels = None
    if case == "empty":
        rows = []
    elif case == "missing_key":
        del rows[0]["parameter"]
    elif case == "value":
        rows[0]["value"] = "fast"
    elif case == "units":
        rows[2]["unit"] = "1/s"
    elif case == "duplicate":
        rows.append(dict(rows[0]))
    elif case == "unknown_label":
        labels = [f"ROI_{j}" for j in range(N_REGIONS)]
        rows[0]["region"] = "ROI_99"
    elif case == "not_rows":
        rows = rows[0]
    with pytest.raises(exc, match=match):
        plotting.plot_parameters(rows, tmp_path / "p.png", labels=labels)


# ----------------------------------------------------------------------------- BOLD


def test_bold_carpet_and_global_signal(tmp_path, saved):
    """The carpet is each region z-scored (a flat region drawn as 0), regions x time; the global
    signal is the mean over regions at times k * TR seconds."""
    rng = np.random.default_rng(4)
    bold = rng.standard_normal((50, N_REGIONS)) * 0.01 + 1.0
    bold[:, 3] = 2.0  # a flat region
    out = plotting.plot_bold(bold, 0.72, tmp_path / "sub" / "bold.png", title="S1")
    assert out.parent.name == "sub"  # missing parent folders are made
    check_png(out, 11.0, 6.5)
    fig = saved[-1]
    carpet = next(ax for ax in fig.axes if ax.get_images())
    sd = bold.std(0)
    sd[3] = 1.0
    z = (bold - bold.mean(0)) / sd
    z[:, 3] = 0.0
    np.testing.assert_allclose(carpet.get_images()[0].get_array(), z.T, atol=1e-12)
    mean_ax = next(ax for ax in fig.axes if ax.get_xlabel() == "time (s)")
    (ln,) = mean_ax.get_lines()
    np.testing.assert_allclose(ln.get_xdata(), np.arange(50) * 0.72)
    np.testing.assert_allclose(ln.get_ydata(), bold.mean(1))
    assert fig.get_suptitle() == "S1"


@pytest.mark.parametrize("bold, tr, match", [
    (np.zeros(20), 2.0, r"\(T, N\)"),
    (np.zeros((1, 4)), 2.0, "T >= 2"),
    (np.full((5, 4), np.nan), 2.0, "non-finite"),
    (np.zeros((5, 4)), 0.0, "repetition time"),
    (np.zeros((5, 4)), "2s", "repetition time"),
])
def test_bold_bad_input(tmp_path, bold, tr, match):
    with pytest.raises(ValueError, match=match):
        plotting.plot_bold(bold, tr, tmp_path / "b.png")


# ----------------------------------------------------------------------------- connectivity


def test_connectivity_matrices_and_log_scatter(tmp_path, saved):
    """Per subject the SC and fitted matrices on one colour scale, and fitted vs SC on log axes
    with the log-log correlation in the title."""
    rng = np.random.default_rng(3)
    sc = {s: rng.random((6, 6)) * (rng.random((6, 6)) > 0.3) for s in SUBJECTS[:2]}
    fit = {s: m * np.exp(0.3 * rng.standard_normal((6, 6))) for s, m in sc.items()}
    check_png(plotting.plot_connectivity(sc, fit, tmp_path / "c.png"), 12.0, 0.6 + 3.4 * 2)
    fig = saved[-1]
    images = [im for ax in fig.axes for im in ax.get_images()]
    np.testing.assert_array_equal(images[0].get_array(), sc["S1"])
    np.testing.assert_array_equal(images[1].get_array(), fit["S1"])
    assert images[0].get_clim() == images[1].get_clim()
    scatter = [ax for ax in fig.axes if ax.get_title().startswith("log-log r")][0]
    assert scatter.get_xscale() == "log" and scatter.get_yscale() == "log"
    sel = (sc["S1"] > 0) & ~np.eye(6, dtype=bool)
    r = np.corrcoef(np.log(sc["S1"][sel]), np.log(fit["S1"][sel]))[0, 1]
    assert scatter.get_title() == f"log-log r = {r:.3f}"
    with pytest.raises(ValueError, match="negative"):
        plotting.plot_connectivity({"S1": -sc["S1"]}, {"S1": fit["S1"]}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="same subject keys"):
        plotting.plot_connectivity(sc, {"S1": fit["S1"]}, tmp_path / "x.png")


def test_baselines_one_column_per_subject_and_the_mean(tmp_path, saved):
    scores = {"S1": {"fc_similarity": 0.5, "sc_fc_r": 0.2, "group_fc_r": 0.6},
              "S2": {"fc_similarity": 0.7, "sc_fc_r": 0.3, "group_fc_r": 0.5}}
    names = {"sc_fc_r": "SC", "group_fc_r": "leave-one-out group FC"}
    plotting.plot_baselines(scores, names, tmp_path / "b.png")
    ax = saved[-1].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["S1", "S2", "mean"]
    fit = [c for c in ax.collections if c.get_label().startswith("fitted model")][0]
    np.testing.assert_allclose(fit.get_offsets()[:, 1], [0.5, 0.7, 0.6])
    group = [c for c in ax.collections if c.get_label() == "leave-one-out group FC"][0]
    np.testing.assert_allclose(group.get_offsets()[:, 1], [0.6, 0.5, 0.55])
    with pytest.raises(ValueError, match="no 'fc_similarity'"):
        plotting.plot_baselines({"S1": {"sc_fc_r": 0.1}}, names, tmp_path / "b.png")


# ----------------------------------------------------------------------------- notebooks' figures


def test_path_none_returns_the_figure_and_writes_nothing(tmp_path, saved, monkeypatch):
    monkeypatch.chdir(tmp_path)
    emp, sim = fc_pair()
    fig = plotting.plot_fc_comparison(emp, sim, None, None)
    assert isinstance(fig, Figure) and not saved and not list(tmp_path.iterdir())
    with pytest.raises(TypeError, match="or None"):
        plotting.plot_bold(np.zeros((5, 3)), 2.0, 3)


def test_hemispheres_and_region_order():
    labels = ["Precentral_L", "Precentral_R", "lh.cuneus", "rh.cuneus", "L_V1", "Vermis_3",
              "Left-Thalamus"]
    groups = plotting.hemispheres(labels)
    assert groups == ["left", "right", "left", "right", "left", "other", "left"]
    np.testing.assert_array_equal(plotting.region_order(groups), [0, 2, 4, 6, 1, 3, 5])


def test_fc_comparison_and_fc_ordered_and_labelled_by_group(tmp_path, saved):
    """Given groups, the matrices are drawn ordered by group (left first) with a line between
    the groups; with labels for few regions every region is named in that order."""
    emp, sim = fc_pair(subjects=["S1"])
    labels = [f"R{j}_{'L' if j % 2 == 0 else 'R'}" for j in range(N_REGIONS)]
    groups = plotting.hemispheres(labels)
    order = [0, 2, 4, 6, 8, 1, 3, 5, 7, 9]
    fig = plotting.plot_fc_comparison(emp, sim, None, None, labels=labels, groups=groups)
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.get_images()[0].get_array(), emp["S1"][np.ix_(order, order)])
    assert [t.get_text() for t in ax.get_xticklabels()] == [labels[i] for i in order]
    assert 4.5 in [ln.get_xdata()[0] for ln in ax.get_lines()]  # the line between hemispheres
    fig = plotting.plot_fc({"empirical": emp["S1"], "simulated": sim["S1"]}, None, labels=labels,
                           groups=groups)
    a0, a1 = fig.axes[:2]
    np.testing.assert_array_equal(a1.get_images()[0].get_array(), sim["S1"][np.ix_(order, order)])
    r = np.corrcoef(upper(emp["S1"]), upper(sim["S1"]))[0, 1]
    assert a1.get_title() == f"simulated (r = {r:.3f} with empirical)"
    with pytest.raises(ValueError, match="one per region"):
        plotting.plot_fc({"e": emp["S1"]}, None, labels=labels[:3])


def test_fcd_in_seconds():
    rng = np.random.default_rng(0)
    m = np.corrcoef(rng.standard_normal((6, 30)))
    fig = plotting.plot_fcd({"empirical": m, "simulated": m}, step=2.0, window=60.0)
    ax = fig.axes[0]
    assert ax.get_images()[0].get_extent() == [-1.0, 11.0, 11.0, -1.0]
    assert ax.get_xlabel() == "window start (s)" and "60 s windows" in fig.get_suptitle()
    with pytest.raises(ValueError, match="positive"):
        plotting.plot_fcd({"e": m}, step=0.0)


def test_oscillator_spectrum_peak_and_phase_portrait():
    """A 10 Hz rotation: the spectrum's legend gives its peak, the portrait holds the loop."""
    t = np.arange(4000) * 0.5  # ms
    w = 2 * np.pi * 10 / 1000  # rad/ms
    x, y = np.cos(w * t), np.sin(w * t)
    fig = plotting.plot_oscillator(t, {"undamped": x}, {"undamped": y},
                                   field=lambda X, Y: (-w * Y, w * X), fmax=40)
    ax_t, ax_p, ax_s = fig.axes
    (spec,) = ax_s.get_lines()
    assert spec.get_label() == "undamped: peak 10 Hz"  # 1 s Welch segments: 1 Hz bins
    np.testing.assert_allclose(ax_p.get_lines()[0].get_xdata(), x)
    assert ax_p.collections  # the streamlines of the field
    f = np.fft.rfftfreq(t.size, 0.5e-3)
    p = np.abs(np.fft.rfft(x)) ** 2 + 1e-12
    fig = plotting.plot_spectrum(f, {"x": p}, fmax=100)
    assert fig.axes[0].get_lines()[0].get_label() == "x: peak 10 Hz"
    with pytest.raises(ValueError, match="same labels"):
        plotting.plot_oscillator(t, {"a": x}, {"b": y})
    with pytest.raises(ValueError, match="pair"):
        plotting.plot_phase_portrait({"a": x})


def test_bifurcation_branches_open_at_the_critical_value():
    """Fixed points below 0 are one dot at 0; above, the extrema are +-sqrt(a)."""
    t = np.arange(2000) * 0.5
    a = np.linspace(-0.1, 0.1, 11)
    traces = np.array([np.sqrt(max(v, 0.0)) * np.cos(0.0628 * t) for v in a])
    fig = plotting.plot_bifurcation(a, traces, name="a", unit="1/ms", dt=0.5, critical=0.0,
                                    critical_label="Hopf bifurcation")
    top, bottom = fig.axes
    dots = [ln for ln in top.get_lines() if ln.get_linestyle() == "None"]
    last = dots[-1].get_ydata()
    np.testing.assert_allclose([last.min(), last.max()], [-np.sqrt(0.1), np.sqrt(0.1)], rtol=1e-3)
    np.testing.assert_array_equal(dots[0].get_ydata(), [0.0])
    freq = [ln for ln in bottom.get_lines() if ln.get_marker() == "o"][0]
    assert freq.get_xdata().min() > 0 and np.allclose(freq.get_ydata(), 10.0, atol=1.0)
    assert "Hopf bifurcation (a = 0)" in {ln.get_label() for ln in top.get_lines()}
    with pytest.raises(ValueError, match=r"\(P, T\)"):
        plotting.plot_bifurcation(a, traces[:3])


def test_timeseries_panels():
    t = np.arange(10) * 2.0
    fig = plotting.plot_timeseries(t, {"BOLD": np.ones((10, 3)), "drive": np.zeros(10)},
                                   xlabel="time (s)")
    a, b = fig.axes
    assert len(a.get_lines()) == 3 and b.get_xlabel() == "time (s)" and a.get_title() == "BOLD"
    with pytest.raises(ValueError, match="one time per sample"):
        plotting.plot_timeseries(t, {"x": np.zeros(9)})


def test_missing_matplotlib_says_how_to_install_it(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'brainfit\[plot\]'"):
        plotting.plot_timeseries(np.arange(3.0), np.zeros(3))
