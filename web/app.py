"""The demo web app: the bridge's routes, the PDF jobs API and the built page. Wiring only."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from progress_bridge.bridge.auth import STATE_KEY
from progress_bridge.bridge.routes import create_router
from progress_bridge.config import Settings

from .jobs_api import create_jobs_router

__all__ = ["PAGE_DIR", "create_app"]

#: Where ``npm run build:page`` writes the page (served at ``/`` when it exists).
PAGE_DIR = Path(__file__).resolve().parent.parent / "frontend" / "dist" / "page"


def create_app(settings: Settings | None = None, *, page_dir: Path | None = PAGE_DIR) -> FastAPI:
    """The demo app; its lifespan (merged from the routers) starts the bridge's feed reader.

    The API and the bridge take precedence; any other path is looked up in ``page_dir`` (skipped
    when the page has not been built).
    """
    settings = settings or Settings.from_env()
    router = create_router(settings)
    app = FastAPI(title="progress-bridge demo")
    setattr(app.state, STATE_KEY, router.bridge.authority)
    app.include_router(router)
    app.include_router(create_jobs_router(settings))
    if page_dir is not None and (page_dir / "index.html").is_file():
        app.mount("/", StaticFiles(directory=page_dir, html=True), name="page")
    return app
