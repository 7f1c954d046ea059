"""OCR for pages without a text layer: Tesseract (Debian's ``tesseract-ocr``) via pytesseract.

A scanned page has images but no characters; without OCR it completes with no text at all.
:func:`tasks.pdf.process_document` renders such a page (PDFium, :data:`OCR_DPI`), hands the
image to a :class:`TesseractOcr` and lays out the words it returns like a text layer's, so they
become text zones reported with the tool :data:`OCR_TOOL` and Tesseract's mean word confidence.

Where Tesseract is not installed, :meth:`TesseractOcr.available` is false and the page is
marked instead: its zones say "no text layer" and the page's ``text_source`` is ``"none"``.
Pass ``ocr=None`` to :func:`~tasks.pdf.process_document` to skip OCR on purpose, or a
:class:`TesseractOcr` with another ``command``/``language``.
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass, field
from typing import Any

import pytesseract
from PIL import Image

__all__ = ["OCR_DPI", "OCR_TOOL", "TesseractOcr"]

OCR_TOOL = "tesseract.ocr"
#: Rendering resolution for OCR: Tesseract reads 10 pt body text best at about 300 dpi.
OCR_DPI = 300
#: Words Tesseract is less sure of than this (0–100) are dropped: on logos and photos it
#: "reads" stray marks with confidences in the single digits to the 30s.
MIN_WORD_CONFIDENCE = 45

# pytesseract keeps the command in a module global: set it and call under one lock.
_PYTESSERACT_LOCK = threading.Lock()


@dataclass
class TesseractOcr:
    """Tesseract through pytesseract.

    Args:
        command: the ``tesseract`` executable (a name on ``PATH`` or a path).
        language: Tesseract language code(s), e.g. ``"eng"`` or ``"eng+deu"``.
        timeout_s: give up on one page after this long (a huge or pathological image).
    """

    command: str = "tesseract"
    language: str = "eng"
    timeout_s: float = 60.0
    _version: str | None = field(default=None, init=False, repr=False)
    _checked: bool = field(default=False, init=False, repr=False)

    def available(self) -> bool:
        """True when the executable runs (checked once per instance)."""
        return self.version() is not None

    def version(self) -> str | None:
        """Tesseract's version, e.g. ``"5.3.0"``; ``None`` when it cannot be run."""
        if not self._checked:
            self._checked = True
            if shutil.which(self.command) is not None:
                try:
                    with _PYTESSERACT_LOCK:
                        pytesseract.pytesseract.tesseract_cmd = self.command
                        self._version = str(pytesseract.get_tesseract_version())
                except (pytesseract.TesseractNotFoundError, OSError, RuntimeError):
                    self._version = None
        return self._version

    def read(self, image: Image.Image, scale: float) -> list[dict[str, Any]]:
        """Words on ``image`` as word dicts in page points (``x0``, ``top``, ``x1``,
        ``bottom``, ``text``, ``direction``, ``ocr_confidence`` in [0, 1]).

        Args:
            image: the rendered page.
            scale: pixels per point of the rendering.

        Raises:
            RuntimeError: Tesseract failed or timed out on this image.
        """
        with _PYTESSERACT_LOCK:
            pytesseract.pytesseract.tesseract_cmd = self.command
            data = pytesseract.image_to_data(
                image,
                lang=self.language,
                output_type=pytesseract.Output.DICT,
                timeout=self.timeout_s,
            )
        words: list[dict[str, Any]] = []
        for i, text in enumerate(data["text"]):
            text = str(text).strip()
            confidence = float(data["conf"][i])
            if not text or confidence < MIN_WORD_CONFIDENCE:
                continue
            left, top = data["left"][i] / scale, data["top"][i] / scale
            words.append(
                {
                    "text": text,
                    "x0": left,
                    "top": top,
                    "x1": left + data["width"][i] / scale,
                    "bottom": top + data["height"][i] / scale,
                    "upright": True,
                    "direction": "ltr",
                    "unmapped": 0,
                    "ocr_confidence": confidence / 100,
                }
            )
        return words
