"""PDF processing benchmarks: throughput of process_document, and the library comparison.

    .venv/bin/python bench/bench_pdf.py                   # runners on a generated 100-page PDF
    .venv/bin/python bench/bench_pdf.py --libraries       # pdfplumber vs pypdfium2, incl. real PDFs
    .venv/bin/python bench/bench_pdf.py --pages 300 --repeat 5

A *runner* takes the PDF's bytes and returns what it did; :data:`RUNNERS` maps names to runners.
The Celery comparison (one task vs. a chord of page ranges on 2 workers) is meant to be added
there as two more runners once the task base exists; each only has to return a ``Run``.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pdfplumber  # noqa: E402
import pypdfium2 as pdfium  # noqa: E402

from progress_bridge.events import PageInfo, ZoneInfo  # noqa: E402
from tasks.pdf import NullSink, plan_page_ranges, process_document  # noqa: E402
from tests.pdf_samples import many_pages_pdf  # noqa: E402


@dataclass
class Run:
    pages: int
    zones: int
    zone_events: int  # zone_processing + zone_completed
    sink_calls: int  # every call, including declare_zones and set_progress
    seconds: float
    cpu_seconds: float = 0.0


class CountingSink(NullSink):
    """A no-op sink that counts calls (counting costs about as much as a no-op)."""

    def __init__(self) -> None:
        self.zone_events = 0
        self.calls = 0

    def declare_zones(self, zones: Sequence[ZoneInfo], pages: Sequence[PageInfo] = ()) -> None:
        self.calls += 1

    def zone_processing(self, zone_id: str, *, tool: str) -> None:
        self.calls += 1
        self.zone_events += 1

    def zone_completed(self, zone_id: str, *, tool: str, **_: object) -> None:
        self.calls += 1
        self.zone_events += 1

    def set_progress(self, percent: float | None = None, *, operation: str | None = None) -> None:
        self.calls += 1


def run_single(data: bytes) -> Run:
    """The whole document in one process_document call (what one Celery task does)."""
    sink = CountingSink()
    started, cpu_started = time.perf_counter(), time.process_time()
    result = process_document(data, sink)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return Run(len(result.pages), len(result.zones), sink.zone_events, sink.calls, seconds, cpu)


def run_ranges_sequential(data: bytes, pages_per_task: int = 25) -> Run:
    """Page-range subtasks run one after the other: the splitting overhead, without workers."""
    sink = CountingSink()
    started, cpu_started = time.perf_counter(), time.process_time()
    with pdfium.PdfDocument(data) as doc:
        page_count = len(doc)
    pages = zones = 0
    for first, last in plan_page_ranges(page_count, pages_per_task):
        part = process_document(data, sink, first_page=first, last_page=last)
        pages += len(part.pages)
        zones += len(part.zones)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return Run(pages, zones, sink.zone_events, sink.calls, seconds, cpu)


RUNNERS: dict[str, Callable[[bytes], Run]] = {
    "single": run_single,
    "ranges-of-25-sequential": run_ranges_sequential,
    # "celery-single-task": ..., "celery-chord-2-workers": ...  (to come with the task base)
}


def bench_runners(data: bytes, repeat: int, names: Sequence[str]) -> None:
    print("Wall-clock rates, and pages per CPU-second (steadier on a shared machine).")
    print(
        "| runner | pages | zones | pages/s | zone events/s | sink calls/s | wall s | pages/CPU-s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in names:
        runs = [RUNNERS[name](data) for _ in range(repeat)]
        run = sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]
        s = run.seconds
        print(
            f"| {name} | {run.pages} | {run.zones} | {run.pages / s:.1f} | "
            f"{run.zone_events / s:.0f} | {run.sink_calls / s:.0f} | {s:.2f} | "
            f"{run.pages / run.cpu_seconds:.1f} |"
        )


def _median_seconds(fn: Callable[[bytes], object], data: bytes, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn(data)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_libraries(documents: dict[str, bytes], repeat: int) -> None:
    """Open+count, plain text of every page, and (pdfplumber only) words+tables+images."""

    def pdfium_open(data: bytes) -> int:
        with pdfium.PdfDocument(data) as doc:
            return len(doc)

    def plumber_open(data: bytes) -> int:
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            return len(pdf.pages)

    def pdfium_text(data: bytes) -> int:
        chars = 0
        with pdfium.PdfDocument(data) as doc:
            for page in doc:
                textpage = page.get_textpage()
                chars += len(textpage.get_text_range())
                textpage.close()
                page.close()
        return chars

    def plumber_text(data: bytes) -> int:
        chars = 0
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            for page in pdf.pages:
                chars += len(page.extract_text())
                page.close()
        return chars

    def plumber_layout(data: bytes) -> int:
        found = 0
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            for page in pdf.pages:
                found += len(page.extract_words()) + len(page.find_tables()) + len(page.images)
                page.close()
        return found

    def process(data: bytes) -> int:
        return len(process_document(data, NullSink()).zones)

    print(
        "| document | pages | pdfium open | plumber open | pdfium text | plumber text | "
        "plumber words+tables+images | process_document |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, data in documents.items():
        pages = pdfium_open(data)
        cells = [
            _median_seconds(pdfium_open, data, repeat),
            _median_seconds(plumber_open, data, repeat),
            _median_seconds(pdfium_text, data, repeat),
            _median_seconds(plumber_text, data, repeat),
            _median_seconds(plumber_layout, data, repeat),
            _median_seconds(process, data, repeat),
        ]
        print(f"| {name} | {pages} | " + " | ".join(f"{c * 1000:.1f} ms" for c in cells) + " |")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=100, help="pages of the generated document")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median shown)")
    parser.add_argument("--runner", action="append", choices=sorted(RUNNERS), help="default: all")
    parser.add_argument("--libraries", action="store_true", help="compare pdfplumber/pypdfium2")
    args = parser.parse_args(argv)

    data = many_pages_pdf(args.pages)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        f"load average {load}; generated {args.pages}-page PDF, {len(data) / 1024:.0f} KiB; "
        f"median of {args.repeat}"
    )
    if args.libraries:
        from tests.real_pdfs import pypdf_resources

        resources = pypdf_resources()
        documents = {f"generated {args.pages} pages": data}
        for name in (
            "GeoBase_NHNC1_Data_Model_UML_EN.pdf",
            "Seige_of_Vicksburg_Sample_OCR.pdf",
            "pdflatex-outline.pdf",
            "SF424_page2.pdf",
        ):
            documents[f"pypdf {name}"] = (resources / name).read_bytes()
        bench_libraries(documents, args.repeat)
    else:
        bench_runners(data, args.repeat, args.runner or list(RUNNERS))


if __name__ == "__main__":
    main()
