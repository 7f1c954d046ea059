"""Word segmentation: gaps measured against the font size, rotated labels read on their own."""

from __future__ import annotations

from tasks.pdf import RecordingSink, process_document
from tasks.pdf.extract import text_confidence, unmapped_note
from tests import pdf_samples


def test_words_set_closer_than_three_points_in_10pt_type_stay_separate() -> None:
    # A 2.2 pt gap in 10 pt type is a word space (0.22 em); pdfplumber's default 3 pt
    # tolerance ran the whole line into one word.
    result = process_document(pdf_samples.tight_words_pdf(), RecordingSink())

    texts = [z.text for z in result.zones]
    assert texts[0] == " ".join(pdf_samples.TIGHT_WORDS)


def test_letter_spaced_large_type_stays_whole_words() -> None:
    # 1 pt letter spacing in 36 pt type (0.03 em) is not a word break.
    result = process_document(pdf_samples.tight_words_pdf(), RecordingSink())

    assert result.zones[1].text == "Spaced Heading"


def test_even_a_tighter_gap_of_0_17_em_splits_words_in_small_type() -> None:
    result = process_document(pdf_samples.tight_words_pdf(size=6, gap_em=0.17), RecordingSink())

    assert result.zones[0].text == " ".join(pdf_samples.TIGHT_WORDS)


def test_a_rotated_label_beside_a_paragraph_does_not_interleave_its_lines() -> None:
    result = process_document(pdf_samples.rotated_label_pdf(), RecordingSink())

    texts = [z.text or "" for z in result.zones]
    body = " ".join(t for t in texts if "Zones" in t).split()
    assert body == (pdf_samples.PARAGRAPHS[0] + " " + pdf_samples.PARAGRAPHS[1]).split()
    assert "Transistors (millions)" in texts


def test_dropped_glyphs_count_against_the_confidence() -> None:
    assert text_confidence("abcd") == 1.0
    assert text_confidence("abc", unmapped=1) == 0.75
    assert text_confidence("", unmapped=2) == 0.0
    assert unmapped_note(1) == "1 glyph without a Unicode mapping dropped"
    assert unmapped_note(3) == "3 glyphs without a Unicode mapping dropped"


def test_three_columns_with_offset_baselines_are_read_column_by_column() -> None:
    # Baselines offset by 4 and 2 pt chained each column's line to the next line of the
    # column beside it (words interleaved), and a justified line 8 pt from the next column
    # joined the two columns' lines.
    result = process_document(pdf_samples.three_column_pdf(), RecordingSink())

    assert [z.text for z in result.zones] == ["\n".join(c) for c in pdf_samples.THREE_COLUMNS]
