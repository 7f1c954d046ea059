"""Tokens and the Origin check, with plain values."""

from __future__ import annotations

import logging
import secrets
import time

import pytest

from progress_bridge.bridge.auth import origin_allowed
from progress_bridge.bridge.server import RedactTokens
from progress_bridge.bridge.tokens import TokenAuthority
from progress_bridge.config import Settings
from progress_bridge.exceptions import AuthError


@pytest.fixture
def authority() -> TokenAuthority:
    return TokenAuthority(Settings(token_secret=secrets.token_urlsafe(32)))


def test_minted_token_verifies_to_its_principal(authority: TokenAuthority) -> None:
    token = authority.mint("alice", jobs=["j1"])
    principal = authority.verify(token)
    assert (principal.user, principal.admin, principal.jobs) == ("alice", False, {"j1"})
    assert principal.expires_at is not None and principal.expires_at > time.time()
    assert authority.verify(authority.mint("root", admin=True)).admin is True


def test_a_verified_token_is_remembered_until_its_exp(
    authority: TokenAuthority, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = authority.mint("bob", ttl_s=60)
    first = authority.verify(token)
    assert authority.verify(token) is first  # the second time from the cache
    exp = authority._verified[token][0]
    monkeypatch.setattr("time.time", lambda: exp)
    # At its exp the cached entry is dropped and the token verified again (by PyJWT's own
    # clock, which this test leaves alone).
    again = authority.verify(token)
    assert again == first and again is not first


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda a: None, "no token"),
        (lambda a: "abc", "invalid token: Not enough segments"),
        (lambda a: a.mint("alice", ttl_s=-5), "token expired"),
        (
            lambda a: TokenAuthority(Settings(token_secret=secrets.token_urlsafe(32))).mint("x"),
            "bad token signature",
        ),
    ],
)
def test_bad_tokens_are_refused_with_a_reason(
    authority: TokenAuthority, make: object, message: str
) -> None:
    with pytest.raises(AuthError) as exc:
        authority.verify(make(authority))  # type: ignore[operator]
    assert str(exc.value) == message


def test_without_a_secret_outside_production_a_random_one_is_used(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Other suites (Celery's logging set-up) may have disabled this logger: re-enable it here.
    logger = logging.getLogger("progress_bridge.auth")
    monkeypatch.setattr(logger, "disabled", False)
    monkeypatch.setattr(logger, "propagate", True)
    with caplog.at_level(logging.WARNING, logger="progress_bridge.auth"):
        one, two = TokenAuthority(Settings()), TokenAuthority(Settings())
    assert "PROGRESS_TOKEN_SECRET is not set" in caplog.text
    with pytest.raises(AuthError):
        two.verify(one.mint("alice"))


@pytest.mark.parametrize(
    ("origin", "host", "secure", "allowed", "ok"),
    [
        (None, "h:1", False, [], True),  # not a browser
        ("http://h:1", "h:1", False, [], True),  # same origin
        ("https://h", "h", True, [], True),  # same origin, default port
        ("http://h:1", "h:1", True, [], False),  # scheme differs
        ("http://evil.example", "h:1", False, [], False),
        ("http://app.example", "h:1", False, ["http://app.example"], True),
        ("http://APP.example/", "h:1", False, ["http://app.example"], True),
        ("http://other.example", "h:1", False, ["*"], True),
        ("null", "h:1", False, [], False),
    ],
)
def test_origin_check(
    origin: str | None, host: str, secure: bool, allowed: list[str], ok: bool
) -> None:
    assert origin_allowed(origin, host, secure, allowed) is ok


def test_tokens_in_query_strings_are_redacted_from_uvicorn_logs() -> None:
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5", "/ws?token=eyJ.abc.def&x=1"),
        None,
    )
    assert RedactTokens().filter(record)
    assert record.getMessage() == '127.0.0.1:5 - "WebSocket /ws?token=<redacted>&x=1" [accepted]'
