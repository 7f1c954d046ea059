"""What a user can look at while a job runs: a small image of each page, and the content
extracted from each of its zones, written page by page beside the job's other files.

:func:`tasks.pdf.process_document` tells a :class:`PageObserver` about each page:

1. ``page_opened(doc, page)`` once a page has been laid out and its zones detected, *before* its
   zones are declared to the sink. :class:`PagePreviews` renders the page there, so by the time
   a viewer sees the page declared (``zones_declared``), its image is on disk — or never will be
   (the render failed, or the page is one that could not be parsed: those are never opened).
2. ``page_finished(page, zones)`` after the page's last zone, for every page of the range
   (failed pages too, with their placeholder zone). :class:`PagePreviews` writes the page's zone
   results there, so a zone's full text is served from the page's file once its page is done
   (the ``zone_completed`` event carries only a one-line summary).

Files, in the job's preview directory (``previews/<job id>/`` under the data dir)::

    page-00003.jpg    the page, JPEG, PREVIEW_WIDTH_PX wide (at most PREVIEW_MAX_HEIGHT_PX high)
    page-00003.json   {"page": PageResult, "zones": [ZoneResult, ...]} (see tasks.pdf.result)

Each file is written once (to a temporary name, then renamed): a reader sees the whole file or
none. Page ranges of one document write to the same directory from separate tasks; their pages
never overlap. The cost is measured in ``docs/pdf.md`` ("Page images"): a few milliseconds per
page, against 20–200 ms for the page's analysis.
"""

from __future__ import annotations

import io
import logging
import os
import re
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol

import pypdfium2 as pdfium
from PIL import Image
from pydantic import BaseModel, ConfigDict

from .document import PdfDocument
from .pdfium_reader import PDFIUM_LOCK
from .result import PageResult, ZoneResult

__all__ = [
    "PREVIEW_MAX_BYTES",
    "PREVIEW_MAX_HEIGHT_PX",
    "PREVIEW_MEDIA_TYPE",
    "PREVIEW_WIDTH_PX",
    "PageDetails",
    "PageObserver",
    "PagePreviews",
    "PreviewFiles",
    "encode_preview",
    "preview_scale",
    "zone_page",
]

log = logging.getLogger(__name__)

#: Width of a page image, in pixels: about twice what the page's zone map shows, for sharp
#: pictures on high-density screens, and cheap to render (see docs/pdf.md).
PREVIEW_WIDTH_PX = 320
#: Height cap, in pixels, for very tall pages (a long receipt): bounds memory and bytes.
PREVIEW_MAX_HEIGHT_PX = 3 * PREVIEW_WIDTH_PX
#: Largest image written; a page that does not fit at the lowest quality gets no image.
PREVIEW_MAX_BYTES = 150_000
PREVIEW_MEDIA_TYPE = "image/jpeg"
#: JPEG qualities tried in turn until the image fits in PREVIEW_MAX_BYTES.
_QUALITIES = (70, 40)
#: ``p<page>-z<n>``, as :func:`tasks.pdf.zones.page_zone_id` makes zone ids.
_ZONE_ID = re.compile(r"^p([1-9][0-9]{0,8})-z[0-9]{1,9}$")


class PageDetails(BaseModel):
    """One page's file: the page and its zones' results, in reading order."""

    model_config = ConfigDict(extra="forbid")

    page: PageResult
    zones: list[ZoneResult]

    def zone(self, zone_id: str) -> ZoneResult | None:
        return next((z for z in self.zones if z.zone_id == zone_id), None)


class PageObserver(Protocol):
    """Told about each page by :func:`tasks.pdf.process_document` (order in the module doc).

    It must not raise for problems of its own (a full disk, a page PDFium cannot draw): what it
    raises stops processing, as for a sink.
    """

    def page_opened(self, doc: PdfDocument, page: PageResult) -> None: ...

    def page_finished(self, page: PageResult, zones: Sequence[ZoneResult]) -> None: ...


