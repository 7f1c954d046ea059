"""The demo web app: the bridge's routes, mounted. Wiring only."""

from __future__ import annotations

from fastapi import FastAPI

from progress_bridge.asgi import create_router
from progress_bridge.auth import STATE_KEY
from progress_bridge.config import Settings

from .jobs_api import create_jobs_router

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> FastAPI:
    """The demo app; its lifespan (merged from the bridge router) starts the feed reader."""
    settings = settings or Settings.from_env()
    router = create_router(settings)
    app = FastAPI(title="progress-bridge demo")
    setattr(app.state, STATE_KEY, router.bridge.authority)  # type: ignore[attr-defined]
    app.include_router(router)
    app.include_router(create_jobs_router(settings))
    return app
