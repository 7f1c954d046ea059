"""The demo job as ``dev --demo`` publishes it: the real PDF job on the committed report, paced
to last about a minute, with time limits that allow for its pauses.

Published against the session's server on a database of its own with no worker running, so the
message itself (what a worker would get) is read back from the broker's queue.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

import tasks.pdf_tasks as pdf_tasks
from progress_bridge.config import Settings
from tasks.demo import DEMO_SECONDS, submit_pdf_demo
from tasks.demo_document import DEMO_NAME, DEMO_PAGES, DEMO_PDF
from tasks.limits import limits_of
from tasks.pdf_tasks import JobFiles
from tests.celery_apps import configured

#: A database no worker of the suite consumes from.
DEMO_DB = 12


@pytest.fixture
def demo_settings(redis_url: str, tmp_path: Path) -> Iterator[Settings]:
    url = urlunsplit(urlsplit(redis_url)._replace(path=f"/{DEMO_DB}"))
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        with configured(pdf_tasks.app):  # submit_pdf_demo repoints it
            yield Settings(redis_url=url, data_dir=tmp_path)
    finally:
        client.flushdb()
        client.close()


def queued_message(settings: Settings) -> dict[str, Any]:
    client = redis.Redis.from_url(settings.redis_url or "")
    try:
        raw = client.lrange("celery", 0, -1)
    finally:
        client.close()
    assert len(raw) == 1, raw
    message: dict[str, Any] = json.loads(raw[0])
    return message


@pytest.mark.parametrize("speed", [1.0, 0.25])
def test_the_demo_publishes_the_real_pdf_job_paced_to_a_minute_within_its_time_limits(
    demo_settings: Settings, speed: float
) -> None:
    job_id = submit_pdf_demo(demo_settings, owner="demo", speed=speed)

    # The upload is the committed report, under the job's generated name.
    upload = JobFiles(demo_settings.data_dir).upload(job_id)
    assert upload.read_bytes() == DEMO_PDF.read_bytes()

    # One message: process_pdf for that upload, owned by the demo user, paced so that its pages
    # take DEMO_SECONDS / speed in all.
    message = queued_message(demo_settings)
    headers = message["headers"]
    assert (headers["task"], headers["id"]) == ("tasks.pdf_tasks.process_pdf", job_id)
    assert headers["progress_owner"] == "demo"
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert args == [job_id, DEMO_NAME]
    assert kwargs["pace_s"] * DEMO_PAGES == pytest.approx(DEMO_SECONDS / speed)
    # Its time limits are the PDF job's for 12 pages plus the pauses: a slow demo is not stopped
    # for running long.
    hard, soft = headers["timelimit"]
    base_soft, base_hard = limits_of(pdf_tasks.app).time_limits(DEMO_PAGES)
    assert soft >= base_soft + DEMO_SECONDS / speed
    assert hard >= base_hard + DEMO_SECONDS / speed
