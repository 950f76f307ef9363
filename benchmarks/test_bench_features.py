"""Feature extraction: icas against the straightforward per-image code.

``extra_info["pairs"]`` is the number of images one call processes, so the
summary's "per pair" figures read "per image" here.

    PYTHONPATH=python python -m pytest -q benchmarks/test_bench_features.py
"""

from __future__ import annotations

import cv2
import datasketch
import imagehash
import numpy as np
import pytest
import scipy.fftpack
from PIL import Image

from icas import _phash
from icas.features import corner_values, extract
from icas.io import read_image

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "immunohistochemistry")


def _photos() -> list[np.ndarray]:
    from skimage import data

    out = []
    for name in PHOTOS:
        img = getattr(data, name)()
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=-1)
        out.append(np.ascontiguousarray(img[..., :3]))
    return out


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory):
    """12 JPEGs of real photos at their own sizes (about 512 px)."""
    d = tmp_path_factory.mktemp("bench_jpegs")
    paths = []
    for i, p in enumerate(_photos()):
        for q in (90, 70):
            path = d / f"{i}_{q}.jpg"
            Image.fromarray(p).save(path, quality=q)
            paths.append(path)
    return paths


@pytest.fixture(scope="module")
def big_jpegs(tmp_path_factory):
    """6 JPEGs of 2400x1800 (camera-like sizes)."""
    d = tmp_path_factory.mktemp("bench_big")
    paths = []
    for i, p in enumerate(_photos()):
        path = d / f"big_{i}.jpg"
        big = cv2.resize(p, (2400, 1800), interpolation=cv2.INTER_CUBIC)
        Image.fromarray(big).save(path, quality=90)
        paths.append(path)
    return paths


def _info(benchmark, role: str, n: int):
    benchmark.extra_info["role"] = role
    benchmark.extra_info["pairs"] = n


# ---------------------------------------------------------------------------
# pHash 64 / 16 (a 1024 x 1024 DCT per image in imagehash)


def _reference_phash(paths):
    out = []
    for p in paths:
        with Image.open(p) as im:
            out.append(np.packbits(imagehash.phash(im, 64, 16).hash.reshape(-1)))
    return np.array(out)


@pytest.mark.benchmark(group="phash 64/16 per image")
def test_phash_reference(benchmark, jpegs):
    _info(benchmark, "reference", len(jpegs))
    out = benchmark.pedantic(_reference_phash, args=(jpegs,), rounds=3, iterations=1)
    assert out.shape == (len(jpegs), 512)


@pytest.mark.benchmark(group="phash 64/16 per image")
def test_phash_icas_one_thread(benchmark, jpegs):
    _info(benchmark, "icas", len(jpegs))
    f = benchmark.pedantic(
        extract,
        args=(jpegs, "imagehash"),
        kwargs={"n_threads": 1, "hash_size": 64, "highfreq_factor": 16},
        rounds=3,
        iterations=1,
    )
    np.testing.assert_array_equal(f.data, _reference_phash(jpegs))


@pytest.mark.benchmark(group="phash 64/16 per image")
def test_phash_icas_all_cores(benchmark, jpegs):
    _info(benchmark, "icas", len(jpegs))
    f = benchmark.pedantic(
        extract,
        args=(jpegs, "imagehash"),
        kwargs={"n_threads": -1, "hash_size": 64, "highfreq_factor": 16},
        rounds=3,
        iterations=1,
    )
    np.testing.assert_array_equal(f.data, _reference_phash(jpegs))


# The part icas replaces: the DCT and the median split of a 1024 x 1024 image.


@pytest.fixture(scope="module")
def phash_pixels():
    p = _photos()[0]
    small = Image.fromarray(p).convert("L").resize((1024, 1024), Image.Resampling.LANCZOS)
    return np.asarray(small)


def _scipy_bits(px):
    low = scipy.fftpack.dct(scipy.fftpack.dct(px, axis=0), axis=1)[:64, :64]
    return low > np.median(low)


@pytest.mark.benchmark(group="phash DCT + median 1024 -> 64")
def test_phash_dct_reference(benchmark, phash_pixels):
    _info(benchmark, "reference", 1)
    bits = benchmark(_scipy_bits, phash_pixels)
    assert bits.shape == (64, 64)


@pytest.mark.benchmark(group="phash DCT + median 1024 -> 64")
def test_phash_dct_icas(benchmark, phash_pixels):
    from icas.features import _blas_single_thread

    _info(benchmark, "icas", 1)
    with _blas_single_thread():
        bits, exact = benchmark(_phash.phash_pixels, phash_pixels, 64)
    assert not exact
    np.testing.assert_array_equal(bits, _scipy_bits(phash_pixels))


# The resize before the DCT: Pillow's LANCZOS of the grayscale image to
# 1024 x 1024, from the photos' own sizes (about 512 px: upscaling) and from
# camera-sized 2400 x 1800 images (downscaling).


@pytest.fixture(scope="module")
def gray_photos():
    return [np.asarray(Image.fromarray(p).convert("L")) for p in _photos()]


