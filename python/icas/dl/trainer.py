"""Training an autoencoder, and saving / loading it as a checkpoint.

:class:`Trainer` runs Adam with a step learning-rate schedule on a
reconstruction loss (:mod:`icas.dl.losses`), one progress bar per epoch with
the running loss. Checkpoints are plain dictionaries of tensors and numbers,
loaded with ``torch.load(..., weights_only=True)`` so a checkpoint file can
never run code.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

from icas.dl._deps import require_torch
from icas.dl.dataset import batches
from icas.dl.losses import make_loss
from icas.dl.models import MODELS, build, check_embedder

torch = require_torch()

log = logging.getLogger("icas")

DEVICES = ("auto", "cpu", "cuda")
CHECKPOINT_FORMAT = "icas-dl-checkpoint-1"


def resolve_device(device: str = "auto"):
    """``auto``: CUDA when torch sees a device, else CPU; ``cuda`` without one raises."""
    if isinstance(device, torch.device):
        return device
    if device not in DEVICES and not str(device).startswith("cuda:"):
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {device!r} asked for but torch sees no CUDA device "
            f"(torch {torch.__version__}, CUDA build {torch.version.cuda}); "
            "use --device cpu or auto"
        )
    return torch.device(device)


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


class Trainer:
    """Train an autoencoder to reconstruct its inputs.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(n, c, s, s)`` images to reconstructions of the same shape
        (``forward``) and has ``embed``.
    epochs : int, default 15
    lr : float, default 1e-3
        Adam's learning rate.
    batch_size : int, default 64
    loss : {"mse", "mae", "perceptual"}, default "mse"
    step_size : int, optional
        Epochs between learning-rate steps (StepLR); default a third of `epochs`.
    gamma : float, default 0.5
        Learning-rate factor at each step.
    device : {"auto", "cpu", "cuda"}, default "auto"
    seed : int, default 0
        Seeds the batch order (and the loss network's random weights, if any);
        the global torch random state is left as it was.
    progress : bool, default True
        One tqdm bar per epoch on stderr with the running loss.
    feature_net, vgg_weights
        For ``loss="perceptual"``: see :class:`icas.dl.losses.PerceptualLoss`.

    Attributes
    ----------
    history_ : list of float
        Mean training loss of each epoch, after :meth:`fit`.
    """

    def __init__(
        self,
        model,
        *,
        epochs: int = 15,
        lr: float = 1e-3,
        batch_size: int = 64,
        loss: str = "mse",
        step_size: int | None = None,
        gamma: float = 0.5,
        device: str = "auto",
        seed: int = 0,
        progress: bool = True,
        feature_net=None,
        vgg_weights=None,
    ):
        self.model = check_embedder(model)
        self.epochs = _positive_int(epochs, "epochs")
        if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        self.lr = float(lr)
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.step_size = (
            max(1, self.epochs // 3) if step_size is None else _positive_int(step_size, "step_size")
        )
        if not isinstance(gamma, (int, float)) or not 0 < gamma <= 1:
            raise ValueError(f"gamma must be in (0, 1], got {gamma!r}")
        self.gamma = float(gamma)
        self.device = resolve_device(device)
        self.seed = seed
        self.progress = progress
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.loss_fn = make_loss(loss, feature_net=feature_net, vgg_weights=vgg_weights)
        self.loss = loss
        self.history_: list[float] = []

    def fit(self, dataset) -> Trainer:
        """Train on ``dataset`` (items ``(path, tensor)`` or tensors); returns self."""
        from tqdm import tqdm

        if len(dataset) == 0:
            raise ValueError("no images to train on")
        model = self.model.to(self.device)
        loss_fn = self.loss_fn.to(self.device)
        opt = torch.optim.Adam(model.parameters(), lr=self.lr)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=self.step_size, gamma=self.gamma)
        gen = torch.Generator().manual_seed(self.seed)
        n_batches = math.ceil(len(dataset) / self.batch_size)
        model.train()
        loss_fn.train()
        try:
            for epoch in range(self.epochs):
                total, seen = 0.0, 0
                bar = tqdm(
                    total=n_batches,
                    desc=f"epoch {epoch + 1}/{self.epochs}",
                    unit="batch",
                    leave=False,
                    disable=not self.progress,
                )
                for _, x in batches(dataset, self.batch_size, shuffle=True, generator=gen):
                    x = x.to(self.device, non_blocking=True)
                    opt.zero_grad(set_to_none=True)
                    loss = loss_fn(model(x), x)
                    if not torch.isfinite(loss):
                        raise FloatingPointError(
                            f"training loss became {loss.item()} at epoch {epoch + 1}; "
                            "lower the learning rate"
                        )
                    loss.backward()
                    opt.step()
                    total += loss.item() * len(x)
                    seen += len(x)
                    bar.update(1)
                    bar.set_postfix(loss=f"{total / seen:.5f}")
                bar.close()
                sched.step()
                self.history_.append(total / seen)
                log.info("epoch %d/%d: loss %.6f", epoch + 1, self.epochs, self.history_[-1])
        finally:
            model.eval()
        return self


# -- checkpoints -------------------------------------------------------------


def save_checkpoint(path, model, **meta) -> Path:
    """Write ``model``'s weights (and its class and config, for the provided
    autoencoders) to ``path`` atomically. ``meta``: numbers, strings, lists,
    dicts to keep beside them (e.g. the loss history)."""
    path = Path(os.fspath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    data = {
        "format": CHECKPOINT_FORMAT,
        "model": type(model).__name__,
        "config": model.config() if hasattr(model, "config") else {},
        "state_dict": state,
        "meta": meta,
    }
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(data, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path, model=None, *, device: str = "cpu"):
    """Load a checkpoint; returns ``(model, meta)`` with the model in eval mode.

    Parameters
    ----------
    path : str or os.PathLike
        Written by :func:`save_checkpoint`, or (with `model`) a bare state dict.
    model : torch.nn.Module, optional
        The module to load the weights into. None: rebuild the provided
        autoencoder the checkpoint names.
    device : str, default "cpu"
    """
    path = Path(os.fspath(path))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint file does not exist")
    dev = resolve_device(device)
    try:
        data = torch.load(path, map_location=dev, weights_only=True)
    except Exception as exc:  # pickle/zip errors: one line naming the file
        raise ValueError(f"{path}: not a readable torch checkpoint ({type(exc).__name__})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not an icas checkpoint")
    if data.get("format") == CHECKPOINT_FORMAT:
        state, meta = data["state_dict"], dict(data.get("meta", {}))
        if model is None:
            if data.get("model") not in MODELS:
                raise ValueError(
                    f"{path}: holds a {data.get('model')!r}; pass that model to load it"
                )
            model = build(data["model"], data["config"])
    elif model is not None:
        state, meta = data, {}
    else:
        raise ValueError(f"{path}: not an icas checkpoint (pass model= to load a bare state dict)")
    check_embedder(model)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        reason = first[0] if first else exc
        raise ValueError(f"{path}: weights do not fit the model: {reason}") from exc
    return model.to(dev).eval(), meta
