"""Display names of uploads: the client's file name is never a path."""

from __future__ import annotations

import pytest

from web.uploads import DISPLAY_NAME_CHARS, display_name


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\Q3 report.pdf", "Q3 report.pdf"),
        ("/abs/dir/", "document.pdf"),
        ("a\x00b\r\nc.pdf", "abc.pdf"),
        ("  spaced \t name .pdf ", "spaced name .pdf"),
        (".hidden.pdf", "hidden.pdf"),
        ("....", "document.pdf"),
        ("", "document.pdf"),
        (None, "document.pdf"),
        ("inv\u202eoice.pdf", "invoice.pdf"),
    ],
)
def test_display_name_keeps_only_a_safe_last_component(raw: str | None, shown: str) -> None:
    assert display_name(raw) == shown


def test_a_long_display_name_is_cut_keeping_its_extension() -> None:
    name = display_name("x" * 500 + ".pdf")
    assert len(name) == DISPLAY_NAME_CHARS
    assert name.endswith("x.pdf")
