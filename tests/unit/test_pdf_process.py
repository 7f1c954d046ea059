"""The driver's progress contract: declare, then processing → completed once per zone, with a
percent that only grows; page ranges; a broken page; cancellation; merging range results."""

from __future__ import annotations

import pytest

from tasks.pdf import (
    CorruptPdf,
    DocumentResult,
    ProcessingCancelled,
    RecordingSink,
    merge_results,
    plan_page_ranges,
    process_document,
)
from tests import pdf_samples
from tests.pdf_samples import assert_sink_contract


@pytest.fixture(scope="module")
def thirty_pages() -> bytes:
    return pdf_samples.many_pages_pdf(30)


@pytest.fixture(scope="module")
def full_run(thirty_pages: bytes) -> tuple[DocumentResult, RecordingSink]:
    sink = RecordingSink()
    return process_document(thirty_pages, sink), sink


def test_every_zone_is_declared_then_processed_then_completed_exactly_once(
    full_run: tuple[DocumentResult, RecordingSink],
) -> None:
    result, sink = full_run
    assert_sink_contract(sink)
    assert len(result.zones) == pdf_samples.expected_zone_count(30)
    assert [z.zone_id for z in sink.declared] == [z.zone_id for z in result.zones]


def test_zones_are_declared_page_by_page_with_each_page_size(
    full_run: tuple[DocumentResult, RecordingSink],
) -> None:
    _, sink = full_run
    declares = sink.of("declare_zones")
    assert [[p.number for p in d["pages"]] for d in declares] == [[n] for n in range(1, 31)]
    # page 15 has a table and a figure: heading, paragraph, table, figure, paragraph
    assert [z.kind for z in declares[14]["zones"]] == ["text", "text", "table", "figure", "text"]
    assert {z.page for z in declares[14]["zones"]} == {15}


def test_progress_names_the_current_operation(
    full_run: tuple[DocumentResult, RecordingSink],
) -> None:
    _, sink = full_run
    operations = [c["operation"] for c in sink.of("set_progress")]
    assert "Detecting zones on page 3/30" in operations
    assert "Extracting table p3-z3" in operations
    assert "Describing figure p5-z3" in operations
    assert operations[-1] == "Finished page 30/30"


def test_counts_by_kind_match_the_generated_document(
    full_run: tuple[DocumentResult, RecordingSink],
) -> None:
    result, _ = full_run
    kinds = [z.kind for z in result.zones]
    assert kinds.count("table") == 10
    assert kinds.count("figure") == 6
    assert all(z.status == "completed" for z in result.zones)
    assert result.zones[-1].text is not None and result.zones[-1].text.startswith("Page 30 ends.")


def test_page_ranges_give_the_same_zones_as_the_whole_document(
    thirty_pages: bytes, full_run: tuple[DocumentResult, RecordingSink]
) -> None:
    # Process the document as three range subtasks (as a Celery chord would), then merge.
    whole, _ = full_run
    parts = []
    for first, last in plan_page_ranges(30, 12):
        sink = RecordingSink()
        part = process_document(thirty_pages, sink, first_page=first, last_page=last)
        assert_sink_contract(sink)
        assert {z.page for z in sink.declared} == set(range(first, last + 1))
        parts.append(part)
    merged = merge_results(list(reversed(parts)))  # arrival order does not matter

    assert [(p.first_page, p.last_page) for p in parts] == [(1, 12), (13, 24), (25, 30)]
    assert [z.model_dump(exclude={"duration_ms"}) for z in merged.zones] == [
        z.model_dump(exclude={"duration_ms"}) for z in whole.zones
    ]
    assert (merged.first_page, merged.last_page, len(merged.pages)) == (1, 30, 30)


def test_overlapping_ranges_do_not_merge(thirty_pages: bytes) -> None:
    a = process_document(thirty_pages, RecordingSink(), first_page=1, last_page=2)
    b = process_document(thirty_pages, RecordingSink(), first_page=2, last_page=3)
    with pytest.raises(ValueError, match="page ranges overlap: 1-2 and 2-3"):
        merge_results([a, b])


