"""Shared test data: real photos shipped with scikit-image, made into
near-duplicate groups so tests know the ground truth."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

PHOTO_NAMES = ("astronaut", "coffee", "chelsea", "rocket", "camera", "immunohistochemistry")


def load_photos() -> list[np.ndarray]:
    """Real RGB photos (uint8, h x w x 3) from scikit-image's offline data."""
    from skimage import data

    photos = []
    for name in PHOTO_NAMES:
        img = getattr(data, name)()
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=-1)
        photos.append(np.ascontiguousarray(img[..., :3]))
    return photos


def variants(img: np.ndarray, rng: np.random.Generator, k: int) -> list[np.ndarray]:
    """k near-duplicates of img: re-encoded, brightened, shifted, blurred, noised."""
    out = []
    for i in range(k):
        v = img
        kind = i % 5
        if kind == 0:
            ok, buf = cv2.imencode(".jpg", v, [cv2.IMWRITE_JPEG_QUALITY, 60])
            v = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        elif kind == 1:
            v = cv2.convertScaleAbs(v, alpha=1.0, beta=float(rng.integers(10, 30)))
        elif kind == 2:
            dx, dy = (int(x) for x in rng.integers(1, 4, size=2))
            v = np.roll(v, (dy, dx), axis=(0, 1))
        elif kind == 3:
            v = cv2.GaussianBlur(v, (3, 3), 0)
        else:
            noise = rng.normal(0, 6, v.shape)
            v = np.clip(v.astype(np.float64) + noise, 0, 255).astype(np.uint8)
        out.append(np.ascontiguousarray(v))
    return out


@pytest.fixture(scope="session")
def photos() -> list[np.ndarray]:
    return load_photos()


@pytest.fixture(scope="session")
def photo_groups(photos) -> tuple[list[np.ndarray], np.ndarray]:
    """Photos resized to 96x96 plus 3 variants each; returns (images, group ids)."""
    rng = np.random.default_rng(7)
    images, groups = [], []
    for g, p in enumerate(photos):
        base = cv2.resize(p, (96, 96), interpolation=cv2.INTER_AREA)
        for v in [base, *variants(base, rng, 3)]:
            images.append(v)
            groups.append(g)
    return images, np.array(groups)
