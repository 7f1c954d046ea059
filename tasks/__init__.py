"""Celery tasks: PDF processing and a demo job, thin wrappers around plain functions.

``celery -A tasks worker`` uses :data:`tasks.app.app` (re-exported here as ``app``).
"""

from .app import app

__all__ = ["app"]
