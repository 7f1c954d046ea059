"""Run the bridge under uvicorn (``progress-bridge serve``).

uvicorn's ``websockets-sansio`` implementation is used when present (about 30 % less CPU per
delivery and handshake than the older one); permessage-deflate is negotiated when the client
offers it (``bridge_ws_deflate``); protocol-level pings run every ``bridge_ws_ping_s``; inbound
frames larger than ``bridge_max_frame_bytes`` are refused with 1009. On SIGTERM/SIGINT uvicorn
closes every WebSocket with 1012 (server restarting), so clients reconnect to another bridge and
resume.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import re
from collections.abc import Callable
from typing import Any

import uvicorn

from ..config import Settings
from ..exceptions import ConfigError
from . import gcpolicy
from .endpoint import SHORTCUT

__all__ = [
    "JsonLogFormatter",
    "RedactTokens",
    "WebSocketShortcut",
    "install_redaction",
    "load_app_factory",
    "run",
    "uvicorn_config",
]

_STD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and every ``extra`` field."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


_TOKEN_IN_QUERY = re.compile(r"(token=)[^&\s\"']+")


class RedactTokens(logging.Filter):
    """Hide ``?token=<JWT>`` in log lines (uvicorn logs each WebSocket path with its query)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(
                _TOKEN_IN_QUERY.sub(r"\1<redacted>", a) if isinstance(a, str) else a
                for a in record.args
            )
        if isinstance(record.msg, str) and "token=" in record.msg:
            record.msg = _TOKEN_IN_QUERY.sub(r"\1<redacted>", record.msg)
        return True


def install_redaction() -> None:
    """Attach :class:`RedactTokens` to uvicorn's loggers (once)."""
    for name in ("uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())


def ws_implementation() -> str | type[Any]:
    """uvicorn's ``websockets-sansio`` with shareable deflate frames and the scope extension the
    bridge's direct writes use (:mod:`.uvicorn_ws`), or uvicorn's default where that
    implementation is missing."""
    if importlib.util.find_spec("uvicorn.protocols.websockets.websockets_sansio_impl") is None:
        return "auto"
    from .uvicorn_ws import BridgeWebSocketProtocol

    return BridgeWebSocketProtocol


def http_implementation() -> type[Any]:
    """The first protocol of each connection: WebSocket upgrades straight to the WebSocket
    protocol, the rest to uvicorn's HTTP protocol (:mod:`.uvicorn_http`)."""
    from .uvicorn_http import BridgeHttpProtocol

    return BridgeHttpProtocol


class WebSocketShortcut:
    """The app, with handshakes on the bridge's ``/ws`` path handed to its endpoint directly.

    Why: an app's middleware and routing layers cost each handshake about a tenth of the
    bridge's CPU per connect (FastAPI 0.165: eight layers, a route match, a telemetry check;
    profiled in ``docs/benchmarks.md``, *Connections*). Only for an app without middleware of
    its own, where those layers do nothing for a WebSocket: the first handshake goes through
    the app as usual, and the endpoint that answers it tells this object its path
    (:data:`~progress_bridge.bridge.endpoint.SHORTCUT`); later ones on that exact path skip
    the app. Everything else goes to the app unchanged. uvicorn's proxy-headers middleware
    still wraps this object, so ``client`` and ``scheme`` are as before.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.routes: dict[str, Any] = {}

    def learn(self, path: str, endpoint: Any) -> None:
        self.routes[path] = endpoint

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            endpoint = self.routes.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
            scope.setdefault("extensions", {})[SHORTCUT] = self
        await self.app(scope, receive, send)

    @staticmethod
    def fits(app: Any) -> bool:
        """Whether ``app`` is a Starlette/FastAPI app with no middleware of its own."""
        return getattr(app, "user_middleware", None) == []


#: An app factory: called with the settings, returns an ASGI app that includes the bridge.
AppFactory = Callable[[Settings], Any]


def load_app_factory(spec: str | None) -> AppFactory:
    """The factory named ``module:attribute`` (e.g. ``web.app:create_app``), or the bare
    bridge's :func:`~progress_bridge.bridge.routes.create_app` for None.

    Raises:
        ConfigError: the module or the attribute cannot be found, or is not callable.
    """
    if not spec:
        from .routes import create_app

        return create_app
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigError(f"app {spec!r} must look like 'package.module:factory'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import the app's module {module_name!r}: {exc}") from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ConfigError(f"{module_name!r} has no callable {attribute!r} (the app factory)")
    return factory  # type: ignore[no-any-return]


def uvicorn_config(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    app: Any = None,
    log_level: str = "info",
    **overrides: Any,
) -> uvicorn.Config:
    """The uvicorn configuration the bridge runs with (tests use it to run one in a thread)."""
    if app is None:
        app = load_app_factory(None)(settings)
    if WebSocketShortcut.fits(app):
        app = WebSocketShortcut(app)
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "http": http_implementation(),
        "ws": ws_implementation(),
        "ws_max_size": settings.bridge_max_frame_bytes,
        "ws_ping_interval": settings.bridge_ws_ping_s or None,
        "ws_ping_timeout": settings.bridge_ws_ping_s or None,
        "ws_per_message_deflate": settings.bridge_ws_deflate,
        "lifespan": "on",
        "log_level": log_level,
        "timeout_graceful_shutdown": settings.bridge_close_grace_s,
        "access_log": False,
    }
    options.update(overrides)
    config = uvicorn.Config(app, **options)  # configures uvicorn's loggers
    install_redaction()
    return config


def run(settings: Settings, host: str = "127.0.0.1", port: int = 8000, **overrides: Any) -> None:
    """Serve until SIGINT/SIGTERM; clients are closed with 1012 on the way out.

    The app is loaded first, then the garbage-collector policy of :mod:`.gcpolicy` applies:
    everything allocated so far (modules, the app, pydantic schemas: a few hundred thousand
    objects that live as long as the process) is frozen out of the collector's reach, and full
    collections run on a clock instead of on heap growth — they found nothing to free, and
    each stopped the event loop for a walk of every live connection.
    """
    config = uvicorn_config(settings, host, port, **overrides)
    config.load()
    gcpolicy.install(settings.bridge_gc_full_interval_s)
    uvicorn.Server(config).run()
