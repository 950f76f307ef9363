"""Segmentation: automatic pre-segmentation and the interactive sessions.

``segment(image, method, **params)`` turns a BGR image into an int32 label
image (segments ``1..n``, edge pixels 0) with one of :data:`METHODS`;
``preview`` renders every method side by side. :class:`GrabCutSession` and
:class:`SamSession` hold the state of the interactive tools (no windows here:
they are driven by the painter). SAM needs the extra ``icas[sam]``; it is
imported only when a :class:`SamSession` is created.
"""

from __future__ import annotations

from icas.segment.grabcut import GrabCutSession
from icas.segment.methods import METHODS, check_params, segment
from icas.segment.preview import preview
from icas.segment.sam import SamSession

__all__ = ["METHODS", "GrabCutSession", "SamSession", "check_params", "preview", "segment"]
