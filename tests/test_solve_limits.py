"""Memory limits of `soc-siting` solves: the estimate refuses (400), the child's RLIMIT_AS fails only its job."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from process_helpers import points, run_process, wait_for

from core.config import load_config
from processes import sandbox
from processes import solve_budget as budget
from processes.soc_meta import PAJU_MCLP, PAJU_PMEDIAN
from server import services
from server.app import close_app

URL = "/processes/soc-siting/execution"
_RNG = np.random.default_rng(5)
_ORIGIN = np.array([220000.0, 530000.0])
SMALL = {"model": "p-median", "p": 2, "network": "none", "minutes": 15, "outputs": ["summary"],
         "candidates": points(_ORIGIN + _RNG.uniform(0, 3000, (7, 2))),
         "demand": points(_ORIGIN + _RNG.uniform(0, 3000, (25, 2)), [float(v) for v in _RNG.integers(1, 50, 25)])}
AppFactory = Callable[..., Any]


@pytest.fixture(scope="module")
def make_app(dsn: str, loaded: dict[str, int]) -> Iterator[AppFactory]:
    """Apps on the loaded database with changed `processes:` settings (shut down after the module)."""
    from server.app import create_app

    made: list[Any] = []

    def make(**processes: Any) -> Any:
        cfg = load_config()
        cfg = cfg.model_copy(update={"processes": cfg.processes.model_copy(update=processes)})
        app = create_app(cfg, dsn=dsn)
        app.config["TESTING"] = True
        made.append(app)
        return app.test_client()

    yield make
    for app in made:
        close_app(app)


def _submit(client: Any, inputs: dict[str, Any]) -> str:
    resp = client.post(URL, json={"inputs": inputs}, headers={"Prefer": "respond-async"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return str(resp.headers["Location"].rsplit("/jobs/", 1)[1])


def _final(client: Any, job: str, timeout: float = 120) -> dict[str, Any]:
    return wait_for(lambda: client.get(f"/jobs/{job}").get_json(),  # type: ignore[no-any-return]
                    lambda st: st["status"] not in ("accepted", "running"), timeout, f"job {job} ending")


def test_estimate_beyond_budget_is_refused_before_the_job(make_app: AppFactory) -> None:
    """Below the sizes' own lower bound: 400 at validation, naming the limit and how to shrink."""
    client = make_app(max_solve_memory_mb=100)
    body = run_process(client, URL, PAJU_PMEDIAN["inputs"], 400)
    msg = body["description"]
    assert "more than the limit of 100 MB (processes.max_solve_memory_mb)" in msg, msg
    assert "demand.cell_m" in msg and "candidates" in msg, msg
    resp = client.post(URL, json={"inputs": PAJU_PMEDIAN["inputs"]}, headers={"Prefer": "respond-async"})
    assert resp.status_code == 400  # refused before any job exists


def test_exact_model_beyond_budget_is_refused_and_auto_goes_heuristic(make_app: AppFactory) -> None:
    """The radius model's estimate (known once costs are) exceeds 200 MB: exact is refused, auto falls back."""
    client = make_app(max_solve_memory_mb=200)
    exact = run_process(client, URL, {**PAJU_PMEDIAN["inputs"], "method": "exact"}, 400)["description"]
    assert "radius-model entries" in exact and "limit of 200 MB" in exact and "method 'heuristic'" in exact, exact
    s = run_process(client, URL, PAJU_PMEDIAN["inputs"])["summary"]
    mem = s["solve_memory"]
    assert mem["path"] == "minsum-heuristic" and mem["estimate_mb"] <= 200 and "heuristic" in mem["note"]
    assert s["solver"] == "heuristic" and s["new_site_count"] == 2
    assert mem["peak_mb"] <= mem["estimate_mb"], mem


