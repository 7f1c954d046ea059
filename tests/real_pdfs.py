"""Real-world PDFs written by others, fetched at test time from public packages and cached.

``pip download --no-binary :all: --no-deps pypdf==PYPDF_VERSION`` gives pypdf's source archive,
whose ``resources/`` holds 70+ PDFs (ruled tables, a government form, OCR scans, files encrypted
with passwords its tests name). Other sdists and a few Debian documentation packages (fetched
with ``apt-get download``) hold papers, manuals and generated references: :data:`CORPUS` names
the ones the quality benchmark and the table tests use. Everything is cached outside the
repository, under ``$PROGRESS_PDF_CACHE`` (default ``~/.cache/progress-bridge/real_pdfs``), so
nothing is committed and CI runs on the same machine reuse it. Versions are pinned so the
assertions stay true. pikepdf's sdist (``tests/resources/``: malformed fuzz files, image-only
pages) costs about 75 s to download the first time (pip builds its metadata), so the tests do
not use it.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from tests.missing import missing

__all__ = [
    "CACHE_DIR",
    "CORPUS",
    "PYPDF_VERSION",
    "CorpusPdf",
    "DownloadFailed",
    "corpus_pdf",
    "corpus_pdf_or_skip",
    "debian_files",
    "pypdf_resources",
    "pypdf_resources_or_skip",
    "sdist_pdfs",
]

CACHE_DIR = Path(
    os.environ.get("PROGRESS_PDF_CACHE") or Path.home() / ".cache" / "progress-bridge" / "real_pdfs"
)
PYPDF_VERSION = "5.4.0"
_DOWNLOAD_TIMEOUT_S = 300


class DownloadFailed(RuntimeError):
    """pip or apt could not fetch the package (no registry access); tests skip with this reason."""


@dataclass(frozen=True)
class CorpusPdf:
    """One real PDF: where it comes from and what kind of document it is.

    ``package`` is ``pypi:NAME==VERSION`` (an sdist) or ``debian:NAME`` (a ``.deb``; the
    version is whatever the configured Debian release serves, recorded by the benchmark).
    ``member`` is the file's path inside the archive; a ``.gz`` member is decompressed.
    """

    name: str
    kind: str
    package: str
    member: str


#: The documents of the quality benchmark (``bench/bench_pdf_quality.py``).
CORPUS = [
    CorpusPdf(
        "naacl06-shinyama",
        "two-column paper, tables and figures",
        "pypi:pdfminer==20191125",
        "pdfminer-20191125/samples/nonfree/naacl06-shinyama.pdf",
    ),
    CorpusPdf(
        "hotos17",
        "two-column paper, figures",
        "pypi:pdfannots==0.5",
        "pdfannots-0.5/tests/hotos17.pdf",
    ),
    CorpusPdf(
        "i1040nr",
        "tax instructions, three columns, tables",
        "pypi:pdfminer==20191125",
        "pdfminer-20191125/samples/nonfree/i1040nr.pdf",
    ),
    CorpusPdf(
        "dmca",
        "statute, long text",
        "pypi:pdfminer==20191125",
        "pdfminer-20191125/samples/nonfree/dmca.pdf",
    ),
    CorpusPdf(
        "geobase-uml",
        "data model, UML figures and tables",
        f"pypi:pypdf=={PYPDF_VERSION}",
        f"pypdf-{PYPDF_VERSION}/resources/GeoBase_NHNC1_Data_Model_UML_EN.pdf",
    ),
    CorpusPdf(
        "docbook-xsl-reference",
        "generated reference (DocBook, FOP)",
        "debian:docbook-xsl-doc-pdf",
        "usr/share/doc/docbook-xsl-doc-pdf/doc/reference.pdf.gz",
    ),
    CorpusPdf(
        "gnuplot-manual",
        "long manual (LaTeX), figures and tables",
        "debian:gnuplot-doc",
        "usr/share/doc/gnuplot/gnuplot.pdf",
    ),
    CorpusPdf(
        "word-two-column",
        "Word document, two columns, landscape",
        "pypi:pdfannots==0.5",
        "pdfannots-0.5/tests/word2column.pdf",
    ),
]


def corpus_pdf(name: str) -> Path:
    """Path of the cached :data:`CORPUS` document ``name`` (fetched on first use).

    Raises:
        DownloadFailed: the package could not be fetched.
        KeyError: no such document.
    """
    doc = next((d for d in CORPUS if d.name == name), None)
    if doc is None:
        raise KeyError(name)
    scheme, _, spec = doc.package.partition(":")
    if scheme == "pypi":
        package, _, version = spec.partition("==")
        root = sdist_pdfs(package, version).parent
    else:
        root = debian_files(spec)
    path = root / doc.member
    if path.suffix == ".gz":
        plain = path.with_suffix("")
        if not plain.exists():
            with gzip.open(path) as src, plain.open("wb") as dst:
                shutil.copyfileobj(src, dst)
        path = plain
    return path


def corpus_pdf_or_skip(name: str) -> Path:
    """:func:`corpus_pdf`, or a skip without the registry (a failure under ``CI``)."""
    try:
        return corpus_pdf(name)
    except DownloadFailed as exc:
        missing(f"real PDF {name} unavailable: {exc}")


def sdist_pdfs(package: str, version: str) -> Path:
    """Directory holding every ``*.pdf`` of ``package==version``'s sdist (downloaded once).

    Raises:
        DownloadFailed: pip failed or produced no archive.
    """
    target = CACHE_DIR / f"{package}-{version}"
    marker = target / ".complete"
    if marker.exists():
        return target
    archive = _download(package, version)
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and m.name.lower().endswith(".pdf")]
        tar.extractall(CACHE_DIR, members=members, filter="data")
    target.mkdir(parents=True, exist_ok=True)
    marker.touch()
    return target


def debian_files(package: str) -> Path:
    """Directory holding the files of Debian's ``package`` (``apt-get download``, then
    ``dpkg-deb -x``), downloaded once.

    Raises:
        DownloadFailed: apt-get failed (no package lists: run ``apt-get update``).
    """
    target = CACHE_DIR / "debian" / package
    marker = target / ".complete"
    if marker.exists():
        return target
    work = CACHE_DIR / "debian" / f".{package}.download"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    _run(["apt-get", "download", "-qq", package], cwd=work, what=f"apt-get download {package}")
    debs = sorted(work.glob(f"{package}_*.deb"))
    if not debs:
        raise DownloadFailed(f"apt-get download {package} produced no .deb")
    shutil.rmtree(target, ignore_errors=True)
    _run(["dpkg-deb", "-x", str(debs[0]), str(target)], cwd=work, what="dpkg-deb -x")
    (target / ".version").write_text(debs[0].name)
    shutil.rmtree(work, ignore_errors=True)
    marker.touch()
    return target


def pypdf_resources() -> Path:
    """pypdf's ``resources/`` directory at the pinned version."""
    return sdist_pdfs("pypdf", PYPDF_VERSION) / "resources"


