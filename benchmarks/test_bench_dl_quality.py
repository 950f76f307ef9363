"""Is the autoencoder worth its training time? ARI of the default
deep-learning settings against k-means on raw pixels, on 1000 real
handwritten digits (scikit-learn's 8 x 8 set, 100 per class, upscaled to 32
px), with the time the deep-learning run takes on the CPU.

Both rows record their ARI (``extra_info["ari"]``) next to their time; the
raw-pixel row is k-means with the true number of classes (10), which the
deep-learning run is not given (it searches 2..20). Under CI (CI=true) the
set is 300 digits and training 3 epochs, so the run stays short.

Measured by hand on the 2-core development machine (``pytest
benchmarks/test_bench_dl_quality.py``, full size): see the README's
deep-learning section.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_dl_pipeline import ari_of, truth, write_digits  # noqa: E402

from icas.dl import DLClusteror  # noqa: E402

CI = os.environ.get("CI", "").lower() == "true"
PER_CLASS = 30 if CI else 100
EPOCHS = 3 if CI else None  # None: the default


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    return write_digits(
        tmp_path_factory.mktemp("digits") / "img", classes=10, per_class=PER_CLASS, seed=0
    )


@pytest.mark.benchmark(group="dl-quality")
def test_dl_default_settings(benchmark, digits, tmp_path):
    kwargs = {} if EPOCHS is None else {"epochs": EPOCHS}
    runs = iter(range(10))

    def run():
        return DLClusteror(
            digits, out=tmp_path / f"o{next(runs)}", progress=False, report=False, **kwargs
        )()

    result = benchmark.pedantic(run, rounds=1, iterations=1)
    ari = ari_of(result)
    benchmark.extra_info.update(
        role="icas", pairs=len(result.labels), ari=round(ari, 3), clusters=len(result.clusters)
    )
    assert ari > 0.2  # far above chance (0); the measured figure is in the README


@pytest.mark.benchmark(group="dl-quality")
def test_raw_pixel_kmeans(benchmark, digits):
    import cv2
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    paths = sorted(digits.iterdir())
    X = (
        np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE).ravel() for p in paths]).astype(
            np.float64
        )
        / 255
    )

    def run():
        return KMeans(10, n_init=10, random_state=0).fit_predict(X)

    labels = benchmark.pedantic(run, rounds=1, iterations=1)
    ari = adjusted_rand_score([truth(p) for p in paths], labels)
    benchmark.extra_info.update(role="reference", pairs=len(paths), ari=round(ari, 3))
    assert ari > 0.2
