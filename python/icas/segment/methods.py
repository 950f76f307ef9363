"""Automatic pre-segmentation: ``segment(image, method, **params) -> labels``.

Every method turns a ``(h, w, 3)`` uint8 BGR image into an ``(h, w)`` int32
label image: segments are numbered ``1..n`` in raster order of their first
pixel, and 0 marks edge pixels (only the ``edge`` method has them). The
parameters and their defaults are those of the original icas tool; they are
checked before any work is done, so a typo fails at once with the list of
valid names.
"""

from __future__ import annotations

import types

import cv2
import numpy as np

from icas.segment._image import as_bgr, relabel
from icas.segment._params import Param, resolve

_SLIC_ALGORITHMS = {"slic": 100, "slico": 101, "mslic": 102}  # cv2.ximgproc constants

# Parameters shared by the two superpixel-based methods.
_SUPERPIXEL = {
    "region_size": Param(40, "int", low=2),
    "ruler": Param(30.0, "float", low=0, low_open=True),
    "algorithm": Param("mslic", "choice", choices=tuple(_SLIC_ALGORITHMS)),
    "num_iterations": Param(10, "int", low=1),
    "min_element_size": Param(25, "int", low=0, high=100),
}
# Parameters of OpenCV's k-means shared by the two k-means methods.
_KMEANS = {
    "k": Param(15, "int", low=1),
    "color_importance": Param(5.0, "float", low=0),
    "attempts": Param(3, "int", low=1),
    "max_iter": Param(10, "int", low=1),
    "seed": Param(0, "int", low=0, high=2**31 - 1),
}

_SPECS: dict[str, dict[str, Param]] = {
    "edge": {
        "edge_th": Param(60.0, "float", low=0),
        "d": Param(7, "int", low=1, high=49),
        "sigmaColor": Param(100.0, "float", low=0, low_open=True),
        "sigmaSpace": Param(100.0, "float", low=0, low_open=True),
        "templateWindowSize": Param(7, "int", low=1, odd=True),
        "searchWindowSize": Param(21, "int", low=1, odd=True),
        "h": Param(10.0, "float", low=0),
        "hColor": Param(10.0, "float", low=0),
        "morph_size": Param(3, "int", low=1, high=99),
    },
    "superpixel": dict(_SUPERPIXEL),
    "kmeans": dict(_KMEANS),
    "slickmeans": {**_SUPERPIXEL, **_KMEANS},
    "chanvese": {
        "number_of_bins": Param(20, "int", low=1, high=65535),
        "mu": Param(0.25, "float", low=0),
        "lambda1": Param(1.0, "float", low=0),
        "lambda2": Param(1.0, "float", low=0),
        "tol": Param(1e-3, "float", low=0),
        "max_num_iter": Param(500, "int", low=1),
        "dt": Param(0.5, "float", low=0, low_open=True),
        "min_segment_size": Param(100, "int", low=0),
    },
    "felzenszwalb": {
        "segment_scale": Param(100.0, "float", low=0, low_open=True),
        "sigma": Param(0.5, "float", low=0),
        "min_segment_size": Param(100, "int", low=0),
    },
    "quickshift": {
        "segment_size": Param(5.0, "float", low=0, low_open=True),
        "color_weight": Param(0.5, "float", low=0, high=1),
        "max_dist": Param(10.0, "float", low=0, low_open=True),
        "sigma": Param(0.0, "float", low=0),
        "seed": Param(0, "int", low=0, high=2**31 - 1),
    },
    "graph": {
        "k": Param(300.0, "float", low=0, low_open=True),
        "sigma": Param(0.5, "float", low=0),
        "min_segment_size": Param(100, "int", low=0),
    },
}

#: Every automatic method and its default parameters (read-only). GrabCut and SAM
#: are interactive: see :class:`icas.segment.GrabCutSession` and
#: :class:`icas.segment.SamSession`.
METHODS = types.MappingProxyType(
    {
        name: types.MappingProxyType({p: s.default for p, s in spec.items()})
        for name, spec in _SPECS.items()
    }
)

_INTERACTIVE = {
    "grabcut": "GrabCut is interactive: use icas.segment.GrabCutSession",
    "sam": "SAM needs a model: use icas.segment.SamSession(...).automatic(image)",
}


def check_method(method) -> str:
    """Normalise a method name (case-insensitive) or raise ValueError listing the methods."""
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, got {type(method).__name__}")
    name = method.lower()
    if name in _INTERACTIVE:
        raise ValueError(f"method {method!r}: {_INTERACTIVE[name]}")
    if name not in _SPECS:
        raise ValueError(f"unknown method {method!r}; expected one of: {', '.join(_SPECS)}")
    return name


def check_params(method: str, **params) -> dict:
    """All parameters of ``method``: its defaults overridden by ``params``, each checked.

    Raises
    ------
    ValueError
        For an unknown method or parameter, or a value out of range.
    TypeError
        For a value of the wrong type.
    """
    name = check_method(method)
    return resolve(name, _SPECS[name], params)


