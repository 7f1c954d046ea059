"""The web app serves the built page at ``/`` (what ``npm run build`` writes to
``frontend/dist/page``), its assets, and the API and bridge beside it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import TIMEOUT
from tests.e2e.conftest import Stack


def test_web_app_serves_the_built_page_and_its_assets(stack: Stack, page_dist: Path) -> None:
    # The index is the built one, byte for byte.
    with httpx.Client(base_url=stack.base_url, timeout=TIMEOUT) as http:
        index = http.get("/")
        assert index.status_code == 200
        assert index.headers["content-type"].startswith("text/html")
        assert index.text == (page_dist / "index.html").read_text()
        # Every script and stylesheet it names is served from the build, with a useful type.
        assets = re.findall(r'(?:src|href)="\./(assets/[^"]+)"', index.text)
        assert any(a.endswith(".js") for a in assets), index.text
        for asset in assets:
            served = http.get(f"/{asset}")
            assert served.status_code == 200, asset
            assert served.content == (page_dist / asset).read_bytes()
            kind = "javascript" if asset.endswith(".js") else "css"
            assert kind in served.headers["content-type"], served.headers["content-type"]
        # The API and the bridge's routes still answer beside the page.
        assert http.get("/healthz").json()["status"] == "ok"
        assert http.get("/api/jobs").status_code == 401


@pytest.mark.browser
def test_page_loads_without_errors_and_offers_sign_in(stack: Stack, new_page: Any) -> None:
    errors: list[str] = []
    page = new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.reload()
    expect(page).to_have_title("progress-bridge — PDF jobs")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_label("User name")).to_be_editable()
    assert errors == []
