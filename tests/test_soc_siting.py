"""Process `soc-siting` on the real Paju network and Sejong layers: real cases, brute force, async, bad inputs."""

from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np
import psycopg2
import pytest
from process_helpers import points, run_process, wait_for

from processes import network as nw
from processes import siting_io as sio
from processes.soc_meta import PAJU_MCLP, PAJU_PMEDIAN, PROCESS_METADATA, SEJONG_BIKE
from server import services

URL = "/processes/soc-siting/execution"
UNJEONG = "name IN ('운정1동', '운정2동', '운정3동')"


@pytest.fixture(scope="module")
def pc(app):  # type: ignore[no-untyped-def]
    """Test client of the app (Processes routes included; bundled data and the Paju network loaded)."""
    return app.test_client()


def _run(pc: Any, inputs: dict[str, Any], status: int = 200) -> dict[str, Any]:
    return run_process(pc, URL, inputs, status)


_points = points


@pytest.fixture(scope="module")
def paju(pc: Any) -> dict[str, dict[str, Any]]:
    """The Paju-Unjeong library case by p-median and by MCLP (10 min walk), sync."""
    return {"p-median": _run(pc, PAJU_PMEDIAN["inputs"]), "mclp": _run(pc, PAJU_MCLP["inputs"])}


def test_description_has_runnable_example(pc: Any) -> None:
    doc = pc.get("/processes/soc-siting").get_json()
    assert set(doc["inputs"]) >= {"model", "candidates", "existing", "demand"}
    assert set(doc["example"]["inputs"]) <= set(doc["inputs"])
    summary = _run(pc, doc["example"]["inputs"])["summary"]  # the served example, as a client would send it
    assert summary["status"] == "optimal" and summary["new_site_count"] > 0
    assert "soc-siting" in {p["id"] for p in pc.get("/processes").get_json()["processes"]}


def test_paju_library_case(paju: dict[str, dict[str, Any]]) -> None:
    for out in paju.values():
        s = out["summary"]
        assert s["cost_method"].startswith("network paju (walk") and s["straight_line"] is False
        assert s["status"] == "optimal" and s["gap"] == 0 and s["new_site_count"] == 2
        assert s["existing"]["count"] == 22 and s["candidates"]["count"] == 190
        assert s["demand"]["total_weight"] == 42425 + 40922 + 59473
        assert s["after"]["covered_weight"] >= s["before"]["covered_weight"]
        assert s["after"]["mean_time_min"] <= s["before"]["mean_time_min"]
        feats = out["sites"]["features"]
        assert sum(f["properties"]["is_new"] for f in feats) == 2 and len(feats) == 24
        assigned = sum(f["properties"]["assigned_weight"] for f in feats)
        assert assigned == pytest.approx(s["demand"]["total_weight"] - s["after"]["unreachable_weight"], rel=1e-6)
    pm, mc = paju["p-median"]["summary"], paju["mclp"]["summary"]
    assert pm["objective_sense"] == "min total weighted minutes" and mc["objective"] == pytest.approx(
        mc["after"]["covered_weight"], abs=0.01)
    assert mc["after"]["covered_weight"] >= pm["after"]["covered_weight"]  # MCLP maximises exactly this


def test_sejong_bike_case_runs_on_the_kais_network(pc: Any) -> None:
    out = _run(pc, {**SEJONG_BIKE["inputs"], "outputs": ["summary", "sites"]})
    s = out["summary"]
    assert s["straight_line"] is False and s["network"] == "sejong"
    assert s["cost_method"].startswith("network sejong (KAIS 도로구간 2023-08, no one-way data; walk")
    assert s["existing"]["count"] == 648 and s["new_site_count"] == 10 and s["minutes"] == 5
    assert s["mode"] == "walk" and "local policy" in s["standard_source"]
    assert s["after"]["covered_weight"] > s["before"]["covered_weight"] > 0
    assert s["status"] in ("optimal", "feasible", "time_limit") and s["gap"] <= 0.01
    ids = {lyr["id"] for lyr in s["layers"]}
    colls = {c["id"] for c in pc.get("/collections").get_json()["collections"]}
    assert ids <= colls and any(i.endswith("_sites") for i in ids)
    items = pc.get(f"/collections/{next(i for i in ids if i.endswith('_sites'))}/items?limit=1000").get_json()
    assert len(items["features"]) == 658


