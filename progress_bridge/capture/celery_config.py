"""Celery wiring shared by ``celeryconfig.py``, ``tasks/app.py`` and the tests."""

from __future__ import annotations

from typing import Any

from ..config import Settings
from ..exceptions import ConfigError

__all__ = ["MISSING_BROKER", "broker_and_backend", "require_broker"]

MISSING_BROKER = (
    "REDIS_URL (or PROGRESS_REDIS_URL, or CELERY_BROKER_URL and CELERY_RESULT_BACKEND) is missing "
    "and has no default for a worker; run `progress-bridge dev` to start an embedded server, or "
    "point REDIS_URL at one"
)


def broker_and_backend(settings: Settings) -> tuple[str | None, str | None]:
    """Celery's broker and result backend: Celery's own settings, else the progress store URL.

    Either may be None (importing the task modules must work without a server, e.g. in unit
    tests); :func:`require_broker` refuses to start a worker then.
    """
    broker = settings.celery_broker_url or settings.redis_url
    backend = settings.celery_result_backend or settings.redis_url
    return broker, backend


def require_broker(app: Any) -> None:
    """Raise :class:`ConfigError` when ``app`` has no broker or result backend configured."""
    if not app.conf.broker_url or not app.conf.result_backend:
        raise ConfigError(MISSING_BROKER)
