"""Request rate limits per caller: a fixed one-minute window per identity or client address, /health exempt."""

from __future__ import annotations

from typing import Any

from core.config import load_config
from server.app import close_app
from server.ratelimit import WINDOW_S, RateLimiter


def test_window_counts_per_key_and_resets() -> None:
    lim = RateLimiter()
    assert [lim.hit("a", 3, now=100.0) for _ in range(3)] == [None, None, None]
    wait = lim.hit("a", 3, now=110.0)
    assert wait is not None and abs(wait - (WINDOW_S - 10.0)) < 1e-9
    assert lim.hit("b", 3, now=110.0) is None  # another caller has its own count
    assert lim.hit("a", 3, now=100.0 + WINDOW_S) is None  # a new window
    assert lim.hit("a", 0, now=0.0) is None  # 0: no limit


def test_over_the_limit_is_429_with_retry_after(dsn: str, loaded: dict[str, int]) -> None:
    from server.app import create_app

    cfg = load_config()
    cfg = cfg.model_copy(update={"server": cfg.server.model_copy(update={"rate_limit_anonymous": 3})})
    app = create_app(cfg)
    client: Any = app.test_client()
    try:
        assert [client.get("/collections").status_code for _ in range(3)] == [200, 200, 200]
        over = client.get("/conformance")
        assert over.status_code == 429 and int(over.headers["Retry-After"]) >= 1
        assert over.get_json()["code"] == "TooManyRequests" and "3 requests a minute" in over.get_json()["description"]
        assert client.get("/health").status_code == 200  # exempt
        other = client.get("/conformance", environ_base={"REMOTE_ADDR": "10.1.2.3"})
        assert other.status_code == 200  # another client address
    finally:
        close_app(app)
