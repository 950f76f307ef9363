"""icas.features: every method against its reference library, on files."""

from __future__ import annotations

import io

import cv2
import datasketch
import imagehash
import numpy as np
import pytest
import scipy.fftpack
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from icas import _minhash_sig, _phash
from icas.features import DEFAULT_SIZE, METHODS, Features, corner_values, extract
from icas.io import list_images, read_image

# ---------------------------------------------------------------------------
# data on disk


def _save(path, rgb: np.ndarray, **kw):
    Image.fromarray(rgb).save(path, **kw)
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory, photos, photo_groups):
    """Real photos (JPEG and PNG, some EXIF-rotated), near-duplicates, odd
    files, and bad files mixed in, with awkward names."""
    d = tmp_path_factory.mktemp("features")
    paths = []
    for i, p in enumerate(photos):
        paths.append(_save(d / f"photo {i}.jpg", p, quality=90))
    images, _ = photo_groups
    for i, v in enumerate(images[:12]):
        paths.append(_save(d / f"variant_{i:02d}.png", v))
    ex = Image.Exif()
    ex[0x0112] = 6
    paths.append(_save(d / "rotated é.jpg", photos[2], quality=90, exif=ex))
    paths.append(_save(d / "flat.png", np.full((40, 60, 3), 128, np.uint8)))
    paths.append(_save(d / "tiny.png", photos[3][:5, :7]))
    g16 = (cv2.cvtColor(photos[4], cv2.COLOR_RGB2GRAY).astype(np.uint16) << 8) | 0x55
    cv2.imwrite(str(d / "gray16.png"), g16)
    paths.append(d / "gray16.png")
    paths.append(_save(d / "palette.gif", photos[5]))
    rgba = np.dstack([photos[1], np.full(photos[1].shape[:2], 200, np.uint8)])
    paths.append(_save(d / "rgba.png", rgba))
    # bad ones, in between
    (d / "zero.jpg").write_bytes(b"")
    (d / "text.jpg").write_bytes(b"not an image at all")
    buf = io.BytesIO()
    Image.fromarray(photos[0]).save(buf, "JPEG")
    (d / "cut.jpg").write_bytes(buf.getvalue()[:5000])
    bad = {d / "zero.jpg": "empty file", d / "text.jpg": "not an image", d / "cut.jpg": "truncated"}
    order = (
        paths[:3] + [d / "zero.jpg"] + paths[3:10] + [d / "text.jpg"] + paths[10:] + [d / "cut.jpg"]
    )
    return order, bad


def good(folder):
    order, bad = folder
    return [p for p in order if p not in bad]


# ---------------------------------------------------------------------------
# common behaviour


@pytest.mark.parametrize("method", METHODS)
def test_skips_bad_files_in_order(folder, method):
    order, bad = folder
    kw = {"hash_size": 8, "highfreq_factor": 4} if method == "imagehash" else {}
    f = extract(order, method, n_threads=2, **kw)
    assert isinstance(f, Features) and f.method == method
    assert f.paths == good(folder)
    assert f.skipped == [(p, bad[p]) for p in order if p in bad]
    assert len(f) == len(f.paths)
    rows = f.offsets.size - 1 if method == "orb" else f.data.shape[0]
    assert rows == len(f.paths)


@pytest.mark.parametrize("method", METHODS)
def test_thread_count_does_not_change_anything(folder, method):
    order, _ = folder
    kw = {"hash_size": 16, "highfreq_factor": 4} if method == "imagehash" else {}
    ref = extract(order, method, n_threads=1, **kw)
    for n_threads in (2, 3, -1, None):
        f = extract(order, method, n_threads=n_threads, **kw)
        assert f.paths == ref.paths and f.skipped == ref.skipped
        np.testing.assert_array_equal(f.data, ref.data)
        if method == "orb":
            np.testing.assert_array_equal(f.offsets, ref.offsets)
    # the input order decides the output order
    rev = extract(order[::-1], method, n_threads=3, **kw)
    assert rev.paths == ref.paths[::-1]
    if method != "orb":
        np.testing.assert_array_equal(rev.data, ref.data[::-1])


