"""Tokens: HS256 JWTs naming a user, optionally ``admin`` and granted ``jobs``.

``sub`` (user name), ``exp``, ``iat``, optional ``admin: true`` and optional ``jobs: [...]``
(job ids granted besides the user's own). Without a configured secret outside production, each
process draws a random secret and logs a warning: tokens minted by another process will not
verify then. Production refuses to start without one
(:class:`~progress_bridge.config.Settings`).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import jwt

from ..access import Principal
from ..config import Settings
from ..exceptions import AuthError

__all__ = ["ALGORITHM", "TokenAuthority"]

log = logging.getLogger("progress_bridge.auth")
ALGORITHM = "HS256"
#: Verified tokens remembered per authority (see :meth:`TokenAuthority.verify`).
VERIFIED_CACHE_SIZE = 4096


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
        exp = claims["exp"]
        principal = Principal(
            sub,
            admin=claims.get("admin") is True,
            jobs=frozenset(jobs),
            expires_at=float(exp) if isinstance(exp, int | float) else None,
        )
        if isinstance(exp, int | float):
            self._verified[token] = (float(exp), principal)
            if len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        return principal
