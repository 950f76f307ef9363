"""End-to-end pipeline on a generated folder of 1000 images of 256 px, one batch,
all pairs compared, next to a straightforward pipeline built from the reference
libraries (cv2 reading, the reference feature and similarity per pair) on a
smaller folder. Ratios are per pair; the decode time is reported beside the
total so the share of decoding is visible."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from icas.cluster import Clusteror

N_IMAGES = 1000
N_REFERENCE = 80
METHODS = ["imagehash", "ssim", "tm", "orb", "minhash"]


def _make_folder(folder: Path, n: int, seed: int = 0) -> Path:
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sources = [cv2.cvtColor(getattr(data, name)(), cv2.COLOR_RGB2BGR)
               for name in ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
                            "immunohistochemistry")]
    for i in range(n):
        src = sources[i % len(sources)]
        h, w = src.shape[:2]
        # groups of 4 near-duplicates: same crop, different edits
        g = rng if i % 4 == 0 else None
        if g is not None:
            s = int(rng.integers(140, min(h, w)))
            y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
            base = cv2.resize(src[y : y + s, x : x + s], (256, 256), interpolation=cv2.INTER_AREA)
        img = cv2.convertScaleAbs(base, alpha=1.0, beta=float(i % 4) * 6)
        cv2.imwrite(str(folder / f"img_{i:05d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return _make_folder(tmp_path_factory.mktemp("bench") / "images", N_IMAGES)


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory) -> Path:
    return _make_folder(tmp_path_factory.mktemp("bench") / "small", N_REFERENCE)


def _decode_time(folder: Path) -> float:
    t = time.perf_counter()
    for p in sorted(folder.iterdir()):
        cv2.imread(str(p))
    return time.perf_counter() - t


@pytest.mark.parametrize("method", [*METHODS, "imagehash-64/16"])
def test_pipeline_icas(benchmark, folder, tmp_path, method):
    """imagehash-64/16 is the original tool's hash size: compare it with the
    original's 24.6 s on such a folder."""
    benchmark.group = f"pipeline-{method}"
    params = {}
    if method == "imagehash-64/16":
        method, params = "imagehash", {"hash_size": 64, "highfreq_factor": 16}
    benchmark.extra_info.update(role="icas", pairs=N_IMAGES * (N_IMAGES - 1) // 2,
                                decode_s=_decode_time(folder))
    runs = iter(range(100))

    def run():
        return Clusteror(folder, method=method, batch_size=N_IMAGES, out=tmp_path / f"o{next(runs)}",
                         progress=False, report=False, size=(64, 64) if method in ("ssim", "tm")
                         else None, **params)()

    result = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info["timings"] = result.timings
    assert len(result.labels) == N_IMAGES
    assert result.clusters and all(w >= result.threshold for w in result.weakest_link.values())


def _reference_pipeline(folder: Path, method: str) -> int:
    """The straightforward pipeline: read, reference feature, reference
    similarity for every pair, chain with scipy."""
    import imagehash
    from PIL import Image
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from skimage.metrics import structural_similarity

    paths = sorted(folder.iterdir())
    if method == "imagehash":
        sim = lambda a, b: 1 - (a - b) / a.hash.size  # noqa: E731
        th = 0.8
        feats = [imagehash.phash(Image.open(p)) for p in paths]  # icas's default 8/4
    elif method == "ssim":
        feats = [cv2.resize(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), (64, 64)) for p in paths]
        sim = lambda a, b: structural_similarity(a, b, data_range=255)  # noqa: E731
        th = 0.8
    elif method == "tm":
        feats = [cv2.resize(cv2.imread(str(p)), (64, 64)) for p in paths]
        sim = lambda a, b: 1 - cv2.matchTemplate(a, b, cv2.TM_SQDIFF_NORMED)[0, 0]  # noqa: E731
        th = 0.92
    elif method == "orb":
        orb = cv2.ORB_create()
        feats = [orb.detectAndCompute(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), None)[1]
                 for p in paths]
        bf = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)

        def sim(a, b):
            if a is None or b is None:
                return 0.0
            m = bf.match(a, b)
            if not m:
                return 0.0
            d = max(x.distance for x in m)
            return 1.0 if d == 0 else sum(x.distance < 0.75 * d for x in m) / len(m)

        th = 0.93
    else:
        from datasketch import MinHash

        feats = []
        for p in paths:
            g = np.float32(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE))
            r = cv2.cornerHarris(g, 2, 3, 0.04)
            idx = np.argsort(-r, axis=None, kind="stable")[:100]
            m = MinHash(num_perm=128, seed=1)
            for i in idx:
                y, x = divmod(int(i), g.shape[1])
                m.update(f"{y * 16 // g.shape[0]},{x * 16 // g.shape[1]}".encode())
            feats.append(m)
        sim = lambda a, b: a.jaccard(b)  # noqa: E731
        th = 0.35
    n = len(feats)
    rows, cols = [], []
    for i in range(n):
        for j in range(i + 1, n):
            if sim(feats[i], feats[j]) >= th:
                rows.append(i)
                cols.append(j)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    return connected_components(graph, directed=False)[0]


@pytest.mark.parametrize("method", METHODS)
def test_pipeline_reference(benchmark, small_folder, method):
    benchmark.group = f"pipeline-{method}"
    benchmark.extra_info.update(role="reference", pairs=N_REFERENCE * (N_REFERENCE - 1) // 2)
    n_components = benchmark.pedantic(_reference_pipeline, args=(small_folder, method),
                                      rounds=1, iterations=1)
    assert 1 <= n_components <= N_REFERENCE
