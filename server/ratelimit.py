"""Request rate limits per identity (per client address for anonymous callers), per worker process: 429 beyond."""

from __future__ import annotations

import math
import threading
import time

from flask import Flask, request

from core.config import ServerConfig
from core.errors import TooManyRequests
from server import auth

WINDOW_S = 60.0
EXEMPT = ("/health",)


class RateLimiter:
    """Fixed one-minute windows: at most `limit` requests per key and window (0: no limit)."""

    def __init__(self, max_keys: int = 50_000) -> None:
        self.max_keys = max_keys
        self._windows: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, limit: int, now: float | None = None) -> float | None:
        """Count a request; the seconds until the window ends when this one is over the limit, else None."""
        if limit <= 0:
            return None
        now = time.monotonic() if now is None else now
        with self._lock:
            start, count = self._windows.get(key, (now, 0))
            if now - start >= WINDOW_S:
                start, count = now, 0
            count += 1
            if len(self._windows) >= self.max_keys and key not in self._windows:
                self._windows = {k: v for k, v in self._windows.items() if now - v[0] < WINDOW_S}
            self._windows[key] = (start, count)
        return WINDOW_S - (now - start) if count > limit else None


def install(app: Flask, cfg: ServerConfig, limiter: RateLimiter | None = None) -> RateLimiter:
    """Count every request but /health against its caller (after authentication has named it)."""
    limiter = limiter or RateLimiter()

    @app.before_request
    def _rate() -> None:
        if request.path in EXEMPT:
            return
        who = auth.current()
        if who.anonymous:
            key, limit = f"ip:{request.remote_addr or '-'}", cfg.rate_limit_anonymous
        else:
            key, limit = f"id:{who.owner}", cfg.rate_limit_authenticated
        wait = limiter.hit(key, limit)
        if wait is not None:
            raise TooManyRequests(f"more than {limit} requests a minute from this caller; retry in "
                                  f"{math.ceil(wait)} s", retry_after_s=max(1, math.ceil(wait)))

    app.extensions["sejong_rate_limiter"] = limiter
    return limiter
