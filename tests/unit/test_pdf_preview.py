"""Page previews: each page drawn once, small and bounded, before its zones are declared; each
page's zone results written when it finishes; a preview problem never fails the job."""

from __future__ import annotations

import io
import logging
import random
from collections.abc import Sequence
from pathlib import Path

import pytest
from PIL import Image

from progress_bridge.events import PageInfo, ZoneInfo
from tasks.pdf import DocumentResult, RecordingSink, process_document
from tasks.pdf.preview import (
    PREVIEW_MAX_BYTES,
    PREVIEW_MAX_HEIGHT_PX,
    PREVIEW_WIDTH_PX,
    PagePreviews,
    PreviewFiles,
    encode_preview,
    preview_scale,
    zone_page,
)
from tasks.pdf.zones import page_zone_id
from tests import pdf_samples

PAGES = 6


class ImageCheckingSink(RecordingSink):
    """Records, at each page's declaration, whether that page's image was on disk already."""

    def __init__(self, files: PreviewFiles) -> None:
        super().__init__()
        self.files = files
        self.image_at_declare: dict[int, bool] = {}

    def declare_zones(self, zones: Sequence[ZoneInfo], pages: Sequence[PageInfo] = ()) -> None:
        for page in pages:
            self.image_at_declare[page.number] = self.files.image(page.number).is_file()
        super().declare_zones(zones, pages)


def run(data: bytes, directory: Path) -> tuple[DocumentResult, ImageCheckingSink]:
    previews = PagePreviews(directory)
    sink = ImageCheckingSink(previews.files)
    with previews:
        result = process_document(data, sink, observer=previews)
    return result, sink


@pytest.fixture(scope="module")
def six_pages(tmp_path_factory: pytest.TempPathFactory) -> tuple[DocumentResult, Path]:
    directory = tmp_path_factory.mktemp("previews")
    result, sink = run(pdf_samples.many_pages_pdf(PAGES), directory)
    # Every page's image existed before the page's zones were declared.
    assert sink.image_at_declare == dict.fromkeys(range(1, PAGES + 1), True)
    return result, directory


def test_each_page_is_drawn_small_as_a_jpeg_of_bounded_size(
    six_pages: tuple[DocumentResult, Path],
) -> None:
    _, directory = six_pages
    files = PreviewFiles(directory)
    for number in range(1, PAGES + 1):
        data = files.image(number).read_bytes()
        assert 0 < len(data) <= PREVIEW_MAX_BYTES
        image = Image.open(io.BytesIO(data))
        assert image.format == "JPEG"
        # A4 (595 × 842 pt) at 320 px wide keeps its aspect ratio.
        assert image.size == (PREVIEW_WIDTH_PX, round(842 * PREVIEW_WIDTH_PX / 595))
    assert sorted(p.name for p in directory.iterdir()) == [
        f"page-{n:05d}.{ext}" for n in range(1, PAGES + 1) for ext in ("jpg", "json")
    ]


def test_the_image_shows_the_page_where_its_zones_are(
    six_pages: tuple[DocumentResult, Path],
) -> None:
    result, directory = six_pages
    image = Image.open(PreviewFiles(directory).image(1)).convert("L")
    scale = image.width / result.pages[0].width
    heading = next(z for z in result.zones if z.page == 1)
    x0, top, x1, bottom = (round(v * scale) for v in heading.bbox)
    # Ink inside the heading's box; white paper in the margin left of it.
    darkest_in_box = image.crop((x0, top, x1 + 1, bottom + 1)).getextrema()[0]
    darkest_in_margin = image.crop((0, top, max(1, x0 - 4), bottom + 1)).getextrema()[0]
    assert isinstance(darkest_in_box, int) and isinstance(darkest_in_margin, int)
    assert darkest_in_box < 100
    assert darkest_in_margin > 200


def test_each_pages_zone_results_are_written_when_it_finishes(
    six_pages: tuple[DocumentResult, Path],
) -> None:
    result, directory = six_pages
    files = PreviewFiles(directory)
    for page in result.pages:
        details = files.read_details(page.number)
        assert details is not None
        assert details.page == page
        assert details.zones == [z for z in result.zones if z.page == page.number]
    table = next(z for z in result.zones if z.kind == "table")
    details = files.read_details(table.page)
    assert details is not None
    found = details.zone(table.zone_id)
    assert found is not None
    assert found.rows == table.rows
    assert found.rows and found.rows[0] == ["0.0", "0.1", "0.2"]
    assert details.zone("p99-z1") is None
    assert files.read_details(PAGES + 1) is None


