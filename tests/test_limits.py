"""Data routes share a bounded number of slots per process; /health and the job routes stay free."""

from __future__ import annotations

from typing import Any

import pytest
from process_helpers import wait_for

from core.errors import ServiceUnavailable, TooManyRequests
from server import services
from server.limits import Limiter


def test_limiter_per_client_and_total() -> None:
    lim = Limiter(total=2, per_client=1)
    lim.enter("a")
    with pytest.raises(TooManyRequests):
        lim.enter("a")
    lim.enter("b")
    with pytest.raises(ServiceUnavailable):  # both slots taken: a third client waits 2 s, then 503
        lim.enter("c")
    lim.leave("a")
    lim.enter("c")  # a slot came back
    lim.leave("b")
    lim.leave("c")
    lim.enter("a")  # the client counts were released too
    lim.leave("a")


def test_busy_data_routes_leave_health_and_cached_tiles_answering(app: Any, client: Any) -> None:
    limiter: Limiter = app.extensions["sejong_limiter"]
    cached = "/collections/bike_stations/tiles/WebMercatorQuad/12/1601/3496"
    wait_for(lambda: services.of(app).versions.current(), lambda v: v is not None, 30, "the version watcher")
    assert client.get(cached).status_code == 200  # rendered and cached now
    held = [f"10.0.0.{i}" for i in range(limiter.total)]
    for addr in held:
        limiter.enter(addr)
    try:
        assert client.get("/health").status_code == 200
        assert client.get("/processes").status_code == 200
        busy = client.get("/collections/bike_stations/items?limit=1")
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
        assert client.get(cached).status_code == 200  # a cached tile needs no slot
        uncached = client.get("/collections/bike_stations/tiles/WebMercatorQuad/12/1600/3495")
        assert uncached.status_code == 503  # rendering one does
    finally:
        for addr in held:
            limiter.leave(addr)
    assert client.get("/collections/bike_stations/items?limit=1").status_code == 200
