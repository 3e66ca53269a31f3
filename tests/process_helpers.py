"""Helpers shared by the process tests: run a process synchronously, and inline GeoJSON points."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from pyproj import Transformer

TO_LL = Transformer.from_crs(5186, 4326, always_xy=True)


def wait_for[T](probe: Callable[[], T], done: Callable[[T], bool], timeout: float, what: str) -> T:
    """Call probe until done(result) holds; fail naming `what` (and the last result) after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s (last: {value!r})"
        time.sleep(0.05)


def run_process(pc: Any, url: str, inputs: dict[str, Any], status: int = 200) -> dict[str, Any]:
    """POST an execute request and check its status."""
    resp = pc.post(url, json={"inputs": inputs})
    assert resp.status_code == status, resp.get_data(as_text=True)
    return resp.get_json()  # type: ignore[no-any-return]


def points(xy: np.ndarray, weights: list[float] | None = None) -> dict[str, Any]:
    """EPSG:5186 coordinates as a GeoJSON FeatureCollection of weighted lon/lat points."""
    lon, lat = TO_LL.transform(xy[:, 0], xy[:, 1])
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": i, "geometry": {"type": "Point", "coordinates": [lo, la]},
         "properties": {"weight": weights[i] if weights else 1}}
        for i, (lo, la) in enumerate(zip(lon, lat, strict=True))]}
