"""Autoencoders: shapes for several input sizes, embeddings, validation."""

import pytest

torch = pytest.importorskip("torch")

from icas.dl.models import (  # noqa: E402
    LargeAutoencoder,
    SmallAutoencoder,
    build,
    check_embedder,
    default_model,
)


@pytest.mark.parametrize(
    "cls,size,channels,dim",
    [
        (SmallAutoencoder, 16, 1, 8),
        (SmallAutoencoder, 32, 3, 32),
        (SmallAutoencoder, 64, 3, 32),
        (SmallAutoencoder, 128, 1, 16),
        (LargeAutoencoder, 128, 3, 64),
        (LargeAutoencoder, 256, 3, 128),
    ],
)
def test_shapes(cls, size, channels, dim):
    torch.manual_seed(0)
    model = cls(image_size=size, channels=channels, embedding_dim=dim).eval()
    x = torch.rand(2, channels, size, size)
    with torch.no_grad():
        y = model(x)
        e = model.embed(x)
    assert y.shape == x.shape
    assert e.shape == (2, dim)
    # A sigmoid output: reconstructions live where the inputs do.
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    # forward is decode(embed(x)).
    torch.testing.assert_close(model.decode(e), y)


def test_images_are_embedded_independently():
    torch.manual_seed(0)
    model = SmallAutoencoder(32).eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        together = model.embed(x)
        alone = torch.cat([model.embed(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "cls,size,message",
    [
        (SmallAutoencoder, 48, "power of two"),
        (SmallAutoencoder, 8, r"\[16, 256\]"),
        (SmallAutoencoder, 512, r"\[16, 256\]"),
        (LargeAutoencoder, 64, r"\[128, 2048\]"),
    ],
)
def test_bad_sizes(cls, size, message):
    with pytest.raises(ValueError, match=message):
        cls(image_size=size)


def test_wrong_input_shape_names_the_expected_one():
    model = SmallAutoencoder(32, channels=3)
    with pytest.raises(ValueError, match=r"expects \(n, 3, 32, 32\) input, got \(1, 1, 32, 32\)"):
        model.embed(torch.rand(1, 1, 32, 32))


def test_default_model_and_rebuild_from_config():
    assert isinstance(default_model(64), SmallAutoencoder)
    assert isinstance(default_model(128), SmallAutoencoder)
    assert isinstance(default_model(256), LargeAutoencoder)
    m = LargeAutoencoder(256, channels=1, embedding_dim=16)
    again = build("LargeAutoencoder", m.config())
    assert again.config() == m.config()
    assert [p.shape for p in again.parameters()] == [p.shape for p in m.parameters()]
    with pytest.raises(ValueError, match="unknown model"):
        build("Resnet", {})


def test_any_module_with_embed_is_accepted():
    class Pooled(torch.nn.Module):
        def embed(self, x):
            return x.mean(dim=(2, 3))

    check_embedder(Pooled())
    with pytest.raises(TypeError, match="embed"):
        check_embedder(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="embed"):
        check_embedder(object())
