"""Siting solvers (processes.siting): OR-Library optima, brute-force checks on small instances, bad input.

No database needed. Data: ``$SEJONG_DATA_DIR/or-library`` or ``<repo>/../shared/data/or-library``; missing files
fail the run (never skip). Budget: about a minute on 2 cores.
"""

from __future__ import annotations

import itertools
import math
import os
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import linprog

from processes.siting import (
    SitingInfeasibleError,
    SitingInputError,
    attendance_factor,
    capacitated_p_median,
    load_pmed,
    load_pmedopt,
    lscp,
    max_attendance,
    mclp,
    p_center,
    p_median,
)

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("SEJONG_DATA_DIR", REPO.parent / "shared" / "data")) / "or-library"
INSTANCES = [f"pmed{k}" for k in range(1, 11)]
HEURISTIC_GAPS: dict[str, float] = {}


def _path(name: str) -> Path:
    path = DATA / name
    if not path.is_file():
        pytest.fail(f"missing OR-Library file {path}: set SEJONG_DATA_DIR or restore ../shared/data/or-library")
    return path


@pytest.fixture(scope="module")
def pmed() -> dict[str, tuple[int, int, np.ndarray]]:
    return {name: load_pmed(_path(f"{name}.txt")) for name in INSTANCES}


@pytest.fixture(scope="module")
def pmedopt() -> dict[str, float]:
    return load_pmedopt(_path("pmedopt.txt"))


@pytest.fixture(scope="module")
def pcenteropt() -> dict[str, float]:
    return load_pmedopt(_path("pcenter-opt.txt"))


# ----- OR-Library ------------------------------------------------------------------------------------------------


def test_load_pmed_last_duplicate_edge_counts(pmed: dict[str, tuple[int, int, np.ndarray]]) -> None:
    n, p, c = pmed["pmed1"]
    assert (n, p, c.shape) == (100, 5, (100, 100))
    assert np.allclose(c, c.T) and np.all(np.diag(c) == 0)
    # pmed1 lists edge {19, 20} with 22 then 30: the later 30 counts (a shorter detour may still exist)
    assert c[18, 19] != 22


@pytest.mark.parametrize("name", INSTANCES)
def test_exact_p_median_reaches_proven_optimum(name: str, pmed: dict, pmedopt: dict[str, float]) -> None:
    _n, p, c = pmed[name]
    res = p_median(c, p=p, method="exact", time_limit=60)
    assert res.status == "optimal", (res.status, res.gap, res.details)
    assert res.objective == pmedopt[name]
    assert res.bound <= pmedopt[name] + 1e-6 and res.gap <= 1e-6
    assert res.solver == "highs-mip" and res.new_sites.size == p


@pytest.mark.parametrize("name", INSTANCES)
def test_heuristic_within_one_percent_with_valid_bound(name: str, pmed: dict, pmedopt: dict[str, float]) -> None:
    _n, p, c = pmed[name]
    res = p_median(c, p=p, method="heuristic", time_limit=10)
    opt = pmedopt[name]
    gap = (res.objective - opt) / opt
    HEURISTIC_GAPS[name] = gap
    assert gap <= 0.01
    assert res.bound <= opt + 1e-6, "the Lagrangian bound must never exceed the optimum"
    assert res.status in ("optimal", "feasible") and res.solver == "heuristic"
    if res.status == "optimal":
        assert res.objective == opt


def test_heuristic_mean_gap_report() -> None:
    assert len(HEURISTIC_GAPS) == len(INSTANCES), "run with the heuristic tests"
    mean = sum(HEURISTIC_GAPS.values()) / len(HEURISTIC_GAPS)
    print(f"\nheuristic mean gap on pmed1-10: {100 * mean:.4f} % (max {100 * max(HEURISTIC_GAPS.values()):.4f} %)")
    assert mean <= 0.001


@pytest.mark.parametrize("name", INSTANCES)
def test_p_center_reaches_published_optimum(name: str, pmed: dict, pcenteropt: dict[str, float]) -> None:
    _n, p, c = pmed[name]
    res = p_center(c, p=p, time_limit=60)
    assert res.status == "optimal"
    assert res.objective == pcenteropt[name]
    assert res.max_cost == pcenteropt[name]


# ----- brute force on small instances ----------------------------------------------------------------------------


def _instance(seed: int, n: int = 14, m: int = 9) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    dem, cand = rng.uniform(0, 10, (n, 2)), rng.uniform(0, 10, (m, 2))
    c = np.round(np.sqrt(((dem[:, None] - cand[None]) ** 2).sum(-1)), 2)
    return c, rng.integers(1, 9, n).astype(float)


