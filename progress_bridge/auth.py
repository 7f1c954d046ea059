"""Tokens, the ``current_user`` dependency and the WebSocket Origin check.

Tokens are HS256 JWTs signed with ``PROGRESS_TOKEN_SECRET``: ``sub`` (user name), ``exp``,
``iat``, optional ``admin: true`` and optional ``jobs: [...]`` (job ids granted besides the
user's own). A browser cannot set headers on a WebSocket, so at the handshake the token travels
as the ``token.<JWT>`` subprotocol (or ``?token=``); HTTP routes take ``Authorization: Bearer``.

Without a configured secret outside production, each process draws a random secret and logs a
warning: tokens minted by another process will not verify then. Production refuses to start
without one (:class:`~progress_bridge.config.Settings`).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Annotated, Any
from urllib.parse import urlsplit

import jwt
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .config import Settings
from .exceptions import ProgressBridgeError
from .protocol import Principal

__all__ = [
    "AuthError",
    "CurrentUser",
    "Principal",
    "TokenAuthority",
    "current_user",
    "origin_allowed",
]

log = logging.getLogger("progress_bridge.auth")
ALGORITHM = "HS256"
#: Where :func:`current_user` finds the authority: ``app.state.<this>``.
STATE_KEY = "progress_token_authority"
#: Verified tokens remembered per authority (see :meth:`TokenAuthority.verify`).
VERIFIED_CACHE_SIZE = 4096


class AuthError(ProgressBridgeError):
    """A token is missing, malformed, badly signed or expired (close 4001 / HTTP 401)."""


class TokenAuthority:
    """Mints and verifies tokens with one secret."""

    def __init__(self, settings: Settings) -> None:
        if settings.token_secret is not None:
            self._secret = settings.token_secret.get_secret_value()
        else:
            self._secret = secrets.token_urlsafe(32)
            log.warning(
                "PROGRESS_TOKEN_SECRET is not set: using a random secret for this process only; "
                "tokens minted elsewhere will not verify (never do this in production)"
            )
        self.ttl_s = settings.token_ttl_s
        #: Tokens verified recently: raw token -> (its ``exp``, the principal). A reconnect
        #: storm presents the same tokens again; a verified token stays valid until its
        #: ``exp`` (nothing else in it can change), so those skip the HMAC and claim checks.
        self._verified: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    def mint(
        self,
        user: str,
        *,
        admin: bool = False,
        jobs: Iterable[str] = (),
        ttl_s: float | None = None,
        now: float | None = None,
    ) -> str:
        issued = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "sub": user,
            "iat": issued,
            "exp": issued + int(self.ttl_s if ttl_s is None else ttl_s),
        }
        if admin:
            claims["admin"] = True
        jobs = list(jobs)
        if jobs:
            claims["jobs"] = jobs
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str | None) -> Principal:
        """The principal a token names.

        Raises:
            AuthError: the token is missing, malformed, badly signed or expired.
        """
        if not token:
            raise AuthError("no token")
        cached = self._verified.get(token)
        if cached is not None:
            if time.time() < cached[0]:
                self._verified.move_to_end(token)
                return cached[1]
            del self._verified[token]
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": ["sub", "exp", "iat"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.InvalidSignatureError:
            raise AuthError("bad token signature") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        sub, jobs = claims.get("sub"), claims.get("jobs", [])
        if not isinstance(sub, str) or not sub or len(sub) > 200:
            raise AuthError("invalid token: 'sub' must be a user name")
        if not isinstance(jobs, list) or not all(isinstance(j, str) for j in jobs):
            raise AuthError("invalid token: 'jobs' must be a list of job ids")
        principal = Principal(sub, admin=claims.get("admin") is True, jobs=frozenset(jobs))
        exp = claims["exp"]
        if isinstance(exp, int | float):
            self._verified[token] = (float(exp), principal)
            if len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        return principal


def origin_allowed(origin: str | None, host: str | None, secure: bool, allowed: list[str]) -> bool:
    """Whether a WebSocket handshake's ``Origin`` may connect.

    No ``Origin`` (a non-browser client) is allowed; the same origin as the ``Host`` the request
    was sent to is always allowed; otherwise the origin must be listed (``*`` allows any).
    """
    if origin is None:
        return True
    origin = origin.rstrip("/").lower()
    if "*" in allowed or origin in (o.rstrip("/").lower() for o in allowed):
        return True
    if not host:
        return False
    parts = urlsplit(origin)
    scheme = "https" if secure else "http"
    default = "443" if secure else "80"
    want = host.lower()
    if ":" not in want.rsplit("]", 1)[-1]:
        want = f"{want}:{default}"
    got = parts.netloc
    if ":" not in got.rsplit("]", 1)[-1]:
        got = f"{got}:{'443' if parts.scheme == 'https' else '80'}"
    return parts.scheme == scheme and got == want


_bearer = HTTPBearer(auto_error=False)


def authority_of(request: Request) -> TokenAuthority:
    authority = getattr(request.app.state, STATE_KEY, None)
    if authority is None:
        authority = getattr(request.state, STATE_KEY, None)
    if not isinstance(authority, TokenAuthority):
        raise RuntimeError(
            "no TokenAuthority: mount progress_bridge.create_router(...) or set "
            f"app.state.{STATE_KEY}"
        )
    return authority


def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """FastAPI dependency: the principal of ``Authorization: Bearer <JWT>``, else HTTP 401."""
    try:
        return authority_of(request).verify(credentials.credentials if credentials else None)
    except AuthError as exc:
        raise HTTPException(
            status_code=401, detail=str(exc), headers={"WWW-Authenticate": "Bearer"}
        ) from None


#: ``user: CurrentUser`` in a route signature.
CurrentUser = Annotated[Principal, Depends(current_user)]
