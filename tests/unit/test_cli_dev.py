"""``dev``'s choices that need no running stack: how Flower's API is opened, the demo link."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from progress_bridge.bridge.tokens import TokenAuthority
from progress_bridge.cli.dev import DEMO_LINK_TTL_S, FLOWER_USER, demo_link, flower_access
from progress_bridge.config import Settings


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_flower_on_loopback_gets_an_open_api_and_no_password(host: str) -> None:
    assert flower_access(host, {}) == ({"FLOWER_UNAUTHENTICATED_API": "true"}, None)


def test_flower_beyond_loopback_gets_a_password_for_its_api() -> None:
    env, password = flower_access("0.0.0.0", {})
    assert password and env == {"FLOWER_BASIC_AUTH": f"{FLOWER_USER}:{password}"}
    assert flower_access("0.0.0.0", {})[1] != password  # drawn per run


def test_flower_settings_of_the_environment_win() -> None:
    assert flower_access("0.0.0.0", {"FLOWER_BASIC_AUTH": "me:secret"}) == ({}, None)
    assert flower_access("127.0.0.1", {"FLOWER_UNAUTHENTICATED_API": "false"}) == (
        {"FLOWER_UNAUTHENTICATED_API": "false"},
        None,
    )


def test_the_demo_link_names_the_job_and_carries_a_short_lived_token_for_its_owner() -> None:
    secret = "s" * 32
    link = demo_link("http://127.0.0.1:8000/", "pdf-1", "demo", secret, Settings())
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc, parts.path, parts.query) == (
        "http",
        "127.0.0.1:8000",
        "/",
        "",
    )
    fragment = parse_qs(parts.fragment)
    assert fragment["job"] == ["pdf-1"]
    principal = TokenAuthority(Settings(token_secret=secret)).verify(fragment["token"][0])
    assert principal.user == "demo"
    assert principal.expires_at is not None
    assert principal.expires_at - time.time() == pytest.approx(DEMO_LINK_TTL_S, abs=5)