def test_network_matrix_agrees_with_single_source_search(pc: Any, dsn: str) -> None:
    """Columns of the batched matrix equal processes.network.search + point_times for each site alone."""
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM public.facilities_paju "
                    "f WHERE kind IN ('library', 'park') AND EXISTS (SELECT 1 FROM public.paju_emd e "
                    "WHERE e.name = '운정2동' AND ST_DWithin(e.geom, f.geom, 1500)) ORDER BY id LIMIT 6) s")
        sites = np.array(cur.fetchall(), dtype=float)
        cur.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT (ST_Dump(ST_GeneratePoints(geom, 40, 7))).geom p "
                    "FROM public.paju_emd WHERE name = '운정2동') s")
        dem = np.array(cur.fetchall(), dtype=float)
    g = nw.CACHE.get(conn, "paju", "walk")
    ss, ds = sio.snap_all(conn, g, sites, dem, 500.0)
    conn.close()
    mat = sio.network_costs(g, ss, ds, 7200.0)
    for k in range(len(sites)):
        one = nw.Snapped(ss.edge[k:k + 1], ss.frac[k:k + 1], ss.dist[k:k + 1])
        times, _ = nw.point_times(nw.search(g, one), ds)
        np.testing.assert_allclose(mat[:, k], times / 60.0, rtol=1e-9, atol=1e-9)
    assert np.isfinite(mat).mean() > 0.6  # a site off the walk network (unsnapped) stays inf in both


def test_brute_force_small_instance(pc: Any) -> None:
    """Straight-line p-median and MCLP on inline points equal enumeration of all site pairs."""
    rng = np.random.default_rng(3)
    origin = np.array([220000.0, 530000.0])
    cand = origin + rng.uniform(0, 3000, (7, 2))
    dem = origin + rng.uniform(0, 3000, (25, 2))
    w = [float(v) for v in rng.integers(1, 50, 25)]
    c = sio.straight_costs(dem, cand, 1.3, 4.5)
    base = {"candidates": _points(cand), "demand": _points(dem, w), "p": 2, "network": "none", "minutes": 15,
            "outputs": ["summary", "sites"]}
    pm = _run(pc, {**base, "model": "p-median"})["summary"]
    best = min(itertools.combinations(range(7), 2), key=lambda s: float((c[:, list(s)].min(axis=1) * w).sum()))
    assert sorted(int(x["site_id"]) for x in pm["new_sites"]) == list(best)
    assert pm["objective"] == pytest.approx(float((c[:, list(best)].min(axis=1) * w).sum()), rel=1e-6)
    mc = _run(pc, {**base, "model": "mclp"})["summary"]
    cover = max(float(np.asarray(w)[(c[:, list(s)] <= 15).any(axis=1)].sum())
                for s in itertools.combinations(range(7), 2))
    assert mc["objective"] == pytest.approx(cover) and mc["status"] == "optimal"
    pc_ = _run(pc, {**base, "model": "p-center"})["summary"]
    worst = min(float(c[:, list(s)].min(axis=1).max()) for s in itertools.combinations(range(7), 2))
    assert pc_["objective"] == pytest.approx(worst, rel=1e-6)
    ls = _run(pc, {**{k: v for k, v in base.items() if k != "p"}, "model": "lscp", "minutes": 30})["summary"]
    fewest = next(k for k in range(1, 8) if any((c[:, list(s)] <= 30).any(axis=1).all()
                                                for s in itertools.combinations(range(7), k)))
    assert ls["new_site_count"] == fewest and ls["after"]["coverage_share"] == 1.0


