"""Which ruled grids are tables: a grid must hold words in rows and columns and cut none.

pdfplumber's ``find_tables()`` (its default "lines" strategy) finds every grid drawn with rules,
and most are not tables. :func:`table_verdict` checks each against the page's words: it is a
table only when it has at least two rows and two columns, at least :data:`MIN_TABLE_FILL` of
its cells hold a word, and no rule cuts through a word. A grid of mostly empty cells is a chart
(bars, axes, gridlines) and becomes a *figure* zone holding its labels; a grid that cuts words
(a rule or box drawn across a text column) or has a single row or column (a frame around text,
a UML class box) is not a table, and its words stay text.
"""

from __future__ import annotations

import collections
from typing import Literal

from pdfplumber.table import Table

from .geometry import bbox_of, contains
from .words import Word

__all__ = ["MIN_TABLE_FILL", "table_verdict"]

#: A table needs at least this share of its cells to hold a word; emptier grids are charts.
MIN_TABLE_FILL = 0.4
#: A word may reach this far (points) past its cell's side before the rule counts as cutting it.
_CUT_WORD_PT = 1.5


def table_verdict(table: Table, words: list[Word]) -> Literal["table", "figure", "text"]:
    """Whether a ruled grid is a table, a chart (a figure) or lines around text.

    A word belongs to the cell holding its centre; it is *cut* when it reaches more than
    :data:`_CUT_WORD_PT` past that cell's left or right edge (or more than a third of its
    height past the top or bottom): a real table's rules run between words, never through one.
    A table also needs two rows and two columns with at least two filled cells each, so two
    framed boxes that touch (UML classes) are not a 2×2 table.
    """
    grid = [
        (i, j, bbox_of(cell))
        for i, row in enumerate(table.rows)
        for j, cell in enumerate(row.cells)
        if cell is not None
    ]
    filled: set[tuple[int, int]] = set()
    for word in words:
        cx, cy = (word["x0"] + word["x1"]) / 2, (word["top"] + word["bottom"]) / 2
        found = next(((i, j, c) for i, j, c in grid if contains(c, cx, cy)), None)
        if found is None:
            continue
        i, j, cell = found
        filled.add((i, j))
        slack = (word["bottom"] - word["top"]) / 3
        if (
            word["x0"] < cell[0] - _CUT_WORD_PT
            or word["x1"] > cell[2] + _CUT_WORD_PT
            or word["top"] < cell[1] - slack
            or word["bottom"] > cell[3] + slack
        ):
            return "text"
    if len(filled) < MIN_TABLE_FILL * max(len(grid), 1):
        return "figure" if len(grid) >= 4 else "text"
    rows = collections.Counter(i for i, _ in filled)
    columns = collections.Counter(j for _, j in filled)
    if sum(n >= 2 for n in rows.values()) < 2 or sum(n >= 2 for n in columns.values()) < 2:
        return "text"
    return "table"
