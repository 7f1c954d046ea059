"""Reading order of a page's zones: a recursive XY-cut that keeps column runs together.

The page is split into horizontal bands wherever no zone spans the gap, each band into columns
the same way, and so on; so a two-column page reads down the left column, then the right one,
and a full-width heading or table above or below the columns stays in place. Zones that overlap
both ways are read top-left first.

Only boxes matter here, so anything with a ``bbox`` can be ordered (:class:`Boxed`).
"""

from __future__ import annotations

import itertools
from typing import Protocol, TypeVar

from .geometry import BBox

__all__ = ["Boxed", "reading_order"]

#: Zones may overlap this much (points) across a reading-order cut, e.g. descenders.
_CUT_TOLERANCE_PT = 1.0


class Boxed(Protocol):
    @property
    def bbox(self) -> BBox: ...


_Z = TypeVar("_Z", bound=Boxed)


def reading_order(zones: list[_Z], columns_first: bool = False) -> list[_Z]:
    """Recursive XY-cut with column runs kept together.

    Split into horizontal bands where no zone spans the gap. Consecutive bands that are each
    split by the same column gutter (a vertical gap they share) are one multi-column run: it is
    cut into columns first, so paragraphs that happen to line up across columns are still read
    column by column. Each part is ordered the same way; what cannot be cut is read top-left
    first.
    """
    if len(zones) <= 1:
        return zones
    if columns_first:
        columns = _cut(zones, axis=0)
        if len(columns) > 1:
            return [z for column in columns for z in reading_order(column)]
    bands = _cut(zones, axis=1)
    if len(bands) == 1:
        columns = _cut(zones, axis=0)
        if len(columns) == 1:
            return sorted(zones, key=lambda z: (round(z.bbox[1], 1), z.bbox[0]))
        return [z for column in columns for z in reading_order(column)]
    runs: list[tuple[list[_Z], list[tuple[float, float]]]] = []
    for band in bands:
        gutters = _gutters(band)
        if runs and gutters and _share_gutter(runs[-1][1], gutters):
            previous, previous_gutters = runs[-1]
            runs[-1] = (previous + band, _common_gutters(previous_gutters, gutters))
        else:
            runs.append((band, gutters))
    if len(runs) == 1 and columns_first:  # the columns cut was just tried: read by bands
        runs = [(band, []) for band in bands]
    return [z for run, gutters in runs for z in reading_order(run, bool(gutters))]


def _cut(zones: list[_Z], axis: int) -> list[list[_Z]]:
    """Groups separated by gaps along ``axis`` (1: rows, 0: columns) that no zone spans."""
    ordered = sorted(zones, key=lambda z: (z.bbox[axis], z.bbox[1 - axis]))
    groups: list[list[_Z]] = [[ordered[0]]]
    reach = ordered[0].bbox[axis + 2]
    for zone in ordered[1:]:
        if zone.bbox[axis] >= reach - _CUT_TOLERANCE_PT:
            groups.append([zone])
        else:
            groups[-1].append(zone)
        reach = max(reach, zone.bbox[axis + 2])
    return groups


def _gutters(zones: list[_Z]) -> list[tuple[float, float]]:
    columns = _cut(zones, axis=0)
    return [
        (max(z.bbox[2] for z in left), min(z.bbox[0] for z in right))
        for left, right in itertools.pairwise(columns)
    ]


def _share_gutter(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> bool:
    return bool(_common_gutters(a, b))


def _common_gutters(
    a: list[tuple[float, float]], b: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    common = []
    for a0, a1 in a:
        for b0, b1 in b:
            lo, hi = max(a0, b0), min(a1, b1)
            if hi - lo > -_CUT_TOLERANCE_PT:
                common.append((lo, hi))
    return common
