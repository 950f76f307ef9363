"""Segmentation: automatic pre-segmentation, the interactive sessions and the painter.

``segment(image, method, **params)`` turns a BGR image into an int32 label
image (segments ``1..n``, edge pixels 0) with one of :data:`METHODS`;
``preview`` renders every method side by side. :class:`GrabCutSession` and
:class:`SamSession` hold the state of the interactive tools, :class:`Painter`
the state of the painter (what every click and key does); the OpenCV windows
(``icas.segment.windows``) only forward events to them and draw them, and
:class:`Segmentator` puts it all together over a folder (``icas-segment``,
``icas.segment.cli``, is that class with its options as flags).
:func:`save_outputs` writes masks, indexed PNGs, COCO and labelme files;
:class:`TemplateSet` holds the templates of template painting. SAM needs the
extra ``icas[sam]``; it is imported only when a :class:`SamSession` is created.
"""

from __future__ import annotations

from icas.segment.canvas import Canvas, ColorTable
from icas.segment.export import save_outputs
from icas.segment.grabcut import GrabCutSession
from icas.segment.methods import METHODS, check_params, segment
from icas.segment.painter import Painter
from icas.segment.pipeline import ParameterError, Segmentator, SegmentResult
from icas.segment.prefetch import Loaded, Prefetcher
from icas.segment.preview import preview
from icas.segment.sam import SamSession
from icas.segment.templates import Template, TemplateSet

__all__ = [
    "METHODS",
    "Canvas",
    "ColorTable",
    "GrabCutSession",
    "Loaded",
    "Painter",
    "ParameterError",
    "Prefetcher",
    "SamSession",
    "SegmentResult",
    "Segmentator",
    "Template",
    "TemplateSet",
    "check_params",
    "preview",
    "save_outputs",
    "segment",
]
