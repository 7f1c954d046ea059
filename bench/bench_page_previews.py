"""What page previews cost a job: each page drawn once (PDFium, JPEG) and its zones written.

    .venv/bin/python bench/bench_page_previews.py           # CORPUS documents, 40 pages each
    .venv/bin/python bench/bench_page_previews.py --docs gnuplot-manual --max-pages 0 --repeat 3

For each real document (:data:`tests.real_pdfs.CORPUS`, fetched once and cached outside the
repository) and page range (the first ``--max-pages`` pages, as one Celery task processes them),
``process_document`` runs without previews and with :class:`tasks.pdf.preview.PagePreviews`
writing to a temporary directory, alternately, ``--repeat`` times each; the median of each is
kept. Inside the runs with previews, the time spent drawing and encoding each page
(``page_opened``) and writing its zones (``page_finished``) is measured on its own, with the
image sizes. CPU time is reported beside wall time: the machine is shared, and CPU time is the
steadier of the two.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tasks.pdf import NullSink, PdfDocument, open_document, process_document  # noqa: E402
from tasks.pdf.preview import PagePreviews  # noqa: E402
from tasks.pdf.result import PageResult, ZoneResult  # noqa: E402
from tests.real_pdfs import CORPUS, corpus_pdf  # noqa: E402


class TimedPreviews(PagePreviews):
    """PagePreviews that times its two calls and records each image's size."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.render_s: list[float] = []
        self.write_s: list[float] = []
        self.image_bytes: list[int] = []

    def page_opened(self, doc: PdfDocument, page: PageResult) -> None:
        started = time.perf_counter()
        super().page_opened(doc, page)
        self.render_s.append(time.perf_counter() - started)

    def page_finished(self, page: PageResult, zones: Sequence[ZoneResult]) -> None:
        started = time.perf_counter()
        super().page_finished(page, zones)
        self.write_s.append(time.perf_counter() - started)


def run(data: bytes, last: int, previews: bool) -> tuple[float, float, TimedPreviews | None]:
    with tempfile.TemporaryDirectory() as tmp:
        observer = TimedPreviews(Path(tmp)) if previews else None
        started, cpu = time.perf_counter(), time.process_time()
        if observer is None:
            process_document(data, NullSink(), last_page=last, ocr=None)
        else:
            with observer:
                process_document(data, NullSink(), last_page=last, ocr=None, observer=observer)
            observer.image_bytes = [p.stat().st_size for p in Path(tmp).glob("*.jpg")]
        return time.perf_counter() - started, time.process_time() - cpu, observer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", nargs="*", default=[d.name for d in CORPUS])
    parser.add_argument("--max-pages", type=int, default=40, help="0: every page")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}; median of {args.repeat} runs each")
    print(
        "| document | pages | analysis ms/page (wall, CPU) | with previews ms/page (wall, CPU) "
        "| draw+encode ms/page (median, max) | zones write ms/page | image kB (mean, max) "
        "| overhead (CPU) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.docs:
        data = corpus_pdf(name).read_bytes()
        with open_document(data, max_pages=10_000) as doc:
            count = doc.page_count
        last = count if args.max_pages == 0 else min(count, args.max_pages)
        plain: list[tuple[float, float]] = []
        timed: list[tuple[float, float]] = []
        renders: list[float] = []
        writes: list[float] = []
        sizes: list[int] = []
        for _ in range(args.repeat):
            wall, cpu, _ = run(data, last, previews=False)
            plain.append((wall, cpu))
            wall, cpu, observer = run(data, last, previews=True)
            timed.append((wall, cpu))
            assert observer is not None
            renders += observer.render_s
            writes += observer.write_s
            sizes = observer.image_bytes
        base_wall = statistics.median(w for w, _ in plain) * 1000 / last
        base_cpu = statistics.median(c for _, c in plain) * 1000 / last
        with_wall = statistics.median(w for w, _ in timed) * 1000 / last
        with_cpu = statistics.median(c for _, c in timed) * 1000 / last
        render_ms = statistics.median(renders) * 1000
        share = statistics.mean(renders) * 1000 / base_wall
        print(
            f"| {name} | {last} | {base_wall:.1f}, {base_cpu:.1f} | {with_wall:.1f}, "
            f"{with_cpu:.1f} | {render_ms:.1f}, {max(renders) * 1000:.1f} | "
            f"{statistics.median(writes) * 1000:.2f} | "
            f"{statistics.mean(sizes) / 1000:.0f}, {max(sizes) / 1000:.0f} | "
            f"{100 * (with_cpu - base_cpu) / base_cpu:+.1f} % (draw {100 * share:.1f} % of wall) |"
        )


if __name__ == "__main__":
    main()
