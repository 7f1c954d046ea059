"""Shared fixtures: real Redis-protocol servers per session, a unique job id per test.

``REDIS_URL`` selects an existing server; otherwise the embedded valkey-server is started once
and stopped at the end. Modules marked ``pytest.mark.redis_modes`` run every test twice: on that
server and on a 3-master Valkey Cluster started for the session (``PROGRESS_TEST_CLUSTER_URL``
names an existing one), through the same fixtures (``redis_mode``, ``redis_url``, ``settings``,
``redis_client``, ``store``). Those also marked ``pytest.mark.feed_modes`` run in both feed
designs too (``feed_mode``: the stream feed every bridge tails, or per-job notifications): four
times. A notify run's ``redis_url`` names the same server with a query the bridge fixtures
recognise (``bridge_settings`` reads the modes back from the URL). Timeouts come from
:data:`TIMEOUT`, which CI can scale with ``PB_TEST_TIMEOUT_SCALE``.
"""

from __future__ import annotations

import gc
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
from tests.bridge_server import register_feed_mode, register_redis_mode

#: Seconds any single wait in a test may take before the test fails.
TIMEOUT = 10.0 * float(os.environ.get("PB_TEST_TIMEOUT_SCALE", "1"))
#: The deployment modes a ``redis_modes`` module runs in.
REDIS_MODES = ("standalone", "cluster")
#: The feed designs a ``feed_modes`` module runs in.
FEED_MODES = ("stream", "notify")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "redis_modes: run each test on a standalone server and on a Valkey Cluster"
    )
    config.addinivalue_line(
        "markers", "feed_modes: with redis_modes, run in both feed designs (stream, notify)"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("redis_modes") and (
        "deployment" in metafunc.fixturenames
    ):
        feeds = FEED_MODES if metafunc.definition.get_closest_marker("feed_modes") else ("stream",)
        params = [(redis, feed) for feed in feeds for redis in REDIS_MODES]
        ids = [redis if feed == "stream" else f"{redis}-notify" for redis, feed in params]
        metafunc.parametrize("deployment", params, ids=ids, indirect=True, scope="session")


@pytest.fixture(scope="session")
def deployment(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(redis mode, feed mode): ``("standalone", "stream")`` unless a module is marked."""
    value: tuple[str, str] = getattr(request, "param", ("standalone", "stream"))
    return value


@pytest.fixture(scope="session")
def redis_mode(deployment: tuple[str, str]) -> str:
    """``standalone``, or ``cluster`` for a ``redis_modes`` module's second run."""
    return deployment[0]


@pytest.fixture(scope="session")
def feed_mode(deployment: tuple[str, str]) -> str:
    """``stream``, or ``notify`` in a ``feed_modes`` module's notify runs."""
    return deployment[1]


@pytest.fixture(scope="session")
def standalone_url() -> Iterator[str]:
    with redis_url_or_embedded(os.environ.get("REDIS_URL")) as url:
        yield url
        # Celery results left in reference cycles unsubscribe from their result channel when
        # collected; collected here, they do it while the server still answers (collected at
        # exit, each logged "Retry limit exceeded … result store backend" after the tests).
        gc.collect()


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
def redis_url(request: pytest.FixtureRequest, redis_mode: str, feed_mode: str) -> str:
    url: str = request.getfixturevalue(f"{redis_mode}_url")
    if feed_mode != "stream":
        # The same server under another name, so bridge_settings(url) knows the feed design.
        url = f"{url}{'&' if '?' in url else '?'}client_name=pb-{feed_mode}"
        register_redis_mode(url, redis_mode)
        register_feed_mode(url, feed_mode)
    return url


@pytest.fixture
def settings(redis_url: str, redis_mode: str, feed_mode: str) -> Settings:
    return Settings(redis_url=redis_url, redis_mode=redis_mode, feed_mode=feed_mode)  # type: ignore[arg-type]


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
