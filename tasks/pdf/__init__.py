"""PDF processing as plain functions: open and validate, detect zones, extract, export.

The Celery tasks in ``tasks/`` wrap :func:`process_document` and the exporters; nothing here
imports Celery or Redis. Progress goes to a :class:`ProgressSink`.
"""

from .content import DEFAULT_MAX_PAGE_CONTENT_BYTES, page_content_size
from .document import (
    DEFAULT_MAX_PAGES,
    REPAIRED,
    PdfDocument,
    PdfSource,
    count_pages,
    open_document,
)
from .errors import (
    ContentTooLarge,
    CorruptPdf,
    EmptyPdf,
    EncryptedPdf,
    InvalidPageRange,
    LimitExceeded,
    MemoryLimitReached,
    NotAPdf,
    PdfRejected,
    ProcessingCancelled,
    TimeLimitReached,
    TooManyPages,
    TruncatedPdf,
)
from .export import (
    ExportOutput,
    export_csv,
    export_document,
    export_json,
    export_markdown,
    unwrap,
)
from .ocr import OCR_TOOL, TesseractOcr
from .process import NO_TEXT_LAYER, plan_page_ranges, process_document
from .result import DocumentResult, FigureInfo, PageResult, ZoneResult, merge_results
from .sink import NullSink, ProgressSink, RecordingSink

__all__ = [
    "DEFAULT_MAX_PAGES",
    "DEFAULT_MAX_PAGE_CONTENT_BYTES",
    "NO_TEXT_LAYER",
    "OCR_TOOL",
    "REPAIRED",
    "ContentTooLarge",
    "CorruptPdf",
    "DocumentResult",
    "EmptyPdf",
    "EncryptedPdf",
    "ExportOutput",
    "FigureInfo",
    "InvalidPageRange",
    "LimitExceeded",
    "MemoryLimitReached",
    "NotAPdf",
    "NullSink",
    "PageResult",
    "PdfDocument",
    "PdfRejected",
    "PdfSource",
    "ProcessingCancelled",
    "ProgressSink",
    "RecordingSink",
    "TesseractOcr",
    "TimeLimitReached",
    "TooManyPages",
    "TruncatedPdf",
    "ZoneResult",
    "count_pages",
    "export_csv",
    "export_document",
    "export_json",
    "export_markdown",
    "merge_results",
    "open_document",
    "page_content_size",
    "plan_page_ranges",
    "process_document",
    "unwrap",
]
