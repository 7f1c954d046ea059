"""Words of a page: pdfplumber's characters grouped by gaps measured against the font size.

pdfplumber's default word rule (a gap wider than ``x_tolerance=3`` points ends a word) runs
words together on tightly set pages: in a 10 pt two-column paper an interword space is often
2–2.5 pt, so whole lines came out as one word. Here:

* **Spacing is relative to the font size**: a gap wider than :data:`WORD_GAP_EM` of the
  character's size ends a word (pdfplumber's ``x_tolerance_ratio``), so 6 pt footnotes and 18 pt
  headings follow the same rule. Leader dots and rules (``.....``, ``____``) stay one word.
* **Rotated text is read on its own**: pdfminer calls some rotated characters upright (a 90°
  axis label in a Form XObject); grouped with the body text, their tops chain the lines beside
  them into one "line" whose characters interleave. Characters are split by the direction of
  their text matrix first, and each direction is read in its own order.
* **Unmapped glyphs**: pdfminer writes ``(cid:N)`` for a glyph whose font has no Unicode
  mapping. Such a character is dropped from the text and counted in its word's ``unmapped``; the
  zone reports the count and scores lower. (PDFium was tried as a second opinion: on the corpus
  of ``bench/bench_pdf_quality.py`` it had no mapping for these glyphs either, only control
  characters or a neighbouring letter.)
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Generator, Iterable
from typing import Any, Literal

from pdfplumber.page import Page
from pdfplumber.utils.text import WordExtractor

__all__ = [
    "CID_PATTERN",
    "WORD_GAP_EM",
    "Word",
    "count_unmapped",
    "page_words",
    "text_settings",
]

Word = dict[str, Any]
#: A gap wider than this share of the font size ends a word. Interword spaces in justified
#: text shrink to about 0.2 em, letter gaps (kerning, italic corrections) stay below 0.1 em.
WORD_GAP_EM = 0.15
#: Characters of one line differ in top by at most this share of the font size (a subscript's
#: top is about 0.35 em below its base letter's).
_LINE_SHIFT_EM = 0.4
#: Runs of these characters (leaders, rules) are one word whatever the gap.
_LEADER_CHARS = frozenset("._-·…∙")
#: A leader run still breaks at a gap wider than this many font sizes.
_LEADER_GAP_EM = 1.0
CID_PATTERN = re.compile(r"\(cid:\d+\)")
_CID_CHAR = re.compile(r"^\(cid:\d+\)$")


def text_settings() -> dict[str, Any]:
    """Settings for pdfplumber's own text functions (table cells), matching :func:`page_words`."""
    return {"x_tolerance_ratio": WORD_GAP_EM, "y_tolerance": 3}


Direction = Literal["ltr", "rtl", "ttb", "btt"]
_ORDER: dict[str, Callable[[dict[str, Any]], float]] = {
    "ltr": lambda c: float(c["x0"]),
    "rtl": lambda c: -float(c["x1"]),
    "ttb": lambda c: float(c["top"]),
    "btt": lambda c: -float(c["bottom"]),
}


