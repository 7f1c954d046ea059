"""PDF uploads: bounded in size, checked by their bytes, stored under generated names, expired.

What the client sends is trusted for nothing:

* **Size.** A ``Content-Length`` above ``settings.max_upload_bytes`` (plus a little multipart
  framing) is refused with 413 before the body is read; without one, the body is counted as it
  arrives and refused at the limit, so no request can fill the disk.
* **Type.** The part's content type and the file name's extension are ignored: the file must
  carry a ``%PDF-`` header in its first 1024 bytes (415 otherwise). The whole document is then
  validated (PDFium) and refused with 422 and the reason when it is corrupt, truncated,
  encrypted, empty or over ``settings.max_pages`` pages.
* **Name.** The file is stored as ``<data_dir>/uploads/<job id>.pdf`` (a generated id). The
  client's file name only becomes a *display name*: its last path component, without control
  characters, at most 120 characters — never part of a path.
* **Retention.** :func:`cleanup_expired` deletes uploads, results, page previews and exports
  whose files are older than ``settings.upload_retention_s``; the web app runs it every
  ``settings.cleanup_interval_s`` and keeps the uploads of jobs still running.
"""

from __future__ import annotations

import os
import shutil
import time
import unicodedata
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request

from tasks.pdf import PdfRejected, open_document
from tasks.pdf_tasks import JobFiles

__all__ = [
    "MULTIPART_ALLOWANCE",
    "StoredUpload",
    "UploadRejected",
    "cleanup_expired",
    "display_name",
    "expired_upload_ids",
    "receive_upload",
    "validate_pdf",
]

#: Bytes of multipart framing allowed on top of ``max_upload_bytes`` in a request body.
MULTIPART_ALLOWANCE = 64 * 1024
#: The PDF header may start anywhere in the first 1024 bytes (PDF 1.7, annex H.3).
MAGIC_WINDOW = 1024
MAGIC = b"%PDF-"
DISPLAY_NAME_CHARS = 120
DEFAULT_DISPLAY_NAME = "document.pdf"
_CHUNK = 256 * 1024


class UploadRejected(Exception):
    """The upload is refused: ``status_code`` (413, 415 or 422), a stable ``code``, a reason.

    ``str()`` is the reason, one sentence safe to show to the uploader.
    """

    def __init__(self, status_code: int, code: str, reason: str) -> None:
        super().__init__(reason)
        self.status_code = status_code
        self.code = code
        self.reason = reason


class _BodyTooLarge(Exception):
    pass


@dataclass(frozen=True)
class StoredUpload:
    job_id: str
    path: Path
    display_name: str
    size_bytes: int


def display_name(raw: str | None) -> str:
    """A file name safe to show and to put in a ``Content-Disposition``; never a path.

    >>> display_name("../../etc/passwd")
    'passwd'
    >>> display_name("C:\\\\Users\\\\me\\\\report.pdf")
    'report.pdf'
    """
    text = unicodedata.normalize("NFC", raw or "")
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(c for c in text if unicodedata.category(c)[0] != "C")
    text = " ".join(text.split()).lstrip(".").strip()
    if len(text) > DISPLAY_NAME_CHARS:
        stem, dot, ext = text.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            text = stem[: DISPLAY_NAME_CHARS - len(ext) - 1] + "." + ext
        else:
            text = text[:DISPLAY_NAME_CHARS]
    return text or DEFAULT_DISPLAY_NAME


def _too_large(limit: int) -> UploadRejected:
    mib = limit / (1024 * 1024)
    return UploadRejected(
        413, "too_large", f"The file is too large: at most {mib:.3g} MiB can be uploaded."
    )


def _limited(receive: Callable[[], Awaitable[Any]], limit: int) -> Callable[[], Awaitable[Any]]:
    seen = 0

    async def limited_receive() -> Any:
        nonlocal seen
        message = await receive()
        if message.get("type") == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _BodyTooLarge()
        return message

    return limited_receive