def test_solve_past_the_child_limit_fails_only_its_job(make_app: AppFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Estimate bypassed, 16 MB for the child: the solve's own arrays do not fit; the server keeps serving."""
    monkeypatch.setattr(budget.Estimate, "total", property(lambda self: 0))
    client = make_app(max_solve_memory_mb=16)
    job = _submit(client, {**PAJU_PMEDIAN["inputs"], "method": "exact"})
    st = _final(client, job)
    assert st["status"] == "failed", st
    msg = st["message"]
    assert "memory limit of 16 MB (processes.max_solve_memory_mb)" in msg and "MemoryError" in msg, msg
    failure = client.get(f"/jobs/{job}/results")
    assert failure.status_code == 400 and "16 MB" in failure.get_json()["description"]
    assert client.get("/health").status_code == 200
    echo = client.post("/processes/echo/execution", json={"inputs": {"echoInput": "still here"}})
    assert echo.status_code == 200 and "still here" in echo.get_data(as_text=True)
    small = _submit(client, SMALL)  # a small solve fits the same 16 MB child limit
    assert _final(client, small, 60)["status"] == "successful"
    s = client.get(f"/jobs/{small}/results").get_json()["summary"]
    assert s["status"] == "optimal" and s["solve_memory"]["peak_mb"] <= 16


def test_killed_child_fails_its_job_naming_the_limit(app: Any) -> None:
    """A child killed mid-solve (as the kernel's OOM killer would) fails its job; the next solve works."""
    client = app.test_client()
    job = _submit(client, {**PAJU_PMEDIAN["inputs"], "method": "exact", "time_limit": 60})
    wait_for(lambda: client.get(f"/jobs/{job}").get_json()["progress"], lambda p: p >= 36, 60, "the solve starting")
    kids = [p for p in multiprocessing.active_children() if p.name == "siting-p_median"]
    assert len(kids) == 1 and kids[0].pid != os.getpid()
    os.kill(kids[0].pid, signal.SIGKILL)  # type: ignore[arg-type]
    st = _final(client, job, 30)
    assert st["status"] == "failed" and "killed by SIGKILL" in st["message"], st
    assert "memory limit of 2,048 MB" in st["message"], st
    assert run_process(client, URL, PAJU_MCLP["inputs"])["summary"]["status"] == "optimal"


@pytest.mark.parametrize("case", [PAJU_PMEDIAN, PAJU_MCLP], ids=["p-median", "mclp"])
def test_child_solve_equals_in_process(app: Any, make_app: AppFactory, case: dict[str, Any]) -> None:
    """The bundled Paju cases give the same answer in the child as in the server process, within the estimate."""
    assert services.of(app).config.processes.solve_in_child
    child = run_process(app.test_client(), URL, case["inputs"])["summary"]
    inproc = run_process(make_app(solve_in_child=False), URL, case["inputs"])["summary"]
    assert child["objective"] == pytest.approx(inproc["objective"], rel=1e-9)
    assert child["new_sites"] == inproc["new_sites"] and child["status"] == inproc["status"] == "optimal"
    mem, mem_in = child["solve_memory"], inproc["solve_memory"]
    assert mem["in_child"] and not mem_in["in_child"] and "peak_mb" not in mem_in
    assert 0 < mem["peak_mb"] <= mem["estimate_mb"] == mem_in["estimate_mb"] and not mem["limit_reached"], mem


def test_child_protocol_errors_are_the_solvers() -> None:
    """Infeasibility keeps its demand list across the pipe; an unknown model is refused before any process."""
    from processes import siting

    c = np.array([[1.0, 9.0], [9.0, 1.0], [np.inf, np.inf]])
    with pytest.raises(siting.SitingInfeasibleError) as err:
        sandbox.solve("lscp", {"c": c, "w": np.ones(3)}, {"T": 2.0, "time_limit": 5.0}, limit_mb=256,
                      progress=lambda p, m: None, wall_s=60)
    assert err.value.demand == [2]
    with pytest.raises(ValueError, match="unknown siting model"):
        sandbox.solve("os.system", {}, {}, limit_mb=256, progress=lambda p, m: None, wall_s=1)
