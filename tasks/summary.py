"""The one line a user reads when a PDF job completes, and the result Celery stores with it."""

from __future__ import annotations

from typing import Any

from .pdf import REPAIRED, DocumentResult

__all__ = ["summary_of"]


def _pages_text(count: int) -> str:
    return "1 page" if count == 1 else f"{count} pages"


def summary_of(result: DocumentResult, name: str | None) -> dict[str, Any]:
    """The job's result as Celery stores it; ``summary`` is the one line users see
    (``processing_completed``): sizes, then what a reader should know before trusting it."""
    failed = len(result.failed_zones)
    pages = result.last_page - result.first_page + 1
    text = f"{name or 'document'}: {pages} pages, {len(result.zones)} zones"
    if failed:
        text += f" ({failed} failed)"
    ocr = sum(page.text_source == "ocr" for page in result.pages)
    no_text = sum(page.text_source == "none" for page in result.pages)
    if ocr:
        text += f"; {_pages_text(ocr)} read by OCR"
    if no_text:
        text += f"; {_pages_text(no_text)} without a text layer, not read"
    if any(REPAIRED in note for note in result.notes):
        text += f"; the file was damaged and {REPAIRED}"
    elif result.notes:
        text += "; see the notes"
    return {
        "summary": text,
        "pages": pages,
        "zones": len(result.zones),
        "failed_zones": failed,
        "tables": len(result.tables()),
        "pages_ocr": ocr,
        "pages_without_text": no_text,
        "notes": list(result.notes),
    }
