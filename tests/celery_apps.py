"""Pointing the project's shared Celery app (``tasks.app``) somewhere else for a test, and back.

``app.conf.update(result_backend=...)`` alone is not enough: Celery caches the backend object
(per thread for Redis), so a thread that published under an earlier test's URL keeps reading
results from that server — a stopped one, or another test's — and ``AsyncResult.state`` says
PENDING for ever. Every repointing goes through :func:`configured`, which drops that cache on
the way in and on the way out.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from celery import Celery

from progress_bridge.capture import producer as _producer

#: What the tests repoint; restored on exit even when the code under test changed it itself
#: (``submit_pdf_demo`` points the app at the demo's broker).
REPOINTED = ("broker_url", "result_backend", "progress_settings")


def forget_backend(app: Celery) -> None:
    """Drop this thread's (and the shared) cached result backend and the producer's capture."""
    app._backend_cache = None
    vars(app._local).pop("backend", None)
    _producer._captures.pop(id(app), None)


@contextlib.contextmanager
def configured(app: Celery, **conf: Any) -> Iterator[Celery]:
    """``app`` with ``conf`` applied, its previous values (and :data:`REPOINTED`) restored after."""
    saved = {name: app.conf.get(name) for name in {*REPOINTED, *conf}}
    app.conf.update(conf)
    forget_backend(app)
    try:
        yield app
    finally:
        app.conf.update(saved)
        forget_backend(app)
