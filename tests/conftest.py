"""Shared fixtures: real Redis-protocol servers per session, a unique job id per test.

``REDIS_URL`` selects an existing server; otherwise the embedded valkey-server is started once
and stopped at the end. Modules marked ``pytest.mark.redis_modes`` run every test twice: on that
server and on a 3-master Valkey Cluster started for the session (``PROGRESS_TEST_CLUSTER_URL``
names an existing one), through the same fixtures (``redis_mode``, ``redis_url``, ``settings``,
``redis_client``, ``store``). Timeouts come from :data:`TIMEOUT`, which CI can scale with
``PB_TEST_TIMEOUT_SCALE``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from progress_bridge.config import Settings
from progress_bridge.store import EventStore
from progress_bridge.store.clients import sync_client
from progress_bridge.store.embedded import redis_url_or_embedded
from progress_bridge.store.embedded_cluster import EmbeddedCluster
from tests.bridge_server import register_redis_mode

#: Seconds any single wait in a test may take before the test fails.
TIMEOUT = 10.0 * float(os.environ.get("PB_TEST_TIMEOUT_SCALE", "1"))
#: The deployment modes a ``redis_modes`` module runs in.
REDIS_MODES = ("standalone", "cluster")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "redis_modes: run each test on a standalone server and on a Valkey Cluster"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("redis_modes") and (
        "redis_mode" in metafunc.fixturenames
    ):
        metafunc.parametrize("redis_mode", REDIS_MODES, indirect=True, scope="session")


@pytest.fixture(scope="session")
def redis_mode(request: pytest.FixtureRequest) -> str:
    """``standalone``, or ``cluster`` for a ``redis_modes`` module's second run."""
    mode: str = getattr(request, "param", "standalone")
    return mode


@pytest.fixture(scope="session")
def standalone_url() -> Iterator[str]:
    with redis_url_or_embedded(os.environ.get("REDIS_URL")) as url:
        yield url


@pytest.fixture(scope="session")
def cluster_url() -> Iterator[str]:
    existing = os.environ.get("PROGRESS_TEST_CLUSTER_URL")
    if existing:
        register_redis_mode(existing, "cluster")
        yield existing
        return
    with EmbeddedCluster(masters=3) as cluster:
        register_redis_mode(cluster.url, "cluster")
        yield cluster.url


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest, redis_mode: str) -> str:
    url: str = request.getfixturevalue(f"{redis_mode}_url")
    return url


@pytest.fixture
def settings(redis_url: str, redis_mode: str) -> Settings:
    return Settings(redis_url=redis_url, redis_mode=redis_mode)  # type: ignore[arg-type]


@pytest.fixture
def redis_client(redis_url: str, settings: Settings) -> Iterator[Any]:
    client = sync_client(redis_url, settings)
    yield client
    client.close()


@pytest.fixture
def store(redis_client: Any, settings: Settings) -> EventStore:
    return EventStore(redis_client, settings)


@pytest.fixture
def job_id() -> str:
    return f"job-{uuid.uuid4().hex[:12]}"
