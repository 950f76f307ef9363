"""The pair stage of a large batch by tiles, saved as it goes and resumed."""

import json
from pathlib import Path

import numpy as np
import pytest

from icas.cluster import Clusteror, blocks
from icas.cluster import pipeline as pipeline_mod
from icas.cluster.methods import FeatureSet, extract, pairs
from icas.demo import make_demo

LOOSE = {"imagehash": 0.6, "minhash": 0.15, "ssim": 0.3, "tm": 0.7, "orb": 0.5}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return make_demo(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def images(demo) -> list[str]:
    return sorted(str(p) for p in demo.iterdir() if p.suffix in (".png", ".jpg"))


@pytest.mark.parametrize("method", sorted(LOOSE))
@pytest.mark.parametrize("tile", [7, 25])
def test_tiles_give_the_pairs_of_one_call(images, tmp_path, method, tile):
    fs = extract(images, method, size=(64, 64) if method in ("ssim", "tm") else None).features
    t = LOOSE[method]
    ref_e, ref_s = pairs(fs, t)
    assert len(ref_e) > 20  # enough pairs to make the comparison mean something
    e, s = blocks.blocked_pairs(
        fs, tile, lambda sub, g: pairs(sub, t, groups=g), path=tmp_path / "p.npz", stamp="x"
    )
    np.testing.assert_array_equal(e, ref_e)
    np.testing.assert_array_equal(s, ref_s)


def test_tiles_cover_the_upper_triangle_once():
    n, tile = 23, 5
    seen = np.zeros((n, n), int)
    for r, c in blocks.tiles(n, tile):
        rows = range(r * tile, min(n, (r + 1) * tile))
        cols = range(c * tile, min(n, (c + 1) * tile))
        for i in rows:
            for j in cols:
                if i < j:
                    seen[i, j] += 1
    assert (seen[np.triu_indices(n, 1)] == 1).all() and seen.sum() == n * (n - 1) // 2


def test_small_batches_keep_one_call(images):
    fs = extract(images, "orb").features
    assert blocks.tile_size(fs) is None  # 61 images: seconds, not worth tiles
    # 8,000 images of 128x128 pixels for ssim (a zero-stride view: no memory)
    n = 8000
    big = FeatureSet("ssim", (np.broadcast_to(np.zeros((1, 128, 128), np.float32), (n, 128, 128)),))
    assert blocks.pair_seconds(big) * n * (n - 1) / 2 > blocks.BLOCK_AFTER
    tile = blocks.tile_size(big)
    assert tile is not None and 64 <= tile < n


def _checkpoint(out: Path) -> dict:
    return json.loads((out / "checkpoints" / "batch_0.json").read_text())


def test_interrupted_batch_resumes_after_the_last_saved_tile(demo, tmp_path, monkeypatch):
    kw = {"method": "orb", "threshold": 0.6, "progress": False, "report": False}
    ref = Clusteror(demo, out=tmp_path / "ref", **kw)()  # one call: a small batch

    monkeypatch.setattr(blocks, "tile_size", lambda fs: 9)  # 61 images: 7 blocks, 28 tiles
    monkeypatch.setattr(blocks, "SAVE_EVERY", 0.0)
    calls, dying_at = [], [12]

    def dying(fs, threshold, **k):
        calls.append(len(fs))
        if len(calls) == dying_at[0]:
            raise KeyboardInterrupt
        return pairs(fs, threshold, **k)

    monkeypatch.setattr(pipeline_mod, "pairs", dying)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        Clusteror(demo, out=out, **kw)()
    partial = blocks.partial_path(out, 0)
    with np.load(partial) as z:
        assert int(z["done"]) == 11
    calls.clear()
    dying_at[0] = None
    res = Clusteror(demo, out=out, resume=True, **kw)()
    assert len(calls) == len(blocks.tiles(61, 9)) - 11  # the saved tiles are not recomputed
    assert res.labels == ref.labels
    got, want = _checkpoint(out), _checkpoint(ref.out_dir)
    assert got["edges"] == want["edges"] and got["scores"] == want["scores"]
    assert not partial.exists()  # the batch's full checkpoint replaced it


def test_partial_of_another_run_or_torn_is_ignored(images, tmp_path):
    fs = extract(images, "imagehash").features
    path = tmp_path / "p.npz"
    ref = pairs(fs, 0.6)
    blocks._save(path, "other", 3, np.array([[0, 1]], np.int64), np.ones(1, np.float32))
    e, s = blocks.blocked_pairs(
        fs, 10, lambda sub, g: pairs(sub, 0.6, groups=g), path=path, stamp="mine", resume=True
    )
    np.testing.assert_array_equal(e, ref[0])
    path.write_bytes(b"PK\x03\x04 torn")
    e, s = blocks.blocked_pairs(
        fs, 10, lambda sub, g: pairs(sub, 0.6, groups=g), path=path, stamp="mine", resume=True
    )
    np.testing.assert_array_equal(e, ref[0])
    np.testing.assert_array_equal(s, ref[1])
