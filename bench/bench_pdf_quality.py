"""Text quality of process_document against PDFium's own text, old extraction beside new.

    .venv/bin/python bench/bench_pdf_quality.py                  # every CORPUS document
    .venv/bin/python bench/bench_pdf_quality.py --docs hotos17 --max-pages 0   # all pages
    .venv/bin/python bench/bench_pdf_quality.py --baseline main --json out.json
    .venv/bin/python bench/bench_pdf_quality.py --max-pages 1 --zones    # + tables, (cid:N)

The corpus is :data:`tests.real_pdfs.CORPUS`: real PDFs written by others, fetched from PyPI
sdists and Debian documentation packages on first use and cached outside the repository
(``~/.cache/progress-bridge/real_pdfs``). Nothing is committed.

For each page, the **reference** is PDFium's text of that page (pypdfium2's
``PdfTextPage.get_text_range()``), split on whitespace; the **extraction** is every word of the
page's zones in a :class:`~tasks.pdf.result.DocumentResult` (text blocks, table cells, text over
figures), split the same way. Both are compared as bags of words per page:

* precision = matched / extracted words, recall = matched / reference words, F1 their harmonic
  mean (summed over the pages before dividing);
* **merged** = extracted words that are not reference words but are two or more consecutive
  reference words run together (``primarilyalgebraic…``), as a share of the extracted words;
* **order** = share of the reference's adjacent word pairs that are also adjacent in the
  extraction (a reading-order proxy: a page read across two columns line by line scores low).

Before comparing, both sides are folded the same way: Unicode NFKC (ligatures), typographic
quotes and dashes to ASCII, PDFium's end-of-line hyphen marker (U+FFFE) to a hyphen and a line
break (PDFium joins a word hyphenated at a line end; the page shows two parts), and tokens
without a letter or digit (leader dots, rules, lone punctuation) left out: PDFium splits a dot
leader into single dots on some pages and not on others. The folding keeps the measure about
word boundaries: pdfminer maps some glyphs of fonts without a ToUnicode map differently from
PDFium (TeX's OT1 quotes), which no spacing rule can change.

The **old** extraction is the ``tasks/pdf`` package of ``--baseline`` (a git revision, by default
the commit before this benchmark was written), exported with ``git archive`` into a temporary
directory and imported as a separate package, so both run in the same process on the same pages.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import io
import itertools
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pypdfium2 as pdfium  # noqa: E402

import tasks.pdf as new_pdf  # noqa: E402
from tests.real_pdfs import CACHE_DIR, CORPUS, corpus_pdf  # noqa: E402

#: main before issue 12's fixes: x_tolerance=3, lines-only tables, no OCR, no repair.
DEFAULT_BASELINE = "e697c7e"
_FOLD = str.maketrans(
    {
        "\ufffe": "- ",
        "\u00ad": "-",
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u00b4": "'",
        "`": "'",
    }
)


def fold(text: str) -> list[str]:
    """Words of ``text`` as the comparison sees them (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text).translate(_FOLD)
    text = "".join(c if c.isprintable() or c.isspace() else " " for c in text)
    return [word for word in text.split() if any(c.isalnum() for c in word)]


@dataclass
class Score:
    pages: int = 0
    extracted: int = 0
    reference: int = 0
    matched: int = 0
    merged: int = 0
    pairs: int = 0
    pairs_kept: int = 0
    seconds: float = 0.0
    examples: list[str] = field(default_factory=list)

    def add_page(self, extracted: list[str], reference: list[str]) -> None:
        self.pages += 1
        self.extracted += len(extracted)
        self.reference += len(reference)
        common = collections.Counter(extracted) & collections.Counter(reference)
        self.matched += sum(common.values())
        leftover = collections.Counter(extracted) - collections.Counter(reference)
        positions: dict[str, list[int]] = collections.defaultdict(list)
        for i, word in enumerate(reference):
            positions[word].append(i)
        for word, count in leftover.items():
            if _is_merged(word, reference, positions):
                self.merged += count
                if len(self.examples) < 5:
                    self.examples.append(word)
        ref_pairs = collections.Counter(itertools.pairwise(reference))
        ext_pairs = collections.Counter(itertools.pairwise(extracted))
        self.pairs += sum(ref_pairs.values())
        self.pairs_kept += sum((ref_pairs & ext_pairs).values())

    @property
    def precision(self) -> float:
        return self.matched / self.extracted if self.extracted else 0.0

    @property
    def recall(self) -> float:
        return self.matched / self.reference if self.reference else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def merged_rate(self) -> float:
        return self.merged / self.extracted if self.extracted else 0.0

    @property
    def order(self) -> float:
        return self.pairs_kept / self.pairs if self.pairs else 0.0


def _is_merged(word: str, reference: list[str], positions: dict[str, list[int]]) -> bool:
    """True when ``word`` is two or more consecutive reference words without the spaces."""
    for cut in range(1, len(word)):
        for start in positions.get(word[:cut], ()):
            joined, j = word[:cut], start + 1
            while j < len(reference) and len(joined) < len(word):
                nxt = reference[j]
                if not word.startswith(nxt, len(joined)):
                    break
                joined += nxt
                j += 1
            if joined == word and j - start >= 2:
                return True
    return False


def result_words(result: Any) -> list[str]:
    """Every word the result holds, zones in reading order (text, table cells, figure text)."""
    words: list[str] = []
    for zone in result.zones:
        if zone.rows:
            for row in zone.rows:
                for cell in row:
                    words += fold(cell)
        if zone.text:
            words += fold(zone.text)
    return words