async def receive_upload(
    request: Request, files: JobFiles, job_id: str, max_bytes: int, field: str = "file"
) -> StoredUpload:
    """Read the multipart ``field`` of ``request`` into ``uploads/<job_id>.pdf``.

    Raises:
        UploadRejected: 413 (too large), 415 (not a PDF by its bytes) or 422 (no file field).
    """
    body_limit = max_bytes + MULTIPART_ALLOWANCE
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > body_limit:
        raise _too_large(max_bytes)
    limited = Request(request.scope, _limited(request.receive, body_limit))
    try:
        form = await limited.form(max_files=1, max_fields=8)
    except _BodyTooLarge:
        raise _too_large(max_bytes) from None
    try:
        upload = form.get(field)
        if not isinstance(upload, UploadFile):
            raise UploadRejected(
                422, "missing_file", f"Send the PDF as a multipart file field named {field!r}."
            )
        target = files.upload(job_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part")
        head = await upload.read(MAGIC_WINDOW)
        if MAGIC not in head:
            reason = "The file is empty." if not head else "The file is not a PDF."
            raise UploadRejected(
                415, "not_a_pdf", f"{reason} Only PDF documents (starting with %PDF-) are accepted."
            )
        size = len(head)
        try:
            with partial.open("wb") as out:  # disk writes off the event loop
                await run_in_threadpool(out.write, head)
                while chunk := await upload.read(_CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise _too_large(max_bytes)
                    await run_in_threadpool(out.write, chunk)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return StoredUpload(job_id, target, display_name(upload.filename), size)
    finally:
        await form.close()


def validate_pdf(path: Path, max_pages: int) -> int:
    """Open the stored upload as the worker will; return its page count.

    Raises:
        UploadRejected: 422 with the rejection's code and reason (corrupt, truncated, encrypted,
            empty, too many pages); 415 for a file that is not a PDF after all.
    """
    try:
        with open_document(path, max_pages=max_pages) as doc:
            return doc.page_count
    except PdfRejected as exc:
        status = 415 if exc.code == "not_a_pdf" else 422
        raise UploadRejected(status, exc.code, exc.reason) from None


def expired_upload_ids(files: JobFiles, retention_s: float, now: float | None = None) -> list[str]:
    """Job ids whose upload is older than ``retention_s`` (for :func:`cleanup_expired`'s keep)."""
    cutoff = (time.time() if now is None else now) - retention_s
    return [path.stem for path in _entries(files.uploads, ".pdf") if _mtime(path) < cutoff]


def cleanup_expired(
    files: JobFiles,
    retention_s: float,
    *,
    now: float | None = None,
    keep: Callable[[str], bool] = lambda job_id: False,
) -> list[Path]:
    """Delete uploads, results, page previews and exports older than ``retention_s``; return
    what went.

    ``keep(job_id)`` spares a job's upload, results and previews (the web app passes "the job is
    still running"). Partial files (``*.part``, ``.*.tmp``) left by an interrupted write expire too.
    Never raises for a file that vanished meanwhile.
    """
    cutoff = (time.time() if now is None else now) - retention_s
    removed: list[Path] = []
    candidates: list[tuple[Path, str | None]] = []
    candidates += [(p, p.name.split(".", 1)[0]) for p in _entries(files.uploads)]
    candidates += [(p, p.name.split(".", 1)[0] or None) for p in _entries(files.results)]
    candidates += [(p, p.name.split(".", 1)[0] or None) for p in _entries(files.previews)]
    candidates += [(p, None) for p in _entries(files.exports)]
    for path, job_id in candidates:
        if _mtime(path) >= cutoff or (job_id and keep(job_id)):
            continue
        try:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed


def _entries(directory: Path, suffix: str | None = None) -> Iterable[Path]:
    try:
        entries = list(directory.iterdir())
    except FileNotFoundError:
        return []
    return [p for p in entries if suffix is None or p.suffix == suffix]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return float("inf")
