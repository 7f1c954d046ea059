"""Split a page into zones: text blocks, ruled tables and figures, each with a bounding box.

Detection, per page (this module decides which words belong to which zone; each step's rule
lives in its own module):

* **Tables**: pdfplumber's ``find_tables()`` finds grids drawn with rules; each is then checked
  against the page's words (:func:`tasks.pdf.tables.table_verdict`): a table, a chart (a figure
  zone holding its labels) or lines around text (its words stay text).
* **Figures**: the page's images (``page.images``), clipped to the page; images smaller than
  2 pt either way and exact duplicates (soft masks) are skipped. An image covering at least
  80 % of the page is treated as a *background* (a scan with an OCR text layer, a letterhead):
  it is still a figure zone, but the words over it stay text blocks. Vector drawings are
  figures only when they are found as a grid of empty cells (charts), see above.
* **Text blocks**: the remaining words (words whose centre lies in a table, or in a
  non-background figure, belong to that zone) are grouped into lines, then lines into blocks
  (:mod:`tasks.pdf.text_blocks`).

Reading order is a recursive XY-cut (:mod:`tasks.pdf.reading_order`): a two-column page reads
down the left column, then the right one, and a full-width heading or table above or below the
columns stays in place.

Ids and indexes are a pure function of the page number, so page-range subtasks never collide
and a document processed whole or in ranges yields the same zones: the n-th zone (1-based) of
page p is ``p{p}-z{n}`` with ``index = (p - 1) * ZONES_PER_PAGE + (n - 1)``. Indexes are
unique and increase in reading order across the document; they are not contiguous.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from pdfplumber.page import Page
from pdfplumber.table import Table

from progress_bridge.events import ZoneInfo

from .geometry import BBox, bbox_of, clip, contains
from .reading_order import reading_order
from .tables import table_verdict
from .text_blocks import blocks_of, lines_of
from .words import Word, page_words

__all__ = [
    "BACKGROUND_AREA_RATIO",
    "ZONES_PER_PAGE",
    "DetectedZone",
    "detect_zones",
    "page_zone_id",
    "zone_index",
]

log = logging.getLogger(__name__)

#: Index stride per page; a page with more zones than this has its text blocks merged.
ZONES_PER_PAGE = 1000
#: An image covering this share of the page is a background, not a figure holding words.
BACKGROUND_AREA_RATIO = 0.8
_MIN_FIGURE_PT = 2.0

ZoneKind = Literal["text", "table", "figure"]


def zone_index(page: int, n: int) -> int:
    """Document-wide reading-order index of the ``n``-th (1-based) zone of ``page``."""
    return (page - 1) * ZONES_PER_PAGE + (n - 1)


def page_zone_id(page: int, n: int) -> str:
    return f"p{page}-z{n}"


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
    bounds = bbox_of(page.bbox)
    page_area = max((bounds[2] - bounds[0]) * (bounds[3] - bounds[1]), 1.0)

    words = page_words(page) if ocr_words is None else ocr_words
    raw: list[DetectedZone] = []
    for table in page.find_tables():
        verdict = table_verdict(table, words)
        box = clip(bbox_of(table.bbox), bounds)
        if verdict == "table":
            raw.append(_zone("table", box, table=table))
        elif verdict == "figure":
            raw.append(_zone("figure", box))

    seen: set[tuple[int, int, int, int]] = set()
    for image in page.images:
        box = clip((image["x0"], image["top"], image["x1"], image["bottom"]), bounds)
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
        holder = next((z for z in holders if contains(z.bbox, cx, cy)), None)
        if holder is None:
            free_words.append(word)
        elif holder.kind == "figure":
            holder.lines.append([word])
    for zone in raw:
        if zone.kind == "figure" and zone.lines:
            zone.lines = [line.words for line in lines_of([w for ln in zone.lines for w in ln])]

    for block in blocks_of(lines_of(free_words)):
        box = (
            min(line.x0 for line in block),
            min(line.top for line in block),
            max(line.x1 for line in block),
            max(line.bottom for line in block),
        )
        lines = [line.words for line in block]
        raw.append(_zone("text", clip(box, bounds), lines=lines, ocr=ocr_words is not None))

    raw = reading_order(_cap(raw))
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


def _zone(kind: ZoneKind, bbox: BBox, **kwargs: Any) -> DetectedZone:
    return DetectedZone(info=_PENDING, kind=kind, bbox=bbox, **kwargs)


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
