"""A torch dataset over a folder of images at one fixed square size.

Images are read through :func:`icas.io.read_image` (the same reader as the
classic path), so files that are not images, empty, truncated or too large are
skipped and listed in ``skipped`` with a one-line reason instead of stopping a
training run. Every image is squashed to ``image_size x image_size`` (aspect
ratio not kept: the autoencoders take square power-of-two inputs).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from icas.dl._deps import require_torch
from icas.io import list_images, read_image

torch = require_torch()

#: ``cache=None`` keeps decoded images in memory up to this many bytes.
CACHE_LIMIT = 1 << 30

_PROBE_CHUNK = 256  # images decoded at a time when checking files without caching


def _check_size(image_size) -> int:
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)):
        raise TypeError(f"image_size must be an integer, got {image_size!r}")
    image_size = int(image_size)
    if image_size < 8 or image_size & (image_size - 1):
        raise ValueError(f"image_size must be a power of two >= 8, got {image_size}")
    return image_size


class ImageFolderDataset(torch.utils.data.Dataset):
    """Images of a folder (or a list of files) as float tensors in [0, 1].

    Parameters
    ----------
    source : str, os.PathLike or sequence of them
        A folder (listed with :func:`icas.io.list_images`) or the image files.
    image_size : int, default 64
        Side of the square input, a power of two.
    channels : {3, 1}, default 3
        3: RGB; 1: grayscale.
    recursive : bool, default False
        With a folder: also list its sub-folders.
    cache : bool or None, default None
        True: decode every image once and keep the uint8 pixels in memory
        (``n * image_size**2 * channels`` bytes; epochs then cost no
        decoding); False: check every file once, then read from disk on each
        access; None: cache when that takes at most :data:`CACHE_LIMIT` bytes.
    n_threads : int, optional
        Decoding threads (None: ``OMP_NUM_THREADS`` or all cores).
    progress : bool, default False
        Progress bar while decoding.

    Attributes
    ----------
    paths : list of str
        The files that were read, in input order; item ``i`` is ``paths[i]``.
    skipped : list of (str, str)
        Files that could not be read and why.

    Notes
    -----
    An item is ``(path, tensor)`` with the tensor ``(channels, image_size,
    image_size)`` float32. With ``cache=False``, a file that was readable when
    the dataset was made and is not any more raises
    :class:`icas.io.ImageReadError` naming it.
    """

    def __init__(
        self,
        source,
        image_size: int = 64,
        *,
        channels: int = 3,
        recursive: bool = False,
        cache: bool | None = None,
        n_threads: int | None = None,
        progress: bool = False,
    ):
        self.image_size = _check_size(image_size)
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels!r}")
        self.channels = channels
        if isinstance(source, (str, os.PathLike)):
            if not Path(source).is_dir():
                raise FileNotFoundError(f"{source}: not a folder")
            files = [str(p) for p in list_images(source, recursive=recursive)]
        else:
            files = [os.fspath(p) for p in source]
        if cache is None:
            cache = len(files) * self.image_size**2 * channels <= CACHE_LIMIT
        self.cached = bool(cache)
        self._images: np.ndarray | None = None
        if self.cached:
            data, self.paths, self.skipped = self._decode(files, n_threads, progress)
            self._images = data
        else:
            self.paths, self.skipped = [], []
            for k in range(0, len(files), _PROBE_CHUNK):
                _, ok, bad = self._decode(
                    files[k : k + _PROBE_CHUNK], n_threads, progress and k == 0
                )
                self.paths += ok
                self.skipped += bad

    def _decode(self, files, n_threads, progress):
        from icas import features

        # The classic path's parallel reader: "tm" is BGR, "ssim" grayscale,
        # both at the given size; unreadable files come back in `skipped`.
        method = "tm" if self.channels == 3 else "ssim"
        size = (self.image_size, self.image_size)
        res = features.extract(files, method, size=size, n_threads=n_threads, progress=progress)
        data = res.data
        if data.size == 0:
            shape = (0, self.image_size, self.image_size) + ((3,) if self.channels == 3 else ())
            data = np.zeros(shape, np.uint8)
        if self.channels == 3:
            data = np.ascontiguousarray(data[..., ::-1])  # BGR -> RGB (VGG expects RGB)
        return data, [str(p) for p in res.paths], [(str(p), str(r)) for p, r in res.skipped]

    def __len__(self) -> int:
        return len(self.paths)

    def pixels(self, index: int) -> np.ndarray:
        """uint8 pixels of item ``index``: ``(s, s, 3)`` RGB or ``(s, s)``."""
        if self._images is not None:
            return self._images[index]
        img = read_image(
            self.paths[index], color=self.channels == 3, size=(self.image_size, self.image_size)
        )
        return img[..., ::-1] if self.channels == 3 else img

    def __getitem__(self, index: int):
        img = self.pixels(index)
        t = torch.from_numpy(np.ascontiguousarray(img)).float().div_(255.0)
        t = t.permute(2, 0, 1) if t.ndim == 3 else t.unsqueeze(0)
        return self.paths[index], t.contiguous()

    def tensors(self, indices) -> torch.Tensor:
        """Items ``indices`` stacked as ``(k, channels, s, s)`` float32 (no paths)."""
        return torch.stack([self[int(i)][1] for i in indices])


def batches(dataset, batch_size: int, *, shuffle: bool = False, generator=None):
    """Yield ``(indices, images)`` over a dataset, ``images`` ``(k, c, s, s)`` float32.

    A cached :class:`ImageFolderDataset` is sliced directly (no per-item
    work); any other dataset whose items are ``(path, tensor)`` or tensors
    is read item by item in this process.
    """
    n = len(dataset)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    cached = getattr(dataset, "_images", None)
    if isinstance(dataset, ImageFolderDataset) and cached is not None:
        for k in range(0, n, batch_size):
            idx = order[k : k + batch_size]
            # In numpy, one thread: these copies are memory-bound, and torch's
            # intra-op threads made them ten times slower on a busy machine.
            sel = cached[idx.numpy()]
            sel = sel.transpose(0, 3, 1, 2) if sel.ndim == 4 else sel[:, None]
            x = np.divide(sel, np.float32(255), dtype=np.float32)
            yield idx, torch.from_numpy(np.ascontiguousarray(x))
        return
    for k in range(0, n, batch_size):
        idx = order[k : k + batch_size]
        items = [dataset[int(i)] for i in idx]
        t = [it[1] if isinstance(it, (tuple, list)) else it for it in items]
        yield idx, torch.stack(t)
