"""Dataset, trainer, losses and checkpoints of the deep-learning path."""

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from icas.dl.dataset import ImageFolderDataset, batches  # noqa: E402
from icas.dl.losses import PerceptualLoss, make_loss, vgg19_features  # noqa: E402
from icas.dl.models import SmallAutoencoder  # noqa: E402
from icas.dl.trainer import Trainer, load_checkpoint, resolve_device, save_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """24 small images of 3 kinds (gradients, stripes, disks) and 2 bad files."""
    f = tmp_path_factory.mktemp("train")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:40, 0:40]
    for i in range(8):
        g = ((xx + yy) * 3 + i * 5).astype(np.uint8)
        cv2.imwrite(str(f / f"grad_{i}.png"), np.dstack([g, 255 - g, g // 2]))
        s = (((xx + i) // 4) % 2 * 255).astype(np.uint8)
        cv2.imwrite(str(f / f"stripe_{i}.png"), np.dstack([s, s, s]))
        d = np.zeros((40, 40, 3), np.uint8)
        cv2.circle(d, (int(rng.integers(14, 26)), 20), 10, (0, 0, 255), -1)
        cv2.imwrite(str(f / f"disk_{i}.jpg"), d)
    (f / "empty.png").write_bytes(b"")
    (f / "text.jpg").write_text("not an image")
    return f


def test_dataset_skips_bad_files_and_returns_path_and_tensor(folder):
    ds = ImageFolderDataset(folder, 32)
    assert len(ds) == 24
    assert {Path(p).name: r for p, r in ds.skipped} == {
        "empty.png": "empty file",
        "text.jpg": "not an image",
    }
    path, x = ds[0]
    assert path == ds.paths[0] and x.shape == (3, 32, 32) and x.dtype == torch.float32
    # RGB in [0, 1], the same pixels as icas.io.read_image (BGR) at that size.
    from icas.io import read_image

    ref = read_image(path, size=(32, 32))[..., ::-1] / 255.0
    np.testing.assert_allclose(x.permute(1, 2, 0).numpy(), ref, atol=1e-6)
    lazy = ImageFolderDataset(folder, 32, cache=False)
    assert lazy.paths == ds.paths and lazy.skipped == ds.skipped
    torch.testing.assert_close(lazy[5][1], ds[5][1])
    gray = ImageFolderDataset(folder, 16, channels=1)
    assert gray[0][1].shape == (1, 16, 16)
    # Cached slicing and item-by-item reading give the same batches.
    idx, xb = next(batches(ds, 7))
    torch.testing.assert_close(xb, torch.stack([ds[int(i)][1] for i in idx]))
    idx, xb = next(batches(lazy, 7))
    torch.testing.assert_close(xb, torch.stack([ds[int(i)][1] for i in idx]))


def test_dataset_validation(tmp_path):
    with pytest.raises(ValueError, match="power of two"):
        ImageFolderDataset(tmp_path, 48)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        ImageFolderDataset(tmp_path / "nope", 32)


@pytest.mark.parametrize("loss", ["mse", "mae"])
def test_short_training_lowers_the_loss(folder, loss):
    ds = ImageFolderDataset(folder, 32)
    torch.manual_seed(0)
    model = SmallAutoencoder(32, embedding_dim=8)
    fn = make_loss(loss)
    with torch.no_grad():
        before = float(fn(model.eval()(ds.tensors(range(len(ds)))), ds.tensors(range(len(ds)))))
    tr = Trainer(model, epochs=6, batch_size=8, lr=3e-3, loss=loss, progress=False).fit(ds)
    assert len(tr.history_) == 6
    assert tr.history_[-1] < 0.7 * tr.history_[0]
    with torch.no_grad():
        after = float(fn(model(ds.tensors(range(len(ds)))), ds.tensors(range(len(ds)))))
    assert after < 0.85 * before  # in eval mode (batch-norm running statistics)
    assert not model.training  # left in eval mode


def test_training_is_reproducible_and_leaves_the_global_seed(folder):
    ds = ImageFolderDataset(folder, 16)
    state = torch.random.get_rng_state()
    runs = []
    for _ in range(2):
        torch.manual_seed(1)
        m = SmallAutoencoder(16, embedding_dim=4)
        Trainer(m, epochs=2, batch_size=8, seed=3, progress=False).fit(ds)
        runs.append(m.state_dict())
    for k in runs[0]:
        torch.testing.assert_close(runs[0][k], runs[1][k])
    m = SmallAutoencoder(16)
    state = torch.random.get_rng_state()
    Trainer(m, epochs=1, progress=False, seed=5).fit(ds)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_checkpoint_round_trip(folder, tmp_path):
    ds = ImageFolderDataset(folder, 32)
    torch.manual_seed(0)
    model = SmallAutoencoder(32, channels=3, embedding_dim=12)
    tr = Trainer(model, epochs=1, batch_size=8, progress=False).fit(ds)
    path = save_checkpoint(tmp_path / "m.pt", model, history=tr.history_, loss="mse")
    # The file is plain tensors and numbers: it loads with weights_only=True.
    raw = torch.load(path, weights_only=True)
    assert raw["model"] == "SmallAutoencoder" and raw["config"]["embedding_dim"] == 12
    loaded, meta = load_checkpoint(path)
    assert isinstance(loaded, SmallAutoencoder) and not loaded.training
    assert meta["history"] == tr.history_
    x = ds.tensors(range(5))
    with torch.no_grad():
        torch.testing.assert_close(loaded.embed(x), model.eval().embed(x))
        torch.testing.assert_close(loaded(x), model(x))
    # Into a given module, and a bare state dict with one.
    other = SmallAutoencoder(32, channels=3, embedding_dim=12)
    load_checkpoint(path, other)
    torch.save(model.state_dict(), tmp_path / "bare.pt")
    bare, meta = load_checkpoint(tmp_path / "bare.pt", SmallAutoencoder(32, embedding_dim=12))
    assert meta == {}
    with torch.no_grad():
        torch.testing.assert_close(bare.embed(x), model.embed(x))


def test_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt: not a readable torch checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"w": torch.zeros(2)}, tmp_path / "bare.pt")
    with pytest.raises(ValueError, match="pass model= to load a bare state dict"):
        load_checkpoint(tmp_path / "bare.pt")
    save_checkpoint(tmp_path / "m.pt", SmallAutoencoder(32, embedding_dim=8))
    with pytest.raises(ValueError, match="weights do not fit the model"):
        load_checkpoint(tmp_path / "m.pt", SmallAutoencoder(32, embedding_dim=9))


class _TinyFeatures(torch.nn.Module):
    """A small local feature network standing in for VGG19."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


def test_perceptual_loss_with_a_local_feature_net():
    torch.manual_seed(0)
    net = _TinyFeatures()
    loss = PerceptualLoss(net).train()
    assert not net.training  # frozen: batch-norm statistics stay put
    target = torch.rand(2, 3, 16, 16)
    out = torch.rand(2, 3, 16, 16, requires_grad=True)
    value = loss(out, target)
    with torch.no_grad():
        expected = torch.mean((net(out) - net(target)) ** 2)
    torch.testing.assert_close(value, expected)
    assert float(loss(target, target)) == 0.0
    value.backward()
    assert out.grad is not None and float(out.grad.abs().sum()) > 0
    assert all(p.grad is None for p in net.parameters())
    # Grayscale images are repeated to the three channels the network takes.
    g = torch.rand(2, 1, 16, 16)
    torch.testing.assert_close(
        loss(g, g * 0.5), loss(g.expand(-1, 3, -1, -1), (g * 0.5).expand(-1, 3, -1, -1))
    )


def test_training_with_the_perceptual_loss(folder):
    ds = ImageFolderDataset(folder, 16)
    torch.manual_seed(0)
    tr = Trainer(
        SmallAutoencoder(16, embedding_dim=8),
        epochs=4,
        batch_size=8,
        lr=3e-3,
        loss="perceptual",
        feature_net=_TinyFeatures(),
        progress=False,
    ).fit(ds)
    assert tr.history_[-1] < tr.history_[0]


def test_vgg19_layers_match_torchvision():
    tv = pytest.importorskip("torchvision.models.vgg")
    from icas.dl.losses import VGG19_LAYERS, _vgg19_layers

    ours = _vgg19_layers(VGG19_LAYERS).state_dict()
    ref = tv.make_layers(tv.cfgs["E"])[:VGG19_LAYERS].state_dict()  # torchvision's vgg19 features
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in ref.items()}


def test_vgg19_random_with_a_warning_or_from_a_local_file(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # an empty cache
    with pytest.warns(UserWarning, match="random VGG19 weights"):
        torch.manual_seed(0)
        random_net = vgg19_features()
    # Only the kept layers are needed: a trimmed local file (no download).
    state = {f"features.{k}": v for k, v in random_net.net.state_dict().items()}
    torch.save(state, tmp_path / "vgg19-trimmed.pth")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = vgg19_features(tmp_path / "vgg19-trimmed.pth")
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), random_net(x))
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="bad.pth: not VGG19 weights"):
        vgg19_features(tmp_path / "bad.pth")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        vgg19_features(tmp_path / "none.pth")


def test_devices():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device must be one of"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device"):
            resolve_device("cuda")


def test_trainer_validation():
    m = SmallAutoencoder(16)
    with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
        Trainer(m, epochs=0)
    with pytest.raises(ValueError, match="loss must be one of"):
        Trainer(m, loss="huber")
    with pytest.raises(ValueError, match="lr must be a positive number"):
        Trainer(m, lr=-1.0)
    with pytest.raises(TypeError, match="embed"):
        Trainer(torch.nn.Linear(2, 2))
