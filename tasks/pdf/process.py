"""The driver: validate, then detect and process zones page by page, reporting to a sink.

Progress over the requested range: each page is worth ``100 / pages`` percent, of which the
first quarter is reached when its zones are detected and the rest is shared equally by its zones,
so the percent never decreases and reaches 100 after the last zone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pdfplumber.page import Page

from progress_bridge.events import PageInfo, ZoneInfo

from .content import DEFAULT_MAX_PAGE_CONTENT_BYTES
from .document import DEFAULT_MAX_PAGES, PdfDocument, PdfSource, open_document
from .errors import RECURSION_REASON, CorruptPdf, ProcessingCancelled, is_recursion
from .extract import PAGE_TOOL, extract_zone, zone_tool
from .ocr import OCR_DPI, TesseractOcr
from .preview import PageObserver
from .result import DocumentResult, PageResult, ZoneResult
from .sink import ProgressSink
from .zones import DetectedZone, detect_zones, page_zone_id, zone_index

__all__ = [
    "DEFAULT_OCR",
    "DETECTION_SHARE",
    "NO_TEXT_LAYER",
    "plan_page_ranges",
    "process_document",
]

log = logging.getLogger(__name__)
#: The OCR engine process_document uses unless told otherwise (its version check is cached).
DEFAULT_OCR = TesseractOcr()
#: Share of a page's progress reached once its zones are detected.
DETECTION_SHARE = 0.25
_ERROR_CHARS = 500


def process_document(
    source: PdfSource,
    sink: ProgressSink,
    *,
    first_page: int = 1,
    last_page: int | None = None,
    max_pages: int = DEFAULT_MAX_PAGES,
    password: str | None = None,
    should_stop: Callable[[], bool] | None = None,
    ocr: TesseractOcr | None = DEFAULT_OCR,
    max_page_content_bytes: int | None = DEFAULT_MAX_PAGE_CONTENT_BYTES,
    observer: PageObserver | None = None,
) -> DocumentResult:
    """Process pages ``first_page..last_page`` (1-based, inclusive) of a PDF.

    The whole document is validated first, so a rejected file reports nothing to ``sink``.
    Then, for each page, its zones are declared, then processed one by one (see
    :mod:`tasks.pdf.sink` for the order of calls). A page that cannot be parsed gets one
    placeholder zone (``kind="page"``, covering the page) that is declared and reported
    ``failed`` with the reason; a zone whose extraction raises is reported ``failed``; in both
    cases the other pages and zones are still processed. Zone ids and indexes depend only on
    the page number (:mod:`tasks.pdf.zones`), so page ranges of one document can run as
    separate tasks and their results merge with :func:`tasks.pdf.result.merge_results`.

    Args:
        source: a path or the PDF's bytes.
        sink: receives progress; see :class:`tasks.pdf.sink.ProgressSink`.
        first_page: first page to process.
        last_page: last page to process; ``None`` means the document's last page.
        max_pages: refuse documents with more pages than this (the whole document counts).
        password: for encrypted documents.
        should_stop: polled before each page and zone; when it returns true, processing stops
            with :class:`ProcessingCancelled` (cooperative cancellation, for pools where a
            revoke cannot terminate the running task).
        ocr: reads pages that have images but no text layer (scans). When it is ``None`` or
            not installed, such a page is marked instead: ``text_source="none"`` and a note on
            the page, and its zones' summaries start with ``[no text layer …]``.
        max_page_content_bytes: refuse the document when a page of the range holds more
            decompressed drawing instructions than this (:mod:`tasks.pdf.content`); ``None``
            does not measure.
        observer: told when each page is opened (before its zones are declared) and finished
            (after its last zone); see :mod:`tasks.pdf.preview`.

    Raises:
        PdfRejected: a subclass saying why the document cannot be processed. Raised before
            anything is reported, except :class:`CorruptPdf` when *every* page of the range
            fails to parse: then the pages' failed zones have been reported first.
            :class:`ContentTooLarge` is raised when the range reaches such a page, after
            the pages before it were reported.
        ProcessingCancelled: ``should_stop`` returned true.
    """
    started = time.perf_counter()
    with open_document(source, password=password, max_pages=max_pages) as doc:
        first, last = doc.check_range(first_page, last_page)
        doc.prepare_layout(last)
        total = last - first + 1
        result = DocumentResult(
            source_name=doc.name,
            page_count=doc.page_count,
            first_page=first,
            last_page=last,
            tools=_tool_versions(),
            notes=list(doc.notes),
        )
        progress = _Progress(sink)
        progress.report(0.0, f"Opened {doc.page_count}-page document")
        pages = doc.iter_pages(first, last, max_content_bytes=max_page_content_bytes)
        for done, slot in enumerate(pages):
            _check_stop(should_stop)
            base = 100.0 * done / total
            share = 100.0 / total
            label = f"page {slot.number}/{doc.page_count}"
            progress.report(base, f"Detecting zones on {label}")
            info = slot.info
            page_result = PageResult(number=slot.number, width=info.width, height=info.height)
            result.pages.append(page_result)
            first_zone = len(result.zones)
            zones: list[DetectedZone] = []
            error = slot.error
            if slot.page is not None:
                try:
                    ocr_words = None
                    if _needs_ocr(slot.page):
                        progress.report(base, f"Reading {label} with OCR")
                        ocr_words = _read_page(doc, slot.number, ocr, page_result, result)
                    zones = detect_zones(slot.page, slot.number, ocr_words=ocr_words)
                except Exception as exc:
                    error = f"Page {slot.number} cannot be parsed ({_describe(exc)})."
                if page_result.text_source == "none":
                    for zone in zones:
                        zone.notes.append(NO_TEXT_LAYER)
            if error is not None:
                page_result.status, page_result.error = "failed", error
                _report_failed_page(sink, result, slot.number, (info.width, info.height), error)
                if observer is not None:
                    observer.page_finished(page_result, result.zones[first_zone:])
                progress.report(base + share, f"Could not parse {label}")
                if slot.page is not None:
                    slot.page.close()
                continue

            if observer is not None:
                observer.page_opened(doc, page_result)
            sink.declare_zones([z.info for z in zones], [info])
            first_op = _operation(zones[0]) if zones else f"Found no zones on {label}"
            progress.report(base + DETECTION_SHARE * share, first_op)
            zone_share = (1 - DETECTION_SHARE) * share / max(len(zones), 1)
            for n, zone in enumerate(zones, start=1):
                _check_stop(should_stop)
                tool = zone_tool(zone)
                sink.zone_processing(zone.zone_id, tool=tool)
                zone_started = time.perf_counter()
                try:
                    ex = extract_zone(zone)
                except Exception as exc:
                    message = _describe(exc)
                    duration = round((time.perf_counter() - zone_started) * 1000)
                    sink.zone_completed(
                        zone.zone_id,
                        tool=tool,
                        duration_ms=duration,
                        status="failed",
                        error=message,
                    )
                    result.zones.append(_zone_result(zone.info, tool, duration, error=message))
                else:
                    sink.zone_completed(
                        zone.zone_id,
                        tool=ex.tool,
                        confidence=ex.confidence,
                        duration_ms=ex.duration_ms,
                        summary=ex.summary,
                    )
                    result.zones.append(
                        ZoneResult(
                            zone_id=zone.zone_id,
                            index=zone.info.index,
                            page=slot.number,
                            kind=zone.kind,
                            bbox=zone.info.bbox or zone.bbox,
                            tool=ex.tool,
                            confidence=ex.confidence,
                            duration_ms=ex.duration_ms,
                            text=ex.text,
                            rows=ex.rows,
                            figure=ex.figure,
                            notes=ex.notes,
                        )
                    )
                next_op = _operation(zones[n]) if n < len(zones) else f"Finished {label}"
                progress.report(base + DETECTION_SHARE * share + n * zone_share, next_op)
            if observer is not None:
                observer.page_finished(page_result, result.zones[first_zone:])
            if not zones:
                progress.report(base + share, f"Finished {label}")
            if slot.page is not None:
                slot.page.close()
        if all(page.status == "failed" for page in result.pages):
            # Nothing usable came out: a failed job with the reason serves the user better than
            # a "completed" one holding only failed zones.
            count = len(result.pages)
            what = "its page" if count == 1 else f"none of its {count} pages"
            verb = "could not be laid out" if count == 1 else "could be laid out"
            raise CorruptPdf(
                f"The PDF is damaged: {what} {verb}, although the file opens. Open it in a PDF "
                "viewer and save or print it to a new PDF, then upload that file."
            )
        result.duration_ms = round((time.perf_counter() - started) * 1000)
        return result


#: Marks the zones of a page without a text layer that was not read by OCR.
NO_TEXT_LAYER = "no text layer: a scanned page, not read (OCR unavailable)"


def _needs_ocr(page: Page) -> bool:
    """A page drawn from images with no characters at all: a scan without a text layer."""
    return not page.chars and bool(page.images)


def _read_page(
    doc: PdfDocument,
    number: int,
    ocr: TesseractOcr | None,
    page_result: PageResult,
    result: DocumentResult,
) -> list[dict[str, Any]] | None:
    """OCR words of page ``number``, or ``None`` (the page is then marked, not failed)."""
    if ocr is None or not ocr.available():
        page_result.text_source = "none"
        page_result.notes.append(
            "The page has no text layer (it is a scan) and OCR is not available, so it has no "
            "text: install Tesseract (Debian's tesseract-ocr) and process the file again."
        )
        return None
    try:
        words = ocr.read(doc.render_page(number, OCR_DPI), OCR_DPI / 72)
    except RuntimeError as exc:  # pytesseract's TesseractError and timeouts
        log.warning("page %d: OCR failed: %s", number, " ".join(str(exc).split())[:200])
        page_result.text_source = "none"
        page_result.notes.append(
            "The page has no text layer (it is a scan) and OCR failed on it, so it has no text."
        )
        return None
    page_result.text_source = "ocr"
    scores = [float(w["ocr_confidence"]) for w in words]
    mean = f"{sum(scores) / len(scores):.2f}" if scores else "n/a"
    page_result.notes.append(
        f"The page has no text layer (it is a scan); its text was read by OCR "
        f"(Tesseract {ocr.version()}), mean word confidence {mean}."
    )
    result.tools.setdefault("tesseract", ocr.version() or "unknown")
    return words


class _Progress:
    """Rounds the percent to 0.01 and keeps it from going backwards through float error."""

    def __init__(self, sink: ProgressSink) -> None:
        self._sink = sink
        self._last = 0.0

    def report(self, percent: float, operation: str) -> None:
        self._last = max(self._last, min(round(percent, 2), 100.0))
        self._sink.set_progress(self._last, operation=operation)


def plan_page_ranges(page_count: int, pages_per_task: int) -> list[tuple[int, int]]:
    """Split ``1..page_count`` into consecutive inclusive ranges of at most ``pages_per_task``.

    >>> plan_page_ranges(5, 2)
    [(1, 2), (3, 4), (5, 5)]
    """
    if page_count < 1 or pages_per_task < 1:
        raise ValueError("page_count and pages_per_task must be at least 1")
    return [
        (start, min(start + pages_per_task - 1, page_count))
        for start in range(1, page_count + 1, pages_per_task)
    ]


def _operation(zone: DetectedZone) -> str:
    verb = {"text": "Extracting text", "table": "Extracting table", "figure": "Describing figure"}
    return f"{verb[zone.kind]} {zone.zone_id}"


def _report_failed_page(
    sink: ProgressSink,
    result: DocumentResult,
    number: int,
    size: tuple[float, float],
    error: str,
) -> None:
    info = ZoneInfo(
        zone_id=page_zone_id(number, 1),
        index=zone_index(number, 1),
        page=number,
        kind="page",
        bbox=(0.0, 0.0, round(size[0], 2), round(size[1], 2)),
    )
    sink.declare_zones([info], [PageInfo(number=number, width=size[0], height=size[1])])
    sink.zone_processing(info.zone_id, tool=PAGE_TOOL)
    sink.zone_completed(info.zone_id, tool=PAGE_TOOL, duration_ms=0, status="failed", error=error)
    result.zones.append(_zone_result(info, PAGE_TOOL, 0, error=error))


def _zone_result(info: ZoneInfo, tool: str, duration_ms: int, *, error: str) -> ZoneResult:
    assert info.page is not None and info.kind is not None and info.bbox is not None
    return ZoneResult(
        zone_id=info.zone_id,
        index=info.index,
        page=info.page,
        kind=info.kind,
        bbox=info.bbox,
        status="failed",
        tool=tool,
        duration_ms=duration_ms,
        error=error,
    )


def _check_stop(should_stop: Callable[[], bool] | None) -> None:
    if should_stop is not None and should_stop():
        raise ProcessingCancelled()


def _describe(exc: BaseException) -> str:
    if is_recursion(exc):
        return f"the page cannot be read: {RECURSION_REASON}"
    text = " ".join(str(exc).split())
    reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return reason[:_ERROR_CHARS]


def _tool_versions() -> dict[str, str]:
    versions = {}
    for package in ("pdfplumber", "pdfminer.six", "pypdfium2", "pikepdf"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:  # pragma: no cover - installed from a checkout
            versions[package] = "unknown"
    return versions
