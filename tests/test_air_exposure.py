"""The air-exposure process on the real Seoul surfaces, 읍면동 and 100 m population grids, against a computation
written here with rasterio.features.rasterize and numpy."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import rasterio
import shapely
from db_helpers import query
from process_helpers import wait_for
from rasterio.features import rasterize

AREAS = "code LIKE '11210%' OR code LIKE '11250%'"  # 관악구 and 강동구, where the population grids are
PM10_BANDS = (30, 80, 150)


def grade_of(v: np.ndarray) -> np.ndarray:
    """0..3 per value (PM10: <=30 좋음, <=80 보통, <=150 나쁨, else 매우나쁨)."""
    return (v > PM10_BANDS[0]).astype(int) + (v > PM10_BANDS[1]) + (v > PM10_BANDS[2])


@pytest.fixture(scope="module")
def pc(app: Any) -> Any:
    """A test client of the app with its job runtime."""
    return app.test_client()


def independent(dsn: str, grade: int, with_population: bool) -> dict[str, dict[str, Any]]:
    """Per area: days at/above, population-weighted mean, residents and residents exposed, computed directly."""
    paths = [p for (p,) in query(dsn, "SELECT path FROM meta.surfaces WHERE collection_id = 'pm10_seoul' "
                                      "ORDER BY valid_at")]
    days = []
    for p in paths:
        with rasterio.open(p) as ds:
            band = ds.read(1)
            days.append(np.where(band == ds.nodata, np.nan, band.astype(float)))
            transform = ds.transform
    stack = np.stack(days)
    areas = query(dsn, f"SELECT id::text, name, ST_AsBinary(geom) FROM public.seoul_emd WHERE {AREAS} ORDER BY 1")
    zones = rasterize([(shapely.from_wkb(bytes(g)), k) for k, (_, _, g) in enumerate(areas, start=1)],
                      out_shape=stack.shape[1:], transform=transform, fill=0, dtype="int32")
    pop = np.zeros(stack.shape[1:])
    if with_population:
        for x, y, v in query(dsn, "SELECT ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)), population "
                                  "FROM public.seoul_pop_grid WHERE population IS NOT NULL"):
            col, row = int((x - transform.c) // transform.a), int((y - transform.f) // transform.e)
            if 0 <= row < pop.shape[0] and 0 <= col < pop.shape[1]:
                pop[row, col] += v
    out = {}
    for k, (aid, name, _) in enumerate(areas, start=1):
        cells = zones == k
        if not cells.any():
            continue
        w = pop[cells] if pop[cells].sum() > 0 else np.ones(cells.sum())
        n_days, total, weight = 0, 0.0, 0.0
        for d in range(stack.shape[0]):
            v = stack[d][cells]
            ok = np.isfinite(v)
            if not ok.any():
                continue
            daily = np.sum(v[ok] * w[ok]) / np.sum(w[ok])
            n_days += int(grade_of(np.array([daily]))[0] >= grade)
            total += np.sum(v[ok] * w[ok])
            weight += np.sum(w[ok])
        reached = np.nan_to_num(grade_of(np.nan_to_num(stack[:, cells], nan=-1.0)) >= grade).any(axis=0)
        reached &= np.isfinite(stack[:, cells]).any(axis=0)
        out[aid] = {"name": name, "days": n_days, "mean": total / weight,
                    "residents": pop[cells].sum(), "exposed": pop[cells][reached].sum()}
    return out


@pytest.mark.parametrize("grade", ["보통", "나쁨"])
def test_exposure_with_population_grid_matches_direct_computation(pc: Any, dsn: str, grade: str) -> None:
    inputs = {"collection": "pm10_seoul", "grade": grade, "areas": {"layer": "seoul_emd", "filter": AREAS},
              "population": {"layer": "seoul_pop_grid", "column": "population"}}
    r = pc.post("/processes/air-exposure/execution", json={"inputs": inputs})
    assert r.status_code == 200, r.get_data(as_text=True)
    doc = r.get_json()
    want = independent(dsn, {"보통": 1, "나쁨": 2}[grade], with_population=True)
    got = {a["id"]: a for a in doc["areas"]}
    assert set(got) == set(want) and len(got) == 39  # 관악구 21 + 강동구 18 동
    for aid, w in want.items():
        a = got[aid]
        assert a["name"] == w["name"]
        assert a["days_at_or_above"] == w["days"], aid
        assert a["mean"] == pytest.approx(w["mean"], abs=0.006)
        assert a["residents"] == pytest.approx(w["residents"], abs=0.06)
        assert a["residents_exposed"] == pytest.approx(w["exposed"], abs=0.06)
    assert doc["summary"]["residents"] == pytest.approx(sum(w["residents"] for w in want.values()), abs=1)
    # the two grids hold 935,089 residents; the few outside these 39 동 are not theirs
    assert 900_000 < doc["summary"]["residents"] <= 935_089


def test_exposure_area_weighted_and_async(pc: Any, dsn: str) -> None:
    inputs = {"collection": "pm10_seoul", "grade": "보통", "areas": {"layer": "seoul_emd", "filter": AREAS}}
    r = pc.post("/processes/air-exposure/execution", json={"inputs": inputs}, headers={"Prefer": "respond-async"})
    assert r.status_code == 201
    job = r.get_json()["jobID"]
    wait_for(lambda: pc.get(f"/jobs/{job}").get_json()["status"], lambda s: s in ("successful", "failed"), 60,
             "exposure job")
    doc = pc.get(f"/jobs/{job}/results").get_json()
    want = independent(dsn, 1, with_population=False)
    for a in doc["areas"]:
        assert a["weighted_by"] == "area" and a["residents"] == 0
        assert a["days_at_or_above"] == want[a["id"]]["days"]
        assert a["mean"] == pytest.approx(want[a["id"]]["mean"], abs=0.006)


@pytest.mark.parametrize(("inputs", "fragment"), [
    ({"collection": "pm10_nowhere", "areas": {"layer": "seoul_emd"}}, "no surfaces stored"),
    ({"collection": "co_seoul", "areas": {"layer": "seoul_emd"}}, "surface collection"),
    ({"collection": "pm10_seoul", "grade": "좋음", "areas": {"layer": "seoul_emd"}}, "grade"),
    ({"collection": "pm10_seoul", "period": {"start": "1999-01-01", "end": "1999-01-31"},
      "areas": {"layer": "seoul_emd"}}, "no pm10_seoul surfaces in the period"),
    ({"collection": "pm10_seoul", "areas": {"layer": "no_such_layer"}}, "unknown layer"),
    ({"collection": "pm10_seoul", "areas": {"layer": "seoul_emd"},
      "population": {"layer": "seoul_pop_grid", "column": "nope"}}, "no column"),
])
def test_exposure_bad_inputs_are_400(pc: Any, inputs: dict[str, Any], fragment: str) -> None:
    r = pc.post("/processes/air-exposure/execution", json={"inputs": inputs})
    assert r.status_code == 400, r.get_data(as_text=True)
    assert fragment in r.get_json()["description"]
