"""Exports of a :class:`~tasks.pdf.result.DocumentResult`: JSON, Markdown and CSV.

Pure functions: they take a result and return the file's bytes. ``on_progress`` (optional) is
called with a percent in [0, 100] that never decreases, ending with 100, so the Celery task
can report ``export_progress`` events.

* **JSON**: the whole result (pages, zones with boxes, text, rows, figures), UTF-8.
* **Markdown**: the document's notes (e.g. "repaired") as quotes under the title, then zones in
  reading order under a ``## Page N`` heading each, after that page's notes (e.g. "no text
  layer"); text blocks as paragraphs, tables as GitHub pipe tables (first row as the header),
  figures (with their notes) and failed zones as one placeholder line each.
* **CSV**: every table in one file, one row per table row: ``table_id, page, row, c1 … cN``
  where N is the widest table's column count and shorter rows are padded with empty cells. One
  file (rather than a zip of one file per table) opens directly in a spreadsheet and filters by
  ``table_id``. UTF-8 with a BOM so spreadsheet programs detect the encoding.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass

from progress_bridge.events import ExportFormat

from .result import DocumentResult, ZoneResult

__all__ = [
    "MEDIA_TYPES",
    "SUFFIXES",
    "ExportOutput",
    "ProgressCallback",
    "export_csv",
    "export_document",
    "export_json",
    "export_markdown",
]

ProgressCallback = Callable[[float], None]
#: File name suffix and media type of each format: the export, the stored file and the download
#: all read these.
SUFFIXES = {ExportFormat.JSON: ".json", ExportFormat.MARKDOWN: ".md", ExportFormat.CSV: ".csv"}
MEDIA_TYPES = {
    ExportFormat.JSON: "application/json",
    ExportFormat.MARKDOWN: "text/markdown; charset=utf-8",
    ExportFormat.CSV: "text/csv; charset=utf-8",
}
#: How many zones between two progress callbacks, at most.
_PROGRESS_EVERY = 50


@dataclass(frozen=True)
class ExportOutput:
    data: bytes
    filename: str
    media_type: str


def export_document(
    result: DocumentResult,
    fmt: ExportFormat,
    *,
    on_progress: ProgressCallback | None = None,
) -> ExportOutput:
    """Export in ``fmt``; the filename is derived from the source name (never a path)."""
    stem = _stem(result.source_name)
    if fmt is ExportFormat.JSON:
        data = export_json(result, on_progress=on_progress)
    elif fmt is ExportFormat.MARKDOWN:
        data = export_markdown(result, on_progress=on_progress).encode()
    else:
        data = export_csv(result, on_progress=on_progress).encode("utf-8-sig")
        stem += "-tables"
    return ExportOutput(data, f"{stem}{SUFFIXES[fmt]}", MEDIA_TYPES[fmt])


def export_json(result: DocumentResult, *, on_progress: ProgressCallback | None = None) -> bytes:
    _report(on_progress, 0.0)
    data = json.dumps(result.to_dict(), ensure_ascii=False, indent=1).encode()
    _report(on_progress, 100.0)
    return data


def export_markdown(result: DocumentResult, *, on_progress: ProgressCallback | None = None) -> str:
    out: list[str] = []
    title = result.source_name or "Document"
    out.append(f"# {_escape_inline(title)}\n")
    out += [f"> {_escape_inline(note)}\n" for note in result.notes]
    total = len(result.zones)
    zones_by_page: dict[int, list[ZoneResult]] = {}
    for zone in result.zones:
        zones_by_page.setdefault(zone.page, []).append(zone)
    done = 0
    _report(on_progress, 0.0)
    for page in result.pages:
        out.append(f"## Page {page.number}\n")
        out += [f"> {_escape_inline(note)}\n" for note in page.notes]
        for zone in sorted(zones_by_page.get(page.number, []), key=lambda z: z.index):
            out.append(_markdown_zone(zone))
            done += 1
            if done % _PROGRESS_EVERY == 0:
                _report(on_progress, 100.0 * done / total)
    _report(on_progress, 100.0)
    return "\n".join(out)


def export_csv(result: DocumentResult, *, on_progress: ProgressCallback | None = None) -> str:
    tables = result.tables()
    width = max((len(row) for table in tables for row in table.rows or []), default=0)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["table_id", "page", "row", *(f"c{i}" for i in range(1, width + 1))])
    _report(on_progress, 0.0)
    for done, table in enumerate(tables, start=1):
        for number, row in enumerate(table.rows or [], start=1):
            writer.writerow([table.zone_id, table.page, number, *row, *[""] * (width - len(row))])
        if done % _PROGRESS_EVERY == 0:
            _report(on_progress, 100.0 * done / len(tables))
    _report(on_progress, 100.0)
    return buffer.getvalue()


def _markdown_zone(zone: ZoneResult) -> str:
    if zone.status == "failed":
        return f"> *[{zone.kind} {zone.zone_id} could not be processed: {zone.error}]*\n"
    if zone.kind == "table" and zone.rows:
        return _markdown_table(zone.rows)
    if zone.kind == "figure":
        x0, top, _, _ = zone.bbox
        size = f"{zone.figure.width:.0f} × {zone.figure.height:.0f} pt" if zone.figure else ""
        line = f"*[Figure {zone.zone_id}: {size} at ({x0:.0f}, {top:.0f})]*"
        line += "".join(f" *[{_escape_inline(note)}]*" for note in zone.notes)
        if zone.text:
            line += f" {_escape_inline(' '.join(zone.text.split()))}"
        return line + "\n"
    text = zone.text or ""
    return "\n".join(_escape_inline(line) for line in text.splitlines()) + "\n"


def _markdown_table(rows: list[list[str]]) -> str:
    width = max(len(row) for row in rows)
    padded = [[_escape_cell(c) for c in row] + [""] * (width - len(row)) for row in rows]
    lines = ["| " + " | ".join(padded[0]) + " |", "|" + " --- |" * width]
    lines += ["| " + " | ".join(row) + " |" for row in padded[1:]]
    return "\n".join(lines) + "\n"


def _escape_cell(text: str) -> str:
    return _escape_inline(" ".join(text.split())).replace("|", "\\|")


def _escape_inline(text: str) -> str:
    # Only what would change the structure: a leading "#", ">", "-" or "1." would turn a line
    # into a heading, quote or list item.
    stripped = text.lstrip()
    if stripped[:1] in ("#", ">", "-", "+", "*") or stripped[:2].rstrip(".").isdigit():
        return "\\" + stripped if stripped[:1] in "#>-+*" else stripped
    return text


def _stem(name: str | None) -> str:
    if not name:
        return "document"
    base = name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    stem = base[:-4] if base.lower().endswith(".pdf") else base
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem).strip("._")
    return safe[:100] or "document"


def _report(callback: ProgressCallback | None, percent: float) -> None:
    if callback is not None:
        callback(min(100.0, max(0.0, percent)))
