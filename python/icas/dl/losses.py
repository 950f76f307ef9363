"""Reconstruction losses for the autoencoders: ``mse``, ``mae``, ``perceptual``.

The perceptual loss compares images through a second, frozen network: the
mean squared difference of its features for the input and for the
reconstruction. By default that network is the convolutional part of VGG19 up
to ``relu3_4``, with its weights read from a local file; icas never downloads
weights. Without a file the VGG19 weights are random (with a warning): random
convolutional features still measure structure, but pretrained ones are better.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from icas.dl._deps import require_torch

torch = require_torch()
nn = torch.nn

LOSSES = ("mse", "mae", "perceptual")

#: VGG19 ``features`` layers kept by default: up to and including relu3_4.
VGG19_LAYERS = 18

#: File name of torchvision's ImageNet VGG19 weights, looked for in torch's
#: hub cache (``torch.hub.get_dir()/checkpoints``) when no file is given.
VGG19_FILE = "vgg19-dcbb9e9d.pth"

#: VGG19's convolutional layers ("E" in the paper): channels, "M" for max pooling.
_VGG19 = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    512,
    "M",
)

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _vgg19_layers(layers: int) -> nn.Sequential:
    """The first ``layers`` modules of ``torchvision.models.vgg19().features``
    (same modules, same state-dict keys), without building the 120 M
    parameters of its classifier."""
    mods: list = []
    cin = 3
    for v in _VGG19:
        if v == "M":
            mods.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            conv = nn.Conv2d(cin, v, kernel_size=3, padding=1)
            # torchvision's VGG initialisation: random features keep their scale
            # through the ReLUs, which matters when no weights file is given.
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.bias)
            mods += [conv, nn.ReLU(inplace=True)]
            cin = v
    return nn.Sequential(*mods[:layers])


def vgg19_features(weights=None, *, layers: int = VGG19_LAYERS) -> nn.Module:
    """The first ``layers`` modules of VGG19's ``features`` behind ImageNet normalisation.

    Parameters
    ----------
    weights : str or os.PathLike, optional
        A local file with a VGG19 state dict (torchvision's ``vgg19`` keys,
        e.g. ``vgg19-dcbb9e9d.pth``; only the ``features.<i>`` entries of the
        kept layers are needed, so a trimmed file of about 9 MB will do).
        None: that file in torch's hub cache if it is there, else random
        weights and a ``UserWarning``.
    layers : int, default :data:`VGG19_LAYERS`
    """
    if weights is not None and not Path(os.fspath(weights)).is_file():
        raise FileNotFoundError(f"{weights}: VGG19 weights file does not exist")
    feats = _vgg19_layers(layers)
    if weights is None:
        cached = Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE
        weights = cached if cached.is_file() else None
    if weights is None:
        warnings.warn(
            "perceptual loss: no VGG19 weights file given (vgg_weights=...) or cached; "
            "using random VGG19 weights (icas never downloads weights)",
            UserWarning,
            stacklevel=2,
        )
    else:
        path = Path(os.fspath(weights))
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle/zip errors: one line naming the file
            raise ValueError(f"{path}: not a readable torch file ({type(exc).__name__})") from exc
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        prefix = "features."
        wanted = {prefix + k for k in feats.state_dict()}
        if not isinstance(state, dict) or not wanted <= set(state):
            missing = sorted(wanted - set(state)) if isinstance(state, dict) else ["everything"]
            raise ValueError(f"{path}: not VGG19 weights (missing {missing[0]})")
        try:
            feats.load_state_dict({k[len(prefix) :]: state[k] for k in wanted})
        except RuntimeError as exc:
            raise ValueError(f"{path}: not VGG19 weights (shapes differ)") from exc
    return _Normalised(feats, _IMAGENET_MEAN, _IMAGENET_STD)


class _Normalised(nn.Module):
    """ImageNet normalisation in front of a network trained on it."""

    def __init__(self, net: nn.Module, mean, std):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, x):
        return self.net((x - self.mean) / self.std)


class PerceptualLoss(nn.Module):
    """Mean squared difference of ``feature_net`` features of output and target.

    Parameters
    ----------
    feature_net : torch.nn.Module, optional
        Maps ``(n, 3, h, w)`` images in [0, 1] to features (any shape).
        Default: :func:`vgg19_features` (``vgg_weights``).
    vgg_weights : str or os.PathLike, optional
        Weights file for the default VGG19.

    Notes
    -----
    The feature network is frozen (no gradients to its weights, eval mode)
    but gradients flow through it to the reconstruction. Grayscale images
    are repeated to three channels first.
    """

    def __init__(self, feature_net: nn.Module | None = None, *, vgg_weights=None):
        super().__init__()
        if feature_net is None:
            feature_net = vgg19_features(vgg_weights)
        elif not isinstance(feature_net, nn.Module):
            raise TypeError(
                f"feature_net must be a torch.nn.Module, got {type(feature_net).__name__}"
            )
        self.feature_net = feature_net.eval()
        for p in self.feature_net.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        self.feature_net.eval()  # frozen: batch-norm statistics must not move
        return self

    def forward(self, output, target):
        if output.shape != target.shape:
            raise ValueError(
                f"output {tuple(output.shape)} and target {tuple(target.shape)} differ"
            )
        if output.shape[1] == 1:
            output, target = output.expand(-1, 3, -1, -1), target.expand(-1, 3, -1, -1)
        with torch.no_grad():
            want = self.feature_net(target)
        return torch.mean((self.feature_net(output) - want) ** 2)


def make_loss(name: str, *, feature_net: nn.Module | None = None, vgg_weights=None) -> nn.Module:
    """The loss module for ``name`` in :data:`LOSSES`."""
    if name == "mse":
        return nn.MSELoss()
    if name == "mae":
        return nn.L1Loss()
    if name == "perceptual":
        return PerceptualLoss(feature_net, vgg_weights=vgg_weights)
    raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {name!r}")
