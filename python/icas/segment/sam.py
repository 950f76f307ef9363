"""Segment Anything (SAM) as a state object: automatic masks and prompted masks.

A :class:`SamSession` owns one SAM model (built from a local checkpoint; icas
never downloads weights) and a cache of image embeddings. The image encoder is
the slow part of SAM (tens of seconds per image on a CPU for ViT-B); the mask
decoder answers a click in a fraction of a second. So each image is encoded
once: embeddings are kept in memory (least recently used first out), optionally
on disk, and can be computed for a whole folder in a background thread while
the person works on the first image.

torch and segment-anything are optional (``pip install "icas[sam]"``) and are
imported only when a session is created.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from icas.segment._image import as_bgr, read_bgr, relabel
from icas.segment._params import Param, resolve

#: Image files :meth:`SamSession.precompute` picks up from a folder.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

MODEL_TYPES = ("vit_h", "vit_l", "vit_b")

# Parameters of SamAutomaticMaskGenerator (its defaults), checked before use.
_AUTOMATIC = {
    "points_per_side": Param(32, "int", low=1),
    "points_per_batch": Param(64, "int", low=1),
    "pred_iou_thresh": Param(0.88, "float", low=0, high=1),
    "stability_score_thresh": Param(0.95, "float", low=0, high=1),
    "stability_score_offset": Param(1.0, "float", low=0),
    "box_nms_thresh": Param(0.7, "float", low=0, high=1),
    "crop_n_layers": Param(0, "int", low=0, high=4),
    "crop_nms_thresh": Param(0.7, "float", low=0, high=1),
    "crop_overlap_ratio": Param(512 / 1500, "float", low=0, high=1),
    "crop_n_points_downscale_factor": Param(1, "int", low=1),
    "min_mask_region_area": Param(0, "int", low=0),
}


def _require():
    """Import torch and segment_anything, or say which extra to install."""
    try:
        import segment_anything
        import torch
    except ImportError as exc:
        raise ImportError(
            "SAM segmentation needs torch, torchvision and segment-anything: "
            'pip install "icas[sam]"'
        ) from exc
    return torch, segment_anything


def image_key(rgb: np.ndarray) -> str:
    """Content hash of an ``(h, w, 3)`` uint8 image: the cache key of its embedding."""
    rgb = np.ascontiguousarray(rgb)
    h = hashlib.blake2b(digest_size=16)
    h.update(np.asarray(rgb.shape, np.int64).tobytes())
    h.update(rgb.data)
    return h.hexdigest()


@dataclass(frozen=True)
class Embedding:
    """SAM's image embedding and the sizes the predictor needs with it.

    ``features`` is a torch tensor ``(1, C, H', W')`` float32 on the session's
    device; ``original_size`` is the image's ``(h, w)``, ``input_size`` its size
    after resizing the longer side to the encoder's input.
    """

    features: object
    original_size: tuple[int, int]
    input_size: tuple[int, int]


@dataclass(frozen=True)
class Prompt:
    """One prompt: ``kind`` ``"point"`` (``xy`` (2,), ``positive``) or ``"box"``
    (``xy`` (4,) as x0, y0, x1, y1)."""

    kind: str
    xy: tuple
    positive: bool = True


class Precompute:
    """Handle of a background embedding run (see :meth:`SamSession.precompute`).

    Attributes
    ----------
    total : int
        Images to encode.
    completed : int
        Images done so far (encoded, found in a cache, or failed).
    errors : dict of str to str
        Path -> one-line reason, for images that could not be read or encoded.
    """

    def __init__(self, paths: list[Path]):
        self.paths = paths
        self.total = len(paths)
        self.completed = 0
        self.errors: dict[str, str] = {}
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def cancel(self) -> None:
        """Stop after the image being encoded now."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def done(self) -> bool:
        """True once every image is done, or the run was cancelled and stopped."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until done (or ``timeout`` seconds); returns :meth:`done`."""
        return self._done.wait(timeout)


