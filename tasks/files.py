"""Where a job's files live, under names generated from ids (never from messages' paths).

Shared by the web app (uploads, downloads) and the workers (results, parts, previews, exports):
``uploads/<job>.pdf``, ``results/<job>.json``, ``results/<job>/part-<first>-<last>.json``,
``previews/<job>/page-<n>.{jpg,json}`` and ``exports/<export>.<ext>``. Writes are atomic
(a temporary file, then a rename), so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

from progress_bridge.events import ExportFormat

from .pdf import PdfRejected
from .pdf.export import SUFFIXES

__all__ = ["JobFiles", "UploadMissing", "read_upload", "store_upload", "write_json"]

#: Ids that may become file names: no dots, slashes or colons, so never a path.
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


class UploadMissing(PdfRejected):
    """The job's upload is gone (expired by the retention rule, or never stored)."""

    code = "upload_missing"


class JobFiles:
    """Where a job's files live under ``data_dir``; every name is generated from an id.

    Raises:
        ValueError: (from every method) an id that is not a safe file name.
    """

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir)
        self.uploads = self.root / "uploads"
        self.results = self.root / "results"
        self.exports = self.root / "exports"
        self.previews = self.root / "previews"

    @staticmethod
    def check_id(value: str, what: str = "id") -> str:
        if not isinstance(value, str) or not _SAFE_ID.match(value):
            raise ValueError(f"{what} {value!r} is not a valid id")
        return value

    def upload(self, job_id: str) -> Path:
        return self.uploads / f"{self.check_id(job_id, 'job id')}.pdf"

    def result(self, job_id: str) -> Path:
        return self.results / f"{self.check_id(job_id, 'job id')}.json"

    def parts_dir(self, job_id: str) -> Path:
        return self.results / self.check_id(job_id, "job id")

    def part(self, job_id: str, first_page: int, last_page: int) -> Path:
        return self.parts_dir(job_id) / f"part-{int(first_page):05d}-{int(last_page):05d}.json"

    def previews_dir(self, job_id: str) -> Path:
        return self.previews / self.check_id(job_id, "job id")

    def export(self, export_id: str, fmt: ExportFormat | str) -> Path:
        suffix = SUFFIXES[ExportFormat(fmt)]
        return self.exports / f"{self.check_id(export_id, 'export id')}{suffix}"


def write_json(path: Path, data: Any) -> None:
    """Write atomically (temporary file, then rename), so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
    os.replace(tmp, path)


def read_upload(files: JobFiles, upload_id: str) -> bytes:
    try:
        return files.upload(upload_id).read_bytes()
    except (FileNotFoundError, ValueError):
        raise UploadMissing(
            "The uploaded file is no longer available (uploads are deleted after a while); "
            "upload it again."
        ) from None


def store_upload(files: JobFiles, upload_id: str, data: bytes) -> None:
    """Replace the upload atomically (the parts of a job may be reading it)."""
    path = files.upload(upload_id)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
