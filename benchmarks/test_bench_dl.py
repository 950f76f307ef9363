"""Deep-learning path on the CPU: training and embedding speed, and clustering
10,000 embeddings over a grid.

Group ``dl-train``: one epoch of :class:`icas.dl.trainer.Trainer` on 512
images of 64 px (the default model and input size) next to the plain PyTorch
loop a user would write (a ``DataLoader`` over per-item tensors, Adam, MSE).
Group ``dl-embed``: :func:`icas.dl.embed.embed` of the same images next to a
plain ``DataLoader`` loop. ``pairs`` is the number of images, so the summary
reads as time per image. Group ``dl-cluster``: :class:`EmbeddingClusterer`
(k-means over 8, 10, 12 clusters, spectral preparation, selection rule) on
10,000 embeddings of 10 groups, next to scikit-learn's k-means scored by the
three metrics on all points. Every benchmark asserts its result.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from sklearn.metrics import adjusted_rand_score  # noqa: E402

from icas.dl.clusterer import EmbeddingClusterer  # noqa: E402
from icas.dl.dataset import ImageFolderDataset  # noqa: E402
from icas.dl.embed import embed  # noqa: E402
from icas.dl.models import SmallAutoencoder  # noqa: E402
from icas.dl.trainer import Trainer  # noqa: E402

N_IMAGES = 512
SIZE = 64
N_EMBEDDINGS = 10_000
GRID = [8, 10, 12]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Coloured shapes on noise: 512 PNGs, read once into a cached dataset."""
    import cv2

    folder = tmp_path_factory.mktemp("dl-bench")
    rng = np.random.default_rng(0)
    for i in range(N_IMAGES):
        img = rng.integers(0, 60, (96, 96, 3), dtype=np.uint8)
        colour = tuple(int(c) for c in rng.integers(80, 256, 3))
        centre = tuple(int(c) for c in rng.integers(20, 76, 2))
        if i % 2:
            cv2.circle(img, centre, int(rng.integers(8, 20)), colour, -1)
        else:
            cv2.rectangle(img, centre, (centre[0] + 20, centre[1] + 14), colour, -1)
        cv2.imwrite(str(folder / f"img_{i:04d}.png"), img)
    ds = ImageFolderDataset(folder, SIZE)
    assert len(ds) == N_IMAGES
    return ds


def _model():
    torch.manual_seed(0)
    return SmallAutoencoder(SIZE)


def _mean_loss(model, ds) -> float:
    with torch.no_grad():
        x = ds.tensors(range(len(ds)))
        return float(torch.mean((model.eval()(x) - x) ** 2))


def test_train_icas(benchmark, images):
    benchmark.group = "dl-train"
    benchmark.extra_info.update(pairs=N_IMAGES, role="icas", image_size=SIZE, epochs=1)
    model = _model()
    before = _mean_loss(model, images)

    def run():
        Trainer(model, epochs=1, batch_size=64, progress=False, device="cpu").fit(images)

    benchmark.pedantic(run, rounds=2, iterations=1, warmup_rounds=1)
    assert _mean_loss(model, images) < before


def test_train_reference(benchmark, images):
    benchmark.group = "dl-train"
    benchmark.extra_info.update(pairs=N_IMAGES, role="reference", image_size=SIZE, epochs=1)
    model = _model()
    before = _mean_loss(model, images)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(images, batch_size=64, shuffle=True)

    def run():
        model.train()
        for _, x in loader:
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), x)
            loss.backward()
            opt.step()

    benchmark.pedantic(run, rounds=2, iterations=1, warmup_rounds=1)
    assert _mean_loss(model, images) < before


def test_embed_icas(benchmark, images):
    benchmark.group = "dl-embed"
    benchmark.extra_info.update(pairs=N_IMAGES, role="icas", image_size=SIZE)
    model = _model().eval()
    out = benchmark.pedantic(
        embed, args=(model, images), kwargs={"device": "cpu"}, rounds=3, iterations=1
    )
    assert out.shape == (N_IMAGES, 32) and np.isfinite(out).all()


def test_embed_reference(benchmark, images):
    benchmark.group = "dl-embed"
    benchmark.extra_info.update(pairs=N_IMAGES, role="reference", image_size=SIZE)
    model = _model().eval()
    loader = torch.utils.data.DataLoader(images, batch_size=128)

    def run():
        with torch.no_grad():
            return torch.cat([model.embed(x) for _, x in loader]).numpy()

    out = benchmark.pedantic(run, rounds=3, iterations=1)
    np.testing.assert_allclose(out, embed(model, images, device="cpu"), rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def embeddings():
    """10,000 points in 32 dimensions around 10 directions."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(10, 32))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    y = rng.integers(0, 10, N_EMBEDDINGS)
    return centres[y] + 0.08 * rng.normal(size=(N_EMBEDDINGS, 32)), y


def test_cluster_icas(benchmark, embeddings):
    X, y = embeddings
    benchmark.group = "dl-cluster"
    benchmark.extra_info.update(pairs=N_EMBEDDINGS, role="icas", grid=GRID)
    c = benchmark.pedantic(
        lambda: EmbeddingClusterer("kmeans", n_clusters=GRID).fit(X), rounds=1, iterations=1
    )
    assert c.best_params_["n_clusters"] == 10
    assert adjusted_rand_score(y, c.labels_) > 0.99


def test_cluster_reference(benchmark, embeddings):
    from sklearn.cluster import KMeans
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

    X, y = embeddings
    benchmark.group = "dl-cluster"
    benchmark.extra_info.update(pairs=N_EMBEDDINGS, role="reference", grid=GRID)

    def run():
        fits = []
        for k in GRID:
            labels = KMeans(k, n_init=4, random_state=0).fit_predict(X)
            fits.append(
                (
                    silhouette_score(X, labels),
                    -davies_bouldin_score(X, labels),
                    calinski_harabasz_score(X, labels),
                    labels,
                )
            )
        return fits

    fits = benchmark.pedantic(run, rounds=1, iterations=1)
    assert adjusted_rand_score(y, fits[GRID.index(10)][3]) > 0.99
