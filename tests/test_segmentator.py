"""``icas.segment.Segmentator``: parameter checks before any file or window,
the no-screen error, a painting session driven without windows through the
painter's own actions (masks checked pixel by pixel), presegment, and the
command line going through it."""

from __future__ import annotations

import inspect
from pathlib import Path

import cv2
import numpy as np
import pytest

import icas.segment.cli as cli
from icas.io import ImageReadError
from icas.segment import METHODS, ParameterError, Segmentator, SegmentResult, TemplateSet
from icas.segment.export import mask_name
from icas.segment.palette import DEFAULT_COLORS
from icas.segment.pipeline import method_parameters
from icas.segment.windows import NoScreenError

H, W = 60, 80
RED, GREEN = DEFAULT_COLORS[0], DEFAULT_COLORS[1]
RECTS = {"a": (10, 20, 40, 60), "b": (5, 5, 50, 30)}  # top, left, bottom, right


@pytest.fixture(autouse=True)
def no_screen(monkeypatch):
    """A window call would abort pytest: no test here may reach a screen."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


def region(top, left, bottom, right) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[top:bottom, left:right] = True
    return m


@pytest.fixture
def folder(tmp_path) -> Path:
    """Two images, each a flat rectangle on a flat background, and a bad file."""
    d = tmp_path / "imgs"
    d.mkdir()
    for name, rect in RECTS.items():
        img = np.full((H, W, 3), (40, 40, 200), np.uint8)
        img[region(*rect)] = (200, 120, 40)
        cv2.imwrite(str(d / f"{name}.png"), img)
    (d / "c_broken.png").write_bytes(b"not a png")
    return d


def read_mask(path: Path) -> np.ndarray:
    m = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert m is not None, f"{path.name} was not written"
    return m


# ---------------------------------------------------------------------- checks


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "nope"}, "unknown method=nope; expected one of: edge"),
        ({"method": "kmeans", "region_size": 3}, "region_size is not a parameter of method=kmeans"),
        ({"region_size": -3}, "superpixel: parameter 'region_size' must be"),
        ({"method": "kmeans", "k": "many"}, "parameter 'k' must be"),
        ({"alpha": 2}, r"alpha must be in \[0, 1\], got 2"),
        ({"thread_range": -1}, "thread_range must be an integer >= 0"),
        ({"workers": 0}, "workers must be an integer >= 1"),
        ({"max_window": (30, 500)}, "max_window needs W and H of at least 64"),
        ({"max_window": 800}, "max_window needs W and H"),
        ({"export": ("masks", "tiff")}, "unknown export format 'tiff'"),
        ({"template_threshold": "low"}, "template_threshold must be a number"),
        ({"method": "sam"}, r"method=sam needs checkpoint=PATH \(weights are never"),
        ({"method": "sam", "checkpoint": "w.pth", "device": "tpu"}, "device must be one of"),
        ({"method": "sam", "checkpoint": "w.pth", "points_per_side": 8}, "need sam_mode=autom"),
        ({"checkpoint": "w.pth"}, "checkpoint and sam_cache_dir go with method=sam"),
        ({"method": "grabcut", "sam_cache_dir": "c"}, "go with method=sam"),
    ],
)
def test_bad_parameters_raise_before_anything_is_read(kwargs, message, tmp_path):
    # The folder does not exist: the parameters are checked before it is listed.
    seg = Segmentator(tmp_path / "missing", **kwargs)
    with pytest.raises(ParameterError, match=message) as info:
        seg.process()
    assert isinstance(info.value, ValueError)
    with pytest.raises(ParameterError, match=message):
        seg.presegment(tmp_path / "missing.png")


def test_parameter_errors_render_as_command_line_flags():
    with pytest.raises(ParameterError) as info:
        Segmentator("f", method="kmeans", sigmaColor=3).check()
    exc = info.value
    assert str(exc).startswith("sigmaColor is not a parameter of method=kmeans; its parameters: k,")
    assert exc.render(cli._spell).startswith(
        "--sigma-color is not a parameter of --method kmeans; its parameters: --k, "
        "--color-importance,"
    )
    # A checked value's message is shown as it is, whatever the value holds.
    with pytest.raises(ParameterError) as info:
        Segmentator("f", algorithm="<k>").check()
    assert str(info.value).endswith("got '<k>'") and info.value.render(cli._spell) == str(
        info.value
    )


def test_check_returns_the_method_parameters_with_defaults():
    assert Segmentator("f", "Kmeans", k=4).check() == {**METHODS["kmeans"], "k": 4}
    assert Segmentator("f", "grabcut", seed=3).check() == {"seed": 3}
    edge = Segmentator("f", "edge", sigmaColor=50).check()
    assert edge["sigmaColor"] == 50.0 and edge["edge_th"] == METHODS["edge"]["edge_th"]


def test_no_method_parameter_shadows_a_pipeline_keyword():
    keywords = set(inspect.signature(Segmentator).parameters) - {"method_params"}
    for method, params in method_parameters().items():
        assert not keywords & set(params), method


def test_runtime_errors(folder, tmp_path):
    with pytest.raises(FileNotFoundError, match="folder not found"):
        Segmentator(tmp_path / "missing").process()
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images in"):
        Segmentator(tmp_path / "empty").process()
    with pytest.raises(ParameterError, match="out must not be images_folder_path itself"):
        Segmentator(folder, out=folder / ".").process()
    with pytest.raises(FileNotFoundError, match="template folder not found"):
        Segmentator(folder, templates=tmp_path / "nowhere").process()
    with pytest.raises(FileNotFoundError, match="SAM checkpoint not found"):
        Segmentator(folder, "sam", checkpoint=tmp_path / "w.pth").process()


def test_no_screen_is_one_line_and_nothing_is_written(folder):
    seg = Segmentator(folder, "kmeans", k=2)
    with pytest.raises(NoScreenError, match="no screen: DISPLAY is not set") as info:
        seg()
    assert isinstance(info.value, RuntimeError) and "\n" not in str(info.value)
    assert "xvfb-run" in str(info.value)
    assert not (folder.parent / "imgs_segmented").exists()
    assert seg.out_dir() == folder.resolve().parent / "imgs_segmented"


# ---------------------------------------------------------------------- sessions


def paint_both(painter, tool_factory) -> int:
    """What a person does in the windows, through the same calls the windows make:
    image a: the rectangle red; image b: the background green (the broken file
    is skipped on the way); then q."""
    assert tool_factory is None
    assert painter.start()
    top, left, _, _ = RECTS["a"]
    assert painter.mouse(cv2.EVENT_LBUTTONDOWN, left + 1, top + 1)
    assert painter.key(ord(" ")) == "opened" and painter.path.name == "b.png"
    green = painter.palette.colors.index(GREEN)
    painter.pick(green)
    assert painter.mouse(cv2.EVENT_LBUTTONDOWN, W - 1, H - 1)
    assert painter.key(ord(" ")) == "changed"  # the last image that opens
    assert painter.key(ord("n")) == "unchanged"  # c_broken.png cannot be opened
    assert painter.key(ord("q")) == "quit"
    return 0


def test_a_session_driven_without_windows(folder, tmp_path):
    out = tmp_path / "out"
    seen = []
    seg = Segmentator(
        folder, "kmeans", k=2, out=out, export=("masks", "indexed"), thread_range=1, workers=1
    )
    result = seg.process(driver=paint_both, on_error=lambda p, r: seen.append((p, r)))
    assert isinstance(result, SegmentResult)
    assert result.out_dir == out and result.method == "kmeans" and result.status == 0
    a, b, c = (folder / n for n in ("a.png", "b.png", "c_broken.png"))
    assert result.images == [a, b, c]
    assert result.saved == [a, b]
    assert [p for p, _ in result.skipped] == [c]
    assert result.skipped[0][1] and (c, result.skipped[0][1]) in seen
    assert result.masks == {
        a: [out / mask_name("a", RED)],
        b: [out / mask_name("b", GREEN)],
    }
    assert set(result.files[a]) == {out / mask_name("a", RED), out / "a_indexed.png"}
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f.name for files in result.files.values() for f in files
    )
    np.testing.assert_array_equal(read_mask(out / mask_name("a", RED)) > 0, region(*RECTS["a"]))
    np.testing.assert_array_equal(read_mask(out / mask_name("b", GREEN)) > 0, ~region(*RECTS["b"]))

    # Saved before: a second session refuses to replace them unless overwrite=True.
    def save_first(painter, _tool):
        painter.start()
        assert painter.fill(1, 1) and not painter.save()
        assert painter.message.startswith("not saved:") and "overwrite" in painter.message
        return 0

    before = {p: p.read_bytes() for p in out.iterdir()}
    again = Segmentator(folder, "kmeans", k=2, out=out).process(driver=save_first)
    assert again.saved == [] and {p: p.read_bytes() for p in out.iterdir()} == before
    again = Segmentator(folder, "kmeans", k=2, out=out, overwrite=True).process(driver=paint_both)
    assert again.saved == [a, b]


def test_grabcut_labels_come_from_the_tool(folder, tmp_path):
    top, left, bottom, right = RECTS["a"]

    def draw(painter, tool_factory):
        assert painter.start() and painter.needs_labels
        tool = tool_factory(painter.image)
        # A middle-button drag: the attention rectangle around the object.
        tool.mouse(cv2.EVENT_MBUTTONDOWN, left - 4, top - 4)
        tool.mouse(cv2.EVENT_MBUTTONUP, right + 3, bottom + 3)
        assert tool.key(ord(" ")) == "changed"
        assert tool.key(ord("f")) == "finish"
        painter.set_labels(tool.labels())
        assert painter.fill(left + 5, top + 5)
        assert painter.save()
        return 0

    out = tmp_path / "out"
    result = Segmentator(folder, "grabcut", out=out).process(driver=draw)
    mask = read_mask(result.masks[folder / "a.png"][0]) > 0
    truth = region(*RECTS["a"])
    assert (mask & truth).sum() / (mask | truth).sum() > 0.9


def test_presegment_is_what_the_painter_starts_from(folder):
    seg = Segmentator(folder, "kmeans", k=2, thread_range=0)
    labels = seg.presegment(folder / "a.png")
    assert labels.shape == (H, W) and labels.dtype == np.int32
    assert set(np.unique(labels)) == {1, 2}
    # The two segments are the rectangle and the background.
    inside = labels[region(*RECTS["a"])]
    assert len(set(inside)) == 1 and inside[0] not in labels[~region(*RECTS["a"])]
    got = {}

    def look(painter, _tool):
        painter.start()
        got["labels"] = painter.canvas.labels.copy()
        return 0

    seg.process(driver=look)
    np.testing.assert_array_equal(got["labels"], labels)
    with pytest.raises(ParameterError, match="method=grabcut draws its labels in a window"):
        Segmentator(folder, "grabcut").presegment(folder / "a.png")
    with pytest.raises(ImageReadError, match="c_broken.png: not an image"):
        seg.presegment(folder / "c_broken.png")


def test_templates_as_a_folder_or_a_set(folder, tmp_path):
    root = tmp_path / "tpl"
    (root / "templates").mkdir(parents=True)
    (root / "segments").mkdir()
    img = cv2.imread(str(folder / "a.png"))
    cv2.imwrite(str(root / "templates" / "t.png"), img[5:45, 15:65])
    seg_img = np.zeros((40, 50, 3), np.uint8)
    seg_img[5:35, 5:45] = (10, 200, 250)
    cv2.imwrite(str(root / "segments" / "t.png"), seg_img)
    for templates in (root, [str(root)], TemplateSet.from_root(root)):

        def paint(painter, _tool):
            painter.start()
            assert painter.key(ord("t")) == "changed", painter.message
            return 0

        Segmentator(folder, "kmeans", k=2, templates=templates).process(driver=paint)


# ---------------------------------------------------------------------- the CLI


def test_the_command_line_runs_a_segmentator(folder, tmp_path, monkeypatch, capsys):
    made = []
    original = Segmentator.process

    def process(self, **kwargs):
        made.append(self)
        assert kwargs.get("on_error") is not None  # the CLI prints the failures itself
        return original(self, driver=paint_both, **kwargs)

    monkeypatch.setattr(Segmentator, "process", process)
    out = tmp_path / "out"
    argv = ["imgs", "--method", "kmeans", "--k", "2", "--out", out, "--thread-range", "1",
            "--alpha", "0.25", "--max-window", "300", "200"]  # fmt: skip
    monkeypatch.chdir(folder.parent)
    code = cli.main([str(a) for a in argv])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert stdout.strip() == f"2 of 3 image(s) saved to {out}; 1 skipped"
    (seg,) = made
    assert seg.images_folder_path == Path("imgs") and seg.method == "kmeans"
    assert seg.method_params == {"k": 2} and seg.thread_range == 1 and seg.alpha == 0.25
    assert seg.max_window == (300, 200) and seg.out == out and seg.templates is None
    assert (out / mask_name("a", RED)).is_file()


# ---------------------------------------------------------------------- SAM


def test_sam_without_the_extra_names_it_before_reading(folder, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name.split(".")[0] in ("torch", "segment_anything"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    weights = tmp_path / "sam_vit_b.pth"
    weights.write_bytes(b"weights")
    seg = Segmentator(folder, "sam", checkpoint=weights)
    with pytest.raises(ImportError, match=r'pip install "icas\[sam\]"'):
        seg.process(driver=lambda painter, tool: pytest.fail("the painter must not start"))
    with pytest.raises(ImportError, match=r"icas\[sam\]"):
        seg.presegment(folder / "a.png")


@pytest.fixture
def tiny_sam_checkpoint(tmp_path, monkeypatch):
    """A checkpoint path whose loading gives the tiny random SAM (no real weights here)."""
    pytest.importorskip("torch")
    pytest.importorskip("segment_anything")
    from icas.segment import sam

    loads = []

    def load(torch, sa, model_type, checkpoint):
        loads.append((model_type, Path(checkpoint).name))
        return sam.tiny_sam(seed=0), "tiny-seed-0"

    monkeypatch.setattr(sam, "_load", load)
    path = tmp_path / "tiny.pth"
    path.write_bytes(b"")
    return path, loads


def test_sam_automatic_presegment_and_session(folder, tiny_sam_checkpoint):
    from icas.segment import SamSession
    from icas.segment.sam import tiny_sam

    path, loads = tiny_sam_checkpoint
    options = {"points_per_side": 4, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}
    seg = Segmentator(folder, "sam", checkpoint=path, model_type="vit_l", sam_mode="automatic",
                      thread_range=0, **options)  # fmt: skip
    image = cv2.imread(str(folder / "a.png"))
    expected = SamSession(tiny_sam(seed=0)).automatic(image, **options)
    labels = seg.presegment(folder / "a.png")
    np.testing.assert_array_equal(labels, expected)
    got = {}

    def look(painter, tool_factory):
        assert tool_factory is None and painter.start()
        got["labels"] = painter.canvas.labels.copy()
        return 0

    seg.process(driver=look)
    np.testing.assert_array_equal(got["labels"], expected)
    assert loads == [("vit_l", "tiny.pth")]  # one model for presegment and the session


def test_sam_prompt_labels_come_from_the_tool(folder, tiny_sam_checkpoint, tmp_path):
    from icas.segment.interactive import SamTool

    path, _ = tiny_sam_checkpoint
    cache = tmp_path / "embeddings"

    def prompt(painter, tool_factory):
        assert painter.start() and painter.needs_labels
        tool = tool_factory(painter.image)
        assert isinstance(tool, SamTool)
        tool.mouse(cv2.EVENT_LBUTTONDOWN, 30, 20)
        tool.mouse(cv2.EVENT_LBUTTONUP, 30, 20)
        assert tool.key(ord("f")) == "finish"
        painter.set_labels(tool.labels())
        assert painter.canvas is not None and painter.canvas.labels.shape == (H, W)
        return 0

    result = Segmentator(folder, "sam", checkpoint=path, sam_cache_dir=cache).process(driver=prompt)
    assert result.status == 0 and result.saved == []
    assert list((cache / "tiny-seed-0").glob("*.npz"))  # encoded ahead, into the disk cache