def _download(package: str, version: str) -> Path:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    found = _archives(package, version)
    if found:
        return found[0]
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-binary",
        ":all:",
        "--no-deps",
        "--quiet",
        f"{package}=={version}",
        "-d",
        str(CACHE_DIR),
    ]
    _run(command, cwd=CACHE_DIR, what=f"pip download {package}=={version}")
    found = _archives(package, version)
    if not found:
        raise DownloadFailed(f"pip download {package}=={version} produced no archive")
    return found[0]


def _run(command: list[str], *, cwd: Path, what: str) -> None:
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_DOWNLOAD_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DownloadFailed(f"{what} failed: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DownloadFailed(f"{what} failed: {tail[0]}")


def _archives(package: str, version: str) -> list[Path]:
    # sdist names are normalised differently by different build backends
    names = {package, package.replace("-", "_"), package.replace(".", "_")}
    return sorted(p for n in names for p in CACHE_DIR.glob(f"{n}-{version}.tar.gz"))


def pypdf_resources_or_skip() -> Path:
    """The cached real-world PDFs; a test skip without the registry, but a failure in CI
    (``CI`` set), where a silent skip would hide that the tests never ran."""
    try:
        return pypdf_resources()
    except DownloadFailed as exc:
        missing(f"real PDFs unavailable: {exc}")