class _Extractor(WordExtractor):
    """pdfplumber's extractor with lines and word breaks measured against the font size."""

    def iter_chars_to_lines(
        self, chars: Iterable[dict[str, Any]]
    ) -> Generator[tuple[list[dict[str, Any]], Direction], None, None]:
        # pdfplumber chains characters whose tops lie within 3 pt of each other into one line:
        # in 4 pt diagram labels set 6 pt apart, one label in between chains two lines, whose
        # characters then interleave. Here a line is anchored at its first character and only
        # takes characters within a share of the font size of it.
        chars = list(chars)
        if not chars:
            return
        direction: Direction = self.char_dir if chars[0]["upright"] else self.char_dir_rotated
        across = "top" if direction in ("ltr", "rtl") else "x0"
        lines: list[list[dict[str, Any]]] = []
        anchor = size = 0.0
        for char in sorted(chars, key=lambda c: float(c[across])):
            char_size = float(char["size"])
            if lines and float(char[across]) - anchor <= _LINE_SHIFT_EM * max(size, char_size):
                lines[-1].append(char)
                size = max(size, char_size)
            else:
                lines.append([char])
                anchor, size = float(char[across]), char_size
        for line in lines:
            yield sorted(line, key=_ORDER[direction]), direction

    def char_begins_new_word(
        self,
        prev_char: dict[str, Any],
        curr_char: dict[str, Any],
        direction: Direction,
        x_tolerance: float,
        y_tolerance: float,
    ) -> bool:
        size = max(float(prev_char["size"]), float(curr_char["size"]), 1.0)
        if (
            prev_char["text"] == curr_char["text"]
            and curr_char["text"] in _LEADER_CHARS
            and abs(_ORDER[direction](curr_char) - _ORDER[direction](prev_char))
            <= (_LEADER_GAP_EM + 1) * size
        ):
            return False
        # The larger of the two sizes: a subscript after its base letter still reads as one
        # word (x_A), as PDFium reads it.
        return super().char_begins_new_word(
            prev_char,
            curr_char,
            direction,
            x_tolerance=WORD_GAP_EM * size,
            y_tolerance=max(y_tolerance, _LINE_SHIFT_EM * size),
        )


# WordExtractor keeps no per-call state besides its settings: one per direction, shared.
_EXTRACTORS: dict[Direction, _Extractor] = {}
_EXTRACTORS_LOCK = threading.Lock()


def _extractor(direction: Direction) -> _Extractor:
    with _EXTRACTORS_LOCK:
        found = _EXTRACTORS.get(direction)
        if found is None:
            if direction == "ltr":
                found = _Extractor(x_tolerance_ratio=WORD_GAP_EM, y_tolerance=3)
            else:  # rotated text: lines run across the page, characters along the direction
                found = _Extractor(
                    x_tolerance_ratio=WORD_GAP_EM,
                    y_tolerance=3,
                    line_dir_rotated="ltr" if direction == "btt" else "rtl",
                    char_dir_rotated=direction,
                )
            _EXTRACTORS[direction] = found
        return found


def _direction(char: dict[str, Any]) -> Direction:
    """``ltr`` for horizontal text, ``btt``/``ttb`` for text turned 90° either way."""
    matrix = char.get("matrix") or (1, 0, 0, 1, 0, 0)
    a, b = float(matrix[0]), float(matrix[1])
    if abs(b) <= abs(a):
        return "ltr"  # (upside-down text is rare enough to read as horizontal)
    return "btt" if b > 0 else "ttb"


def page_words(page: Page) -> list[Word]:
    """The page's words, each a pdfplumber word dict (``text``, ``x0``, ``top``, ``x1``,
    ``bottom``, …) plus ``unmapped``: glyphs of the word that had no text and were dropped.
    """
    chars: dict[Direction, list[dict[str, Any]]] = {}
    for char in page.chars:
        text = char["text"]
        unmapped = 0
        if _CID_CHAR.match(text):
            text, unmapped = "", 1
        direction = _direction(char)
        if direction != "ltr":
            size = float(char["x1"] - char["x0"])  # pdfminer's size is along the text there
            char = {**char, "upright": False, "size": size}
        elif not char["upright"]:  # pdfminer's flag, wrong for some scaled text
            char = {**char, "upright": True}
        if text != char["text"] or unmapped:
            char = {**char, "text": text, "unmapped": unmapped}
        chars.setdefault(direction, []).append(char)
    words: list[Word] = []
    for direction, group in chars.items():
        for word, word_chars in _extractor(direction).iter_extract_tuples(group):
            word["unmapped"] = sum(int(c.get("unmapped", 0)) for c in word_chars)
            words.append(word)
    return words


def count_unmapped(words: Iterable[Word]) -> int:
    return sum(int(w.get("unmapped", 0)) for w in words)
