"""Split a page into zones: text blocks, ruled tables and figures, each with a bounding box.

Detection, per page:

* **Tables**: pdfplumber's ``find_tables()`` with its default "lines" strategy finds grids
  drawn with rules; each is then checked against the page's words (:func:`table_verdict`).
  It is a table only when it has at least two rows and two columns, at least
  :data:`MIN_TABLE_FILL` of its cells hold a word, and no rule cuts through a word. A grid of
  mostly empty cells is a chart (bars, axes, gridlines) and becomes a *figure* zone holding its
  labels; a grid that cuts words (a rule or box drawn across a text column) or has a single row
  or column (a frame around text, a UML class box) is not a table, and its words stay text.
* **Figures**: the page's images (``page.images``), clipped to the page; images smaller than
  2 pt either way and exact duplicates (soft masks) are skipped. An image covering at least
  80 % of the page is treated as a *background* (a scan with an OCR text layer, a letterhead):
  it is still a figure zone, but the words over it stay text blocks. Vector drawings are
  figures only when they are found as a grid of empty cells (charts), see above.
* **Text blocks**: the remaining words (words whose centre lies in a table, or in a
  non-background figure, belong to that zone) are grouped into lines (same baseline band; a
  horizontal gap wider than 1.5 line heights starts a new line, which separates columns), then
  lines into blocks: a line joins the block right above it when the vertical gap is at most half
  a line height, they overlap horizontally, and their heights differ by less than 40 % (so a
  heading is its own block).

Reading order is a recursive XY-cut: the page is split into horizontal bands wherever no zone
spans the gap, each band into columns the same way, and so on; so a two-column page reads down
the left column, then the right one, and a full-width heading or table above or below the
columns stays in place. Zones that overlap both ways are read top-left first.

Ids and indexes are a pure function of the page number, so page-range subtasks never collide
and a document processed whole or in ranges yields the same zones: the n-th zone (1-based) of
page p is ``p{p}-z{n}`` with ``index = (p - 1) * ZONES_PER_PAGE + (n - 1)``. Indexes are
unique and increase in reading order across the document; they are not contiguous.
"""

from __future__ import annotations

import collections
import itertools
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from pdfplumber.page import Page
from pdfplumber.table import Table

from progress_bridge.events import ZoneInfo

from .words import Word, page_words

__all__ = [
    "BACKGROUND_AREA_RATIO",
    "MIN_TABLE_FILL",
    "ZONES_PER_PAGE",
    "DetectedZone",
    "detect_zones",
    "page_zone_id",
    "table_verdict",
    "zone_index",
]

log = logging.getLogger(__name__)

#: Index stride per page; a page with more zones than this has its text blocks merged.
ZONES_PER_PAGE = 1000
#: An image covering this share of the page is a background, not a figure holding words.
BACKGROUND_AREA_RATIO = 0.8
_MIN_FIGURE_PT = 2.0
_COLUMN_GAP_LINE_HEIGHTS = 1.5
_BLOCK_GAP_LINE_HEIGHTS = 0.5
#: A gap that contains a page-wide gutter splits a line from this width on (line heights).
_GUTTER_GAP_LINE_HEIGHTS = 0.6
#: A gutter is at least this wide (points), and only pages with this many words have one.
_MIN_GUTTER_PT = 6.0
_MIN_GUTTER_WORDS = 40
_HEIGHT_RATIO_LIMIT = 1.4
#: A table needs at least this share of its cells to hold a word; emptier grids are charts.
MIN_TABLE_FILL = 0.4
#: A word may reach this far (points) past its cell's side before the rule counts as cutting it.
_CUT_WORD_PT = 1.5
#: Zones may overlap this much (points) across a reading-order cut, e.g. descenders.
_CUT_TOLERANCE_PT = 1.0

BBox = tuple[float, float, float, float]
ZoneKind = Literal["text", "table", "figure"]


def zone_index(page: int, n: int) -> int:
    """Document-wide reading-order index of the ``n``-th (1-based) zone of ``page``."""
    return (page - 1) * ZONES_PER_PAGE + (n - 1)


def page_zone_id(page: int, n: int) -> str:
    return f"p{page}-z{n}"


@dataclass
class _Line:
    words: list[Word]
    x0: float
    top: float
    x1: float
    bottom: float

    @property
    def height(self) -> float:
        return max(self.bottom - self.top, 0.1)