def test_empty_and_all_bad(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"")
    shapes = {
        "ssim": (0, 128, 128),
        "tm": (0, 128, 128, 3),
        "imagehash": (0, 8),
        "minhash": (0, 128),
        "orb": (0, 32),
    }
    for method, shape in shapes.items():
        for paths in ([], [tmp_path / "a.jpg"]):
            f = extract(paths, method)
            assert f.data.shape == shape and len(f) == 0
            assert f.skipped == [(p, "empty file") for p in paths]
            if method == "orb":
                np.testing.assert_array_equal(f.offsets, [0])


def test_folder_argument(folder):
    order, _ = folder
    d = order[0].parent
    f = extract(d, "ssim", size=(16, 16))
    listed = list_images(d)
    assert sorted(p.name for p in listed) == sorted(p.name for p in order)
    assert f.paths == [p for p in listed if p.name not in ("zero.jpg", "text.jpg", "cut.jpg")]
    assert [p.name for p, _ in f.skipped] == ["cut.jpg", "text.jpg", "zero.jpg"]


def test_parameter_errors(folder):
    order, _ = folder
    with pytest.raises(ValueError, match="method must be one of"):
        extract(order, "sift")
    with pytest.raises(TypeError, match=r"unexpected parameter\(s\) hash_size for method 'orb'"):
        extract(order, "orb", hash_size=8)
    with pytest.raises(TypeError, match="accepted: none"):
        extract(order, "ssim", nfeatures=3)
    with pytest.raises(ValueError, match="hash_size must be >= 2"):
        extract(order, "imagehash", hash_size=1)
    with pytest.raises(TypeError, match="highfreq_factor must be an int"):
        extract(order, "imagehash", highfreq_factor=2.5)
    with pytest.raises(ValueError, match="scheme must be one of"):
        extract(order, "minhash", scheme="affine64")
    with pytest.raises(ValueError, match="nfeatures must be >= 1"):
        extract(order, "orb", nfeatures=0)
    with pytest.raises(ValueError, match="n_threads must be >= 1"):
        extract(order, "ssim", n_threads=0)
    with pytest.raises(ValueError, match="not both"):
        extract(order, "ssim", size=8, scale=0.5)


def test_progress_bar_goes_to_stderr(folder, capsys):
    order, _ = folder
    extract(order[:4], "ssim", size=8, progress=True)
    out, err = capsys.readouterr()
    assert out == "" and "ssim features" in err and "4/4" in err
    extract(order[:4], "ssim", size=8)
    assert capsys.readouterr() == ("", "")


# ---------------------------------------------------------------------------
# ssim / tm


def test_ssim_tm_pixels(folder):
    paths = good(folder)
    s = extract(paths, "ssim")
    t = extract(paths, "tm")
    w, h = DEFAULT_SIZE
    assert s.data.shape == (len(paths), h, w) and s.data.dtype == np.uint8
    assert t.data.shape == (len(paths), h, w, 3) and t.data.dtype == np.uint8
    assert s.data.flags.c_contiguous and t.data.flags.c_contiguous
    for i, p in enumerate(paths):
        np.testing.assert_array_equal(s.data[i], read_image(p, color=False, size=DEFAULT_SIZE))
        np.testing.assert_array_equal(t.data[i], read_image(p, size=DEFAULT_SIZE))
    assert s.params == {"size": DEFAULT_SIZE, "scale": None}
    s2 = extract(paths, "ssim", size=(40, 30))
    assert s2.data.shape == (len(paths), 30, 40)


def test_ssim_scale_needs_one_size(folder, photo_groups):
    paths = good(folder)
    with pytest.raises(ValueError, match="different sizes.*pass size=\\(w, h\\) instead of scale"):
        extract(paths, "ssim", scale=0.5)
    same = [p for p in paths if p.name.startswith("variant")]  # all 96x96
    f = extract(same, "tm", scale=0.5)
    assert f.data.shape == (len(same), 48, 48, 3)


# ---------------------------------------------------------------------------
# imagehash


def reference_phash(path, hash_size, highfreq_factor) -> np.ndarray:
    with Image.open(path) as im:
        h = imagehash.phash(ImageOps.exif_transpose(im), hash_size, highfreq_factor)
    return np.packbits(h.hash.reshape(-1))


