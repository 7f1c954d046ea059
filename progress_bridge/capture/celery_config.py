"""Celery wiring shared by ``celeryconfig.py``, ``tasks/app.py`` and the tests."""

from __future__ import annotations

from typing import Any

from ..config import Settings
from ..exceptions import ConfigError

__all__ = ["MISSING_BROKER", "MISSING_CELERY_URLS", "broker_and_backend", "require_broker"]

MISSING_BROKER = (
    "REDIS_URL (or PROGRESS_REDIS_URL, or CELERY_BROKER_URL and CELERY_RESULT_BACKEND) is missing "
    "and has no default for a worker; run `progress-bridge dev` to start an embedded server, or "
    "point REDIS_URL at one"
)


def broker_and_backend(settings: Settings) -> tuple[str | None, str | None]:
    """Celery's broker and result backend: Celery's own settings, else the progress store URL.

    The store's URL is a default only for a standalone store: Celery's Redis transport and
    result backend speak to one server, not to a cluster's node or a sentinel, so with
    ``redis_mode`` cluster or sentinel Celery keeps its own URLs (a plain Redis, or Celery's
    ``sentinel://`` URLs). Either may be None (importing the task modules must work without a
    server, e.g. in unit tests); :func:`require_broker` refuses to start a worker then.
    """
    default = settings.redis_url if settings.redis_mode == "standalone" else None
    broker = settings.celery_broker_url or default
    backend = settings.celery_result_backend or default
    return broker, backend


#: The message when the store is a cluster or behind sentinels and Celery has no URLs.
MISSING_CELERY_URLS = (
    "the progress store runs on a Redis {mode}, which Celery's broker and result backend cannot "
    "use: set CELERY_BROKER_URL and CELERY_RESULT_BACKEND (a plain Redis, or Celery's "
    "sentinel:// URLs)"
)


def require_broker(app: Any, settings: Settings | None = None) -> None:
    """Raise :class:`ConfigError` when ``app`` has no broker or result backend configured."""
    if not app.conf.broker_url or not app.conf.result_backend:
        if settings is not None and settings.redis_mode != "standalone":
            raise ConfigError(MISSING_CELERY_URLS.format(mode=settings.redis_mode))
        raise ConfigError(MISSING_BROKER)