def test_a_page_that_cannot_be_parsed_gets_no_image_but_its_failed_zone_is_written(
    tmp_path: Path,
) -> None:
    result, sink = run(pdf_samples.broken_page_pdf(pages=3, broken=2), tmp_path)
    files = PreviewFiles(tmp_path)
    assert [p.status for p in result.pages] == ["ok", "failed", "ok"]
    assert sink.image_at_declare == {1: True, 2: False, 3: True}
    assert not files.image(2).exists()
    details = files.read_details(2)
    assert details is not None
    assert [(z.kind, z.status) for z in details.zones] == [("page", "failed")]
    assert details.zones[0].error == result.pages[1].error


def test_a_page_range_writes_only_its_own_pages(tmp_path: Path) -> None:
    previews = PagePreviews(tmp_path)
    with previews:
        process_document(
            pdf_samples.many_pages_pdf(PAGES), RecordingSink(), first_page=3, last_page=4,
            observer=previews,
        )  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "page-00003.jpg",
        "page-00003.json",
        "page-00004.jpg",
        "page-00004.json",
    ]


def test_a_page_is_drawn_once_even_when_its_task_runs_again(tmp_path: Path) -> None:
    data = pdf_samples.many_pages_pdf(2)
    run(data, tmp_path)
    image = PreviewFiles(tmp_path).image(1)
    image.write_bytes(b"drawn by the first run")
    run(data, tmp_path)
    assert image.read_bytes() == b"drawn by the first run"


def test_previews_that_cannot_be_written_do_not_fail_the_job(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The preview directory's place is taken by a file: every write fails.
    blocked = tmp_path / "previews"
    blocked.write_text("not a directory")
    with caplog.at_level(logging.WARNING, logger="tasks.pdf.preview"):
        result, sink = run(pdf_samples.many_pages_pdf(2), blocked)
    assert [p.status for p in result.pages] == ["ok", "ok"]
    assert {z.status for z in result.zones} == {"completed"}
    assert len(sink.of("zone_completed")) == len(result.zones)
    assert "could not write page-00001.jpg" in caplog.text


def test_scale_gives_the_preview_width_and_caps_tall_pages() -> None:
    assert preview_scale(612, 792) * 612 == pytest.approx(PREVIEW_WIDTH_PX)
    assert preview_scale(842, 595) * 842 == pytest.approx(PREVIEW_WIDTH_PX)  # landscape
    # A receipt 20 times as tall as it is wide: capped in height, narrower.
    scale = preview_scale(200, 4000)
    assert scale * 4000 == pytest.approx(PREVIEW_MAX_HEIGHT_PX)
    assert scale * 200 < PREVIEW_WIDTH_PX


def test_encoding_lowers_the_quality_to_fit_and_gives_up_past_the_bound() -> None:
    rng = random.Random(7)

    def noise(width: int, height: int) -> Image.Image:
        return Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))

    small = encode_preview(Image.new("RGB", (320, 414), "white"))
    assert small is not None
    assert small.startswith(b"\xff\xd8")  # JPEG
    # Noise at the largest size: fits only at the lower quality.
    fitted = encode_preview(noise(PREVIEW_WIDTH_PX, 200))
    assert fitted is not None
    assert len(fitted) <= PREVIEW_MAX_BYTES
    # Far larger than any preview: does not fit at all.
    assert encode_preview(noise(1000, 1000)) is None


def test_zone_ids_name_their_page() -> None:
    assert zone_page(page_zone_id(12, 3)) == 12
    assert zone_page(page_zone_id(1, 1)) == 1
    for other in ("z1", "p0-z1", "p01-z1", "p1-z", "p1-z1/..", "../p1-z1", "p1-z1 ", ""):
        assert zone_page(other) is None, other


def test_preview_file_names_come_from_page_numbers_only(tmp_path: Path) -> None:
    files = PreviewFiles(tmp_path)
    assert files.image(7) == tmp_path / "page-00007.jpg"
    for bad in (0, -1, True):
        with pytest.raises(ValueError, match="not a page number"):
            files.image(bad)
