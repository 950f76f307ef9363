"""Verified methods (``imagehash+orb``): candidates from a cheap method,
confirmed by an expensive one, on crops and shifts of real photos."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from icas.cli import cluster_main
from icas.cluster import Clusteror
from icas.cluster.methods import default_candidate_threshold, extract, similarity_matrix

PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "camera",
    "coins",
    "moon",
    "retina",
    "cell",
    "page",
)
ORB_T = 0.85
HASH = {"hash_size": 16}  # 256-bit pHash: crops and shifts push it far below 0.8


def _photo(name: str) -> np.ndarray:
    from skimage import data

    img = getattr(data, name)()
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    else:
        img = cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_RGB2BGR)
    h, w = img.shape[:2]
    f = 256 / max(h, w)
    return cv2.resize(img, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def crops(tmp_path_factory) -> Path:
    """Each photo, an 8 % crop of it (scaled back to full size) and a copy
    shifted by 6 px (edges reflected)."""
    folder = tmp_path_factory.mktemp("crops") / "images"
    folder.mkdir()
    for name in PHOTOS:
        img = _photo(name)
        h, w = img.shape[:2]
        dy, dx = round(h * 0.04), round(w * 0.04)
        crop = cv2.resize(img[dy : h - dy, dx : w - dx], (w, h), interpolation=cv2.INTER_AREA)
        shift = cv2.warpAffine(
            img, np.float32([[1, 0, 6], [0, 1, 6]]), (w, h), borderMode=cv2.BORDER_REFLECT
        )
        for kind, v in (("orig", img), ("crop", crop), ("shift", shift)):
            cv2.imwrite(str(folder / f"{name}-{kind}.png"), v)
    return folder


def photo_of(path) -> str:
    return Path(path).stem.rsplit("-", 1)[0]


def pair_recall(result) -> float:
    """Share of same-photo pairs that ended in one cluster."""
    hit = total = 0
    paths = sorted(result.labels)
    for i, p in enumerate(paths):
        for q in paths[i + 1 :]:
            if photo_of(p) == photo_of(q):
                total += 1
                hit += result.labels[p] >= 0 and result.labels[p] == result.labels[q]
    return hit / total


def false_pairs(result) -> int:
    return sum(len({photo_of(p) for p in c}) - 1 for c in result.clusters.values())


def test_orb_confirms_the_crops_and_shifts_hashes_miss(crops, tmp_path):
    ih = Clusteror(crops, method="imagehash", out=tmp_path / "ih", progress=False, **HASH)()
    orb = Clusteror(crops, method="orb", threshold=ORB_T, out=tmp_path / "orb", progress=False)()
    both = Clusteror(
        crops,
        method="imagehash+orb",
        threshold=ORB_T,
        out=tmp_path / "both",
        progress=False,
        **HASH,
    )()
    r_ih, r_orb, r_both = pair_recall(ih), pair_recall(orb), pair_recall(both)
    assert r_ih < 0.3  # the hash breaks on crops and shifts
    assert r_both > 0.8 and r_both >= r_orb - 0.1
    assert false_pairs(both) <= false_pairs(orb)
    # ORB ran on the candidates only: a fraction of all pairs.
    ev = json.loads((both.out_dir / "checkpoints" / "batch_0.json").read_text())["evidence"]
    n = len(both.labels)
    assert 0 < len(ev["candidates"]) < 0.25 * n * (n - 1) / 2
    assert both.candidate_threshold == default_candidate_threshold("imagehash", HASH) == 0.55


def test_evidence_equals_the_two_full_matrices(crops, tmp_path):
    r = Clusteror(
        crops, method="imagehash+orb", threshold=ORB_T, out=tmp_path / "o", progress=False, **HASH
    )()
    data = json.loads((r.out_dir / "checkpoints" / "batch_0.json").read_text())
    paths = data["paths"]
    s1 = similarity_matrix(extract(paths, "imagehash", **HASH).features)
    s2 = similarity_matrix(extract(paths, "orb").features)
    loose = r.candidate_threshold
    want = {(i, j) for i, j in zip(*np.nonzero(np.triu(s1 >= loose, k=1)), strict=True)}
    ev = data["evidence"]
    got = [tuple(e) for e in ev["candidates"]]
    assert set(got) == want and len(got) == len(want)
    for (i, j), a, b in zip(got, ev["first"], ev["second"], strict=True):
        assert a == pytest.approx(s1[i, j], abs=1e-6)
        assert b == pytest.approx(s2[i, j], abs=1e-9)
    confirmed = {(i, j) for (i, j), b in zip(got, ev["second"], strict=True) if b >= ORB_T}
    assert {tuple(e) for e in data["edges"]} == confirmed
    assert data["scores"] == pytest.approx(
        [s2[i, j] for i, j in map(tuple, data["edges"])], abs=1e-6
    )


def test_resume_uses_the_checkpointed_evidence(crops, tmp_path, monkeypatch):
    first = Clusteror(
        crops, method="imagehash+orb", threshold=ORB_T, out=tmp_path / "o", progress=False, **HASH
    )()
    from icas.cluster import methods

    def no_orb(*args, **kwargs):
        raise AssertionError("ORB was computed again")

    monkeypatch.setattr(methods, "pair_similarities", no_orb)
    again = Clusteror(
        crops,
        method="imagehash+orb",
        threshold=ORB_T,
        out=tmp_path / "o",
        progress=False,
        resume=True,
        **HASH,
    )()
    assert again.labels == first.labels


def test_batches_merge_with_the_verified_method(crops, tmp_path):
    r = Clusteror(
        crops,
        method="imagehash+orb",
        threshold=ORB_T,
        batch_size=10,
        order="name",
        out=tmp_path / "o",
        progress=False,
        **HASH,
    )()
    assert len(set(r.batches.values())) > 2
    # Photos split over batches are joined again through their representatives.
    assert pair_recall(r) > 0.7


def test_parameters_go_to_their_method(crops):
    paths = sorted(str(p) for p in crops.iterdir())[:4]
    res = extract(paths, "imagehash+orb", hash_size=16, nfeatures=50)
    fs = res.features
    assert fs.first.arrays[0].shape == (4, 32)  # 256 bits
    assert np.diff(fs.second.arrays[1]).max() <= 50
    assert fs.candidate_threshold == 0.55
    with pytest.raises(TypeError, match="num_perm.*imagehash\\+orb"):
        extract(paths, "imagehash+orb", num_perm=64)


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"method": "imagehash+imagehash"}, ValueError, "two different methods"),
        ({"method": "imagehash+sift"}, ValueError, "method must be one of"),
        (
            {"method": "imagehash+orb", "candidate_threshold": 1.5},
            ValueError,
            r"candidate_threshold must be in \[0.0, 1.0\]",
        ),
        ({"method": "orb", "candidate_threshold": 0.5}, ValueError, "verified methods only"),
    ],
)
def test_bad_verified_parameters(crops, kwargs, error, message):
    with pytest.raises(error, match=message):
        Clusteror(crops, progress=False, **kwargs)()


def test_cli_verified_method(crops, tmp_path, capsys):
    assert (
        cluster_main(
            [
                str(crops),
                "--method",
                "imagehash+orb",
                "--hash-size",
                "16",
                "--candidate-threshold",
                "0.55",
                "--threshold",
                str(ORB_T),
                "--out",
                str(tmp_path / "o"),
                "-q",
            ]
        )
        == 0
    )
    assert "method imagehash+orb" in capsys.readouterr().out
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["candidate_threshold"] == 0.55 and summary["method"] == "imagehash+orb"
    with pytest.raises(SystemExit) as e:
        cluster_main([str(crops), "--method", "imagehash+nope"])
    assert e.value.code == 2
