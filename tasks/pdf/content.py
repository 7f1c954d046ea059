"""How much drawing a page asks pdfminer to interpret, measured without interpreting it.

pdfminer (under pdfplumber) decompresses a page's content streams in one piece and turns every
operator into Python objects: on a page of dense text that costs about 1 GiB of memory and 16 s
of CPU per MiB of decompressed content (``docs/operators.md``, "Bounds of a PDF job"), and a
content stream of a few MiB compresses to a few KiB. :func:`page_content_size` measures what
the interpreter would read, before pdfplumber builds the page:

* the page's content streams, decompressed;
* plus, for each Form XObject the page draws (``/Name Do``), that form's own size *times the
  number of times it is drawn*, recursively: a form that draws a form a hundred times, drawn a
  hundred times, is interpreted ten thousand times, and counts so.

Decompression is bounded too: each stream is inflated only up to what is left of the budget,
so measuring a bomb costs at most about twice ``limit`` bytes of memory (zlib joins its output
blocks at the end) and the time to inflate them (10 ms for 4 MiB).

Not counted: image data (pdfplumber reads an image's size, not its pixels), annotations (not
interpreted), a form that draws itself (pdfminer fails that page on its own, as before).
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Callable
from typing import Any

from pdfminer.ascii85 import ascii85decode, asciihexdecode
from pdfminer.lzw import LZWDecoder
from pdfminer.pdfpage import PDFPage
from pdfminer.pdftypes import (
    LITERALS_ASCII85_DECODE,
    LITERALS_ASCIIHEX_DECODE,
    LITERALS_FLATE_DECODE,
    LITERALS_LZW_DECODE,
    LITERALS_RUNLENGTH_DECODE,
    PDFStream,
    resolve1,
)
from pdfminer.psparser import PSLiteral

__all__ = ["DEFAULT_MAX_PAGE_CONTENT_BYTES", "page_content_size"]

#: Decompressed drawing instructions one page may hold (4 MiB). The largest page among the
#: 77 real PDFs of the test corpus holds 1.2 MB (a CAD-like drawing: 3 s and 180 MB to lay
#: out); a tester's bomb held 8 MiB.
DEFAULT_MAX_PAGE_CONTENT_BYTES = 4 * 1024 * 1024

#: ``/Name Do``: draw the XObject ``Name``. Over-counts a name inside a string, never under.
_DO = re.compile(rb"/([^\s/\[\]()<>{}%]+)\s*Do(?![^\s/\[\]()<>{}%])")
_HEX_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")


def page_content_size(page: PDFPage, limit: int) -> int:
    """Bytes of drawing instructions pdfminer would interpret for ``page``.

    Counting stops once ``limit`` is passed: any value above ``limit`` means "too much", not
    an exact size.
    """
    counter = _Counter(limit)
    streams = resolve1(getattr(page, "contents", None)) or []
    if not isinstance(streams, list):
        streams = [streams]
    resources = resolve1(page.resources) or {}
    for stream in streams:
        counter.add_stream(resolve1(stream), resources)
        if counter.over:
            break
    return counter.total


class _Counter:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self._forms: dict[int, int] = {}  # objid -> size of one drawing of the form
        self._drawing: set[int] = set()  # forms being measured (a form drawing itself)

    @property
    def over(self) -> bool:
        return self.total > self.limit

    def add_stream(self, stream: Any, resources: Any, times: int = 1) -> None:
        size = self._size(stream, resources, (self.limit - self.total) // times + 1)
        self.total += size * times

    def _size(self, stream: Any, resources: Any, budget: int) -> int:
        """One drawing of ``stream``: its bytes plus those of the forms it draws; any value
        above ``budget`` only means "over"."""
        if not isinstance(stream, PDFStream):
            return 0
        data = _decoded(stream, budget)
        size = len(data)
        if size > budget:
            return size
        resources = resolve1(resources)
        xobjects = resolve1(resources.get("XObject")) if isinstance(resources, dict) else None
        if not isinstance(xobjects, dict):
            return size
        for name, count in _draws(data).items():
            form = resolve1(xobjects.get(name))
            if not _is_form(form):
                continue
            key = id(form) if form.objid is None else form.objid
            if key in self._drawing:
                continue
            once = self._forms.get(key)
            if once is None:
                self._drawing.add(key)
                try:
                    own = resolve1(form.get("Resources")) or resources
                    once = self._size(form, own, (budget - size) // count + 1)
                finally:
                    self._drawing.discard(key)
                self._forms[key] = once
            size += once * count
            if size > budget:
                break
        return size


def _is_form(obj: Any) -> bool:
    subtype = obj.get("Subtype") if isinstance(obj, PDFStream) else None
    return isinstance(subtype, PSLiteral) and subtype.name == "Form"


def _draws(data: bytes) -> dict[str, int]:
    counts: dict[str, int] = {}
    if b"Do" not in data:
        return counts
    for match in _DO.finditer(data):
        raw = _HEX_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), match.group(1))
        name = raw.decode("latin-1")
        counts[name] = counts.get(name, 0) + 1
    return counts


def _decoded(stream: PDFStream, cap: int) -> bytes:
    """The stream's data decoded as pdfminer would, stopped soon after ``cap`` bytes (at most
    twice ``cap``; more than ``cap`` means "over"). A stream pdfminer has decoded already is
    read as it is."""
    if stream.data is not None:
        return stream.data
    data = stream.rawdata or b""
    if stream.decipher is not None and stream.objid is not None and stream.genno is not None:
        data = stream.decipher(stream.objid, stream.genno, data, stream.attrs)
    filters = stream.get_filters()
    for index, (name, _params) in enumerate(filters):
        # Before an ASCII filter, which halves (hex) or shrinks (85) what it is given, let
        # twice the cap through, so a legitimate stream is not cut short; a stage that fills
        # its cap means "over" (hex padded with blanks past that is refused as well).
        later = filters[index + 1 :]
        stage_cap = 2 * cap + 2 if any(_shrinks(f) for f, _ in later) else cap + 1
        data = _apply(name, data, stage_cap)
        if len(data) >= stage_cap:
            return data  # (no copy cut to size: the length is all the caller needs)
    # (Predictors change the size by one byte per row at most: not applied here.)
    return data


def _shrinks(name: Any) -> bool:
    return name in LITERALS_ASCIIHEX_DECODE or name in LITERALS_ASCII85_DECODE


def _apply(name: Any, data: bytes, cap: int) -> bytes:
    """One filter, with at most ``cap`` bytes of output where the filter can expand."""
    if name in LITERALS_FLATE_DECODE:
        return _inflate(data, cap)
    if name in LITERALS_LZW_DECODE:
        return _bounded(LZWDecoder(io.BytesIO(data)).run, cap)
    if name in LITERALS_RUNLENGTH_DECODE:
        return _run_length(data, cap)
    if name in LITERALS_ASCII85_DECODE:  # shrinks: safe to decode in full
        return ascii85decode(data)
    if name in LITERALS_ASCIIHEX_DECODE:
        return asciihexdecode(data)
    return data  # image codecs and unknown filters: pdfminer passes the bytes on or fails


def _inflate(data: bytes, cap: int) -> bytes:
    inflater = zlib.decompressobj()  # zlib's max_length: inflates no further than ``cap``
    try:
        return inflater.decompress(data, cap)
    except zlib.error:  # pdfminer recovers what it can of a damaged stream: count nothing more
        return b""


def _bounded(chunks: Callable[[], Any], cap: int) -> bytes:
    out = bytearray()
    try:
        for chunk in chunks():
            out += chunk
            if len(out) >= cap:
                break
    except Exception:  # a damaged LZW stream: pdfminer stops there too
        pass
    return bytes(out)


def _run_length(data: bytes, cap: int) -> bytes:
    """RunLengthDecode (PDF 32000-1, 7.4.5), stopping at ``cap`` bytes of output."""
    out = bytearray()
    i = 0
    while i < len(data) and len(out) < cap:
        length = data[i]
        if length == 128:  # end of data
            break
        if length < 128:
            out += data[i + 1 : i + 2 + length]
            i += length + 2
        else:
            out += data[i + 1 : i + 2] * (257 - length)
            i += 2
    return bytes(out)
