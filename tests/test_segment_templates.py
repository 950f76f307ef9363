"""Template painting: derived attention and mask, masked TM_SQDIFF_NORMED
matching against a brute-force reference, folders, and the painter's t key."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from icas.segment.painter import Painter
from icas.segment.prefetch import Loaded, Prefetcher
from icas.segment.templates import (
    Template,
    TemplateSet,
    derive_attention,
    derive_mask,
    match_template,
)

WHITE = (255, 255, 255)


def plane(size=(24, 32), bg=WHITE) -> tuple[np.ndarray, np.ndarray]:
    """A template: a textured ellipse on a plain background; returns (template, object mask)."""
    h, w = size
    rng = np.random.default_rng(3)
    t = np.empty((h, w, 3), np.uint8)
    t[:] = bg
    obj = np.zeros((h, w), np.uint8)
    cv2.ellipse(obj, (w // 2, h // 2), (w // 2 - 3, h // 2 - 4), 0, 0, 360, 1, -1)
    obj = obj.astype(bool)
    t[obj] = rng.integers(0, 120, (obj.sum(), 3), dtype=np.uint8)
    return t, obj


def scene(photo, places, template, obj) -> np.ndarray:
    """A real photo with the template's object pasted (without its background) at places."""
    img = np.ascontiguousarray(cv2.resize(photo, (160, 120))[..., ::-1])
    for x, y in places:
        h, w = obj.shape
        region = img[y : y + h, x : x + w]
        region[obj] = template[obj]
    return img


def brute_force(image, template, attention) -> np.ndarray:
    """Masked TM_SQDIFF_NORMED written out from its definition."""
    ih, iw = image.shape[:2]
    th, tw = template.shape[:2]
    t = template.astype(np.float64)
    m = (attention != 0)[..., None].astype(np.float64)
    out = np.empty((ih - th + 1, iw - tw + 1))
    for y in range(out.shape[0]):
        for x in range(out.shape[1]):
            p = image[y : y + th, x : x + tw].astype(np.float64)
            num = (((t - p) * m) ** 2).sum()
            den = np.sqrt(((t * m) ** 2).sum() * ((p * m) ** 2).sum())
            out[y, x] = num / den
    return out


def test_derived_attention_ignores_the_border_background():
    t, obj = plane()
    att = derive_attention(t)
    assert att.dtype == np.uint8 and set(np.unique(att)) <= {0, 255}
    np.testing.assert_array_equal(att != 0, obj)


def test_derived_attention_keeps_enclosed_background_and_tolerates_noise():
    t = np.full((30, 30, 3), 250, np.uint8)
    rng = np.random.default_rng(0)
    t = (t - rng.integers(0, 6, t.shape)).astype(np.uint8)  # near-white, not exactly
    ring = np.zeros((30, 30), np.uint8)
    cv2.circle(ring, (15, 15), 10, 1, 3)
    t[ring.astype(bool)] = (20, 40, 60)
    att = derive_attention(t, tolerance=10)
    yy, xx = np.mgrid[0:30, 0:30]
    inside = (yy - 15) ** 2 + (xx - 15) ** 2 <= 8**2  # background, but enclosed by the ring
    assert (att[inside] == 255).all() and (att[ring.astype(bool)] == 255).all()
    assert (att[0] == 0).all() and (att[:, -1] == 0).all()
    # A plain template has no object: every pixel counts.
    assert (derive_attention(np.zeros((5, 7, 3), np.uint8)) == 255).all()


def test_derived_mask_is_the_non_black_pixels():
    seg = np.zeros((4, 5, 3), np.uint8)
    seg[1, 2] = (0, 0, 1)
    seg[3, 4] = (200, 0, 0)
    m = derive_mask(seg)
    assert m.dtype == bool and m.sum() == 2 and m[1, 2] and m[3, 4]


def test_masked_matching_equals_the_definition():
    rng = np.random.default_rng(5)
    image = rng.integers(1, 256, (26, 30, 3), dtype=np.uint8)
    template = image[8:17, 11:23].copy()
    attention = np.zeros((9, 12), np.uint8)
    attention[2:8, 1:10] = 255
    t = Template.build(template, template, attention, name="t")
    ref = brute_force(image, template, attention)
    (m,) = match_template(image, t)
    assert (m.x, m.y) == (11, 8) and m.error == pytest.approx(0, abs=1e-6)
    y, x = np.unravel_index(np.argmin(ref), ref.shape)
    assert (x, y) == (m.x, m.y)
    got = cv2.matchTemplate(image, template, cv2.TM_SQDIFF_NORMED, mask=t.attention)
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_attention_makes_the_difference_on_a_real_photo(photos):
    t, obj = plane()
    img = scene(photos[1], [(70, 50)], t, obj)
    derived = Template.build(t, t, name="plane")
    assert derived.attention_derived and derived.mask_derived
    (m,) = match_template(img, derived)
    assert (m.x, m.y) == (70, 50) and m.error < 1e-4
    # With every template pixel counted, the white background spoils the match.
    full = Template.build(t, t, np.full(obj.shape, 255, np.uint8), name="full")
    (mf,) = match_template(img, full)
    assert mf.error > 100 * max(m.error, 1e-6)