def test_existing_counted_and_async_progress(pc: Any, paju: dict[str, dict[str, Any]]) -> None:
    resp = pc.post(URL, json={"inputs": PAJU_MCLP["inputs"]}, headers={"Prefer": "respond-async"})
    assert resp.status_code == 201
    job = resp.headers["Location"].rsplit("/jobs/", 1)[1]
    seen: list[int] = []
    for _ in range(300):
        st = pc.get(f"/jobs/{job}").get_json()
        seen.append(int(st["progress"] or 0))
        if st["status"] in ("successful", "failed"):
            break
        time.sleep(0.1)
    assert st["status"] == "successful" and max(seen) >= 99
    out = pc.get(f"/jobs/{job}/results").get_json()
    assert out["summary"]["objective"] == pytest.approx(paju["mclp"]["summary"]["objective"])
    assert out["summary"]["new_sites"] == paju["mclp"]["summary"]["new_sites"]
    s = out["summary"]
    assert s["after"]["coverage_share"] >= s["before"]["coverage_share"] > 0


def test_dismiss_cancels_solve(pc: Any) -> None:
    """DELETE stops a running exact solve: the worker returns long before the solve's own 60 s limit."""
    inputs = {**PAJU_PMEDIAN["inputs"], "method": "exact", "time_limit": 60}
    resp = pc.post(URL, json={"inputs": inputs}, headers={"Prefer": "respond-async"})
    job = resp.headers["Location"].rsplit("/jobs/", 1)[1]
    runtime = services.of(pc.application).runtime
    future = runtime.future(job)
    assert future is not None
    wait_for(lambda: pc.get(f"/jobs/{job}").get_json()["progress"], lambda p: p >= 36, 30, "the solve starting")
    assert not future.done()
    assert pc.delete(f"/jobs/{job}").get_json()["status"] == "dismissed"
    assert future.result(timeout=30) is None  # the worker thread ended: the solver stopped, not just the status
    assert runtime.future(job) is None
    assert pc.get(f"/jobs/{job}").get_json()["status"] == "dismissed"


def test_time_limit_returns_best_with_gap(pc: Any) -> None:
    s = _run(pc, {**PAJU_PMEDIAN["inputs"], "method": "exact", "time_limit": 0.3})["summary"]
    assert s["status"] == "time_limit" and s["gap"] > 0 and s["bound"] < s["objective"]
    assert s["new_site_count"] == 2


@pytest.mark.parametrize(("change", "words"), [
    ({"p": 500}, "larger than the 190 candidate"),
    ({"model": "lscp", "p": None}, "cannot be covered within 10 min"),
    ({"demand": {"layer": "paju_emd", "weight": "voters", "filter": "name = 'nowhere'"}}, "no features"),
    ({"demand": {"layer": "paju_emd", "weight": "voters", "filter": "voters < 0"}}, "no features"),
    ({"candidates": {"layer": "no_such_layer"}}, "unknown layer"),
    ({"demand": {"layer": "paju_emd", "weight": "nope"}}, "not a numeric property"),
    ({"candidates": {"layer": "facilities_paju", "filter": "colour = 'red'"}}, "properties of facilities_paju"),
    ({"time_limit": 0}, "time_limit"),
    ({"time_limit": 1e9}, "time_limit"),
    ({"minutes": -5}, "minutes"),
    ({"model": "best"}, "use one of: lscp, mclp"),
    ({"p": None}, "needs p"),
    ({"method": "exact", "demand": {"layer": "paju_emd", "weight": "voters", "cell_m": 45, "filter": UNJEONG},
      "candidates": {"grid": {"cell_m": 75, "area": "paju_emd", "filter": UNJEONG}}}, "method heuristic"),
    ({"model": "capacitated-p-median"}, "capacity"),
    ({"network": "atlantis"}, "not loaded"),
])
def test_bad_input_is_400_with_what_to_change(pc: Any, change: dict[str, Any], words: str) -> None:
    inputs = {k: v for k, v in {**PAJU_PMEDIAN["inputs"], **change}.items() if v is not None}
    body = _run(pc, inputs, 400)
    assert words in body["description"], body["description"]


def test_all_examples_run(pc: Any) -> None:
    for ex in PROCESS_METADATA["examples"][:1]:
        assert _run(pc, {**ex["inputs"], "model": "max-attendance"})["summary"]["status"] == "optimal"
