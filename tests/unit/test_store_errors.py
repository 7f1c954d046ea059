"""Redis errors become the store's: "not now" (retry: unavailable) or "never" (rejected)."""

from __future__ import annotations

import pytest
import redis

from progress_bridge.exceptions import StoreRejected, StreamUnavailable
from progress_bridge.store.errors import translate


@pytest.mark.parametrize(
    "error",
    [
        redis.ConnectionError("Error 111 connecting"),
        redis.TimeoutError("Timeout reading from socket"),
        redis.exceptions.ClusterDownError("The cluster is down"),
        redis.exceptions.TryAgainError("Multiple keys request during rehashing of slot"),
        redis.ResponseError("READONLY You can't write against a read only replica."),
        redis.ResponseError("LOADING Redis is loading the dataset in memory"),
        redis.ResponseError("MASTERDOWN Link with MASTER is down"),
        OSError("Network is unreachable"),
    ],
    ids=lambda e: type(e).__name__ + ":" + str(e).split(" ", 1)[0],
)
def test_failovers_reshardings_and_outages_are_unavailable_not_rejected(error: Exception) -> None:
    assert isinstance(translate(error), StreamUnavailable)


@pytest.mark.parametrize(
    "error",
    [
        redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
        redis.ResponseError("OOM command not allowed when used memory > 'maxmemory'"),
        redis.ResponseError("ERR Error running script (call to f_...): user_script:3: bad"),
    ],
)
def test_refusals_that_would_repeat_are_rejected(error: Exception) -> None:
    translated = translate(error, "job-1")
    assert isinstance(translated, StoreRejected) and translated.job_id == "job-1"
