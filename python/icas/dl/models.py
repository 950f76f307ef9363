"""Convolutional autoencoders whose bottleneck is the image embedding.

Two are provided, for square power-of-two inputs:

* :class:`SmallAutoencoder` for small inputs (64-128 px; 16-256 accepted):
  stride-2 convolutions down to 4 x 4, a linear bottleneck.
* :class:`LargeAutoencoder` for 256 px and above (128-2048 accepted): a
  strided 5 x 5 stem, wider stages down to 8 x 8, a 1 x 1 reduction before a
  linear bottleneck, so the first layers (where the pixels are many) stay cheap.

Both decode with nearest upsampling + 3 x 3 convolutions (no checkerboard
artefacts of transposed convolutions) and end in a sigmoid, matching inputs
in [0, 1]. ``embed(x)`` returns the bottleneck ``(n, embedding_dim)``;
``forward(x)`` the reconstruction. Any ``torch.nn.Module`` with an ``embed``
method can take their place in the pipeline (e.g. a pretrained feature
extractor loaded from a local file).
"""

from __future__ import annotations

import math

from icas.dl._deps import require_torch

torch = require_torch()
nn = torch.nn


def _power_of_two(image_size, low: int, high: int, name: str) -> int:
    if isinstance(image_size, bool) or not isinstance(image_size, int):
        raise TypeError(f"{name}: image_size must be an integer, got {image_size!r}")
    if image_size < low or image_size > high or image_size & (image_size - 1):
        raise ValueError(
            f"{name}: image_size must be a power of two in [{low}, {high}], got {image_size}"
        )
    return image_size