@dataclass
class DetectedZone:
    """A zone and what its extractor needs: the words of a text block or figure, the table."""

    info: ZoneInfo
    kind: ZoneKind
    bbox: BBox
    lines: list[list[Word]] = field(default_factory=list)
    table: Table | None = None
    image: dict[str, Any] | None = None
    background: bool = False
    #: The words came from OCR of the page's image (see :mod:`tasks.pdf.ocr`).
    ocr: bool = False
    #: Remarks the zone's summary and result carry, e.g. that the page has no text layer.
    notes: list[str] = field(default_factory=list)

    @property
    def zone_id(self) -> str:
        return self.info.zone_id


def detect_zones(
    page: Page, number: int, *, ocr_words: list[Word] | None = None
) -> list[DetectedZone]:
    """Find the zones of one page, in reading order, with ids and indexes assigned.

    Args:
        page: an open pdfplumber page.
        number: its 1-based page number in the document.
        ocr_words: the words OCR read on the page's rendering, for a page without a text
            layer; they stand in for the text layer and every image counts as the background
            they were read from. Their text blocks are marked ``ocr``.

    Raises:
        Exception: whatever pdfminer raises on a page it cannot parse; the caller reports the
            page as failed.
    """
    bounds = _bbox_of(page.bbox)
    page_area = max((bounds[2] - bounds[0]) * (bounds[3] - bounds[1]), 1.0)

    words = page_words(page) if ocr_words is None else ocr_words
    raw: list[DetectedZone] = []
    for table in page.find_tables():
        verdict = table_verdict(table, words)
        box = _clip(_bbox_of(table.bbox), bounds)
        if verdict == "table":
            raw.append(_zone("table", box, table=table))
        elif verdict == "figure":
            raw.append(_zone("figure", box))

    seen: set[tuple[int, int, int, int]] = set()
    for image in page.images:
        box = _clip((image["x0"], image["top"], image["x1"], image["bottom"]), bounds)
        if box[2] - box[0] < _MIN_FIGURE_PT or box[3] - box[1] < _MIN_FIGURE_PT:
            continue
        key = (round(box[0]), round(box[1]), round(box[2]), round(box[3]))
        if key in seen:
            continue
        seen.add(key)
        area = (box[2] - box[0]) * (box[3] - box[1])
        background = ocr_words is not None or area >= BACKGROUND_AREA_RATIO * page_area
        raw.append(_zone("figure", box, image=image, background=background))

    holders = [z for z in raw if z.kind == "table" or not z.background]
    free_words: list[Word] = []
    for word in words:
        cx = (word["x0"] + word["x1"]) / 2
        cy = (word["top"] + word["bottom"]) / 2
        holder = next((z for z in holders if _contains(z.bbox, cx, cy)), None)
        if holder is None:
            free_words.append(word)
        elif holder.kind == "figure":
            holder.lines.append([word])
    for zone in raw:
        if zone.kind == "figure" and zone.lines:
            zone.lines = [line.words for line in _lines([w for ln in zone.lines for w in ln])]

    for block in _blocks(_lines(free_words)):
        box = (
            min(line.x0 for line in block),
            min(line.top for line in block),
            max(line.x1 for line in block),
            max(line.bottom for line in block),
        )
        lines = [line.words for line in block]
        raw.append(_zone("text", _clip(box, bounds), lines=lines, ocr=ocr_words is not None))

    raw = _reading_order(_cap(raw))
    for n, zone in enumerate(raw, start=1):
        x0, top, x1, bottom = zone.bbox
        zone.info = ZoneInfo(
            zone_id=page_zone_id(number, n),
            index=zone_index(number, n),
            page=number,
            kind=zone.kind,
            bbox=(round(x0, 2), round(top, 2), round(x1, 2), round(bottom, 2)),
        )
    return raw


_PENDING = ZoneInfo(zone_id="pending", index=0)


