"""The result of processing a document (or a page range of one): JSON-serialisable models.

Shape (``DocumentResult.to_dict()``)::

    {"source_name": "report.pdf" | null, "page_count": 12, "first_page": 1, "last_page": 12,
     "duration_ms": 840, "tools": {"pdfplumber": "0.11.10", "pypdfium2": "5.15.2"},
     "notes": ["The file was damaged …; it was repaired …"],
     "pages":  [{"number": 1, "width": 595.3, "height": 841.9, "status": "ok", "error": null,
                 "text_source": "layer" | "ocr" | "none", "notes": []}],
     "zones":  [{"zone_id": "p1-z1", "index": 0, "page": 1, "kind": "text" | "table" | "figure"
                 | "page", "bbox": [x0, top, x1, bottom], "status": "completed" | "failed",
                 "tool": "pdfplumber.text" | "tesseract.ocr" | …, "confidence": 0.98,
                 "duration_ms": 3, "error": null, "text": "…" | null,
                 "rows": [["a", "b"]] | null,
                 "figure": {"width": 200.0, "height": 150.0, "pixel_width": 640,
                            "pixel_height": 480} | null, "notes": []}]}

Zones are in reading order (``index`` increases). ``kind="page"`` is the placeholder zone of a
page that could not be parsed: it covers the page and is ``failed``. Results of page ranges of the
same document merge with :func:`merge_results` (the Celery chord callback does that).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DocumentResult", "FigureInfo", "PageResult", "ZoneResult", "merge_results"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FigureInfo(_Model):
    """Size of a figure on the page (points) and of its image (pixels, when known)."""

    width: float
    height: float
    pixel_width: int | None = None
    pixel_height: int | None = None


class ZoneResult(_Model):
    zone_id: str
    index: int = Field(ge=0)
    page: int = Field(ge=1)
    kind: str
    bbox: tuple[float, float, float, float]
    status: Literal["completed", "failed"] = "completed"
    tool: str
    confidence: float | None = Field(default=None, ge=0, le=1)
    duration_ms: int = Field(default=0, ge=0)
    error: str | None = None
    text: str | None = None
    rows: list[list[str]] | None = None
    figure: FigureInfo | None = None
    #: What a reader should know about this zone's output, e.g. "3 glyphs without a Unicode
    #: mapping dropped", "text read by OCR".
    notes: list[str] = Field(default_factory=list)


class PageResult(_Model):
    number: int = Field(ge=1)
    width: float
    height: float
    status: Literal["ok", "failed"] = "ok"
    error: str | None = None
    #: Where the page's text came from: its text layer, OCR of its image, or nowhere (a scan
    #: without OCR available: the page needs OCR to be searchable).
    text_source: Literal["layer", "ocr", "none"] = "layer"
    notes: list[str] = Field(default_factory=list)


class DocumentResult(_Model):
    source_name: str | None = None
    page_count: int = Field(ge=1, description="Pages in the whole document, not just the range.")
    first_page: int = Field(ge=1)
    last_page: int = Field(ge=1)
    duration_ms: int = Field(default=0, ge=0)
    tools: dict[str, str] = Field(default_factory=dict)
    pages: list[PageResult] = Field(default_factory=list)
    zones: list[ZoneResult] = Field(default_factory=list)
    #: Document-level remarks, e.g. that a damaged file was repaired before processing.
    notes: list[str] = Field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (tuples become lists), e.g. for Celery's JSON serializer."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DocumentResult:
        return cls.model_validate(data)

    @property
    def failed_zones(self) -> list[ZoneResult]:
        return [zone for zone in self.zones if zone.status == "failed"]

    def tables(self) -> list[ZoneResult]:
        return [zone for zone in self.zones if zone.kind == "table" and zone.rows is not None]


def merge_results(parts: Sequence[DocumentResult]) -> DocumentResult:
    """Join the results of page ranges of one document into one, in page order.

    Raises:
        ValueError: no parts, parts of different documents, or overlapping page ranges.
    """
    if not parts:
        raise ValueError("merge_results needs at least one part")
    ordered = sorted(parts, key=lambda part: part.first_page)
    if len({part.page_count for part in ordered}) != 1:
        raise ValueError("the parts come from documents with different page counts")
    for before, after in itertools.pairwise(ordered):
        if after.first_page <= before.last_page:
            raise ValueError(
                f"page ranges overlap: {before.first_page}-{before.last_page} and "
                f"{after.first_page}-{after.last_page}"
            )
    first = ordered[0]
    return DocumentResult(
        source_name=first.source_name,
        page_count=first.page_count,
        first_page=first.first_page,
        last_page=ordered[-1].last_page,
        duration_ms=sum(part.duration_ms for part in ordered),
        tools=first.tools,
        pages=[page for part in ordered for page in part.pages],
        zones=[zone for part in ordered for zone in part.zones],
        # every part repaired the same file: say it once
        notes=list(dict.fromkeys(note for part in ordered for note in part.notes)),
    )
