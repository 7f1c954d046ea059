"""Shared fixtures: one real Redis-protocol server per session, a unique job id per test.

``REDIS_URL`` selects an existing server; otherwise the embedded valkey-server is started once
and stopped at the end. Timeouts come from :data:`TIMEOUT`, which CI can scale with
``PB_TEST_TIMEOUT_SCALE``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis

from progress_bridge.config import Settings
from progress_bridge.store import EventStore
from progress_bridge.store.embedded import redis_url_or_embedded

#: Seconds any single wait in a test may take before the test fails.
TIMEOUT = 10.0 * float(os.environ.get("PB_TEST_TIMEOUT_SCALE", "1"))


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with redis_url_or_embedded(os.environ.get("REDIS_URL")) as url:
        yield url


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return Settings(redis_url=redis_url)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def store(redis_client: redis.Redis, settings: Settings) -> EventStore:
    return EventStore(redis_client, settings)


@pytest.fixture
def job_id() -> str:
    return f"job-{uuid.uuid4().hex[:12]}"