def _positive(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _down(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=2, padding=k // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _out(cin: int, channels: int) -> list:
    # The last upsampling goes straight to the output channels: a full-resolution
    # hidden layer would cost more than the rest of the network together.
    return [
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(cin, channels, 3, padding=1),
        nn.Sigmoid(),
    ]


class _Autoencoder(nn.Module):
    """Shared body: ``encoder`` (convolutions) -> ``to_code`` (linear) ->
    code -> ``from_code`` (linear) -> ``decoder`` (convolutions)."""

    def config(self) -> dict:
        """Constructor arguments, stored in checkpoints to rebuild the model."""
        return dict(self._config)

    def _build_head(self, grid: int, code_channels: int, embedding_dim: int) -> None:
        self._grid, self._code_channels = grid, code_channels
        flat = code_channels * grid * grid
        self.to_code = nn.Linear(flat, embedding_dim)
        self.from_code = nn.Sequential(nn.Linear(embedding_dim, flat), nn.ReLU(inplace=True))

    def _check_input(self, x):
        s, c = self._config["image_size"], self._config["channels"]
        if x.ndim != 4 or x.shape[1] != c or x.shape[2] != s or x.shape[3] != s:
            raise ValueError(
                f"{type(self).__name__} expects (n, {c}, {s}, {s}) input, got {tuple(x.shape)}"
            )

    def embed(self, x):
        """Embeddings ``(n, embedding_dim)`` of images ``(n, channels, s, s)`` in [0, 1]."""
        self._check_input(x)
        return self.to_code(torch.flatten(self.encoder(x), 1))

    def decode(self, code):
        """Images ``(n, channels, s, s)`` in [0, 1] from embeddings."""
        h = self.from_code(code).view(-1, self._code_channels, self._grid, self._grid)
        return self.decoder(h)

    def forward(self, x):
        """The reconstruction of ``x`` (same shape)."""
        return self.decode(self.embed(x))


class SmallAutoencoder(_Autoencoder):
    """Autoencoder for small square inputs (64-128 px is its range; 16-256 accepted).

    Parameters
    ----------
    image_size : int, default 64
        Input side, a power of two in [16, 256].
    channels : int, default 3
    embedding_dim : int, default 32
    width : int, default 16
        Channels of the first stage; each stage doubles them, up to ``8 * width``.

    Notes
    -----
    ``log2(image_size / 4)`` stride-2 stages take the image to 4 x 4.
    """

    def __init__(
        self, image_size: int = 64, channels: int = 3, embedding_dim: int = 32, width: int = 16
    ):
        super().__init__()
        _power_of_two(image_size, 16, 256, "SmallAutoencoder")
        for v, n in ((channels, "channels"), (embedding_dim, "embedding_dim"), (width, "width")):
            _positive(v, n)
        self._config = {
            "image_size": image_size,
            "channels": channels,
            "embedding_dim": embedding_dim,
            "width": width,
        }
        stages = int(math.log2(image_size // 4))
        widths = [min(width * 2**i, width * 8) for i in range(stages)]
        self.encoder = nn.Sequential(
            *[_down(cin, cout) for cin, cout in zip([channels, *widths[:-1]], widths, strict=True)]
        )
        self._build_head(4, widths[-1], embedding_dim)
        rev = widths[::-1]
        ups = [_up(cin, cout) for cin, cout in zip(rev, rev[1:], strict=False)]
        self.decoder = nn.Sequential(*ups, *_out(rev[-1], channels))


class LargeAutoencoder(_Autoencoder):
    """Autoencoder for large square inputs (256 px and above; 128-2048 accepted).

    Parameters
    ----------
    image_size : int, default 256
        Input side, a power of two in [128, 2048].
    channels : int, default 3
    embedding_dim : int, default 128
    width : int, default 32
        Channels of the stem; stages double them up to ``8 * width``.
    code_channels : int, default 32
        Channels of the 8 x 8 grid flattened into the bottleneck.
    """

    def __init__(
        self,
        image_size: int = 256,
        channels: int = 3,
        embedding_dim: int = 128,
        width: int = 32,
        code_channels: int = 32,
    ):
        super().__init__()
        _power_of_two(image_size, 128, 2048, "LargeAutoencoder")
        for v, n in (
            (channels, "channels"),
            (embedding_dim, "embedding_dim"),
            (width, "width"),
            (code_channels, "code_channels"),
        ):
            _positive(v, n)
        self._config = {
            "image_size": image_size,
            "channels": channels,
            "embedding_dim": embedding_dim,
            "width": width,
            "code_channels": code_channels,
        }
        stages = int(math.log2(image_size // 8))  # the stem is the first stage
        widths = [min(width * 2**i, width * 8) for i in range(stages)]
        layers = [_down(channels, widths[0], k=5)]
        layers += [_down(cin, cout) for cin, cout in zip(widths, widths[1:], strict=False)]
        layers += [nn.Conv2d(widths[-1], code_channels, 1), nn.ReLU(inplace=True)]
        self.encoder = nn.Sequential(*layers)
        self._build_head(8, code_channels, embedding_dim)
        rev = widths[::-1]
        self.decoder = nn.Sequential(
            nn.Conv2d(code_channels, rev[0], 1),
            nn.ReLU(inplace=True),
            *[_up(cin, cout) for cin, cout in zip(rev, rev[1:], strict=False)],
            *_out(rev[-1], channels),
        )


#: Model classes a checkpoint can name.
MODELS = {"SmallAutoencoder": SmallAutoencoder, "LargeAutoencoder": LargeAutoencoder}


def default_model(image_size: int, channels: int = 3, **kwargs) -> _Autoencoder:
    """The provided autoencoder for this input size: small up to 128 px, large from 256 px."""
    cls = SmallAutoencoder if image_size <= 128 else LargeAutoencoder
    return cls(image_size=image_size, channels=channels, **kwargs)


def build(name: str, config: dict) -> nn.Module:
    """A provided model from its class name and :meth:`config` (as in a checkpoint)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name](**config)


def check_embedder(model) -> nn.Module:
    """``model`` if it is a ``torch.nn.Module`` with a callable ``embed``, else TypeError."""
    if not isinstance(model, nn.Module) or not callable(getattr(model, "embed", None)):
        raise TypeError(
            f"model must be a torch.nn.Module with an embed(x) method, got {type(model).__name__}"
        )
    return model
