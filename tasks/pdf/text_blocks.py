"""Words into lines, lines into blocks (paragraphs): the text zones of a page.

* **Lines**: words in the same baseline band (that of the row's first word); a horizontal gap
  wider than 1.5 line heights starts a new line, which separates columns, and so does a narrower
  gap that holds a page-wide gutter (:func:`_gutters_of`). Words turned 90° form lines of their
  own.
* **Blocks**: a line joins the block right above it when the vertical gap is at most half a
  line height, they overlap horizontally, and their heights differ by less than 40 % (so a
  heading is its own block).

Which words are free to form text blocks (not inside a table or a figure) is decided by
:func:`tasks.pdf.zones.detect_zones`; the geometry of grouping them lives here.
"""

from __future__ import annotations

from dataclasses import dataclass

from .words import Word

__all__ = ["Line", "blocks_of", "lines_of"]

_COLUMN_GAP_LINE_HEIGHTS = 1.5
_BLOCK_GAP_LINE_HEIGHTS = 0.5
#: A gap that contains a page-wide gutter splits a line from this width on (line heights).
_GUTTER_GAP_LINE_HEIGHTS = 0.6
#: A gutter is at least this wide (points), and only pages with this many words have one.
_MIN_GUTTER_PT = 6.0
_MIN_GUTTER_WORDS = 40
_HEIGHT_RATIO_LIMIT = 1.4


@dataclass
class Line:
    """A line of words (in reading order) and its box."""

    words: list[Word]
    x0: float
    top: float
    x1: float
    bottom: float

    @property
    def height(self) -> float:
        return max(self.bottom - self.top, 0.1)


def lines_of(words: list[Word]) -> list[Line]:
    """Group words into lines: same vertical band (that of the row's first word), split at
    column-sized horizontal gaps.

    Words turned 90° (axis labels) form lines of their own: their tall boxes would otherwise
    join every horizontal line beside them into one band.
    """
    rows: list[list[Word]] = []
    row_top = row_bottom = 0.0
    turned: dict[tuple[str, int], list[Word]] = {}
    upright: list[Word] = []
    for word in words:
        direction = word.get("direction", "ltr")
        if direction in ("ttb", "btt"):
            turned.setdefault((direction, round(word["x0"])), []).append(word)
        else:
            upright.append(word)
    lines: list[Line] = []
    for (direction, _), group in turned.items():
        group.sort(key=lambda w: w["top"] if direction == "ttb" else -w["bottom"])
        lines.append(_make_line(group))
    for word in sorted(upright, key=lambda w: (w["top"], w["x0"])):
        height = word["bottom"] - word["top"]
        middle = (word["top"] + word["bottom"]) / 2
        # The band is the row's first word's, and does not grow: in three columns whose
        # baselines are offset (by 4-5 pt on a 10 pt pitch), a growing band chained each
        # column's line to the next line of the column beside it, interleaving their words.
        if rows and row_top - 0.1 <= middle <= row_bottom + 0.1 and height > 0:
            rows[-1].append(word)
        else:
            rows.append([word])
            row_top, row_bottom = word["top"], word["bottom"]
    gutters = _gutters_of(upright)
    for row in rows:
        row.sort(key=lambda w: w["x0"])
        height = max(w["bottom"] - w["top"] for w in row)
        segment: list[Word] = []
        for word in row:
            if segment:
                left, right = segment[-1]["x1"], word["x0"]
                wide = right - left > _COLUMN_GAP_LINE_HEIGHTS * height
                across = right - left > _GUTTER_GAP_LINE_HEIGHTS * height and any(
                    min(right, g1) - max(left, g0) >= _MIN_GUTTER_PT for g0, g1 in gutters
                )
                if wide or across:
                    lines.append(_make_line(segment))
                    segment = []
            segment.append(word)
        lines.append(_make_line(segment))
    return lines


def _gutters_of(words: list[Word]) -> list[tuple[float, float]]:
    """Vertical strips between text columns: x ranges at least :data:`_MIN_GUTTER_PT` wide
    that almost no word crosses, with text on both sides.

    A fixed gap (1.5 line heights) alone misses a gutter narrowed by one long justified line;
    a strip that the words of the whole page leave empty does not.
    """
    if len(words) < _MIN_GUTTER_WORDS:
        return []
    start = int(min(w["x0"] for w in words))
    end = int(max(w["x1"] for w in words)) + 1
    cover = [0] * (end - start + 1)
    for word in words:
        for x in range(int(word["x0"]) - start, int(word["x1"]) - start + 1):
            cover[x] += 1
    limit = 1 + len(words) // 100  # a full-width heading or footer may cross a gutter
    gutters: list[tuple[float, float]] = []
    run_start: int | None = None
    for x, count in enumerate(cover):
        if count <= limit:
            if run_start is None:
                run_start = x
        elif run_start is not None:
            if x - run_start >= _MIN_GUTTER_PT and run_start > 0:
                gutters.append((float(start + run_start), float(start + x)))
            run_start = None
    return gutters


def _make_line(words: list[Word]) -> Line:
    return Line(
        words=words,
        x0=min(w["x0"] for w in words),
        top=min(w["top"] for w in words),
        x1=max(w["x1"] for w in words),
        bottom=max(w["bottom"] for w in words),
    )


def blocks_of(lines: list[Line]) -> list[list[Line]]:
    """Group lines into blocks (paragraphs) by vertical gap, overlap and height."""
    blocks: list[list[Line]] = []
    for line in sorted(lines, key=lambda ln: (ln.top, ln.x0)):
        best: list[Line] | None = None
        best_gap = 0.0
        for block in blocks:
            last = block[-1]
            gap = line.top - last.bottom
            limit = _BLOCK_GAP_LINE_HEIGHTS * max(line.height, last.height)
            ratio = max(line.height, last.height) / min(line.height, last.height)
            overlaps = line.x0 < max(ln.x1 for ln in block) and line.x1 > min(ln.x0 for ln in block)
            fits = -0.5 * line.height <= gap <= limit and overlaps and ratio < _HEIGHT_RATIO_LIMIT
            if fits and (best is None or gap < best_gap):
                best, best_gap = block, gap
        if best is None:
            blocks.append([line])
        else:
            best.append(line)
    return blocks
