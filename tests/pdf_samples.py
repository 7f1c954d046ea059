"""PDFs generated for the tests (fpdf2), good and bad, as bytes.

Every generator is deterministic, so expected texts and counts can be asserted. Bad inputs are
made by editing good ones at the byte level while keeping offsets valid, so each breaks exactly
one thing.
"""

from __future__ import annotations

import functools
import io
import zlib
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import pikepdf
import pypdf
import pytest
from fpdf import FPDF
from fpdf.enums import TableBordersLayout
from PIL import Image
from pypdf.generic import ArrayObject, NameObject, NumberObject

__all__ = [
    "PARAGRAPHS",
    "TABLE_ROWS",
    "TWO_COLUMN_ORDER",
    "assert_sink_contract",
    "broken_page_pdf",
    "encrypted_pdf",
    "expected_zone_count",
    "image_only_pdf",
    "inflated_pdf",
    "many_pages_pdf",
    "mixed_pdf",
    "nested_forms_pdf",
    "not_a_pdf",
    "text_pdf",
    "truncated_pdf",
    "two_column_pdf",
    "unparsable_pages_pdf",
    "unreadable_pages_pdf",
    "zero_pages_pdf",
]

PARAGRAPHS = [
    "Zones are detected on every page and processed one by one, each reporting its tool.",
    "A second paragraph follows after a blank line, so it is a separate text block.",
]
TABLE_ROWS = [
    ["Region", "Units", "Revenue"],
    ["North", "120", "4,800"],
    ["South", "95", "3,610"],
    ["East", "143", "5,720"],
]
_TITLE = "Quarterly report"
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def _new() -> FPDF:
    pdf = FPDF(format="A4", unit="pt")
    pdf.set_auto_page_break(auto=False)
    pdf.set_font("helvetica", size=11)
    pdf.set_creation_date(_EPOCH)  # deterministic output
    return pdf