@pytest.fixture(scope="module")
def gray_big(gray_photos):
    return [cv2.resize(g, (2400, 1800), interpolation=cv2.INTER_CUBIC) for g in gray_photos]


def _pillow_resize(images, n=1024):
    return [np.asarray(Image.fromarray(g).resize((n, n), Image.Resampling.LANCZOS)) for g in images]


def _icas_resize(images, n=1024):
    return [_phash.lanczos_resize(g, (n, n)) for g in images]


@pytest.mark.benchmark(group="LANCZOS resize photo (~512 px) to 1024 per image")
def test_resize_reference(benchmark, gray_photos):
    _info(benchmark, "reference", len(gray_photos))
    out = benchmark.pedantic(_pillow_resize, args=(gray_photos,), rounds=5, iterations=1)
    assert out[0].shape == (1024, 1024)


@pytest.mark.benchmark(group="LANCZOS resize photo (~512 px) to 1024 per image")
def test_resize_icas(benchmark, gray_photos):
    _info(benchmark, "icas", len(gray_photos))
    out = benchmark.pedantic(_icas_resize, args=(gray_photos,), rounds=5, iterations=1)
    for a, b in zip(out, _pillow_resize(gray_photos), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.benchmark(group="LANCZOS resize 2400x1800 to 1024 per image")
def test_resize_big_reference(benchmark, gray_big):
    _info(benchmark, "reference", len(gray_big))
    out = benchmark.pedantic(_pillow_resize, args=(gray_big,), rounds=3, iterations=1)
    assert out[0].shape == (1024, 1024)


@pytest.mark.benchmark(group="LANCZOS resize 2400x1800 to 1024 per image")
def test_resize_big_icas(benchmark, gray_big):
    _info(benchmark, "icas", len(gray_big))
    out = benchmark.pedantic(_icas_resize, args=(gray_big,), rounds=3, iterations=1)
    for a, b in zip(out, _pillow_resize(gray_big), strict=True):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------
# decoding a 2400 x 1800 JPEG to 128 x 128


def _reference_decode(paths):
    return [cv2.resize(cv2.imread(str(p)), (128, 128), interpolation=cv2.INTER_AREA) for p in paths]


@pytest.mark.benchmark(group="decode 2400x1800 JPEG to 128x128")
def test_decode_reference(benchmark, big_jpegs):
    _info(benchmark, "reference", len(big_jpegs))
    out = benchmark.pedantic(_reference_decode, args=(big_jpegs,), rounds=3, iterations=1)
    assert out[0].shape == (128, 128, 3)


@pytest.mark.benchmark(group="decode 2400x1800 JPEG to 128x128")
def test_decode_icas_full(benchmark, big_jpegs):
    _info(benchmark, "icas", len(big_jpegs))

    def run():
        return [read_image(p, size=(128, 128), reduced=False) for p in big_jpegs]

    out = benchmark.pedantic(run, rounds=3, iterations=1)
    for a, b in zip(out, _reference_decode(big_jpegs), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.benchmark(group="decode 2400x1800 JPEG to 128x128")
def test_decode_icas_reduced(benchmark, big_jpegs):
    _info(benchmark, "icas", len(big_jpegs))

    def run():
        return [read_image(p, size=(128, 128)) for p in big_jpegs]

    out = benchmark.pedantic(run, rounds=3, iterations=1)
    for a, b in zip(out, _reference_decode(big_jpegs), strict=True):
        assert a.shape == b.shape and np.abs(a.astype(int) - b).mean() < 3


# ---------------------------------------------------------------------------
# minhash: Harris corners + 128 permutations


def _reference_minhash(paths):
    out = []
    for p in paths:
        gray = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        h, w = gray.shape
        r = cv2.cornerHarris(np.float32(gray), 2, 3, 0.04).ravel()
        order = np.argsort(-r, kind="stable")
        order = order[r[order] > 0][:100].tolist()
        m = datasketch.MinHash(num_perm=128, seed=1)
        m.update_batch([f"{i // w / h:.3f},{i % w / w:.3f}".encode() for i in order])
        out.append(m.hashvalues.astype(np.uint64))
    return np.array(out)


@pytest.mark.benchmark(group="minhash per image")
def test_minhash_reference(benchmark, jpegs):
    _info(benchmark, "reference", len(jpegs))
    out = benchmark.pedantic(_reference_minhash, args=(jpegs,), rounds=3, iterations=1)
    assert out.shape == (len(jpegs), 128)


@pytest.mark.benchmark(group="minhash per image")
def test_minhash_icas_one_thread(benchmark, jpegs):
    _info(benchmark, "icas", len(jpegs))
    f = benchmark.pedantic(
        extract,
        args=(jpegs, "minhash"),
        kwargs={"n_threads": 1, "grid": None},
        rounds=3,
        iterations=1,
    )
    np.testing.assert_array_equal(f.data, _reference_minhash(jpegs))
    assert corner_values(read_image(jpegs[0], color=False))  # corners were found
