"""What a test does when something it needs from the machine is missing (Chromium, nginx,
Tesseract, the real-PDF downloads): skip on a developer's machine, fail under CI (``CI`` set),
where ``scripts/bootstrap`` installs it and a silent skip would hide that the test never ran."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

__all__ = ["missing"]


def missing(message: str) -> NoReturn:
    """Skip with ``message``, or fail with it under CI."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
