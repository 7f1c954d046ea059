"""The bounds of one PDF job: time, memory, and the content of a page.

:class:`PdfLimits` is read once from the environment (prefix ``PROGRESS_``, like
:class:`~progress_bridge.config.Settings`, which does not have these fields yet) by
``celeryconfig.py`` and reaches the tasks as the Celery setting ``pdf_limits``
(:func:`limits_of`). ``docs/operators.md`` ("Bounds of a PDF job") explains each one.

Importing this module must not import :mod:`tasks.app`: ``celeryconfig.py`` imports it while
the app is being configured.
"""

from __future__ import annotations

import math
from typing import Any, Self

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from progress_bridge.exceptions import ConfigError

from .pdf.content import DEFAULT_MAX_PAGE_CONTENT_BYTES

__all__ = ["PdfLimits", "limits_of"]

_MIB = 1024 * 1024


class PdfLimits(BaseSettings):
    """Every bound of a PDF job, with its unit in the name (environment: ``PROGRESS_<NAME>``)."""

    model_config = SettingsConfigDict(env_prefix="PROGRESS_", extra="ignore", frozen=True)

    pdf_time_limit_base_s: float = Field(
        default=30.0,
        gt=0,
        description="Soft time limit of a task before its pages count: opening, validating, "
        "repairing, fanning out, merging.",
    )
    pdf_time_limit_per_page_s: float = Field(
        default=10.0,
        ge=0,
        description="Soft time limit added per page the task processes (a page of a real "
        "manual takes 0.05-0.2 s, one read by OCR 1-3 s).",
    )
    pdf_time_limit_grace_s: float = Field(
        default=30.0,
        gt=0,
        description="Hard time limit = soft + this: the pool kills a task that did not stop at "
        "its soft limit (stuck in C code).",
    )
    pdf_max_page_content_bytes: int = Field(
        default=DEFAULT_MAX_PAGE_CONTENT_BYTES,
        ge=1024,
        description="Decompressed drawing instructions one page may hold (content streams "
        "and the forms they draw), measured before pdfplumber parses the page.",
    )
    pdf_max_memory_mib: int = Field(
        default=1024,
        ge=64,
        description="Resident memory of a prefork pool process running a PDF job: above it the "
        "job is stopped and fails.",
    )
    worker_max_memory_mib: int = Field(
        default=512,
        ge=64,
        description="A pool process whose peak resident memory went above this is replaced "
        "after its task (Celery's worker_max_memory_per_child).",
    )
    pdf_stop_grace_s: float = Field(
        default=0.3,
        gt=0,
        description="A job told to stop (cancelled, failed elsewhere, out of memory) that is "
        "still running this long after is terminated (revoke with terminate).",
    )

    @model_validator(mode="after")
    def _check_memory(self) -> Self:
        if self.worker_max_memory_mib > self.pdf_max_memory_mib:
            raise ValueError(
                "PROGRESS_WORKER_MAX_MEMORY_MIB must not exceed PROGRESS_PDF_MAX_MEMORY_MIB "
                f"({self.worker_max_memory_mib} > {self.pdf_max_memory_mib})"
            )
        return self

    @classmethod
    def from_env(cls, **overrides: Any) -> PdfLimits:
        """Read the environment; raise :class:`ConfigError` naming the variable if invalid."""
        try:
            return cls(**overrides)
        except ValidationError as exc:
            problems = "; ".join(
                f"PROGRESS_{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
                if err["loc"]
                else err["msg"]
                for err in exc.errors()
            )
            raise ConfigError(f"invalid configuration: {problems}") from None

    def time_limits(self, pages: int) -> tuple[int, int]:
        """``(soft, hard)`` seconds for a task that processes ``pages`` pages (0: none)."""
        soft = math.ceil(self.pdf_time_limit_base_s + self.pdf_time_limit_per_page_s * pages)
        return soft, soft + math.ceil(self.pdf_time_limit_grace_s)

    @property
    def max_memory_bytes(self) -> int:
        return self.pdf_max_memory_mib * _MIB

    @property
    def worker_max_memory_per_child_kib(self) -> int:
        """The value of Celery's ``worker_max_memory_per_child`` (KiB)."""
        return self.worker_max_memory_mib * 1024


def limits_of(celery_app: Any) -> PdfLimits:
    """The app's :class:`PdfLimits` (Celery setting ``pdf_limits``), else the environment's."""
    configured = celery_app.conf.get("pdf_limits")
    return configured if isinstance(configured, PdfLimits) else PdfLimits.from_env()