def _subsets(m: int, k: int, existing: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    free = [j for j in range(m) if j not in existing]
    return [tuple(sorted(existing + s)) for s in itertools.combinations(free, k)]


@pytest.mark.parametrize("seed", range(4))
def test_p_median_and_p_center_match_enumeration(seed: int) -> None:
    c, w = _instance(seed)
    existing = (seed % 9,) if seed % 2 else ()
    for p in (1, 2, 3):
        sets = _subsets(c.shape[1], p, existing)
        best_sum = min(float(w @ c[:, s].min(axis=1)) for s in sets)
        best_max = min(float(c[:, s].min(axis=1).max()) for s in sets)
        for method in ("exact", "heuristic"):
            r = p_median(c, w, p, existing=list(existing), method=method, time_limit=10)
            assert math.isclose(r.objective, best_sum, rel_tol=1e-9), (method, p)
            assert set(existing) <= set(r.open_sites.tolist()) and r.new_sites.size == p
        rc = p_center(c, w, p, existing=list(existing))
        assert math.isclose(rc.objective, best_max) and rc.status == "optimal"


@pytest.mark.parametrize("seed", range(4))
def test_lscp_and_mclp_match_enumeration(seed: int) -> None:
    c, w = _instance(seed)
    T = 3.5  # noqa: N806
    existing = (seed,) if seed % 2 else ()
    m = c.shape[1]
    cov = c <= T
    need = ~cov[:, list(existing)].any(axis=1) if existing else np.ones(c.shape[0], dtype=bool)
    if not cov[need].any(axis=1).all():
        with pytest.raises(SitingInfeasibleError) as err:
            lscp(c, T, w, existing=list(existing))
        assert set(err.value.demand) == set(np.flatnonzero(need & ~cov.any(axis=1)).tolist())
    else:
        fewest = next(k for k in range(m + 1) for s in _subsets(m, k, existing) if cov[:, s].any(axis=1).all())
        r = lscp(c, T, w, existing=list(existing))
        assert r.objective == fewest and r.status == "optimal" and r.coverage_share == 1.0
    for p in (1, 2, 3):
        best = max(float(w[cov[:, s].any(axis=1)].sum()) for s in _subsets(m, p, existing))
        for method in ("exact", "heuristic"):
            r = mclp(c, w, p, T=T, existing=list(existing), method=method)
            assert math.isclose(r.objective, best), (method, p)
            assert math.isclose(r.covered_weight, best)
            assert r.bound >= best - 1e-9


def test_lscp_infeasible_lists_demand() -> None:
    c = np.array([[1.0, 2.0], [9.0, 9.0], [1.0, 8.0], [7.0, 9.5]])
    with pytest.raises(SitingInfeasibleError, match="no feasible cover") as err:
        lscp(c, T=5.0)
    assert err.value.demand == [1, 3]
    assert isinstance(err.value, SitingInputError)


@pytest.mark.parametrize("decay", ["linear", "exponential"])
def test_max_attendance_matches_enumeration(decay: str) -> None:
    c, w = _instance(7)
    T, beta = 5.0, 0.3  # noqa: N806
    f = attendance_factor(c, T, decay, beta)  # type: ignore[arg-type]
    for p in (1, 2):
        best = max(float(w @ f[:, s].max(axis=1)) for s in _subsets(c.shape[1], p))
        r = max_attendance(c, w, p, T=T, decay=decay, beta=beta)  # type: ignore[arg-type]
        assert math.isclose(r.objective, best, rel_tol=1e-9) and r.status == "optimal"
        assert math.isclose(sum(r.details["attendance_by_site"].values()), best, rel_tol=1e-9)


def _transport(c: np.ndarray, w: np.ndarray, cap: np.ndarray, sites: tuple[int, ...]) -> float:
    n, k = c.shape[0], len(sites)
    cost = (w[:, None] * c[:, sites]).reshape(-1)
    a_eq = np.kron(np.eye(n), np.ones(k))
    a_ub = np.zeros((k, n * k))
    for i in range(n):
        a_ub[:, i * k:(i + 1) * k] = np.eye(k) * w[i]
    res = linprog(cost, A_ub=a_ub, b_ub=cap[list(sites)], A_eq=a_eq, b_eq=np.ones(n), bounds=(0, 1))
    return float(res.fun) if res.status == 0 else math.inf


def test_capacitated_respects_capacities_and_matches_enumeration() -> None:
    c, w = _instance(3, n=10, m=6)
    cap = np.full(6, 0.4 * w.sum())
    existing = (0,)
    best = min(_transport(c, w, cap, s) for s in _subsets(6, 2, existing))
    r = capacitated_p_median(c, w, 2, cap=cap, existing=list(existing))
    assert r.status == "optimal" and math.isclose(r.objective, best, rel_tol=1e-6)
    assert 0 in r.open_sites and r.new_sites.size == 2
    for j, load in r.details["site_load"].items():
        assert load <= cap[j] + 1e-6
    shares = np.zeros(c.shape[0])
    for i, _j, s in r.details["flows"]:
        shares[i] += s
    assert np.allclose(shares, 1.0)
    ss = capacitated_p_median(c, w, 2, cap=cap, existing=list(existing), single_source=True)
    assert ss.objective >= r.objective - 1e-6
    assert all(math.isclose(s, 1.0) for _i, _j, s in ss.details["flows"])
    for j, load in ss.details["site_load"].items():
        assert load <= cap[j] + 1e-6
    with pytest.raises(SitingInfeasibleError, match="capacity too small"):
        capacitated_p_median(c, w, 1, cap=np.full(6, 0.1 * w.sum()))


def test_existing_sites_are_kept_and_counted() -> None:
    c, w = _instance(11)
    r = mclp(c, w, 1, T=3.0, existing=[2, 5])
    assert {2, 5} <= set(r.open_sites.tolist()) and r.new_sites.size == 1
    assert r.details["baseline"]["covered_weight"] <= r.covered_weight
    r0 = p_median(c, w, 0, existing=[2, 5])
    assert math.isclose(r0.objective, float(w @ c[:, [2, 5]].min(axis=1)))


# ----- time limits, progress, bad input --------------------------------------------------------------------------


def test_time_limit_returns_best_solution_with_gap(pmed: dict, pmedopt: dict[str, float]) -> None:
    _n, p, c = pmed["pmed6"]
    r = p_median(c, p=p, method="exact", time_limit=0.4)
    assert r.status == "time_limit"
    assert r.objective >= pmedopt["pmed6"] and r.bound <= pmedopt["pmed6"]
    assert 0 < r.gap < 1 and r.new_sites.size == p


def test_progress_is_reported_and_can_cancel(pmed: dict) -> None:
    _n, p, c = pmed["pmed2"]
    seen: list[tuple[float, str]] = []
    p_median(c, p=p, method="exact", progress=lambda pct, msg: seen.append((pct, msg)))
    assert seen[-1][0] == 100.0 and len(seen) >= 3
    assert all(0 <= pct <= 100 for pct, _ in seen)

    class Cancelled(Exception):
        pass

    def cancel(pct: float, msg: str) -> None:
        if pct > 20:
            raise Cancelled

    with pytest.raises(Cancelled):
        p_median(c, p=p, method="heuristic", progress=cancel)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"c": np.ones((3, 2)), "p": 3}, "larger than the 2 candidate"),
        ({"c": np.ones((3, 3)), "p": 2, "existing": [0, 1]}, "larger than the 1 candidate"),
        ({"c": np.ones((0, 3)), "p": 1}, "no demand"),
        ({"c": np.ones((3, 3)), "w": np.zeros(3), "p": 1}, "empty demand"),
        ({"c": -np.ones((3, 3)), "p": 1}, "negative"),
        ({"c": np.full((3, 3), np.nan), "p": 1}, "NaN"),
        ({"c": np.ones((3, 3)), "w": np.ones(4), "p": 1}, "shape mismatch"),
        ({"c": np.ones(3), "p": 1}, "2-D"),
        ({"c": np.ones((3, 3)), "p": 1, "time_limit": 0}, "time_limit"),
        ({"c": np.ones((3, 3)), "p": 1, "time_limit": 1e9}, "time_limit"),
        ({"c": np.ones((3, 3)), "p": 1, "method": "fast"}, "method"),
        ({"c": np.ones((3, 3)), "p": 1, "existing": [5]}, "existing"),
    ],
)
def test_bad_input_says_what_to_change(kwargs: dict, match: str) -> None:
    with pytest.raises(SitingInputError, match=match):
        p_median(**kwargs)


def test_too_large_for_exact_solver() -> None:
    c, w = _instance(1, n=60, m=30)
    with pytest.raises(SitingInputError, match="too large for the exact solver"):
        p_median(c, w, 3, method="exact", max_exact_nonzeros=100)
    with pytest.raises(SitingInputError, match="too large for the capacitated"):
        capacitated_p_median(c, w, 3, cap=np.full(30, np.inf), max_pairs=100)


def test_unreachable_pairs_and_zero_weights() -> None:
    c, w = _instance(5)
    c[0, :] = np.inf
    c[0, 4] = 2.0  # demand 0 only reaches site 4
    r = p_median(c, w, 2, method="exact")
    assert 4 in r.open_sites
    w0 = w.copy()
    w0[0] = 0.0
    c2 = c.copy()
    c2[0, :] = np.inf
    r2 = p_median(c2, w0, 2)  # weight-0 demand may be unreachable
    assert r2.assignment[0] == -1
    with pytest.raises(SitingInfeasibleError):
        p_median(c2, w, 2)
