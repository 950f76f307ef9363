"""A small mixed dataset so a new user sees icas work with no data of their own:
near-duplicates of real photos (shipped with scikit-image) made by
re-encoding, brightening, cropping, shifting and blurring; groups of drawn
digits; a few one-off images; and a file that is not an image."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

DEMO_MARKER = ".icas-demo"
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry")
ONE_OFFS = ("camera", "coins", "moon", "clock", "brick")


def _photo(name: str) -> np.ndarray:
    from skimage import data

    img = getattr(data, name)()
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    img = cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_RGB2BGR)
    h, w = img.shape[:2]
    f = 256 / max(h, w)
    return cv2.resize(img, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)


def _variants(img: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    h, w = img.shape[:2]
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 40])
    crop = img[h // 20 : h - h // 20, w // 20 : w - w // 20]
    shift = np.roll(img, (int(rng.integers(2, 6)), int(rng.integers(2, 6))), axis=(0, 1))
    return [
        img,
        cv2.imdecode(buf, cv2.IMREAD_COLOR),
        cv2.convertScaleAbs(img, alpha=1.05, beta=20),
        cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA),
        shift,
        cv2.GaussianBlur(img, (5, 5), 0),
    ]


def _digit(d: int, rng: np.random.Generator) -> np.ndarray:
    img = np.full((128, 128, 3), 255, np.uint8)
    dx, dy = (int(v) for v in rng.integers(-4, 5, size=2))
    cv2.putText(
        img,
        str(d),
        (34 + dx, 100 + dy),
        cv2.FONT_HERSHEY_SIMPLEX,
        3.6,
        (0, 0, 0),
        int(rng.integers(8, 11)),
        cv2.LINE_AA,
    )
    return img


def make_demo(folder: Path, *, seed: int = 0) -> Path:
    """Write the demo images into ``folder/images`` and return that path.

    Refuses a non-empty images folder that the demo did not write."""
    images = Path(folder) / "images"
    if images.exists() and any(images.iterdir()) and not (images / DEMO_MARKER).exists():
        raise FileExistsError(
            f"{images}: exists and was not written by the demo; choose another DIR"
        )
    images.mkdir(parents=True, exist_ok=True)
    (images / DEMO_MARKER).write_text("written by icas-cluster --demo\n", encoding="utf-8")
    rng = np.random.default_rng(seed)
    for name in PHOTOS:
        for k, v in enumerate(_variants(_photo(name), rng)):
            cv2.imwrite(str(images / f"{name}_{k}.jpg"), v)
    for d in range(4):
        for k in range(5):
            cv2.imwrite(str(images / f"digit{d}_{k}.png"), _digit(d, rng))
    for name in ONE_OFFS:
        cv2.imwrite(str(images / f"{name}.jpg"), _photo(name))
    (images / "notes.txt").write_text("not an image: icas skips and reports it\n", encoding="utf-8")
    return images