def segment(image, method: str, **params) -> np.ndarray:
    """Pre-segment an image into regions a person can paint with one click each.

    Parameters
    ----------
    image : ndarray of shape (h, w, 3), uint8, or str or os.PathLike
        BGR image (OpenCV's channel order) or the path of an image file.
    method : str
        One of :data:`METHODS` (case-insensitive):

        ``"edge"``
            Bilateral filter (``d``, ``sigmaColor``, ``sigmaSpace``), non-local
            means denoising (``h``, ``hColor``, ``templateWindowSize``,
            ``searchWindowSize``), Sobel gradient magnitude ``> edge_th`` marks
            edge pixels, a morphological closing of size ``morph_size`` joins
            broken edges, and the 4-connected regions between edges are the
            segments. Edge pixels are 0.
        ``"superpixel"``
            OpenCV ximgproc SLIC superpixels (``algorithm`` ``"mslic"``,
            ``"slico"`` or ``"slic"``; ``region_size`` pixels, smoothness
            ``ruler``, ``num_iterations``) on the blurred CIELAB image, with
            connectivity enforced (``min_element_size`` percent of a superpixel).
            On small images ``region_size`` is reduced to a third of the
            shorter side (OpenCV crashes with fewer superpixels across).
        ``"kmeans"``
            OpenCV k-means over each pixel's colour (weighted by
            ``color_importance``) and position (normalised by the longer side):
            at most ``k`` clusters, which need not be connected.
        ``"slickmeans"``
            Superpixels as above, then k-means over the superpixels' mean
            colours and centroids; each segment is a union of superpixels.
        ``"chanvese"``
            scikit-image's Chan-Vese level set on the gray image (``mu``,
            ``lambda1``, ``lambda2``, ``tol``, ``max_num_iter``, ``dt``); the
            final level set is quantised into ``number_of_bins`` levels and each
            4-connected region of one level is a segment; regions smaller than
            ``min_segment_size`` pixels join the nearest larger region.
        ``"felzenszwalb"``
            scikit-image's Felzenszwalb graph segmentation (``segment_scale``,
            ``sigma``, ``min_segment_size``).
        ``"quickshift"``
            scikit-image's quickshift (kernel ``segment_size``, colour/space
            ratio ``color_weight``, ``max_dist``, ``sigma``).
        ``"graph"``
            OpenCV ximgproc graph segmentation (``k``, ``sigma``,
            ``min_segment_size``).
    **params
        The method's parameters; see ``METHODS[method]`` for the names and
        defaults. ``seed`` (kmeans, slickmeans, quickshift) fixes the random
        choices, so equal inputs give equal labels.

    Returns
    -------
    ndarray of shape (h, w), int32
        Segments numbered ``1..n`` in raster order of their first pixel; 0 only
        for edge pixels.

    Raises
    ------
    ValueError
        For an unknown method or parameter, a parameter out of range, or an
        image that is empty or not three-channel (the message says how to
        convert it).
    TypeError
        For a parameter or image of the wrong type.
    FileNotFoundError
        When ``image`` is a path that does not exist.

    Examples
    --------
    >>> from skimage import data
    >>> img = data.astronaut()[..., ::-1]           # RGB -> BGR
    >>> labels = segment(img, "kmeans", k=8, seed=0)
    >>> labels.dtype, labels.shape, labels.min() >= 1
    (dtype('int32'), (512, 512), True)
    """
    name = check_method(method)
    options = resolve(name, _SPECS[name], params)
    img = as_bgr(image)
    return relabel(_RUN[name](img, **options))


# --------------------------------------------------------------------------- methods


def _edge(
    img,
    *,
    edge_th,
    d,
    sigmaColor,
    sigmaSpace,
    templateWindowSize,
    searchWindowSize,
    h,
    hColor,
    morph_size,
):
    smooth = cv2.bilateralFilter(img, d, sigmaColor, sigmaSpace)
    smooth = cv2.fastNlMeansDenoisingColored(
        smooth, None, h, hColor, templateWindowSize, searchWindowSize
    )
    gray = cv2.cvtColor(smooth, cv2.COLOR_BGR2GRAY)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    edges = (cv2.magnitude(gx, gy) > edge_th).astype(np.uint8)
    if morph_size > 1:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (morph_size, morph_size))
        edges = cv2.morphologyEx(edges, cv2.MORPH_CLOSE, kernel)
    # 4-connectivity: a one-pixel diagonal edge line must separate two regions.
    _, labels = cv2.connectedComponents(1 - edges, connectivity=4, ltype=cv2.CV_32S)
    return labels