class SamSession:
    """SAM on a series of images, with cached image embeddings.

    Parameters
    ----------
    model : segment_anything.modeling.Sam, optional
        A model built by the caller (e.g. a small one for tests). When given,
        ``model_type`` and ``checkpoint`` are not used.
    model_type : {"vit_b", "vit_l", "vit_h"}, default "vit_b"
        Architecture of the checkpoint.
    checkpoint : str or os.PathLike, optional
        Local path of the weights (``sam_vit_b_01ec64.pth`` and friends, from
        the segment-anything repository). Required without ``model``; never
        downloaded.
    device : {"cpu", "cuda", "auto"}, default "cpu"
        ``"auto"`` uses a CUDA device when torch sees one.
    memory_cache : int, default 8
        Embeddings kept in memory (least recently used dropped first); 0 keeps
        none. One ViT embedding is 4 MiB.
    cache_dir : str or os.PathLike, optional
        Folder for embeddings on disk (one ``.npz`` per image under a folder per
        model), so a later session on the same images skips the encoder.

    Raises
    ------
    ImportError
        When torch or segment-anything is not installed (install ``icas[sam]``).
    FileNotFoundError
        When ``checkpoint`` does not exist.
    ValueError
        For an unknown ``model_type`` or ``device``, a missing checkpoint, a
        checkpoint that does not fit ``model_type``, or a negative ``memory_cache``.

    Notes
    -----
    Coordinates are ``(x, y)`` pixels of the image as given. Images are BGR
    (OpenCV's order) like everywhere in icas.
    """

    def __init__(
        self,
        model=None,
        *,
        model_type: str = "vit_b",
        checkpoint: str | os.PathLike | None = None,
        device: str = "cpu",
        memory_cache: int = 8,
        cache_dir: str | os.PathLike | None = None,
    ):
        torch, sa = _require()
        if isinstance(memory_cache, bool) or not isinstance(memory_cache, int) or memory_cache < 0:
            raise ValueError(f"memory_cache must be an integer >= 0, got {memory_cache!r}")
        self._torch, self._sa = torch, sa
        self.device = _device(torch, device)
        if model is None:
            model, self._model_id = _load(torch, sa, model_type, checkpoint)
        else:
            from segment_anything.modeling import Sam

            if not isinstance(model, Sam):
                raise TypeError(
                    f"model must be a segment_anything.modeling.Sam, got {type(model).__name__}"
                )
            self._model_id = None  # computed from the weights when the disk cache needs it
        self.model = model.to(self.device).eval()
        from segment_anything.utils.transforms import ResizeLongestSide

        self._transform = ResizeLongestSide(self.model.image_encoder.img_size)
        self.memory_cache = memory_cache
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self._memory: OrderedDict[str, Embedding] = OrderedDict()
        self._pending: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        #: Number of times the image encoder ran (cache misses), for tests and logs.
        self.encoder_calls = 0
        self._predictor = _cached_predictor(sa.SamPredictor, self)
        self._image: np.ndarray | None = None
        self._prompts: list[Prompt] = []
        self._mask: np.ndarray | None = None

    # ------------------------------------------------------------------ embeddings
    @property
    def model_id(self) -> str:
        """Identifies the weights in the disk cache: the checkpoint's name, size
        and modification time, or a hash of the weights of a model passed in."""
        if self._model_id is None:
            h = hashlib.blake2b(digest_size=8)
            for name, tensor in self.model.state_dict().items():
                h.update(name.encode())
                h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
            self._model_id = "model-" + h.hexdigest()
        return self._model_id

    def _disk_path(self, key: str) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / self.model_id / f"{key}.npz"

    def embedding(self, image) -> Embedding:
        """The embedding of an image: from memory, from disk, or from the encoder.

        Parameters
        ----------
        image : ndarray of shape (h, w, 3), uint8, or str or os.PathLike
            BGR image or its path.

        Returns
        -------
        Embedding
        """
        rgb = cv2.cvtColor(as_bgr(image), cv2.COLOR_BGR2RGB)
        return self._embedding_rgb(rgb)

    def _embedding_rgb(self, rgb: np.ndarray) -> Embedding:
        key = image_key(rgb)
        while True:
            with self._lock:
                hit = self._memory.get(key)
                if hit is not None:
                    self._memory.move_to_end(key)
                    return hit
                busy = self._pending.get(key)
                if busy is None:
                    self._pending[key] = threading.Event()
                    break
            # Another thread is encoding this very image: wait, then find its
            # result in memory or on disk (or encode it ourselves if neither keeps it).
            busy.wait()
        try:
            emb = self._load_disk(key)
            if emb is None:
                emb = self._encode(rgb)
                self._save_disk(key, emb)
            with self._lock:
                if self.memory_cache:
                    self._memory[key] = emb
                    self._memory.move_to_end(key)
                    while len(self._memory) > self.memory_cache:
                        self._memory.popitem(last=False)
            return emb
        finally:
            with self._lock:
                self._pending.pop(key).set()

    def _encode(self, rgb: np.ndarray) -> Embedding:
        torch = self._torch
        resized = self._transform.apply_image(rgb)
        x = torch.as_tensor(resized, device=self.device).permute(2, 0, 1).contiguous()[None]
        with torch.no_grad():
            features = self.model.image_encoder(self.model.preprocess(x))
        with self._lock:
            self.encoder_calls += 1
        return Embedding(features, tuple(rgb.shape[:2]), tuple(x.shape[-2:]))

    def _load_disk(self, key: str) -> Embedding | None:
        path = self._disk_path(key)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path) as z:
                features = self._torch.from_numpy(z["features"]).to(self.device)
                return Embedding(
                    features,
                    tuple(int(v) for v in z["original_size"]),
                    tuple(int(v) for v in z["input_size"]),
                )
        except (OSError, KeyError, ValueError):
            return None  # a damaged cache file is recomputed (and rewritten)

    def _save_disk(self, key: str, emb: Embedding) -> None:
        path = self._disk_path(key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a reader (or a crash) never sees half a file.
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp.npz")
        np.savez(
            tmp,
            features=emb.features.detach().cpu().numpy(),
            original_size=np.asarray(emb.original_size),
            input_size=np.asarray(emb.input_size),
        )
        os.replace(tmp, path)

    def cached(self, image) -> bool:
        """Whether the embedding of ``image`` is in memory or on disk already."""
        rgb = cv2.cvtColor(as_bgr(image), cv2.COLOR_BGR2RGB)
        key = image_key(rgb)
        with self._lock:
            if key in self._memory:
                return True
        path = self._disk_path(key)
        return path is not None and path.is_file()

    def precompute(self, images, *, background: bool = True) -> Precompute:
        """Encode many images ahead of time, into the caches.

        Parameters
        ----------
        images : str, os.PathLike or iterable of them
            A folder (its image files, sorted by name, not recursive) or paths.
        background : bool, default True
            Run in a daemon thread and return at once; otherwise return when done.

        Returns
        -------
        Precompute
            Progress, errors, ``wait()`` and ``cancel()``.

        Notes
        -----
        Without ``cache_dir`` only the last ``memory_cache`` embeddings are kept,
        so give a ``cache_dir`` for folders larger than that.
        """
        paths = _image_paths(images)
        job = Precompute(paths)

        def run():
            try:
                for p in paths:
                    if job.cancelled:
                        break
                    try:
                        self._embedding_rgb(cv2.cvtColor(read_bgr(p), cv2.COLOR_BGR2RGB))
                    except (OSError, ValueError, RuntimeError) as exc:
                        job.errors[str(p)] = f"{type(exc).__name__}: {exc}"
                    job.completed += 1
            finally:
                job._done.set()

        if background:
            job._thread = threading.Thread(target=run, name="icas-sam-precompute", daemon=True)
            job._thread.start()
        else:
            run()
        return job

    # ------------------------------------------------------------------ automatic
    def automatic(self, image, *, uncovered_segments: bool = True, **params) -> np.ndarray:
        """Segment an image with SAM's automatic mask generator.

        Parameters
        ----------
        image : ndarray of shape (h, w, 3), uint8, or str or os.PathLike
            BGR image or its path.
        uncovered_segments : bool, default True
            Pixels no mask covers form segments of their own (one per
            4-connected region), so they can still be painted; otherwise they
            are 0 like edge pixels.
        **params
            ``SamAutomaticMaskGenerator`` parameters: ``points_per_side`` (32),
            ``points_per_batch`` (64), ``pred_iou_thresh`` (0.88),
            ``stability_score_thresh`` (0.95), ``stability_score_offset`` (1.0),
            ``box_nms_thresh`` (0.7), ``crop_n_layers`` (0), ``crop_nms_thresh``
            (0.7), ``crop_overlap_ratio`` (512/1500),
            ``crop_n_points_downscale_factor`` (1), ``min_mask_region_area`` (0).

        Returns
        -------
        ndarray of shape (h, w), int32
            Segments ``1..n`` in raster order; where masks overlap the smaller
            mask wins, so objects stay visible inside the regions around them.
        """
        from segment_anything import SamAutomaticMaskGenerator

        options = resolve("sam automatic", _AUTOMATIC, params)
        bgr = as_bgr(image)
        generator = SamAutomaticMaskGenerator(self.model, output_mode="binary_mask", **options)
        # The generator encodes through this predictor, i.e. through our caches.
        generator.predictor = _cached_predictor(self._sa.SamPredictor, self)
        records = generator.generate(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        return masks_to_labels(
            [r["segmentation"] for r in records],
            bgr.shape[:2],
            uncovered_segments=uncovered_segments,
        )

    # ------------------------------------------------------------------ prompts
    def set_image(self, image) -> None:
        """Make ``image`` the one prompts refer to (encoding it unless cached);
        forgets the prompts and the last mask."""
        bgr = as_bgr(image)
        self._predictor.set_image(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        self._image = bgr
        self.reset()

    @property
    def image(self) -> np.ndarray | None:
        """The current image (BGR), or None before :meth:`set_image`."""
        return self._image

    @property
    def prompts(self) -> tuple[Prompt, ...]:
        """Prompts since the last reset, oldest first."""
        return tuple(self._prompts)

    def _need_image(self) -> tuple[int, int]:
        if self._image is None:
            raise ValueError("no image: call set_image(image) first")
        return self._image.shape[:2]

    def add_point(self, xy, *, positive: bool = True) -> None:
        """Add a foreground (``positive``) or background point at ``(x, y)``."""
        h, w = self._need_image()
        x, y = _xy(xy, "xy")
        if not (0 <= x < w and 0 <= y < h):
            raise ValueError(f"point ({x:g}, {y:g}) lies outside the {w}x{h} image")
        self._prompts.append(Prompt("point", (x, y), bool(positive)))

    def add_box(self, corner1, corner2) -> None:
        """Set the box prompt from two opposite corners (any order). SAM takes one
        box: the latest one counts, :meth:`undo` brings back the one before."""
        h, w = self._need_image()
        (x1, y1), (x2, y2) = _xy(corner1, "corner1"), _xy(corner2, "corner2")
        x0, x1 = sorted((x1, x2))
        y0, y1 = sorted((y1, y2))
        if x1 < 0 or y1 < 0 or x0 >= w or y0 >= h:
            raise ValueError(
                f"box ({x0:g}, {y0:g})-({x1:g}, {y1:g}) lies outside the {w}x{h} image"
            )
        box = (max(x0, 0.0), max(y0, 0.0), min(x1, w - 1.0), min(y1, h - 1.0))
        self._prompts.append(Prompt("box", box))

    def undo(self) -> bool:
        """Remove the last prompt; False when there was none."""
        if not self._prompts:
            return False
        self._prompts.pop()
        return True

    def reset(self) -> None:
        """Forget the prompts and the last mask (the image stays)."""
        self._prompts = []
        self._mask = None

    def predict(self, *, multimask: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Masks for the current prompts (the mask decoder only: the embedding is cached).

        Parameters
        ----------
        multimask : bool, default False
            Return SAM's three candidate masks (best for a single ambiguous
            click) instead of one.

        Returns
        -------
        masks : ndarray of shape (m, h, w), bool
            ``m`` is 1, or 3 with ``multimask``; sorted by predicted quality, best first.
        scores : ndarray of shape (m,), float32
            SAM's predicted IoU of each mask.

        Raises
        ------
        ValueError
            Without an image or without any prompt.
        """
        self._need_image()
        if not self._prompts:
            raise ValueError("no prompt: add a point or a box first")
        points = [p for p in self._prompts if p.kind == "point"]
        boxes = [p for p in self._prompts if p.kind == "box"]
        coords = np.array([p.xy for p in points], np.float32) if points else None
        labels = np.array([int(p.positive) for p in points], np.int32) if points else None
        box = np.array(boxes[-1].xy, np.float32) if boxes else None
        with self._torch.no_grad():
            masks, scores, _ = self._predictor.predict(
                point_coords=coords, point_labels=labels, box=box, multimask_output=multimask
            )
        order = np.argsort(-scores, kind="stable")
        masks, scores = masks[order].astype(bool), scores[order].astype(np.float32)
        self._mask = masks[0]
        return masks, scores

    def mask(self) -> np.ndarray | None:
        """The best mask of the last :meth:`predict`, ``(h, w)`` bool, or None."""
        return self._mask

    def labels(self) -> np.ndarray:
        """The last predicted mask as a label image for painting: ``(h, w)``
        int32, 1 inside the mask, 0 elsewhere (all 0 before any prediction)."""
        h, w = self._need_image()
        if self._mask is None:
            return np.zeros((h, w), np.int32)
        return self._mask.astype(np.int32)


def masks_to_labels(masks, shape, *, uncovered_segments: bool = True) -> np.ndarray:
    """Stack boolean masks into one label image, smaller masks on top.

    Parameters
    ----------
    masks : sequence of ndarray of shape (h, w), bool
    shape : tuple of int
        ``(h, w)``.
    uncovered_segments : bool, default True
        Give pixels outside every mask segments of their own (4-connected
        regions) instead of 0.

    Returns
    -------
    ndarray of shape (h, w), int32
        Segments ``1..n`` in raster order of their first pixel.
    """
    labels = np.zeros(shape, np.int32)
    order = sorted(range(len(masks)), key=lambda i: -int(np.count_nonzero(masks[i])))
    for n, i in enumerate(order, start=1):
        labels[np.asarray(masks[i], bool)] = n
    if uncovered_segments:
        free = (labels == 0).astype(np.uint8)
        if free.any():
            count, parts = cv2.connectedComponents(free, connectivity=4, ltype=cv2.CV_32S)
            labels[parts > 0] = parts[parts > 0] + len(masks)
    return relabel(labels)


def tiny_sam(*, seed: int = 0, img_size: int = 256):
    """A very small, randomly initialised SAM (for tests and benchmarks only).

    It has SAM's structure (ViT image encoder, prompt encoder, two-way mask
    decoder) with a handful of channels, so it runs in a fraction of a second
    on a CPU; its masks are meaningless. Needs ``icas[sam]``.
    """
    torch, _ = _require()
    from functools import partial

    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    dim, patch = 32, 16
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Sam(
            image_encoder=ImageEncoderViT(
                img_size=img_size,
                patch_size=patch,
                embed_dim=64,
                depth=2,
                num_heads=2,
                mlp_ratio=2.0,
                out_chans=dim,
                qkv_bias=True,
                norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                use_rel_pos=True,
                window_size=4,
                global_attn_indexes=(1,),
            ),
            prompt_encoder=PromptEncoder(
                embed_dim=dim,
                image_embedding_size=(img_size // patch, img_size // patch),
                input_image_size=(img_size, img_size),
                mask_in_chans=4,
            ),
            mask_decoder=MaskDecoder(
                transformer_dim=dim,
                transformer=TwoWayTransformer(depth=1, embedding_dim=dim, mlp_dim=64, num_heads=2),
                num_multimask_outputs=3,
                iou_head_depth=2,
                iou_head_hidden_dim=32,
            ),
            pixel_mean=[123.675, 116.28, 103.53],
            pixel_std=[58.395, 57.12, 57.375],
        )
    return model.eval()


# ---------------------------------------------------------------------- helpers


def _device(torch, device: str):
    if device not in ("cpu", "cuda", "auto"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {device!r}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but torch sees no CUDA device; use 'cpu' or 'auto'")
    return torch.device(device)


def check_checkpoint(model_type: str, checkpoint) -> Path:
    """Check a model type and the local path of its weights (without torch).

    Returns
    -------
    pathlib.Path
        The checkpoint's path.

    Raises
    ------
    ValueError
        For an unknown ``model_type`` or no ``checkpoint``.
    FileNotFoundError
        When ``checkpoint`` is not a file (weights are never downloaded).
    """
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type must be one of {', '.join(MODEL_TYPES)}, got {model_type!r}")
    if checkpoint is None:
        raise ValueError(
            "checkpoint is required: the local path of the SAM weights for "
            f"{model_type!r} (icas never downloads them; get sam_{model_type}_*.pth from "
            "the segment-anything repository)"
        )
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(
            f"SAM checkpoint not found: {str(path)!r} (icas never downloads weights; "
            f"download the {model_type} checkpoint from the segment-anything repository "
            "and pass its local path)"
        )
    return path


def _load(torch, sa, model_type: str, checkpoint):
    path = check_checkpoint(model_type, checkpoint)
    model = sa.sam_model_registry[model_type](checkpoint=None)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as exc:  # torch raises several types for a wrong or broken file
        raise ValueError(
            f"cannot load {str(path)!r} as a {model_type} SAM checkpoint: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc
    st = path.stat()
    return model, f"{model_type}-{path.name}-{st.st_size}-{int(st.st_mtime)}"


def _cached_predictor(base, session: SamSession):
    """A SamPredictor whose ``set_image`` takes the embedding from the session's caches."""

    class CachedPredictor(base):
        def set_image(self, image, image_format="RGB"):
            if image_format not in ("RGB", "BGR"):
                raise ValueError(f"image_format must be 'RGB' or 'BGR', got {image_format!r}")
            rgb = image if image_format == "RGB" else image[..., ::-1]
            emb = session._embedding_rgb(np.ascontiguousarray(rgb))
            self.reset_image()
            self.features = emb.features
            self.original_size = emb.original_size
            self.input_size = emb.input_size
            self.is_image_set = True

    return CachedPredictor(session.model)


def _xy(value, name: str) -> tuple[float, float]:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (2,) or not np.isfinite(arr).all():
        raise ValueError(f"{name} must be an (x, y) pair of finite numbers, got {value!r}")
    return float(arr[0]), float(arr[1])


def _image_paths(images) -> list[Path]:
    if isinstance(images, (str, os.PathLike)):
        folder = Path(images)
        if folder.is_dir():
            return sorted(
                p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
        if folder.is_file():
            return [folder]
        raise FileNotFoundError(f"no such folder or file: {str(folder)!r}")
    if isinstance(images, Iterable):
        return [Path(p) for p in images]
    raise TypeError(f"images must be a folder, a path or paths, got {type(images).__name__}")