@functools.lru_cache(maxsize=1)
def _picture() -> Image.Image:
    image = Image.new("RGB", (160, 100))
    image.putdata([(x * 255 // 160, y * 255 // 100, 128) for y in range(100) for x in range(160)])
    return image


def _paragraph(pdf: FPDF, text: str, y: float) -> float:
    pdf.set_xy(56, y)
    pdf.multi_cell(480, 14, text)
    return pdf.get_y() + 18  # a blank gap: the next paragraph is a new block


def _table(pdf: FPDF, rows: list[list[str]], y: float) -> float:
    pdf.set_xy(56, y)
    with pdf.table(
        width=360,
        col_widths=(120, 120, 120),
        line_height=18,
        align="LEFT",
        borders_layout=TableBordersLayout.ALL,
        first_row_as_headings=False,
    ) as table:
        for cells in rows:
            row = table.row()
            for cell in cells:
                row.cell(cell)
    return pdf.get_y() + 24


def _heading(pdf: FPDF, text: str, y: float) -> float:
    pdf.set_font("helvetica", style="B", size=18)
    pdf.set_xy(56, y)
    pdf.cell(480, 22, text)
    pdf.set_font("helvetica", size=11)
    return y + 40


def text_pdf() -> bytes:
    """One page: a heading and the two :data:`PARAGRAPHS`."""
    pdf = _new()
    pdf.add_page()
    y = _heading(pdf, _TITLE, 56)
    for text in PARAGRAPHS:
        y = _paragraph(pdf, text, y)
    return bytes(pdf.output())


def mixed_pdf() -> bytes:
    """One page: heading, paragraph, the ruled :data:`TABLE_ROWS` table, an image, a paragraph."""
    pdf = _new()
    pdf.add_page()
    y = _heading(pdf, _TITLE, 56)
    y = _paragraph(pdf, PARAGRAPHS[0], y)
    y = _table(pdf, TABLE_ROWS, y)
    pdf.image(_picture(), x=56, y=y, w=160, h=100)
    y += 100 + 24
    _paragraph(pdf, PARAGRAPHS[1], y)
    return bytes(pdf.output())


def image_only_pdf() -> bytes:
    """One page holding a single image and no text (a scan without OCR)."""
    pdf = _new()
    pdf.add_page()
    pdf.image(_picture(), x=100, y=100, w=320, h=200)
    return bytes(pdf.output())


@functools.lru_cache(maxsize=4)
def many_pages_pdf(pages: int = 30) -> bytes:
    """``pages`` pages: each a heading and two paragraphs; every 3rd page a table, every 5th an
    image. Zones per page: 3, +1 on pages divisible by 3, +1 on pages divisible by 5."""
    pdf = _new()
    for number in range(1, pages + 1):
        pdf.add_page()
        y = _heading(pdf, f"Section {number}", 56)
        y = _paragraph(pdf, f"Page {number} begins. " + PARAGRAPHS[0] * 2, y)
        if number % 3 == 0:
            y = _table(pdf, [[f"{r}.{c}" for c in range(3)] for r in range(4)], y)
        if number % 5 == 0:
            pdf.image(_picture(), x=56, y=y, w=160, h=100)
            y += 124
        _paragraph(pdf, f"Page {number} ends. " + PARAGRAPHS[1], y)
    return bytes(pdf.output())


def expected_zone_count(pages: int) -> int:
    return sum(3 + (n % 3 == 0) + (n % 5 == 0) for n in range(1, pages + 1))


def not_a_pdf() -> bytes:
    return b"PK\x03\x04 this is a zip file, not a PDF" + bytes(200)


def truncated_pdf() -> bytes:
    """The first half of :func:`mixed_pdf`, as an interrupted upload leaves it."""
    data = mixed_pdf()
    return data[: len(data) // 2]


def encrypted_pdf(user_password: str = "s3cret") -> bytes:
    pdf = _new()
    pdf.set_encryption(owner_password="owner-pw", user_password=user_password)
    pdf.add_page()
    _paragraph(pdf, PARAGRAPHS[0], 56)
    return bytes(pdf.output())


def zero_pages_pdf() -> bytes:
    """A well-formed PDF whose page tree is empty (written by hand: fpdf2 refuses to)."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def broken_page_pdf(pages: int = 3, broken: int = 2) -> bytes:
    """:func:`many_pages_pdf` where page ``broken`` has a MediaBox of two numbers instead of four
    (rewritten with pypdf, which keeps the file otherwise valid): pdfminer cannot build that
    page, PDFium opens the file, and every other page is fine."""
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(many_pages_pdf(pages))))
    writer.pages[broken - 1][NameObject("/MediaBox")] = ArrayObject(
        [NumberObject(0), NumberObject(0)]
    )
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def unparsable_pages_pdf(pages: int = 3) -> bytes:
    """:func:`many_pages_pdf` where every page has a two-number MediaBox: PDFium opens the
    file, and neither pdfminer nor a qpdf repair can build any page."""
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(many_pages_pdf(pages))))
    for page in writer.pages:
        page[NameObject("/MediaBox")] = ArrayObject([NumberObject(0), NumberObject(0)])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def assert_sink_contract(sink: Any) -> None:
    """Check a :class:`~tasks.pdf.sink.RecordingSink` against the sink contract.

    Each zone is declared before it is processed; each declared zone gets exactly one
    zone_processing and then one zone_completed, with no other zone in between; zone ids and
    indexes are unique and indexes increase; the percent never decreases and ends at 100.
    """
    declared: set[str] = set()
    indexes: list[int] = []
    seen_processing: set[str] = set()
    completed: set[str] = set()
    open_zone: str | None = None
    percents: list[float] = []
    for call in sink.calls:
        args = call.args
        if call.method == "declare_zones":
            for zone in args["zones"]:
                assert zone.zone_id not in declared, f"{zone.zone_id} declared twice"
                declared.add(zone.zone_id)
                indexes.append(zone.index)
        elif call.method == "zone_processing":
            zone_id = args["zone_id"]
            assert zone_id in declared, f"{zone_id} processed before it was declared"
            assert zone_id not in seen_processing, f"{zone_id} processed twice"
            assert open_zone is None, f"{zone_id} started while {open_zone} was open"
            seen_processing.add(zone_id)
            open_zone = zone_id
        elif call.method == "zone_completed":
            zone_id = args["zone_id"]
            assert zone_id == open_zone, f"{zone_id} completed but {open_zone} was processing"
            assert zone_id not in completed
            completed.add(zone_id)
            open_zone = None
            if args["confidence"] is not None:
                assert 0.0 <= args["confidence"] <= 1.0
        elif call.method == "set_progress":
            percents.append(args["percent"])
    assert open_zone is None
    assert completed == declared, f"never completed: {sorted(declared - completed)}"
    assert indexes == sorted(indexes) and len(set(indexes)) == len(indexes)
    assert percents == sorted(percents), "percent went backwards"
    assert percents and percents[-1] == pytest.approx(100.0)


def unreadable_pages_pdf(pages: int = 3) -> bytes:
    """:func:`many_pages_pdf` whose page tree node has ``/Type /Pagex``: PDFium still finds the
    pages; pdfminer finds them without their inherited MediaBox, so it cannot build any (a
    qpdf rewrite fixes the tree)."""
    data = many_pages_pdf(pages)
    assert data.count(b"/Type /Pages") == 1
    return data.replace(b"/Type /Pages", b"/Type /Pagex")


TWO_COLUMN_ORDER = ["Two columns", "Left one.", "Left two.", "Right one.", "Right two.", "Footer."]


def two_column_pdf() -> bytes:
    """A full-width heading, two columns of two paragraphs whose tops line up across the
    columns, and a full-width footer; reading order is :data:`TWO_COLUMN_ORDER`."""
    pdf = _new()
    pdf.add_page()
    _heading(pdf, "Two columns", 56)
    for x, side in ((56, "Left"), (316, "Right")):
        for y, which in ((110, "one"), (200, "two")):
            pdf.set_xy(x, y)
            pdf.multi_cell(220, 14, f"{side} {which}.")
    pdf.set_xy(56, 300)
    pdf.multi_cell(480, 14, "Footer.")
    return bytes(pdf.output())


TIGHT_WORDS = ["primarily", "algebraic", "identities", "that", "allow", "DOUBLE"]
TIGHT_WORDS += ["to", "be", "replaced"]


def tight_words_pdf(size: float = 10.0, gap_em: float = 0.22) -> bytes:
    """One line of :data:`TIGHT_WORDS` placed word by word with no space characters and gaps
    of ``gap_em`` font sizes (a tightly justified TeX line: 2.2 pt at 10 pt, below
    pdfplumber's default 3 pt tolerance), then the same line in 36 pt type with 1 pt letter
    spacing, which must stay whole words."""
    pdf = _new()
    pdf.add_page()
    pdf.set_font("helvetica", size=size)
    x = 56.0
    for word in TIGHT_WORDS:
        pdf.text(x, 100, word)
        x += pdf.get_string_width(word) + gap_em * size
    pdf.set_font("helvetica", size=36)
    pdf.set_char_spacing(1)
    x = 56.0
    for word in ("Spaced", "Heading"):
        pdf.text(x, 200, word)
        x += pdf.get_string_width(word) + 0.3 * 36
    return bytes(pdf.output())


def rotated_label_pdf() -> bytes:
    """A paragraph with a small label turned 90° right beside it, whose letters' tops chain
    the paragraph's lines together in pdfplumber's line clustering."""
    pdf = _new()
    pdf.add_page()
    pdf.set_font("helvetica", size=10)
    pdf.set_xy(56, 100)
    pdf.multi_cell(200, 11, PARAGRAPHS[0] + " " + PARAGRAPHS[1])
    pdf.set_font("helvetica", size=6)
    with pdf.rotation(90, x=262, y=150):
        pdf.text(262, 150, "Transistors (millions)")
    return bytes(pdf.output())


def bar_chart_pdf() -> bytes:
    """A vector bar chart: a 14-column grid of gridlines with filled bars, a caption and
    axis labels below; pdfplumber's line strategy finds the grid, whose cells hold no words."""
    pdf = _new()
    pdf.add_page()
    _heading(pdf, "Sales by week", 56)
    left, top, width, height, columns = 56.0, 120.0, 420.0, 200.0, 14
    pdf.set_draw_color(160)
    pdf.set_line_width(0.5)
    for k in range(columns + 1):  # vertical gridlines
        x = left + k * width / columns
        pdf.line(x, top, x, top + height)
    for k in range(5):  # horizontal gridlines
        y = top + k * height / 4
        pdf.line(left, y, left + width, y)
    pdf.set_fill_color(70, 110, 200)
    for k in range(columns):
        bar = height * (0.2 + 0.05 * ((k * 7) % 13))
        x = left + k * width / columns + 6
        pdf.rect(x, top + height - bar, width / columns - 12, bar, style="F")
    pdf.set_font("helvetica", size=8)
    for k in range(columns):
        pdf.text(left + k * width / columns + 8, top + height + 12, f"W{k + 1}")
    pdf.set_font("helvetica", size=11)
    pdf.set_xy(56, top + height + 30)
    pdf.multi_cell(480, 14, PARAGRAPHS[0])
    return bytes(pdf.output())


COLUMN_TEXT = [
    "Boxed column text runs here across several lines so that",
    "the frame around it and the rule inside it form a grid",
    "whose cells would cut the first letters of every line.",
]


def ruled_text_column_pdf() -> bytes:
    """A text column in a frame with a horizontal rule under its first line and a vertical rule
    drawn 6 pt inside its left edge, through the first letter of each line: pdfplumber finds
    a grid whose cells cut words."""
    pdf = _new()
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    for n, line in enumerate(COLUMN_TEXT):
        pdf.text(60, 112 + 16 * n, line)
    pdf.set_line_width(0.6)
    pdf.rect(54, 96, 330, 56)
    pdf.line(54, 117, 384, 117)
    pdf.line(66, 96, 66, 152)
    return bytes(pdf.output())


def _startxref(data: bytes) -> tuple[int, int, int]:
    """(value, start, end) of the last ``startxref`` number in ``data``."""
    at = data.rindex(b"startxref")
    start = at + len(b"startxref")
    while data[start : start + 1].isspace():
        start += 1
    end = start
    while data[end : end + 1].isdigit():
        end += 1
    return int(data[start:end]), start, end


def shifted_xref_pdf(shift: int = 64, pages: int = 3) -> bytes:
    """:func:`many_pages_pdf` (``pages`` pages) with a comment of ``shift`` bytes inserted after the
    header and ``startxref`` corrected: the cross-reference table is found, but every object
    offset in it is ``shift`` bytes short (as after a careless edit or a transfer that added
    bytes). PDFium and pypdf rebuild the offsets; pdfminer finds no page."""
    data = many_pages_pdf(pages)
    header_end = data.index(b"\n") + 1
    data = data[:header_end] + b"%" + b"x" * (shift - 2) + b"\n" + data[header_end:]
    value, start, end = _startxref(data)
    return data[:start] + str(value + shift).encode() + data[end:]


def prev_loop_pdf() -> bytes:
    """:func:`many_pages_pdf` (3 pages) with an incremental update whose trailer's ``/Prev``
    points at its own cross-reference section: pdfminer follows the chain until Python's
    recursion limit; PDFium and pypdf notice the loop and stop."""
    data = many_pages_pdf(3)
    trailer = data[data.rindex(b"trailer") : data.rindex(b"startxref")]
    size = trailer.split(b"/Size ")[1].split()[0]
    root = b" ".join(trailer.split(b"/Root ")[1].split()[:3])
    xref = len(data)
    update = b"xref\n0 0\ntrailer\n<< /Size %s /Root %s /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (
        size,
        root,
        xref,
        xref,
    )
    return data + update


def garbage_pdf(size: int = 4096) -> bytes:
    """A PDF header, deterministic noise and an end-of-file marker: nothing to read."""
    noise = bytes((i * 7919 + 13) % 251 for i in range(size))
    return b"%PDF-1.7\n" + noise + b"\n%%EOF\n"


SCANNED_LINES = [
    "Invoice 2024-117 for the harbour office",
    "Forty crates of rope delivered on Monday",
    "Total due within thirty days",
]


@functools.lru_cache(maxsize=1)
def scanned_pdf() -> bytes:
    """One A4 page holding only an image of :data:`SCANNED_LINES` (black text on white,
    rendered by Pillow at 200 dpi): a scan without a text layer."""
    from PIL import ImageDraw, ImageFont

    dpi = 200
    width, height = round(595.28 / 72 * dpi), round(841.89 / 72 * dpi)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=round(14 / 72 * dpi))  # 14 pt type
    for n, line in enumerate(SCANNED_LINES):
        draw.text((round(1.0 * dpi), round((1.5 + 0.4 * n) * dpi)), line, fill=0, font=font)
    pdf = _new()
    pdf.add_page()
    pdf.image(image, x=0, y=0, w=595.28, h=841.89)
    return bytes(pdf.output())


THREE_COLUMNS = [
    [f"Left column line {n} reads on." for n in range(1, 9)],
    [
        f"Middle column line {n} goes on." if n != 3 else "Middle column line 3 goes on so wide"
        for n in range(1, 9)
    ],
    [f"Right column line {n} ends it." for n in range(1, 9)],
]


def three_column_pdf() -> bytes:
    """Three columns of :data:`THREE_COLUMNS` on a 10 pt pitch whose baselines are offset by
    4 and 2 pt (as in a tax form's instructions); the middle column's third line is justified
    to end 8 pt from the right column (closer than 1.5 line heights)."""
    pdf = _new()
    pdf.add_page()
    pdf.set_font("helvetica", size=9)
    for column, (x, offset) in enumerate(((56.0, 0.0), (226.0, 4.0), (396.0, 2.0))):
        for n, line in enumerate(THREE_COLUMNS[column]):
            if (column, n) != (1, 2):
                pdf.text(x, 120 + offset + 10 * n, line)
    # justified wider: the words of line 3 spread so that it ends at x = 388
    words = THREE_COLUMNS[1][2].split(" ")
    spare = 388 - 226 - sum(pdf.get_string_width(w) for w in words)
    x = 226.0
    for word in words:
        pdf.text(x, 124 + 20, word)
        x += pdf.get_string_width(word) + spare / (len(words) - 1)
    return bytes(pdf.output())


#: One drawing of dense text: 55 bytes that pdfminer turns into 24 characters (about 1 GiB of
#: memory and 16 s of CPU per MiB of such instructions).
DENSE_TEXT = b"BT /F1 9 Tf 72 700 Td (Zones are detected here) Tj ET\n"


def _bomb_pdf() -> tuple[pikepdf.Pdf, pikepdf.Dictionary]:
    pdf = pikepdf.new()
    font = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica
        )
    )
    return pdf, pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))


