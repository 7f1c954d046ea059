"""Authentication at the edges: the ``current_user`` dependency of HTTP routes and the WebSocket
Origin check.

A browser cannot set headers on a WebSocket, so at the handshake the token (:mod:`.tokens`)
travels as the ``token.<JWT>`` subprotocol (or ``?token=``); HTTP routes take
``Authorization: Bearer``.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..access import Principal
from ..exceptions import AuthError
from .tokens import TokenAuthority

__all__ = [
    "STATE_KEY",
    "CurrentUser",
    "authority_of",
    "current_user",
    "origin_allowed",
]

#: Where :func:`current_user` finds the authority: ``app.state.<this>``.
STATE_KEY = "progress_token_authority"


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