class PreviewFiles:
    """The file names in one job's preview directory; every name comes from a page number."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def image(self, number: int) -> Path:
        return self.directory / f"page-{_page_number(number):05d}.jpg"

    def details(self, number: int) -> Path:
        return self.directory / f"page-{_page_number(number):05d}.json"

    def read_details(self, number: int) -> PageDetails | None:
        """The page's zones, or ``None`` until its page has finished."""
        try:
            raw = self.details(number).read_bytes()
        except FileNotFoundError:
            return None
        return PageDetails.model_validate_json(raw)

    def write(self, path: Path, data: bytes) -> None:
        """Write atomically: a temporary name in the same directory, then a rename."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def zone_page(zone_id: str) -> int | None:
    """The page a zone id of this application names (``p12-z3`` → 12), else ``None``."""
    match = _ZONE_ID.match(zone_id)
    return int(match.group(1)) if match else None


def preview_scale(width_pt: float, height_pt: float) -> float:
    """Pixels per point for a page of that size: PREVIEW_WIDTH_PX wide, at most
    PREVIEW_MAX_HEIGHT_PX high."""
    return min(PREVIEW_WIDTH_PX / width_pt, PREVIEW_MAX_HEIGHT_PX / height_pt)


def encode_preview(image: Image.Image) -> bytes | None:
    """JPEG bytes of at most PREVIEW_MAX_BYTES, trying lower qualities; ``None`` if none fits."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    for quality in _QUALITIES:
        buffer = io.BytesIO()
        rgb.save(buffer, "JPEG", quality=quality)
        if buffer.tell() <= PREVIEW_MAX_BYTES:
            return buffer.getvalue()
    return None


class PagePreviews:
    """The :class:`PageObserver` of the PDF tasks: writes each page's image and zones.

    Use as a context manager around :func:`tasks.pdf.process_document`: the PDFium document it
    renders from is opened at the first page and closed at the end (opening it again for each
    page would cost more than the render itself on a long document). Rendering never fails the
    page: an error is logged and the page has no image.
    """

    def __init__(self, directory: Path, *, password: str | None = None) -> None:
        self.files = PreviewFiles(directory)
        self._password = password
        self._pdfium: pdfium.PdfDocument | None = None
        self._source: bytes | None = None

    def page_opened(self, doc: PdfDocument, page: PageResult) -> None:
        target = self.files.image(page.number)
        if target.exists():  # a redelivered task: rendered once is enough
            return
        try:
            data = self._render(doc, page)
        except Exception as exc:  # PDFium errors, or a page too complex to draw
            log.warning("page %d: no preview image: %s", page.number, _one_line(exc))
            return
        if data is None:
            log.warning("page %d: no preview image: over %d bytes", page.number, PREVIEW_MAX_BYTES)
            return
        self._write(target, data)

    def page_finished(self, page: PageResult, zones: Sequence[ZoneResult]) -> None:
        details = PageDetails(page=page, zones=list(zones))
        self._write(self.files.details(page.number), details.model_dump_json().encode())

    def _render(self, doc: PdfDocument, page: PageResult) -> bytes | None:
        scale = preview_scale(page.width, page.height)
        # PDFium is process-global and not thread-safe: the lock pdfium_reader.py holds for it.
        with PDFIUM_LOCK:
            if self._pdfium is None or self._source is not doc.data:
                self._close_locked()
                # doc.data is the repaired copy when prepare_layout() repaired the file
                self._pdfium = pdfium.PdfDocument(doc.data, password=self._password)
                self._source = doc.data
            pdf_page = self._pdfium[page.number - 1]
            try:
                image = pdf_page.render(scale=scale).to_pil()
            finally:
                pdf_page.close()
        return encode_preview(image)

    def _write(self, path: Path, data: bytes) -> None:
        try:
            self.files.write(path, data)
        except OSError as exc:  # a full disk must not fail the job: the preview is extra
            log.warning("could not write %s: %s", path.name, _one_line(exc))

    def _close_locked(self) -> None:
        if self._pdfium is not None:
            self._pdfium.close()
        self._pdfium = self._source = None

    def close(self) -> None:
        with PDFIUM_LOCK:
            self._close_locked()

    def __enter__(self) -> PagePreviews:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _page_number(number: int) -> int:
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ValueError(f"page number {number!r} is not a page number")
    return number


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:200]