def table_verdict(table: Table, words: list[Word]) -> Literal["table", "figure", "text"]:
    """Whether a ruled grid is a table, a chart (a figure) or lines around text.

    A word belongs to the cell holding its centre; it is *cut* when it reaches more than
    :data:`_CUT_WORD_PT` past that cell's left or right edge (or more than a third of its
    height past the top or bottom): a real table's rules run between words, never through one.
    A table also needs two rows and two columns with at least two filled cells each, so two
    framed boxes that touch (UML classes) are not a 2×2 table.
    """
    grid = [
        (i, j, _bbox_of(cell))
        for i, row in enumerate(table.rows)
        for j, cell in enumerate(row.cells)
        if cell is not None
    ]
    filled: set[tuple[int, int]] = set()
    for word in words:
        cx, cy = (word["x0"] + word["x1"]) / 2, (word["top"] + word["bottom"]) / 2
        found = next(((i, j, c) for i, j, c in grid if _contains(c, cx, cy)), None)
        if found is None:
            continue
        i, j, cell = found
        filled.add((i, j))
        slack = (word["bottom"] - word["top"]) / 3
        if (
            word["x0"] < cell[0] - _CUT_WORD_PT
            or word["x1"] > cell[2] + _CUT_WORD_PT
            or word["top"] < cell[1] - slack
            or word["bottom"] > cell[3] + slack
        ):
            return "text"
    if len(filled) < MIN_TABLE_FILL * max(len(grid), 1):
        return "figure" if len(grid) >= 4 else "text"
    rows = collections.Counter(i for i, _ in filled)
    columns = collections.Counter(j for _, j in filled)
    if sum(n >= 2 for n in rows.values()) < 2 or sum(n >= 2 for n in columns.values()) < 2:
        return "text"
    return "table"


def _zone(kind: ZoneKind, bbox: BBox, **kwargs: Any) -> DetectedZone:
    return DetectedZone(info=_PENDING, kind=kind, bbox=bbox, **kwargs)


def _bbox_of(box: Any) -> BBox:
    x0, top, x1, bottom = (float(v) for v in box)
    return (x0, top, x1, bottom)


def _clip(box: BBox, bounds: BBox) -> BBox:
    x0 = min(max(box[0], bounds[0]), bounds[2])
    top = min(max(box[1], bounds[1]), bounds[3])
    x1 = max(min(box[2], bounds[2]), x0)
    bottom = max(min(box[3], bounds[3]), top)
    return (float(x0), float(top), float(x1), float(bottom))


def _contains(box: BBox, x: float, y: float) -> bool:
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


def _lines(words: list[Word]) -> list[_Line]:
    """Group words into lines: same vertical band (that of the row's first word), split at
    column-sized horizontal gaps.

    Words turned 90° (axis labels) form lines of their own: their tall boxes would otherwise
    join every horizontal line beside them into one band.
    """
    rows: list[list[Word]] = []
    row_top = row_bottom = 0.0
    turned: dict[tuple[str, int], list[Word]] = {}
    upright: list[Word] = []
    for word in words:
        direction = word.get("direction", "ltr")
        if direction in ("ttb", "btt"):
            turned.setdefault((direction, round(word["x0"])), []).append(word)
        else:
            upright.append(word)
    lines: list[_Line] = []
    for (direction, _), group in turned.items():
        group.sort(key=lambda w: w["top"] if direction == "ttb" else -w["bottom"])
        lines.append(_make_line(group))
    for word in sorted(upright, key=lambda w: (w["top"], w["x0"])):
        height = word["bottom"] - word["top"]
        middle = (word["top"] + word["bottom"]) / 2
        # The band is the row's first word's, and does not grow: in three columns whose
        # baselines are offset (by 4-5 pt on a 10 pt pitch), a growing band chained each
        # column's line to the next line of the column beside it, interleaving their words.
        if rows and row_top - 0.1 <= middle <= row_bottom + 0.1 and height > 0:
            rows[-1].append(word)
        else:
            rows.append([word])
            row_top, row_bottom = word["top"], word["bottom"]
    gutters = _gutters_of(upright)
    for row in rows:
        row.sort(key=lambda w: w["x0"])
        height = max(w["bottom"] - w["top"] for w in row)
        segment: list[Word] = []
        for word in row:
            if segment:
                left, right = segment[-1]["x1"], word["x0"]
                wide = right - left > _COLUMN_GAP_LINE_HEIGHTS * height
                across = right - left > _GUTTER_GAP_LINE_HEIGHTS * height and any(
                    min(right, g1) - max(left, g0) >= _MIN_GUTTER_PT for g0, g1 in gutters
                )
                if wide or across:
                    lines.append(_make_line(segment))
                    segment = []
            segment.append(word)
        lines.append(_make_line(segment))
    return lines


def _gutters_of(words: list[Word]) -> list[tuple[float, float]]:
    """Vertical strips between text columns: x ranges at least :data:`_MIN_GUTTER_PT` wide
    that almost no word crosses, with text on both sides.

    A fixed gap (1.5 line heights) alone misses a gutter narrowed by one long justified line;
    a strip that the words of the whole page leave empty does not.
    """
    if len(words) < _MIN_GUTTER_WORDS:
        return []
    start = int(min(w["x0"] for w in words))
    end = int(max(w["x1"] for w in words)) + 1
    cover = [0] * (end - start + 1)
    for word in words:
        for x in range(int(word["x0"]) - start, int(word["x1"]) - start + 1):
            cover[x] += 1
    limit = 1 + len(words) // 100  # a full-width heading or footer may cross a gutter
    gutters: list[tuple[float, float]] = []
    run_start: int | None = None
    for x, count in enumerate(cover):
        if count <= limit:
            if run_start is None:
                run_start = x
        elif run_start is not None:
            if x - run_start >= _MIN_GUTTER_PT and run_start > 0:
                gutters.append((float(start + run_start), float(start + x)))
            run_start = None
    return gutters