def test_a_page_that_fails_to_parse_is_reported_failed_and_the_rest_is_processed() -> None:
    sink = RecordingSink()
    result = process_document(pdf_samples.broken_page_pdf(pages=3, broken=2), sink)

    assert_sink_contract(sink)
    failed = [z for z in result.zones if z.status == "failed"]
    assert [(z.zone_id, z.kind, z.page) for z in failed] == [("p2-z1", "page", 2)]
    assert failed[0].error is not None
    assert failed[0].error.startswith("Page 2 cannot be parsed (IndexError")
    assert [p.status for p in result.pages] == ["ok", "failed", "ok"]
    assert {z.page for z in result.zones if z.status == "completed"} == {1, 3}
    reported = [c for c in sink.of("zone_completed") if c["status"] == "failed"]
    assert [(c["zone_id"], c["tool"], c["error"]) for c in reported] == [
        ("p2-z1", "pdfplumber.page", failed[0].error)
    ]


def test_a_document_whose_pages_all_fail_to_parse_is_corrupt_after_reporting_them() -> None:
    # PDFium opens the file, no page can be built (not even after a qpdf repair): each page is
    # reported failed, then the document is rejected, so the job fails with a reason instead of
    # "completing". The reason is a sentence, not the pages' exception text.
    sink = RecordingSink()
    with pytest.raises(CorruptPdf) as info:
        process_document(pdf_samples.unparsable_pages_pdf(3), sink)
    assert str(info.value) == (
        "The PDF is damaged: none of its 3 pages could be laid out, although the file opens. "
        "Open it in a PDF viewer and save or print it to a new PDF, then upload that file."
    )
    assert [c["status"] for c in sink.of("zone_completed")] == ["failed"] * 3


def test_a_page_tree_pdfminer_cannot_walk_is_repaired_and_processed_with_a_note() -> None:
    # "/Type /Pagex" hides the inherited MediaBox from pdfminer; PDFium reads the file, so it
    # is rewritten by qpdf and processed (it used to fail with every page "cannot be parsed").
    sink = RecordingSink()
    result = process_document(pdf_samples.unreadable_pages_pdf(3), sink)

    assert [p.status for p in result.pages] == ["ok", "ok", "ok"]
    assert len(result.zones) == pdf_samples.expected_zone_count(3)
    assert len(result.notes) == 1
    assert result.notes[0].startswith("The file is damaged (its page tree is malformed")
    assert "repaired automatically (qpdf)" in result.notes[0]


def test_a_zone_whose_extraction_raises_is_reported_failed_and_the_next_zones_continue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No generated table makes pdfplumber raise, so stand in for one that does.
    import tasks.pdf.extract

    def broken_table(zone: object) -> object:
        raise ValueError("cell text cannot be decoded")

    monkeypatch.setattr(tasks.pdf.extract, "extract_table", broken_table)
    sink = RecordingSink()
    result = process_document(pdf_samples.mixed_pdf(), sink)

    assert_sink_contract(sink)
    assert [(z.kind, z.status) for z in result.zones] == [
        ("text", "completed"),
        ("text", "completed"),
        ("table", "failed"),
        ("figure", "completed"),
        ("text", "completed"),
    ]
    assert result.zones[2].error == "ValueError: cell text cannot be decoded"
    failed = [c for c in sink.of("zone_completed") if c["status"] == "failed"]
    assert [(c["zone_id"], c["tool"]) for c in failed] == [("p1-z3", "pdfplumber.table")]


def test_should_stop_cancels_between_zones(thirty_pages: bytes) -> None:
    sink = RecordingSink()
    calls = 0

    def should_stop() -> bool:
        nonlocal calls
        calls += 1
        return calls > 5

    with pytest.raises(ProcessingCancelled):
        process_document(thirty_pages, sink, should_stop=should_stop)
    assert len(sink.of("zone_completed")) == 3  # page 1's zones, then stop before page 2 ends


def test_the_result_survives_a_json_round_trip(
    full_run: tuple[DocumentResult, RecordingSink],
) -> None:
    import json

    result, _ = full_run
    data = json.loads(json.dumps(result.to_dict()))
    assert DocumentResult.from_dict(data) == result


def test_plan_page_ranges_covers_every_page_once() -> None:
    assert plan_page_ranges(5, 2) == [(1, 2), (3, 4), (5, 5)]
    assert plan_page_ranges(4, 10) == [(1, 4)]
    with pytest.raises(ValueError, match="at least 1"):
        plan_page_ranges(0, 3)
