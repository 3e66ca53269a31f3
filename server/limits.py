"""Concurrency limits for the routes that hold a database connection, so one client cannot take every thread."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator

from flask import Flask, current_app, g, request

from core.errors import ServiceUnavailable, TooManyRequests

# Routes that hold a database connection for their whole request share the slots; /health, styles, fonts, static
# files and the job routes stay free (synchronous executions have their own limit, processes.max_sync).
# Tiles take a slot only when they render (server/tiles.py calls hold()): a cached tile never waits.
SLOT_PREFIXES = ("/collections/", "/map/download/")


class Limiter:
    """At most `total` limited requests at once in this process (the rest of the threads stay free for /health
    and cached answers), and at most `per_client` of them from one client address."""

    def __init__(self, total: int, per_client: int) -> None:
        self.total = max(1, total)
        self.per_client = max(1, per_client)
        self._slots = threading.BoundedSemaphore(self.total)
        self._by_client: Counter[str] = Counter()
        self._lock = threading.Lock()

    def enter(self, client: str) -> None:
        """Take a slot (waiting up to 2 s), or refuse with 429 (this client) / 503 (everyone) and Retry-After."""
        with self._lock:
            if self._by_client[client] >= self.per_client:
                raise TooManyRequests(f"at most {self.per_client} concurrent requests per client; retry shortly",
                                      retry_after_s=1)
            self._by_client[client] += 1
        if not self._slots.acquire(timeout=2.0):
            self._leave_client(client)
            raise ServiceUnavailable("the server is busy; retry shortly", headers={"Retry-After": "1"})

    def leave(self, client: str) -> None:
        """Give the slot back."""
        self._slots.release()
        self._leave_client(client)

    def _leave_client(self, client: str) -> None:
        with self._lock:
            self._by_client[client] -= 1
            if self._by_client[client] <= 0:
                del self._by_client[client]


@contextlib.contextmanager
def hold() -> Iterator[None]:
    """A data slot for the duration of a block (for views that know only late whether they need the database)."""
    limiter: Limiter | None = current_app.extensions.get("sejong_limiter")
    if limiter is None or "limited_client" in g:
        yield
        return
    client = request.remote_addr or "-"
    limiter.enter(client)
    try:
        yield
    finally:
        limiter.leave(client)


def install(app: Flask, limiter: Limiter) -> None:
    """Apply the limiter to the limited route families of an app."""

    @app.before_request
    def _enter() -> None:
        if request.path.startswith(SLOT_PREFIXES) and "/tiles/" not in request.path and request.method == "GET":
            client = request.remote_addr or "-"
            limiter.enter(client)
            g.limited_client = client

    @app.teardown_request
    def _leave(_: BaseException | None) -> None:
        client = g.pop("limited_client", None)
        if client is not None:
            limiter.leave(client)

    app.extensions["sejong_limiter"] = limiter