def _superpixels(img, *, region_size, ruler, algorithm, num_iterations, min_element_size):
    """0-based superpixel labels of ``img`` (int32)."""
    h, w = img.shape[:2]
    if min(h, w) < 2:
        # A one-pixel-wide image has no 2-D grid to seed: cut it into runs.
        return (np.arange(h * w, dtype=np.int32) // region_size).reshape(h, w)
    # OpenCV's SLIC kills the process (SIGSEGV) when its seed grid is empty or
    # a single strip (region_size near or above the shorter side; MSLIC also on
    # noisy content). Fuzzing shows three superpixels across the shorter side
    # are safe for all three variants, so small images get smaller superpixels.
    size = max(2, min(region_size, min(h, w) // 3))
    lab = cv2.cvtColor(cv2.GaussianBlur(img, (3, 3), 0), cv2.COLOR_BGR2Lab)
    slic = cv2.ximgproc.createSuperpixelSLIC(lab, _SLIC_ALGORITHMS[algorithm], size, float(ruler))
    slic.iterate(num_iterations)
    if min_element_size > 0:
        slic.enforceLabelConnectivity(min_element_size)
    return slic.getLabels()


def _superpixel(img, **options):
    return _superpixels(img, **options) + 1


def _cluster(features, k, *, attempts, max_iter, seed):
    """OpenCV k-means labels (0-based) of ``features`` ((n, d) float32), at most k clusters."""
    n = features.shape[0]
    k = min(k, n)
    if k == 1:
        return np.zeros(n, dtype=np.int32)
    cv2.setRNGSeed(seed)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_MAX_ITER, max_iter, 1e-4)
    _, labels, _ = cv2.kmeans(features, k, None, criteria, attempts, cv2.KMEANS_PP_CENTERS)
    return labels.ravel()


def _kmeans(img, *, k, color_importance, attempts, max_iter, seed):
    h, w = img.shape[:2]
    ys, xs = np.indices((h, w), dtype=np.float32)
    scale = np.float32(max(h, w))
    features = np.empty((h * w, 5), dtype=np.float32)
    features[:, :3] = img.reshape(-1, 3) * np.float32(color_importance / 255.0)
    features[:, 3] = xs.ravel() / scale
    features[:, 4] = ys.ravel() / scale
    labels = _cluster(features, k, attempts=attempts, max_iter=max_iter, seed=seed)
    return labels.reshape(h, w) + 1


def _slickmeans(img, *, k, color_importance, attempts, max_iter, seed, **superpixel):
    h, w = img.shape[:2]
    sp = _superpixels(img, **superpixel)
    # Compact ids: SLIC may leave ids without pixels after enforcing connectivity.
    ids, sp = np.unique(sp.ravel(), return_inverse=True)
    n = len(ids)
    counts = np.bincount(sp, minlength=n).astype(np.float64)
    ys, xs = np.indices((h, w))
    scale = float(max(h, w))
    features = np.empty((n, 5), dtype=np.float32)
    flat = img.reshape(-1, 3)
    for c in range(3):
        features[:, c] = np.bincount(sp, flat[:, c], n) / counts * (color_importance / 255.0)
    features[:, 3] = np.bincount(sp, xs.ravel(), n) / counts / scale
    features[:, 4] = np.bincount(sp, ys.ravel(), n) / counts / scale
    clusters = _cluster(features, k, attempts=attempts, max_iter=max_iter, seed=seed)
    return clusters[sp].reshape(h, w) + 1


def _chanvese(
    img, *, number_of_bins, mu, lambda1, lambda2, tol, max_num_iter, dt, min_segment_size
):
    from scipy.ndimage import distance_transform_edt
    from skimage.measure import label
    from skimage.segmentation import chan_vese

    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float64) / 255.0
    _, phi, _ = chan_vese(
        gray,
        mu=mu,
        lambda1=lambda1,
        lambda2=lambda2,
        tol=tol,
        max_num_iter=max_num_iter,
        dt=dt,
        extended_output=True,
    )
    lo, hi = float(phi.min()), float(phi.max())
    if number_of_bins == 1 or not hi > lo:
        levels = np.zeros(phi.shape, dtype=np.int32)
    else:
        inner = np.linspace(lo, hi, number_of_bins + 1)[1:-1]
        levels = np.digitize(phi, inner).astype(np.int32)
    regions = label(levels + 1, background=0, connectivity=1)
    # Away from its zero crossing the level set is noisy, so its levels break
    # into thousands of specks; each speck joins the nearest large region.
    small = np.bincount(regions.ravel())[regions] < min_segment_size
    if small.any() and not small.all():
        nearest = distance_transform_edt(small, return_distances=False, return_indices=True)
        regions = regions[tuple(nearest)]
    return regions


def _felzenszwalb(img, *, segment_scale, sigma, min_segment_size):
    from skimage.segmentation import felzenszwalb

    rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return felzenszwalb(rgb, scale=segment_scale, sigma=sigma, min_size=min_segment_size) + 1


def _quickshift(img, *, segment_size, color_weight, max_dist, sigma, seed):
    from skimage.segmentation import quickshift

    rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    labels = quickshift(
        rgb,
        ratio=color_weight,
        kernel_size=segment_size,
        max_dist=max_dist,
        sigma=sigma,
        rng=seed,
    )
    return labels + 1


def _graph(img, *, k, sigma, min_segment_size):
    seg = cv2.ximgproc.segmentation.createGraphSegmentation(sigma, k, min_segment_size)
    return seg.processImage(img) + 1


_RUN = {
    "edge": _edge,
    "superpixel": _superpixel,
    "kmeans": _kmeans,
    "slickmeans": _slickmeans,
    "chanvese": _chanvese,
    "felzenszwalb": _felzenszwalb,
    "quickshift": _quickshift,
    "graph": _graph,
}