@pytest.mark.parametrize(("hash_size", "highfreq_factor"), [(8, 4), (16, 4), (64, 16), (5, 3)])
def test_imagehash_bit_identical(folder, hash_size, highfreq_factor):
    paths = [p for p in good(folder) if p.name != "gray16.png"]
    f = extract(paths, "imagehash", hash_size=hash_size, highfreq_factor=highfreq_factor)
    assert f.data.dtype == np.uint8
    assert f.data.shape == (len(paths), (hash_size * hash_size + 7) // 8)
    for i, p in enumerate(paths):
        expect = reference_phash(p, hash_size, highfreq_factor)
        np.testing.assert_array_equal(f.data[i], expect, err_msg=p.name)


def test_imagehash_defaults_and_packing(folder):
    p = good(folder)[0]
    f = extract([p], "imagehash")
    assert f.params == {"size": None, "scale": None, "hash_size": 8, "highfreq_factor": 4}
    with Image.open(p) as im:
        h = imagehash.phash(im)  # imagehash's defaults are icas's
    bits = np.unpackbits(f.data[0]).reshape(8, 8).astype(bool)
    np.testing.assert_array_equal(bits, h.hash)  # row-major, most significant bit first


def test_imagehash_rotated_and_16bit(folder):
    order, _ = folder
    d = order[0].parent
    # the EXIF-rotated photo hashes like the upright image it shows
    rotated = extract([d / "rotated é.jpg"], "imagehash", hash_size=8, highfreq_factor=4)
    with Image.open(d / "rotated é.jpg") as im:
        upright = ImageOps.exif_transpose(im)
        assert upright.size != im.size
        expect = np.packbits(imagehash.phash(upright, 8, 4).hash.reshape(-1))
    np.testing.assert_array_equal(rotated.data[0], expect)
    # 16 bits: hashed as the 8-bit image (Pillow's convert("L") would clip to white)
    f = extract([d / "gray16.png"], "imagehash", hash_size=8, highfreq_factor=4)
    g8 = (cv2.imread(str(d / "gray16.png"), cv2.IMREAD_UNCHANGED) >> 8).astype(np.uint8)
    expect = np.packbits(imagehash.phash(Image.fromarray(g8), 8, 4).hash.reshape(-1))
    np.testing.assert_array_equal(f.data[0], expect)


def test_imagehash_with_size(folder):
    p = good(folder)[1]
    f = extract([p], "imagehash", size=(50, 70), hash_size=8, highfreq_factor=4)
    with Image.open(p) as im:
        small = im.resize((50, 70), Image.Resampling.LANCZOS)
        expect = np.packbits(imagehash.phash(small, 8, 4).hash.reshape(-1))
    np.testing.assert_array_equal(f.data[0], expect)


def scipy_bits(pixels, hash_size):
    low = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)[:hash_size, :hash_size]
    return low > np.median(low)


def test_phash_dct_matches_scipy_closely(photos):
    """The low-frequency block equals scipy's DCT to rounding, far inside the
    tolerance that decides when to fall back; photos never fall back."""
    for hash_size, factor in ((8, 4), (64, 16), (7, 3)):
        n = hash_size * factor
        for p in photos:
            small = Image.fromarray(p).convert("L").resize((n, n), Image.Resampling.LANCZOS)
            px = np.asarray(small)
            ours = _phash.dct_lowfreq(px, hash_size)
            ref = scipy.fftpack.dct(scipy.fftpack.dct(px, axis=0), axis=1)[:hash_size, :hash_size]
            assert np.abs(ours - ref).max() < _phash._tolerance(px) / 100
            bits, exact = _phash.phash_pixels(px, hash_size)
            assert not exact
            np.testing.assert_array_equal(bits, scipy_bits(px, hash_size))


