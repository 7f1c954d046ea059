"""The WebSocket bridge: fans each job's events out to the clients that watch it.

- :mod:`.core` — the I/O-free protocol core (sessions, wire encoding, codes, limits);
- :mod:`.hub` — the process's connections, routing tables and its one feed reader;
- :mod:`.connection` — one socket's writer (the fast path and the slow one);
- :mod:`.service` — :class:`Bridge`: lifecycle and what a subscribe does;
- :mod:`.endpoint` — ``/ws`` as a raw ASGI app; :mod:`.routes` — the FastAPI router;
- :mod:`.auth`, :mod:`.tokens` — tokens and the Origin check; :mod:`.metrics`;
- :mod:`.server`, :mod:`.uvicorn_ws`, :mod:`.direct`, :mod:`.gcpolicy` — running under uvicorn.

Names are imported on first use (the router needs FastAPI; the core needs nothing of it).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

__all__ = ["Bridge", "BridgeRouter", "create_app", "create_router"]

_LAZY = {
    "Bridge": ".service",
    "BridgeRouter": ".routes",
    "create_app": ".routes",
    "create_router": ".routes",
}

if TYPE_CHECKING:
    from .routes import BridgeRouter, create_app, create_router
    from .service import Bridge


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module, __name__), name)
