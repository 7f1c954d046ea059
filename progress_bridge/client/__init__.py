"""A Python client of the bridge: follow a job from a program, through the bridge's WebSocket.

``async for update in watch(url, job_id, token=...)`` yields the job's state and its events once
each, in order, across reconnects (the same guarantees as the TypeScript client). Needs the
``websockets`` package (the ``client`` extra).
"""

from .watch import JobNotWatchable, TokenSource, Update, watch

__all__ = ["JobNotWatchable", "TokenSource", "Update", "watch"]