def _flate(pdf: pikepdf.Pdf, content: bytes, **extra: Any) -> pikepdf.Stream:
    stream = pikepdf.Stream(pdf, zlib.compress(content, 9))
    stream.Filter = pikepdf.Name.FlateDecode
    for key, value in extra.items():
        stream[f"/{key}"] = value
    return pdf.make_indirect(stream)


def _add_page(pdf: pikepdf.Pdf, resources: pikepdf.Dictionary, contents: pikepdf.Stream) -> None:
    page = pikepdf.Dictionary(
        Type=pikepdf.Name.Page, MediaBox=[0, 0, 612, 792], Resources=resources, Contents=contents
    )
    pdf.pages.append(pikepdf.Page(page))


def _saved(pdf: pikepdf.Pdf) -> bytes:
    out = io.BytesIO()
    pdf.save(out, compress_streams=False, deterministic_id=True)
    return out.getvalue()


@functools.lru_cache(maxsize=8)
def inflated_pdf(
    content_bytes: int, pages: int = 1, inflated: Collection[int] | None = None
) -> bytes:
    """A decompression bomb: pages whose content stream inflates to ``content_bytes`` of dense
    text drawing (flate level 9: 8 MiB of it is a 25 KB file). With ``inflated`` (page numbers;
    pass a tuple), only those pages are; the others draw one line of text."""
    pdf, resources = _bomb_pdf()
    heavy = DENSE_TEXT * max(1, content_bytes // len(DENSE_TEXT))
    for number in range(1, pages + 1):
        if inflated is None or number in inflated:
            content = heavy
        else:
            content = b"BT /F1 11 Tf 72 700 Td (Page %d of a light document) Tj ET\n" % number
        _add_page(pdf, resources, _flate(pdf, content))
    return _saved(pdf)


def nested_forms_pdf(levels: int, fanout: int) -> bytes:
    """One page drawing a form ``fanout`` times, each form drawing the next ``fanout`` times,
    ``levels`` deep, the last drawing one line of text: ``fanout ** levels`` lines for a few
    hundred bytes of content (the "billion laughs" of PDF)."""
    pdf, resources = _bomb_pdf()
    inner: pikepdf.Stream | None = None
    for level in range(levels, 0, -1):
        if inner is None:
            content = DENSE_TEXT
            own = resources
        else:
            content = b"/Fm%d Do\n" % (level + 1) * fanout
            own = pikepdf.Dictionary(XObject=pikepdf.Dictionary({f"/Fm{level + 1}": inner}))
        inner = _flate(
            pdf,
            content,
            Type=pikepdf.Name.XObject,
            Subtype=pikepdf.Name.Form,
            BBox=[0, 0, 612, 792],
            Resources=own,
        )
    assert inner is not None
    page_resources = pikepdf.Dictionary(Font=resources.Font, XObject=pikepdf.Dictionary(Fm1=inner))
    _add_page(pdf, page_resources, _flate(pdf, b"q /Fm1 Do Q\n" * fanout))
    return _saved(pdf)
