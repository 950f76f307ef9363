"""SAM session: model loading, embedding caches, prompts, automatic masks.

The model is a tiny randomly initialised SAM (icas.segment.sam.tiny_sam): these
tests check structure and plumbing (shapes, caching, that prompts reach the
decoder), not mask quality. They skip without the ``icas[sam]`` extra, except
the ones that check what happens without it.
"""

from __future__ import annotations

import builtins
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from icas.segment.sam import masks_to_labels


@pytest.fixture(scope="module")
def sa():
    pytest.importorskip("torch")
    return pytest.importorskip("segment_anything")


@pytest.fixture(scope="module")
def model(sa):
    from icas.segment.sam import tiny_sam

    return tiny_sam(seed=0)


@pytest.fixture(scope="module")
def images(photos):
    """Three real photos as BGR, shrunk to at most 128 pixels (the decoder upsamples
    masks to full size, which is all the cost at larger sizes)."""
    out = []
    for p in photos[:3]:
        h, w = p.shape[:2]
        s = 128 / max(h, w)
        small = cv2.resize(p, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        out.append(np.ascontiguousarray(small[..., ::-1]))
    return out


@pytest.fixture
def session(model):
    from icas.segment import SamSession

    return SamSession(model)


# ---------------------------------------------------------------- without the extra


def test_missing_extra_names_it(monkeypatch):
    real_import = builtins.__import__

    def no_sam(name, *args, **kwargs):
        if name.split(".")[0] in ("torch", "segment_anything"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sam)
    from icas.segment import SamSession

    with pytest.raises(ImportError, match=r'pip install "icas\[sam\]"'):
        SamSession(checkpoint="x.pth")


def test_masks_to_labels_smaller_masks_on_top():
    big = np.zeros((6, 8), bool)
    big[:, :5] = True
    small = np.zeros((6, 8), bool)
    small[1:3, 1:3] = True
    labels = masks_to_labels([small, big], (6, 8), uncovered_segments=False)
    assert labels.dtype == np.int32
    assert labels[0, 0] == 1 and labels[1, 1] == 2 and labels[0, 7] == 0
    labels = masks_to_labels([small, big], (6, 8))
    assert labels[0, 7] == 2 and labels[1, 1] == 3 and labels.min() == 1
    assert not masks_to_labels([], (2, 3), uncovered_segments=False).any()
    np.testing.assert_array_equal(masks_to_labels([], (2, 3)), np.ones((2, 3), np.int32))


# ---------------------------------------------------------------- loading


def test_checkpoint_errors(sa, model, tmp_path):
    import torch

    from icas.segment import SamSession

    with pytest.raises(ValueError, match="checkpoint is required.*never downloads"):
        SamSession()
    with pytest.raises(FileNotFoundError, match="SAM checkpoint not found.*never downloads"):
        SamSession(checkpoint=tmp_path / "sam_vit_b.pth")
    with pytest.raises(ValueError, match="model_type must be one of vit_h, vit_l, vit_b"):
        SamSession(model_type="vit_x", checkpoint=tmp_path / "sam.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot load .*junk.pth.* as a vit_b SAM checkpoint"):
        SamSession(checkpoint=tmp_path / "junk.pth")
    # Weights of another architecture do not fit.
    torch.save(model.state_dict(), tmp_path / "tiny.pth")
    with pytest.raises(ValueError, match="cannot load .*tiny.pth.* as a vit_b"):
        SamSession(checkpoint=tmp_path / "tiny.pth")


def test_model_and_device_checks(model):
    from icas.segment import SamSession

    with pytest.raises(TypeError, match="model must be a segment_anything.modeling.Sam"):
        SamSession(object())
    with pytest.raises(ValueError, match="device must be"):
        SamSession(model, device="tpu")
    with pytest.raises(ValueError, match="memory_cache"):
        SamSession(model, memory_cache=-1)
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            SamSession(model, device="cuda")
        assert SamSession(model, device="auto").device.type == "cpu"


# ---------------------------------------------------------------- embeddings


def test_embedding_is_computed_once(session, images):
    a, b = images[:2]
    e1 = session.embedding(a)
    assert session.encoder_calls == 1
    assert tuple(e1.features.shape) == (1, 32, 16, 16)
    assert e1.original_size == a.shape[:2] and max(e1.input_size) == 256
    assert session.embedding(a.copy()) is e1  # content, not identity, is the key
    session.set_image(a)
    assert session.encoder_calls == 1 and session.cached(a)
    assert not session.cached(b)
    session.set_image(b)
    assert session.encoder_calls == 2


def test_embedding_equals_sam_predictor(sa, model, session, images):
    import torch

    predictor = sa.SamPredictor(model)
    predictor.set_image(images[0], image_format="BGR")
    ours = session.embedding(images[0])
    torch.testing.assert_close(ours.features, predictor.features)
    assert ours.input_size == predictor.input_size
    assert ours.original_size == predictor.original_size


def test_memory_cache_is_bounded(model, images):
    from icas.segment import SamSession

    s = SamSession(model, memory_cache=2)
    for img in images:  # three images, room for two
        s.embedding(img)
    assert s.encoder_calls == 3
    s.embedding(images[2])
    s.embedding(images[1])
    assert s.encoder_calls == 3
    s.embedding(images[0])  # the least recently used was dropped
    assert s.encoder_calls == 4
    s0 = SamSession(model, memory_cache=0)
    s0.embedding(images[0])
    s0.embedding(images[0])
    assert s0.encoder_calls == 2


def test_disk_cache_survives_the_session(model, images, tmp_path):
    import torch

    from icas.segment import SamSession

    first = SamSession(model, cache_dir=tmp_path)
    e1 = first.embedding(images[0])
    files = list(tmp_path.rglob("*.npz"))
    assert len(files) == 1 and files[0].parent.name == first.model_id
    second = SamSession(model, cache_dir=tmp_path, memory_cache=0)
    assert second.cached(images[0])
    e2 = second.embedding(images[0])
    assert second.encoder_calls == 0
    torch.testing.assert_close(e1.features, e2.features)
    assert e2.original_size == e1.original_size and e2.input_size == e1.input_size
    # A damaged file is recomputed and rewritten.
    files[0].write_bytes(b"garbage")
    third = SamSession(model, cache_dir=tmp_path)
    third.embedding(images[0])
    assert third.encoder_calls == 1
    fourth = SamSession(model, cache_dir=tmp_path)
    fourth.embedding(images[0])
    assert fourth.encoder_calls == 0
    assert not list(tmp_path.rglob("*.tmp.npz"))


def test_disk_cache_is_per_model(model, images, tmp_path):
    from icas.segment import SamSession
    from icas.segment.sam import tiny_sam

    SamSession(model, cache_dir=tmp_path).embedding(images[0])
    other = SamSession(tiny_sam(seed=1), cache_dir=tmp_path)
    other.embedding(images[0])
    assert other.encoder_calls == 1
    assert len({p.parent for p in tmp_path.rglob("*.npz")}) == 2


def write_folder(folder, images):
    folder.mkdir()
    paths = []
    for i, img in enumerate(images):
        p = folder / f"img{i}.png"
        cv2.imwrite(str(p), img)
        paths.append(p)
    (folder / "broken.png").write_bytes(b"not an image")
    (folder / "notes.txt").write_text("ignored: not an image suffix")
    return paths


def test_precompute_folder_in_background(model, images, tmp_path):
    from icas.segment import SamSession

    paths = write_folder(tmp_path / "photos", images)
    s = SamSession(model, cache_dir=tmp_path / "cache")
    job = s.precompute(tmp_path / "photos")
    assert job.total == 4  # three photos and the broken file
    assert job.wait(timeout=120) and job.done()
    assert job.completed == 4
    assert list(job.errors) == [str(tmp_path / "photos" / "broken.png")]
    assert "cannot read" in job.errors[str(tmp_path / "photos" / "broken.png")]
    assert s.encoder_calls == 3
    # Clicking now answers from the caches: no encoder run, here or in a new session.
    for p in paths:
        s.set_image(p)
    assert s.encoder_calls == 3
    later = SamSession(model, cache_dir=tmp_path / "cache")
    later.set_image(paths[1])
    assert later.encoder_calls == 0


def test_precompute_in_foreground_and_cancel(model, images, tmp_path):
    from icas.segment import SamSession

    paths = write_folder(tmp_path / "photos", images)
    s = SamSession(model)
    job = s.precompute(paths[:2], background=False)
    assert job.done() and job.completed == 2 and s.encoder_calls == 2
    job = s.precompute(paths, background=True)
    job.cancel()
    assert job.wait(timeout=60) and job.cancelled and job.completed <= 3
    with pytest.raises(FileNotFoundError, match="no such folder or file"):
        s.precompute(tmp_path / "missing")
    with pytest.raises(TypeError, match="images must be"):
        s.precompute(5)


def test_one_encoder_run_when_threads_race(model, images):
    from icas.segment import SamSession

    s = SamSession(model)
    start = threading.Barrier(4)
    results = []

    def worker():
        start.wait()
        results.append(s.embedding(images[0]))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert s.encoder_calls == 1
    assert all(r is results[0] for r in results)


# ---------------------------------------------------------------- prompts


def test_prompt_masks(session, images):
    img = images[0]
    h, w = img.shape[:2]
    session.set_image(img)
    assert session.image is img or np.array_equal(session.image, img)
    assert not session.labels().any() and session.mask() is None
    session.add_point((w // 2, h // 2))
    masks, scores = session.predict()
    assert masks.shape == (1, h, w) and masks.dtype == bool
    assert scores.shape == (1,) and scores.dtype == np.float32
    np.testing.assert_array_equal(session.mask(), masks[0])
    labels = session.labels()
    assert labels.dtype == np.int32 and set(np.unique(labels)) <= {0, 1}
    np.testing.assert_array_equal(labels == 1, masks[0])
    masks3, scores3 = session.predict(multimask=True)
    assert masks3.shape == (3, h, w)
    assert list(scores3) == sorted(scores3, reverse=True)
    np.testing.assert_array_equal(session.mask(), masks3[0])


def test_prompts_reach_the_decoder(sa, model, session, images):
    """Our masks are SamPredictor's for the same prompts (with its own encoder run)."""
    img = images[1]
    h, w = img.shape[:2]
    session.set_image(img)
    session.add_point((10, 12))
    session.add_point((w - 20, h - 15), positive=False)
    session.add_box((w - 5, h - 5), (5, 5))  # corners in any order
    masks, scores = session.predict(multimask=True)
    predictor = sa.SamPredictor(model)
    predictor.set_image(img, image_format="BGR")
    ref_masks, ref_scores, _ = predictor.predict(
        point_coords=np.array([[10, 12], [w - 20, h - 15]], np.float32),
        point_labels=np.array([1, 0]),
        box=np.array([5, 5, w - 5, h - 5], np.float32),
        multimask_output=True,
    )
    order = np.argsort(-ref_scores, kind="stable")
    np.testing.assert_allclose(scores, ref_scores[order], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(masks, ref_masks[order])


def test_clicks_never_encode(model, images):
    from icas.segment import SamSession

    s = SamSession(model, memory_cache=0)  # not even a memory cache to fall back on
    s.set_image(images[0])
    for x in range(5):
        s.add_point((x, x))
        s.predict()
    s.automatic(images[1], **AUTO)
    s.predict()  # automatic mode did not disturb the prompt image
    assert s.encoder_calls == 2


def test_undo_reset_and_the_latest_box(session, images):
    img = images[0]
    h, w = img.shape[:2]
    session.set_image(img)
    session.add_box((0, 0), (20, 20))
    session.add_point((5, 5))
    session.add_box((10, 10), (w + 50, h + 50))  # clipped to the image
    assert [p.kind for p in session.prompts] == ["box", "point", "box"]
    assert session.prompts[-1].xy == (10.0, 10.0, w - 1.0, h - 1.0)
    latest, _ = session.predict()
    assert session.undo() is True
    earlier, _ = session.predict()  # the first box counts again
    session.undo()
    session.undo()
    assert session.prompts == ()
    assert session.undo() is False
    session.add_box((0, 0), (20, 20))
    session.add_point((5, 5))
    again, _ = session.predict()
    np.testing.assert_array_equal(again, earlier)
    session.reset()
    assert session.prompts == () and session.mask() is None
    assert session.encoder_calls == 1


def test_prompt_errors(session, images):
    with pytest.raises(ValueError, match=r"no image: call set_image\(image\) first"):
        session.add_point((1, 1))
    with pytest.raises(ValueError, match="no image"):
        session.predict()
    img = images[0]
    h, w = img.shape[:2]
    session.set_image(img)
    with pytest.raises(ValueError, match="no prompt"):
        session.predict()
    with pytest.raises(ValueError, match=f"outside the {w}x{h} image"):
        session.add_point((w, 0))
    with pytest.raises(ValueError, match="outside"):
        session.add_box((-10, -10), (-1, -1))
    with pytest.raises(ValueError, match=r"xy must be an \(x, y\) pair"):
        session.add_point((1, 2, 3))
    with pytest.raises(ValueError, match="grayscale"):
        session.set_image(np.zeros((8, 8), np.uint8))


def test_set_image_forgets_prompts(session, images):
    session.set_image(images[0])
    session.add_point((3, 3))
    session.predict()
    session.set_image(images[1])
    assert session.prompts == () and session.mask() is None
    assert session.labels().shape == images[1].shape[:2]


# ---------------------------------------------------------------- automatic

AUTO = {"points_per_side": 4, "pred_iou_thresh": 0, "stability_score_thresh": 0}


def test_automatic_labels(sa, model, session, images):
    img = images[2]
    labels = session.automatic(img, **AUTO)
    assert labels.dtype == np.int32 and labels.shape == img.shape[:2]
    assert labels.min() >= 1
    seg = np.unique(labels)
    np.testing.assert_array_equal(seg, np.arange(1, len(seg) + 1))
    # Same as the library's generator, stacked the same way.
    gen = sa.SamAutomaticMaskGenerator(model, **AUTO)
    records = gen.generate(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    assert records, "the generator kept no mask: thresholds are not reaching it"
    expected = masks_to_labels([r["segmentation"] for r in records], img.shape[:2])
    np.testing.assert_array_equal(labels, expected)
    bare = session.automatic(img, uncovered_segments=False, **AUTO)
    np.testing.assert_array_equal(
        bare,
        masks_to_labels(
            [r["segmentation"] for r in records], img.shape[:2], uncovered_segments=False
        ),
    )


def test_automatic_uses_the_cache(session, images):
    session.set_image(images[0])
    session.add_point((4, 4))
    session.automatic(images[0], **AUTO)
    assert session.encoder_calls == 1
    session.predict()  # the prompt state survives automatic mode
    assert session.encoder_calls == 1


def test_automatic_parameters_are_checked(session, images):
    with pytest.raises(ValueError, match="unknown parameter 'points'"):
        session.automatic(images[0], points=4)
    with pytest.raises(ValueError, match="'pred_iou_thresh' must be a number in"):
        session.automatic(images[0], pred_iou_thresh=2)
    with pytest.raises(TypeError, match="'points_per_side' must be an integer"):
        session.automatic(images[0], points_per_side="many")
    assert session.encoder_calls == 0


# ---------------------------------------------------------------- command line


def test_command_line_sessions_use_the_disk_cache(model, images, tmp_path, monkeypatch):
    """What ``icas-segment --method sam`` builds for the painter (no window):
    the model from the checkpoint flags, the embedding cache on disk, the
    prompt tool per image and the automatic labels."""
    from icas.segment import cli, sam
    from icas.segment.interactive import SamTool

    loaded = []

    def load(torch, sa, model_type, checkpoint):
        loaded.append((model_type, Path(checkpoint).name))
        return model, "tiny"

    monkeypatch.setattr(sam, "_load", load)
    paths = []
    for i, img in enumerate(images[:2]):
        paths.append(tmp_path / f"im{i}.png")
        cv2.imwrite(str(paths[-1]), img)
    cache = tmp_path / "cache"
    base = ["x", "--method", "sam", "--checkpoint", "w.pth", "--sam-cache-dir", str(cache)]
    args = cli._parser().parse_args([*base, "--model-type", "vit_l"])
    job, tool_factory, workers = cli._jobs(args, {}, paths)
    assert loaded == [("vit_l", "w.pth")] and workers == 1
    for p in paths:  # what the prefetch threads do: encode ahead, into the cache
        loaded_image = job(p)
        assert loaded_image.labels is None  # the labels come from the SAM window
    assert len(list((cache / "tiny").glob("*.npz"))) == 2
    tool = tool_factory(images[0])
    assert isinstance(tool, SamTool) and tool.session.encoder_calls == 2  # no third run
    # Automatic mode: the labels come with the image.
    params = cli._params_for("sam", {"points_per_side": 2, "pred_iou_thresh": 0})
    args = cli._parser().parse_args([*base, "--sam-mode", "automatic"])
    job, tool_factory, _ = cli._jobs(args, params, paths)
    assert tool_factory is None
    labels = job(paths[0]).labels
    assert labels.shape == images[0].shape[:2] and labels.dtype == np.int32 and labels.min() >= 1
