"""Presence on the page: a job open in two browsers says so in both, and one closing is seen
by the other (real bridge, real worker, Chromium)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import unique_user
from tests.e2e.pages import sign_in, upload
from tests.pdf_samples import text_pdf

pytestmark = pytest.mark.browser


def test_a_job_open_in_two_browsers_shows_two_watching_until_one_closes(
    new_page: Callable[[], Any],
) -> None:
    user = unique_user("pat")
    first = new_page()
    sign_in(first, user)
    job_id = upload(first, "notes.pdf", text_pdf())
    watching = first.get_by_test_id("watching")
    expect(watching).to_have_text("1 watching (you)")

    # The same job in a second browser: both count two.
    second = new_page()
    sign_in(second, user)
    second.goto(f"/#job={job_id}")
    expect(second.get_by_test_id("watching")).to_have_text("2 watching")
    expect(watching).to_have_text("2 watching")

    # The second browser goes away: the first is alone again.
    second.context.close()
    expect(watching).to_have_text("1 watching (you)")