def test_phash_falls_back_on_ties():
    """Constant and mirror-symmetric images have DCT values that are exact
    zeros in theory and rounding noise in practice: scipy's noise decides
    imagehash's bits, so such images take scipy's path."""
    rng = np.random.default_rng(3)
    half = rng.integers(0, 256, (32, 16), dtype=np.uint8)
    cases = {
        "constant": np.full((32, 32), 77, np.uint8),
        "mirror": np.concatenate([half, half[:, ::-1]], axis=1),
        "stripes": np.tile(np.arange(32, dtype=np.uint8) * 8, (32, 1)),
    }
    for name, px in cases.items():
        bits, exact = _phash.phash_pixels(px, 8)
        assert exact, name
        np.testing.assert_array_equal(bits, scipy_bits(px, 8), err_msg=name)


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    hash_size=st.integers(2, 12),
    factor=st.integers(1, 5),
    levels=st.sampled_from([2, 4, 256]),
)
def test_phash_random_pixels(seed, hash_size, factor, levels):
    """Random images, including few-level ones (many ties): always scipy's bits."""
    n = hash_size * factor
    rng = np.random.default_rng(seed)
    px = (rng.integers(0, levels, (n, n)) * (255 // (levels - 1))).astype(np.uint8)
    bits, _ = _phash.phash_pixels(px, hash_size)
    np.testing.assert_array_equal(bits, scipy_bits(px, hash_size))
    ref = imagehash.phash(Image.fromarray(px), hash_size, factor).hash
    np.testing.assert_array_equal(_phash.phash_bits(Image.fromarray(px), hash_size, factor), ref)


def test_phash_many_real_crops(photos):
    """Many real, varied inputs at the default size (64, 16)."""
    rng = np.random.default_rng(11)
    mismatches = 0
    for k in range(12):
        p = photos[k % len(photos)]
        y, x = rng.integers(0, 100, 2)
        crop = p[y : y + 150 + k * 13, x : x + 180]
        im = Image.fromarray(crop)
        ref = imagehash.phash(im, 64, 16).hash
        mismatches += not np.array_equal(_phash.phash_bits(im, 64, 16), ref)
    assert mismatches == 0


# ---------------------------------------------------------------------------
# minhash


def reference_corners(gray: np.ndarray, k: int = 100) -> list[bytes]:
    """The spec's selection written plainly: a full stable sort."""
    h, w = gray.shape
    r = cv2.cornerHarris(np.float32(gray), 2, 3, 0.04).ravel()
    order = np.argsort(-r, kind="stable")
    order = [i for i in order if r[i] > 0][:k]
    return [f"{i // w / h:.3f},{i % w / w:.3f}".encode() for i in order]


def test_corner_selection_is_the_strongest(photos):
    for p in photos:
        gray = cv2.cvtColor(p, cv2.COLOR_RGB2GRAY)
        values = corner_values(gray)
        assert values == reference_corners(gray)
        assert len(values) == 100
        r = cv2.cornerHarris(np.float32(gray), 2, 3, 0.04)
        # really the strongest: nothing left out beats the weakest kept
        kept = np.sort(r.ravel())[::-1][:100]
        assert kept[-1] > 0
    flat = np.full((30, 30), 9, np.uint8)
    assert corner_values(flat) == []
    quantised = np.kron(np.eye(4, dtype=np.uint8) * 255, np.ones((6, 6), np.uint8))  # many ties
    assert corner_values(quantised, 10) == reference_corners(quantised, 10)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    h=st.integers(3, 40),
    w=st.integers(3, 40),
    k=st.integers(1, 120),
)
def test_corner_selection_random(seed, h, w, k):
    rng = np.random.default_rng(seed)
    gray = (rng.integers(0, 3, (h, w)) * 127).astype(np.uint8)  # few levels: many equal responses
    assert corner_values(gray, k) == reference_corners(gray, k)


@pytest.mark.parametrize("scheme", ["affine32", "legacy"])
def test_minhash_equals_datasketch(folder, scheme):
    if scheme == "legacy" and "scheme" not in datasketch.MinHash.__init__.__code__.co_varnames:
        pytest.skip("datasketch < 2.0 has only the legacy scheme, as its default")
    paths = good(folder)
    f = extract(paths, "minhash", scheme=scheme, grid=None)
    assert f.data.shape == (len(paths), 128) and f.data.dtype == np.uint64
    for i, p in enumerate(paths):
        kw = {"scheme": scheme} if scheme == "legacy" else {}
        m = datasketch.MinHash(num_perm=128, seed=1, **kw)
        m.update_batch(reference_corners(read_image(p, color=False)))
        np.testing.assert_array_equal(f.data[i], m.hashvalues.astype(np.uint64), err_msg=p.name)
    # the flat image has no corner: datasketch's empty signature
    flat = f.paths.index(next(p for p in paths if p.name == "flat.png"))
    assert (f.data[flat] == 2**32 - 1).all()
    # equal slots give datasketch's Jaccard estimate exactly
    a, b = 0, 1
    ma = datasketch.MinHash(num_perm=128, seed=1, hashvalues=f.data[a], scheme=scheme)
    mb = datasketch.MinHash(num_perm=128, seed=1, hashvalues=f.data[b], scheme=scheme)
    assert np.mean(f.data[a] == f.data[b]) == ma.jaccard(mb)


def test_minhash_default_is_datasketch_default(folder):
    p = good(folder)[0]
    f = extract([p], "minhash")
    m = datasketch.MinHash(num_perm=128, seed=1)
    m.update_batch(corner_values(read_image(p, color=False), grid=16))
    np.testing.assert_array_equal(f.data[0], m.hashvalues)
    assert f.params["scheme"] == "affine32" and f.params["n_corners"] == 100


@pytest.mark.parametrize("scheme", ["affine32", "legacy"])
def test_minhash_bulk_blocks_and_empty_sets(monkeypatch, scheme):
    """Signatures of many sets at once, across block boundaries and empty sets."""
    rng = np.random.default_rng(5)
    sets = [[rng.bytes(8) for _ in range(rng.integers(0, 30))] for _ in range(60)]
    sets[0] = sets[17] = sets[-1] = []
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in sets])]).astype(np.int64)
    hashes = _minhash_sig.hash_values([v for s in sets for v in s])
    expect = []
    for s in sets:
        kw = {"scheme": scheme} if scheme == "legacy" else {}
        m = datasketch.MinHash(num_perm=64, seed=42, **kw)
        m.update_batch(s)
        expect.append(m.hashvalues.astype(np.uint64))
    expect = np.array(expect)
    for block in (1, 7, 50, 1 << 16):
        monkeypatch.setattr(_minhash_sig, "_BLOCK_VALUES", block)
        got = _minhash_sig.signatures(hashes, offsets, num_perm=64, seed=42, scheme=scheme)
        np.testing.assert_array_equal(got, expect, err_msg=f"block {block}")


