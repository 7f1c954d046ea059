"""Process one detected zone: text to text, a table to rows, a figure to its size and text.

Each extractor returns an :class:`Extraction`: the result fields of a
:class:`~tasks.pdf.result.ZoneResult`, the tool name reported in ``zone_completed``, a
confidence in [0, 1] and a one-line summary. Confidence heuristics (documented per function)
measure how usable the output is, not how sure a model is: there is no model here.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .ocr import OCR_TOOL
from .result import FigureInfo
from .words import CID_PATTERN, count_unmapped, text_settings
from .zones import DetectedZone

__all__ = [
    "FIGURE_TOOL",
    "PAGE_TOOL",
    "TABLE_TOOL",
    "TEXT_TOOL",
    "Extraction",
    "extract_figure",
    "extract_table",
    "extract_text",
    "extract_zone",
    "text_confidence",
    "tool_for",
    "zone_tool",
]

TEXT_TOOL = "pdfplumber.text"
TABLE_TOOL = "pdfplumber.table"
FIGURE_TOOL = "pdfplumber.figure"
#: Reported for the placeholder zone of a page that could not be parsed.
PAGE_TOOL = "pdfplumber.page"
_SUMMARY_CHARS = 120


@dataclass
class Extraction:
    tool: str
    confidence: float
    summary: str
    text: str | None = None
    rows: list[list[str]] | None = None
    figure: FigureInfo | None = None
    duration_ms: int = 0
    #: Remarks on what was lost or how the text was obtained, for the result and the summary.
    notes: list[str] = field(default_factory=list)


def tool_for(kind: str) -> str:
    return {"text": TEXT_TOOL, "table": TABLE_TOOL, "figure": FIGURE_TOOL}.get(kind, PAGE_TOOL)


def zone_tool(zone: DetectedZone) -> str:
    """The tool that will process ``zone`` (reported in ``zone_processing``)."""
    return OCR_TOOL if zone.ocr else tool_for(zone.kind)


def extract_zone(zone: DetectedZone) -> Extraction:
    """Run the extractor for the zone's kind and time it.

    Raises:
        Exception: whatever pdfminer raises on content it cannot read; the caller reports the
            zone as failed.
    """
    extractors: dict[str, Callable[[DetectedZone], Extraction]] = {
        "text": extract_text,
        "table": extract_table,
        "figure": extract_figure,
    }
    started = time.perf_counter()
    extraction = extractors[zone.kind](zone)
    if zone.notes:
        extraction.summary = _shorten(_noted(extraction.summary, zone.notes))
        extraction.notes = [*zone.notes, *extraction.notes]
    extraction.duration_ms = round((time.perf_counter() - started) * 1000)
    return extraction


def extract_text(zone: DetectedZone) -> Extraction:
    """Lines of the block joined by newlines, words by single spaces.

    Confidence: :func:`text_confidence` of the text, counting dropped glyphs as unreadable; for
    words read by OCR, the mean of Tesseract's word confidences (tool :data:`OCR_TOOL`).
    """
    text = _join_lines(zone.lines)
    if zone.ocr:
        # Tesseract's own word confidences: how sure it is of what it read
        scores = [float(w.get("ocr_confidence", 0.0)) for line in zone.lines for w in line]
        confidence = round(sum(scores) / len(scores), 3) if scores else 0.0
        return Extraction(OCR_TOOL, confidence, _shorten(text), text=text)
    unmapped = count_unmapped(w for line in zone.lines for w in line)
    notes = [unmapped_note(unmapped)] if unmapped else []
    summary = _shorten(_noted(text, notes))
    return Extraction(
        TEXT_TOOL, text_confidence(text, unmapped=unmapped), summary, text=text, notes=notes
    )


def unmapped_note(count: int) -> str:
    glyphs = "glyph" if count == 1 else "glyphs"
    return f"{count} {glyphs} without a Unicode mapping dropped"


def text_confidence(text: str, *, unmapped: int = 0) -> float:
    """Share of the non-space characters that are readable.

    Unreadable: glyphs without a Unicode mapping (``unmapped`` of them were already dropped;
    pdfminer's ``(cid:N)`` placeholders still in ``text`` count too), U+FFFD, control
    characters and private-use code points (symbol fonts). Empty text scores 0.
    """
    cid_chars = 0
    start = text.find("(cid:")
    while start >= 0:
        end = text.find(")", start)
        if end < 0:
            break
        cid_chars += end - start + 1
        start = text.find("(cid:", end)
    chars = [c for c in text if not c.isspace()]
    if not chars and not unmapped:
        return 0.0
    bad = unmapped + cid_chars
    bad += sum(1 for c in chars if c == "\ufffd" or unicodedata.category(c) in ("Cc", "Co", "Cs"))
    return round(max(0.0, 1.0 - bad / (len(chars) + unmapped)), 3)


def extract_table(zone: DetectedZone) -> Extraction:
    """Rows of cell texts (``None`` cells, e.g. spanned ones, become ``""``).

    Confidence: the fill ratio (non-empty cells / cells), halved when the table has a single
    row or a single column (a frame around text is often mistaken for one), times the
    :func:`text_confidence` of the cell texts.
    """
    assert zone.table is not None
    raw = zone.table.extract(**text_settings())
    unmapped = sum(len(CID_PATTERN.findall(cell or "")) for row in raw for cell in row)
    rows = [[_clean_cell(cell) for cell in row] for row in raw]
    cells = [cell for row in rows for cell in row]
    filled = [cell for cell in cells if cell]
    confidence = len(filled) / len(cells) if cells else 0.0
    if len(rows) < 2 or max((len(r) for r in rows), default=0) < 2:
        confidence *= 0.5
    if filled or unmapped:
        confidence *= text_confidence(" ".join(filled), unmapped=unmapped)
    columns = max((len(r) for r in rows), default=0)
    header = " | ".join(rows[0]) if rows else ""
    notes = [unmapped_note(unmapped)] if unmapped else []
    summary = _shorten(_noted(f"{len(rows)}×{columns} table: {header}", notes))
    return Extraction(TABLE_TOOL, round(confidence, 3), summary, rows=rows, notes=notes)


def extract_figure(zone: DetectedZone) -> Extraction:
    """Size on the page, pixel size of the image, and the words drawn over it (if any).

    Confidence: the share of the image that lies on the page (images hanging off the page edge
    are clipped, and what is off the page is lost).
    """
    x0, top, x1, bottom = zone.bbox
    width, height = x1 - x0, bottom - top
    image = zone.image or {}
    pixel_width, pixel_height = _pixel_size(image)
    full_width = float(image.get("x1", x1)) - float(image.get("x0", x0))
    full_height = float(image.get("bottom", bottom)) - float(image.get("top", top))
    full_area = full_width * full_height
    confidence = min(1.0, (width * height) / full_area) if full_area > 0 else 0.0
    text = _join_lines(zone.lines) or None
    unmapped = count_unmapped(w for line in zone.lines for w in line)
    notes = [unmapped_note(unmapped)] if unmapped else []
    pixels = f", {pixel_width}×{pixel_height} px" if pixel_width else ""
    what = "image" if zone.image else "drawing"
    summary = f"{what} {width:.0f}×{height:.0f} pt at ({x0:.0f}, {top:.0f}){pixels}"
    if text:
        summary += f": {text}"
    return Extraction(
        FIGURE_TOOL,
        round(confidence, 3),
        _shorten(_noted(summary, notes)),
        notes=notes,
        text=text,
        figure=FigureInfo(
            width=round(width, 2),
            height=round(height, 2),
            pixel_width=pixel_width,
            pixel_height=pixel_height,
        ),
    )


def _pixel_size(image: dict[str, Any]) -> tuple[int | None, int | None]:
    size = image.get("srcsize")
    try:
        w, h = (int(v) for v in size)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None, None
    return w, h


def _join_lines(lines: list[list[dict[str, Any]]]) -> str:
    # a word made only of dropped glyphs has no text: skip it, not a double space
    joined = (" ".join(str(w["text"]) for w in line if w["text"]) for line in lines)
    return "\n".join(line for line in joined if line)


def _clean_cell(cell: str | None) -> str:
    return "" if cell is None else " ".join(CID_PATTERN.sub("", cell).split())


def _noted(text: str, notes: list[str]) -> str:
    """The summary with its notes first, so a viewer sees them before the cut-off."""
    return "".join(f"[{note}] " for note in notes) + text


def _shorten(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _SUMMARY_CHARS else flat[: _SUMMARY_CHARS - 1] + "…"
