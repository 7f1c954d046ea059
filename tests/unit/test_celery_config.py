"""Celery's broker and result backend default to the store's Redis only when it is standalone."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from progress_bridge.capture.celery_config import broker_and_backend, require_broker
from progress_bridge.config import Settings
from progress_bridge.exceptions import ConfigError


def test_a_standalone_store_is_celerys_default_broker_and_backend() -> None:
    settings = Settings(redis_url="redis://r:6379/0")
    assert broker_and_backend(settings) == ("redis://r:6379/0", "redis://r:6379/0")


@pytest.mark.parametrize("mode", ["cluster", "sentinel"])
def test_a_cluster_or_sentinel_store_is_never_celerys_broker(mode: str) -> None:
    settings = Settings(redis_url="redis://node:7000", redis_mode=mode)  # type: ignore[arg-type]
    assert broker_and_backend(settings) == (None, None)
    app = SimpleNamespace(conf=SimpleNamespace(broker_url=None, result_backend=None))
    with pytest.raises(ConfigError) as exc:
        require_broker(app, settings)
    assert "CELERY_BROKER_URL" in str(exc.value) and mode in str(exc.value)
    explicit = Settings(
        redis_url="redis://node:7000",
        redis_mode=mode,  # type: ignore[arg-type]
        celery_broker_url="redis://plain:6379/1",
        celery_result_backend="redis://plain:6379/2",
    )
    assert broker_and_backend(explicit) == ("redis://plain:6379/1", "redis://plain:6379/2")
