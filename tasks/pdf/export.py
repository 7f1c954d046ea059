"""Exports of a :class:`~tasks.pdf.result.DocumentResult`: JSON, Markdown and CSV.

Pure functions: they take a result and return the file's bytes. ``on_progress`` (optional) is
called with a percent in [0, 100] that never decreases, ending with 100, so the Celery task
can report ``export_progress`` events.

* **JSON**: the whole result (pages, zones with boxes, text, rows, figures), UTF-8.
* **Markdown**: the document's notes (e.g. "repaired") as quotes under the title, then zones in
  reading order under a ``## Page N`` heading each, after that page's notes (e.g. "no text
  layer"); each text block as one paragraph (its lines unwrapped, see :func:`unwrap`), tables as
  GitHub pipe tables (first row as the header), figures (with their notes) and failed zones as
  one placeholder line each.
* **CSV**: one row per zone, so every document has one (a scan, a page of figures), and after
  each table zone's row, one row per table row. Columns: ``page, zone_id, kind, row, status, x0,
  top, x1, bottom, tool, confidence, text, c1 … cN``: ``kind`` is the zone's (``text``,
  ``table``, ``figure``, ``page``) or ``table_row`` for a table's row, whose ``row`` is its
  1-based number and whose cells fill ``c1 … cN`` (N is the widest table's column count; shorter
  rows end with empty cells). ``text`` is the zone's text, a figure's notes or a failed zone's
  error. One file (rather than a zip of one file per table) opens directly in a spreadsheet;
  filter ``kind`` for ``table_row`` and ``zone_id`` for one table. UTF-8 with a BOM so
  spreadsheet programs detect the encoding.
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
    "unwrap",
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


CSV_COLUMNS = [
    "page", "zone_id", "kind", "row", "status", "x0", "top", "x1", "bottom", "tool", "confidence",
    "text",
]  # fmt: skip


def export_csv(result: DocumentResult, *, on_progress: ProgressCallback | None = None) -> str:
    width = max((len(row) for table in result.tables() for row in table.rows or []), default=0)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([*CSV_COLUMNS, *(f"c{i}" for i in range(1, width + 1))])
    _report(on_progress, 0.0)
    for done, zone in enumerate(result.zones, start=1):
        x0, top, x1, bottom = (f"{v:.1f}" for v in zone.bbox)
        confidence = "" if zone.confidence is None else f"{zone.confidence:.2f}"
        box = (zone.page, zone.zone_id, zone.kind, "", zone.status, x0, top, x1, bottom)
        writer.writerow([*box, zone.tool, confidence, _csv_text(zone)])
        for number, row in enumerate(zone.rows or [], start=1):
            cells = [*row, *[""] * (width - len(row))]
            writer.writerow([zone.page, zone.zone_id, "table_row", number, *[""] * 8, *cells])
        if done % _PROGRESS_EVERY == 0:
            _report(on_progress, 100.0 * done / len(result.zones))
    _report(on_progress, 100.0)
    return buffer.getvalue()


def _csv_text(zone: ZoneResult) -> str:
    if zone.status == "failed":
        return zone.error or ""
    if zone.kind == "figure":
        return " ".join([*zone.notes, unwrap(zone.text or "")]).strip()
    return zone.text or ""


def unwrap(text: str) -> str:
    """A text block's lines as one paragraph: the PDF's line breaks are layout, not meaning.

    A line ending in a hyphen between two lower-case letters ("ex-" + "isting") joins the next
    without the hyphen, as a line-end hyphenation does; after any other letter or digit the
    hyphen stays and nothing is added ("MUC-" + "6"); any other line joins with one space.
    Text a reader would want split stays split: one zone is one block on the page.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    out = ""
    for line in lines:
        if out.endswith("-") and out[-2:-1].islower() and line[:1].islower():
            out = out[:-1] + line
        elif out.endswith("-") and out[-2:-1].isalnum():
            out += line
        else:
            out = f"{out} {line}" if out else line
    return out


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
    return _escape_inline(unwrap(zone.text or "")) + "\n"


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
