"""brainfit.data.Subject and Cohort: validation, selection, temporal split, batching, npz format."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brainfit.data import Cohort, DataError, Subject, load_npz, save_npz


def make_subject(sid="s0", n=4, t=50, seed=0, tr=1.0, lengths=True, **kw) -> Subject:
    rng = np.random.default_rng(seed)
    w = rng.random((n, n))
    np.fill_diagonal(w, 0.0)
    ln = 10.0 + 100.0 * rng.random((n, n)) if lengths else None
    return Subject(id=sid, weights=w, lengths=ln, bold=rng.standard_normal((t, n)), tr=tr, **kw)


# ----------------------------------------------------------------------------- Subject validation


def test_subject_keeps_arrays_and_derived_sizes():
    """A valid subject stores what it was given; N, T and duration follow from the shapes."""
    s = make_subject(n=5, t=40, tr=0.72, labels=list("abcde"))
    assert s.n_regions == 5 and s.n_times == 40
    assert s.duration == pytest.approx(40 * 0.72)
    assert s.weights.dtype == np.float64 and s.labels == list("abcde")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(weights=np.ones((3, 4))), r"square \(N, N\).*got shape \(3, 4\)"),
        (dict(weights=np.array([[0, np.nan], [1, 0]])), r"non-finite.*NaN"),
        (dict(weights=np.array([[0, -1.0], [1, 0]])), r"negative entries.*>= 0"),
        (dict(weights=np.ones((2, 2)), lengths=-np.ones((2, 2))), r"negative tract lengths"),
        (dict(weights=np.ones((3, 3)), bold=np.ones((10, 4)), tr=1.0),
         r"3 regions but bold has 4 columns"),
        (dict(weights=np.ones((3, 3)), bold=np.random.rand(3, 10), tr=1.0),
         r"looks like \(N, T\).*pass bold\.T"),
        (dict(weights=np.ones((2, 2)), bold=np.c_[np.random.rand(10), np.ones(10)], tr=1.0),
         r"zero variance in region\(s\) \[1\]"),
        (dict(weights=np.ones((2, 2)), bold=np.random.rand(10, 2)), r"without a TR.*pass tr="),
        (dict(weights=np.ones((2, 2)), bold=np.random.rand(10, 2), tr=720.0),
         r"milliseconds\? then pass tr=0\.72"),
        (dict(weights=np.ones((2, 2)), bold=np.random.rand(10, 2), tr=-2.0),
         r"tr must be a positive, finite number \(seconds\)"),
        (dict(weights=np.ones((2, 2)), bold=np.random.rand(10, 2), tr="2"),
         r"tr must be a positive"),
        (dict(weights=np.ones((2, 2)), labels=["a"]), r"1 region labels for 2 regions"),
        (dict(weights=np.ones((3, 3)), fc_target=np.triu(np.ones((3, 3)))), r"not symmetric"),
        (dict(weights=np.ones((2, 2)), fcd_target=(np.array([0.0, 1.0]), np.array([1.0, 2.0]))),
         r"edges of length M \+ 1"),
        (dict(), r"at least one of weights, bold or fc_target"),
    ],
)
def test_subject_rejects_bad_input_with_named_fix(kwargs, match):
    """Each bad input raises DataError naming the subject and its source file, and the fix."""
    with pytest.raises(DataError, match=match) as info:
        Subject(id="bad", source="/data/bad.mat", **kwargs)
    assert "subject 'bad' (from /data/bad.mat)" in str(info.value)


def test_subject_accepts_torch_and_lists():
    """Tensors and nested lists are converted to float64 NumPy arrays."""
    s = Subject(id=3, weights=torch.ones(2, 2), bold=[[0.0, 1.0], [1.0, 0.0], [2.0, 5.0]], tr=2)
    assert s.id == "3" and isinstance(s.weights, np.ndarray) and s.tr == 2.0


# ----------------------------------------------------------------------------- Cohort


def test_cohort_rejects_empty_duplicates_and_mixed_parcellations():
    """Empty cohorts, duplicate ids and different region counts are errors with the fix."""
    with pytest.raises(DataError, match="empty"):
        Cohort([])
    a, b = make_subject("x", seed=1), make_subject("x", seed=2)
    with pytest.raises(DataError, match="duplicate subject id 'x'.*must be unique"):
        Cohort([a, b])
    with pytest.raises(DataError, match="different region counts"):
        Cohort([make_subject("a", n=4), make_subject("b", n=5)])
    with pytest.raises(DataError, match="different order"):
        Cohort([make_subject("a", labels=list("abcd")), make_subject("b", labels=list("abdc"))])


def test_cohort_iteration_selection_and_lookup():
    """Iteration keeps order; select returns the requested ids in the requested order."""
    c = Cohort([make_subject(f"s{k}", seed=k) for k in range(4)], name="toy")
    assert len(c) == 4 and [s.id for s in c] == ["s0", "s1", "s2", "s3"]
    assert c.select(["s2", "s0"]).ids == ["s2", "s0"]
    assert c["s1"] is c[1] and "s3" in c
    with pytest.raises(DataError, match=r"no subject 'zz'.*available ids"):
        c.select("zz")


def test_split_is_a_temporal_cut_of_each_series():
    """train + test = the original series, cut at round(f * T), for every subject."""
    c = Cohort([make_subject("a", t=50), make_subject("b", t=31, seed=3)])
    train, test = c.split(0.8)
    for s, tr_s, te_s in zip(c, train, test, strict=True):
        cut = round(0.8 * s.n_times)
        np.testing.assert_array_equal(tr_s.bold, s.bold[:cut])
        np.testing.assert_array_equal(te_s.bold, s.bold[cut:])
        assert tr_s.id == te_s.id == s.id and tr_s.tr == s.tr
    with pytest.raises(ValueError, match=r"train_fraction must be in \(0, 1\)"):
        c.split(1.0)
    targets_only = Cohort([Subject(id="g", weights=np.ones((3, 3)), fc_target=np.eye(3))])
    with pytest.raises(DataError, match="no BOLD to split.*select"):
        targets_only.split()


def test_batch_shapes_dtype_device(device):
    """batch stacks subjects batch-first on the device, in the requested dtype."""
    c = Cohort([make_subject(f"s{k}", seed=k, t=30) for k in range(3)])
    b = c.batch(device=device, dtype=torch.float64)
    assert b.weights.shape == (3, 4, 4) and b.lengths.shape == (3, 4, 4)
    assert b.bold.shape == (3, 30, 4) and b.tr.shape == (3,)
    assert b.bold.device.type == device.type and b.bold.dtype == torch.float64
    np.testing.assert_allclose(b.bold[1].cpu().numpy(), c[1].bold)
    assert c.batch(ids=["s2"]).ids == ["s2"]
    assert c.batch().weights.dtype == torch.get_default_dtype()


def test_batch_unequal_lengths_needs_crop():
    """Different T raise unless crop=True, which keeps the first min(T) volumes of each."""
    c = Cohort([make_subject("a", t=30), make_subject("b", t=20, seed=1)])
    with pytest.raises(DataError, match="different lengths.*crop=True"):
        c.batch()
    b = c.batch(crop=True)
    assert b.bold.shape == (2, 20, 4)
    np.testing.assert_allclose(b.bold[0].numpy(), c[0].bold[:20], rtol=1e-6)


def test_batch_refuses_partial_lengths():
    """Lengths for some subjects only cannot be batched: the message names who lacks them."""
    c = Cohort([make_subject("a"), make_subject("b", lengths=False)])
    with pytest.raises(DataError, match=r"subjects \['b'\] have no lengths"):
        c.batch()


def test_group_connectome_averages_lengths_over_existing_edges():
    """Weights: plain mean. Lengths: mean over subjects where the edge exists (weight > 0)."""
    w1 = np.array([[0, 2.0], [1.0, 0]])
    w2 = np.array([[0, 0.0], [3.0, 0]])
    l1 = np.array([[0, 10.0], [20.0, 0]])
    l2 = np.array([[0, 99.0], [40.0, 0]])
    c = Cohort([Subject(id="a", weights=w1, lengths=l1), Subject(id="b", weights=w2, lengths=l2)])
    w, ln = c.group_connectome()
    np.testing.assert_allclose(w, [[0, 1.0], [2.0, 0]])
    np.testing.assert_allclose(ln, [[0, 10.0], [30.0, 0]])  # (0,1): only subject a has the edge
    w_max, _ = c.group_connectome(normalize="max")
    np.testing.assert_allclose(w_max, [[0, 0.5], [(0.5 + 1.0) / 2, 0]])


# ----------------------------------------------------------------------------- npz format


def test_npz_round_trip_is_exact_and_byte_reproducible(tmp_path):
    """save_npz then load_npz gives back every array; saving twice gives identical bytes."""
    c = Cohort([make_subject("a", labels=list("abcd")), make_subject("b", seed=1,
                                                                      labels=list("abcd"))],
               name="toy")
    p1 = save_npz(c, tmp_path / "one.npz", info={"k": 1}, bold_dtype=np.float64)
    p2 = save_npz(c, tmp_path / "two.npz", info={"k": 1}, bold_dtype=np.float64)
    assert p1.read_bytes() == p2.read_bytes()
    back = load_npz(p1)
    assert back.ids == ["a", "b"] and back.name == "toy" and back.info == {"k": 1}
    for s, r in zip(c, back, strict=True):
        np.testing.assert_array_equal(s.weights, r.weights)
        np.testing.assert_array_equal(s.lengths, r.lengths)
        np.testing.assert_array_equal(s.bold, r.bold)
        assert r.tr == s.tr and r.labels == list("abcd")


def test_npz_unequal_lengths_and_targets(tmp_path):
    """Series of different lengths are stored per subject; FC/FCD targets survive the trip."""
    edges, counts = np.linspace(-1, 1, 5), np.array([0.0, 1.0, 3.0, 1.0])
    a = make_subject("a", t=20)
    b = make_subject("b", t=25, seed=1)
    c = Cohort([a.replace(fc_target=np.eye(4), fcd_target=(edges, counts)),
                b.replace(fc_target=np.eye(4), fcd_target=(edges, 2 * counts))])
    back = load_npz(save_npz(c, tmp_path / "c.npz", bold_dtype=np.float64))
    assert [s.n_times for s in back] == [20, 25]
    np.testing.assert_array_equal(back[1].fcd_target[1], 2 * counts)
    np.testing.assert_array_equal(back[0].fc_target, np.eye(4))


def test_npz_errors_name_the_file(tmp_path):
    """A corrupt or incomplete .npz raises DataError naming the file."""
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(DataError, match=r"cannot read .*bad\.npz"):
        load_npz(bad)
    empty = tmp_path / "empty.npz"
    np.savez(empty, other=np.ones(3))
    with pytest.raises(DataError, match=r"empty\.npz has no 'weights'"):
        load_npz(empty)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_npz(tmp_path / "missing.npz")


def test_a_split_that_leaves_a_part_too_short_names_the_fraction_that_works():
    rng = np.random.default_rng(0)
    s = Subject("a", weights=np.ones((3, 3)) - np.eye(3), bold=rng.standard_normal((10, 3)),
                tr=2.0)
    with pytest.raises(DataError, match=r"leaves 9 to fit and 1 to hold out.*between 0.3 and 0.7"):
        Cohort([s]).split(0.9)