def test_threshold_finds_every_copy_without_overlaps(photos):
    t, obj = plane()
    places = [(10, 10), (90, 20), (40, 80)]
    img = scene(photos[2], places, t, obj)
    tpl = Template.build(t, t, name="p")
    found = match_template(img, tpl, threshold=0.01)
    assert sorted((m.x, m.y) for m in found) == sorted(places)
    assert [m.error for m in found] == sorted(m.error for m in found)
    assert len(match_template(img, tpl)) == 1  # no threshold: the best one
    assert match_template(img, tpl, threshold=0.01, max_matches=2)[1].error <= 0.01
    assert len(match_template(img, tpl, threshold=0.01, max_matches=2)) == 2
    with pytest.raises(ValueError, match="threshold"):
        match_template(img, tpl, threshold=-1)


def test_larger_template_than_image_matches_nothing():
    t, _ = plane((24, 32))
    assert match_template(np.zeros((10, 40, 3), np.uint8) + 9, Template.build(t, t)) == []


def test_build_checks_sizes_and_empty_attention():
    t, _ = plane()
    with pytest.raises(ValueError, match="segment of 'x' is 5x5 but its template is 32x24"):
        Template.build(t, np.zeros((5, 5, 3), np.uint8), name="x")
    with pytest.raises(ValueError, match="attention of 'x' is 3x3 but must be 32x24"):
        Template.build(t, t, np.ones((3, 3), np.uint8), name="x")
    with pytest.raises(ValueError, match="attention of 'x' is empty"):
        Template.build(t, t, np.zeros((24, 32), np.uint8), name="x")
    with pytest.raises(ValueError, match="uint8"):
        Template.build(t.astype(np.float32), t)


def write_set(root, n=2, *, attentions=True, masks=True):
    for sub in (
        ("templates", "segments")
        + (("attentions",) if attentions else ())
        + (("masks",) if masks else ())
    ):
        (root / sub).mkdir(parents=True)
    for i in range(n):
        t, obj = plane()
        seg = np.zeros_like(t)
        seg[obj] = (0, 0, 200 + i)
        cv2.imwrite(str(root / "templates" / f"t{i}.png"), t)
        cv2.imwrite(str(root / "segments" / f"s{i}.png"), seg)
        if attentions:
            cv2.imwrite(str(root / "attentions" / f"a{i}.png"), obj.astype(np.uint8) * 255)
        if masks:
            half = obj.copy()
            half[:, 16:] = False
            cv2.imwrite(str(root / "masks" / f"m{i}.png"), half.astype(np.uint8) * 255)


def test_folders_given_and_derived(tmp_path):
    write_set(tmp_path / "full")
    s = TemplateSet.from_root(tmp_path / "full")
    assert [t.name for t in s] == ["t0.png", "t1.png"]
    assert not s[0].attention_derived and not s[0].mask_derived
    assert not s[0].mask[:, 16:].any() and s[0].mask.any()
    assert tuple(s[1].segment[12, 16]) == (0, 0, 201)  # paired in name order
    write_set(tmp_path / "bare", attentions=False, masks=False)
    b = TemplateSet.from_root(tmp_path / "bare", prefix="b:")
    assert b[0].name == "b:t0.png" and b[0].attention_derived and b[0].mask_derived
    np.testing.assert_array_equal(b[0].attention, s[0].attention)
    np.testing.assert_array_equal(b[0].mask, derive_mask(b[0].segment))
    assert len(s + b) == 4


def test_folder_errors(tmp_path):
    write_set(tmp_path / "a")
    (tmp_path / "a" / "masks" / "m1.png").unlink()
    with pytest.raises(ValueError, match="holds 1 images but .* holds 2 templates"):
        TemplateSet.from_root(tmp_path / "a")
    (tmp_path / "b" / "templates").mkdir(parents=True)
    with pytest.raises(ValueError, match="segments/ is missing"):
        TemplateSet.from_root(tmp_path / "b")
    with pytest.raises(FileNotFoundError, match="template folder not found"):
        TemplateSet.from_root(tmp_path / "nope")
    write_set(tmp_path / "c", n=1)
    (tmp_path / "c" / "segments" / "s0.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read .*s0.png"):
        TemplateSet.from_root(tmp_path / "c")


def test_t_key_paints_the_segments_where_the_masks_allow(tmp_path, photos):
    write_set(tmp_path / "set")
    templates = TemplateSet.from_root(tmp_path / "set")
    t0 = templates[0]
    image = scene(photos[0], [(30, 40)], t0.template, t0.attention != 0)
    paths = [tmp_path / "x.png"]
    labels = np.ones(image.shape[:2], np.int32)

    def job(path):
        return Loaded(path, image, labels)

    with Prefetcher(paths, job, thread_range=0) as source:
        p = Painter(source, out_dir=tmp_path / "out", templates=templates, template_threshold=0.05)
        p.start()
        assert p.key(ord("t")) == "changed" and "match" in p.message
        painted = p.canvas.paint != 0
        expected = np.zeros_like(painted)
        h, w = t0.mask.shape
        expected[40 : 40 + h, 30 : 30 + w] = t0.mask
        # Both templates are the same shape: each paints its colour, the later one wins.
        np.testing.assert_array_equal(painted, expected)
        colors = {p.colors.bgr(int(c)) for c in np.unique(p.canvas.paint[painted])}
        assert colors == {(0, 0, 201)}
        assert p.key(ord("z")) == "changed" and not p.canvas.paint.any()
        # A template that is black under its attention has no defined error anywhere.
        black = np.zeros((5, 5, 3), np.uint8)
        p.templates = TemplateSet([Template.build(black, black)])
        assert p.key(ord("t")) == "unchanged" and "no template matched" in p.message
