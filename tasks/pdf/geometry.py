"""Boxes on a page, as ``(x0, top, x1, bottom)`` in points from the top-left corner.

Shared by zone detection (:mod:`tasks.pdf.zones`) and the table check
(:mod:`tasks.pdf.tables`); pdfplumber gives boxes as tuples of ``Decimal`` or ``float``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BBox", "bbox_of", "clip", "contains"]

BBox = tuple[float, float, float, float]


def bbox_of(box: Any) -> BBox:
    """Any 4-sequence of numbers as a float box."""
    x0, top, x1, bottom = (float(v) for v in box)
    return (x0, top, x1, bottom)


def clip(box: BBox, bounds: BBox) -> BBox:
    """``box`` cut to ``bounds``; a box outside them collapses onto their edge."""
    x0 = min(max(box[0], bounds[0]), bounds[2])
    top = min(max(box[1], bounds[1]), bounds[3])
    x1 = max(min(box[2], bounds[2]), x0)
    bottom = max(min(box[3], bounds[3]), top)
    return (float(x0), float(top), float(x1), float(bottom))


def contains(box: BBox, x: float, y: float) -> bool:
    """Whether the point lies in the box, edges included."""
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]