def _make_line(words: list[Word]) -> _Line:
    return _Line(
        words=words,
        x0=min(w["x0"] for w in words),
        top=min(w["top"] for w in words),
        x1=max(w["x1"] for w in words),
        bottom=max(w["bottom"] for w in words),
    )


def _blocks(lines: list[_Line]) -> list[list[_Line]]:
    """Group lines into blocks (paragraphs) by vertical gap, overlap and height."""
    blocks: list[list[_Line]] = []
    for line in sorted(lines, key=lambda ln: (ln.top, ln.x0)):
        best: list[_Line] | None = None
        best_gap = 0.0
        for block in blocks:
            last = block[-1]
            gap = line.top - last.bottom
            limit = _BLOCK_GAP_LINE_HEIGHTS * max(line.height, last.height)
            ratio = max(line.height, last.height) / min(line.height, last.height)
            overlaps = line.x0 < max(ln.x1 for ln in block) and line.x1 > min(ln.x0 for ln in block)
            fits = -0.5 * line.height <= gap <= limit and overlaps and ratio < _HEIGHT_RATIO_LIMIT
            if fits and (best is None or gap < best_gap):
                best, best_gap = block, gap
        if best is None:
            blocks.append([line])
        else:
            best.append(line)
    return blocks


def _reading_order(zones: list[DetectedZone], columns_first: bool = False) -> list[DetectedZone]:
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
            return [z for column in columns for z in _reading_order(column)]
    bands = _cut(zones, axis=1)
    if len(bands) == 1:
        columns = _cut(zones, axis=0)
        if len(columns) == 1:
            return sorted(zones, key=lambda z: (round(z.bbox[1], 1), z.bbox[0]))
        return [z for column in columns for z in _reading_order(column)]
    runs: list[tuple[list[DetectedZone], list[tuple[float, float]]]] = []
    for band in bands:
        gutters = _gutters(band)
        if runs and gutters and _share_gutter(runs[-1][1], gutters):
            previous, previous_gutters = runs[-1]
            runs[-1] = (previous + band, _common_gutters(previous_gutters, gutters))
        else:
            runs.append((band, gutters))
    if len(runs) == 1 and columns_first:  # the columns cut was just tried: read by bands
        runs = [(band, []) for band in bands]
    return [z for run, gutters in runs for z in _reading_order(run, bool(gutters))]


def _cut(zones: list[DetectedZone], axis: int) -> list[list[DetectedZone]]:
    """Groups separated by gaps along ``axis`` (1: rows, 0: columns) that no zone spans."""
    ordered = sorted(zones, key=lambda z: (z.bbox[axis], z.bbox[1 - axis]))
    groups: list[list[DetectedZone]] = [[ordered[0]]]
    reach = ordered[0].bbox[axis + 2]
    for zone in ordered[1:]:
        if zone.bbox[axis] >= reach - _CUT_TOLERANCE_PT:
            groups.append([zone])
        else:
            groups[-1].append(zone)
        reach = max(reach, zone.bbox[axis + 2])
    return groups


def _gutters(zones: list[DetectedZone]) -> list[tuple[float, float]]:
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


def _cap(zones: list[DetectedZone]) -> list[DetectedZone]:
    """Keep a page within ZONES_PER_PAGE zones by merging its text blocks into one."""
    if len(zones) <= ZONES_PER_PAGE:
        return zones
    texts = [z for z in zones if z.kind == "text"]
    others = [z for z in zones if z.kind != "text"]
    log.warning("page has %d zones; merging its %d text blocks", len(zones), len(texts))
    if texts:
        merged = _zone(
            "text",
            (
                min(z.bbox[0] for z in texts),
                min(z.bbox[1] for z in texts),
                max(z.bbox[2] for z in texts),
                max(z.bbox[3] for z in texts),
            ),
            lines=[line for z in texts for line in z.lines],
        )
        others = [*others[: ZONES_PER_PAGE - 1], merged]
    return others[:ZONES_PER_PAGE]
