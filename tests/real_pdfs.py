"""Real-world PDFs written by others, fetched at test time from package sdists and cached.

``pip download --no-binary :all: --no-deps pypdf==PYPDF_VERSION`` gives pypdf's source archive,
whose ``resources/`` holds 70+ PDFs (ruled tables, a government form, OCR scans, files encrypted
with passwords its tests name). The archive and the extracted PDFs live under the repository's
git-ignored ``.cache/real_pdfs/``; nothing is committed. The version is pinned so the assertions
stay true. pikepdf's sdist (``tests/resources/``: malformed fuzz files, image-only pages) works
the same way with :func:`sdist_pdfs` but costs about 75 s to download the first time (pip builds
its metadata), so the tests use pypdf's only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

__all__ = [
    "CACHE_DIR",
    "PYPDF_VERSION",
    "DownloadFailed",
    "pypdf_resources",
    "pypdf_resources_or_skip",
    "sdist_pdfs",
]

CACHE_DIR = Path(__file__).resolve().parent.parent / ".cache" / "real_pdfs"
PYPDF_VERSION = "5.4.0"
_DOWNLOAD_TIMEOUT_S = 300


class DownloadFailed(RuntimeError):
    """pip could not fetch the sdist (no registry access); tests skip with this reason."""


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
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=_DOWNLOAD_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DownloadFailed(f"pip download {package}=={version} failed: {exc}") from exc
    found = _archives(package, version)
    if done.returncode != 0 or not found:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DownloadFailed(f"pip download {package}=={version} failed: {tail[0]}")
    return found[0]


def _archives(package: str, version: str) -> list[Path]:
    return sorted(CACHE_DIR.glob(f"{package}-{version}.tar.gz"))


def pypdf_resources_or_skip() -> Path:
    """The cached real-world PDFs; a test skip without the registry, but a failure in CI
    (``CI`` set), where a silent skip would hide that the tests never ran."""
    try:
        return pypdf_resources()
    except DownloadFailed as exc:
        message = f"real PDFs unavailable: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