def test_minhash_no_datasketch_at_run_time():
    import subprocess
    import sys

    code = (
        "import sys, icas.features, icas.io;"
        "import numpy as np;"
        "assert 'datasketch' not in sys.modules, 'datasketch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------
# orb


def test_orb_equals_opencv(folder):
    paths = good(folder)
    f = extract(paths, "orb")
    assert f.data.dtype == np.uint8 and f.data.shape[1] == 32 and f.data.flags.c_contiguous
    assert f.offsets.dtype == np.int64 and f.offsets.shape == (len(paths) + 1,)
    assert f.offsets[0] == 0 and f.offsets[-1] == f.data.shape[0]
    orb = cv2.ORB_create(nfeatures=500)
    for i, p in enumerate(paths):
        gray = cv2.imdecode(np.fromfile(p, np.uint8), cv2.IMREAD_GRAYSCALE)  # applies EXIF itself
        _, des = orb.detectAndCompute(gray, None)
        des = np.zeros((0, 32), np.uint8) if des is None else des
        np.testing.assert_array_equal(f.data[f.offsets[i] : f.offsets[i + 1]], des, err_msg=p.name)
    flat = f.paths.index(next(p for p in paths if p.name == "flat.png"))
    assert f.offsets[flat + 1] == f.offsets[flat]  # no keypoints: no rows, no error
    small = extract(paths, "orb", nfeatures=20)
    assert np.diff(small.offsets).max() <= 20 and small.params["nfeatures"] == 20


def test_take(folder):
    paths = good(folder)
    orb = extract(paths, "orb")
    idx = [3, 0, 3, len(paths) - 1]
    sub = orb.take(idx)
    assert sub.paths == [paths[i] for i in idx] and sub.skipped == []
    for j, i in enumerate(idx):
        mine = sub.data[sub.offsets[j] : sub.offsets[j + 1]]
        np.testing.assert_array_equal(mine, orb.data[orb.offsets[i] : orb.offsets[i + 1]])
    s = extract(paths, "ssim", size=8)
    np.testing.assert_array_equal(s.take([2, 1]).data, s.data[[2, 1]])
    assert len(s.take([])) == 0
    with pytest.raises(IndexError):
        s.take([len(paths)])


def test_corner_grid_cells_follow_the_strongest_corners(photos):
    for p in photos[:3]:
        gray = cv2.cvtColor(p, cv2.COLOR_RGB2GRAY)
        h, w = gray.shape
        cells = []
        for v in reference_corners(gray):
            r, c = (float(x) for x in v.decode().split(","))
            # back from the 3-decimal text to the pixel, then to its cell
            row, col = round(r * h), round(c * w)
            cells.append(f"{row * 16 // h},{col * 16 // w}".encode())
        assert corner_values(gray, grid=16) == list(dict.fromkeys(cells))