def reference_words(path: Path) -> list[list[str]]:
    doc = pdfium.PdfDocument(str(path))
    try:
        pages = []
        for index in range(len(doc)):
            page = doc[index]
            textpage = page.get_textpage()
            pages.append(fold(textpage.get_text_range()))
            textpage.close()
            page.close()
        return pages
    finally:
        doc.close()


def load_baseline(revision: str, workdir: Path) -> ModuleType:
    """``tasks/pdf`` at ``revision`` as an importable package named ``baseline_pdf``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "tasks/pdf"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(workdir, filter="data")
    (workdir / "tasks" / "pdf").rename(workdir / "baseline_pdf")
    sys.path.insert(0, str(workdir))
    return importlib.import_module("baseline_pdf")


def sample_pages(count: int, limit: int) -> list[int]:
    """``limit`` pages spread evenly over the document (all when ``limit`` is 0 or enough)."""
    if limit <= 0 or count <= limit:
        return list(range(1, count + 1))
    step = count / limit
    return sorted({int(i * step) + 1 for i in range(limit)})


def score(
    process: Callable[..., Any], path: Path, pages: Iterable[int], reference: list[list[str]]
) -> Score:
    result = Score()
    data = path.read_bytes()
    sink = new_pdf.NullSink()
    for number in pages:
        started = time.perf_counter()
        doc_result = process(data, sink, first_page=number, last_page=number)
        result.seconds += time.perf_counter() - started
        result.add_page(result_words(doc_result), reference[number - 1])
    return result


def zone_counts(process: Callable[..., Any], path: Path) -> dict[str, int]:
    """What the whole document's zones hold beyond words: tables, charts, unmapped glyphs."""
    result = process(path.read_bytes(), new_pdf.NullSink())
    tables = [z for z in result.zones if z.kind == "table"]
    figures = [z.figure for z in result.zones if z.kind == "figure"]
    texts = [z.text or "" for z in result.zones]
    texts += [c for z in tables for row in z.rows or [] for c in row]
    return {
        "tables": len(tables),
        "weak_tables": sum(1 for z in tables if (z.confidence or 0) <= 0.5),
        "drawings": sum(1 for f in figures if f is not None and f.pixel_width is None),
        "cid": sum(t.count("(cid:") for t in texts),
        "noted": sum(
            1 for z in result.zones if any("Unicode" in n for n in getattr(z, "notes", []))
        ),
    }


def _row(name: str, label: str, s: Score) -> str:
    per_page = 1000 * s.seconds / max(s.pages, 1)
    return (
        f"| {name} | {label} | {s.pages} | {s.extracted:,} | {s.reference:,} | "
        f"{s.precision:.3f} | {s.recall:.3f} | {s.f1:.3f} | {100 * s.merged_rate:.2f} % | "
        f"{s.order:.3f} | {per_page:.0f} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", nargs="*", help="CORPUS names (default: all)")
    parser.add_argument(
        "--max-pages", type=int, default=40, help="pages per document, spread evenly; 0: all"
    )
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="git revision of 'old'")
    parser.add_argument("--no-baseline", action="store_true", help="measure the new code only")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--zones",
        action="store_true",
        help="also count table zones, chart figures and (cid:N) placeholders per document",
    )
    args = parser.parse_args(argv)

    docs = [d for d in CORPUS if not args.docs or d.name in args.docs]
    started = datetime.now(UTC)
    print(f"# PDF text quality, {started:%Y-%m-%d %H:%M} UTC, {platform.node()}")
    print(f"# {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; cache {CACHE_DIR}")
    with tempfile.TemporaryDirectory() as tmp:
        old_pdf = None if args.no_baseline else load_baseline(args.baseline, Path(tmp))
        print(
            "\n| document | code | pages | words | PDFium words | precision | recall | F1 "
            "| merged | order | ms/page |"
        )
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        figures: list[dict[str, Any]] = []
        runs: list[tuple[str, Callable[..., Any]]] = [("new", new_pdf.process_document)]
        if old_pdf is not None:
            runs.insert(0, (f"old ({args.baseline})", old_pdf.process_document))
        for doc in docs:
            path = corpus_pdf(doc.name)
            reference = reference_words(path)
            pages = sample_pages(len(reference), args.max_pages)
            for label, process in runs:
                s = score(process, path, pages, reference)
                print(_row(doc.name, label, s), flush=True)
                entry = {"document": doc.name, "kind": doc.kind, "code": label}
                figures.append(entry | asdict(s) | {"f1": s.f1, "merged_rate": s.merged_rate})
        if args.zones:
            print(
                "\n| document | code | table zones | of them confidence ≤ 0.5 "
                "| drawing figures | `(cid:` in text | zones noting dropped glyphs |"
            )
            print("|---|---|---:|---:|---:|---:|---:|")
            for doc in docs:
                for label, process in runs:
                    c = zone_counts(process, corpus_pdf(doc.name))
                    print(
                        f"| {doc.name} | {label} | {c['tables']} | {c['weak_tables']} | "
                        f"{c['drawings']} | {c['cid']} | {c['noted']} |",
                        flush=True,
                    )
        for entry in figures:
            if entry["examples"]:
                print(f"# {entry['document']} {entry['code']} merged e.g.: {entry['examples']}")
        if args.json:
            args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
