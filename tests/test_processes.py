"""OGC API - Processes: the checklist items (ets-ogcapi-processes10) on the Flask app with real PostGIS."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from process_helpers import wait_for

from server import services
from server.processes_api import register

NS = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"


@pytest.fixture(scope="module")
def papp(dsn: str, loaded: dict[str, int]):  # type: ignore[no-untyped-def]
    """The app with the Processes routes (registered here until create_app does it)."""
    from server.app import create_app

    app = create_app(dsn=dsn)
    app.config["TESTING"] = True
    register(app)
    register(app)  # idempotent
    return app


@pytest.fixture()
def pc(papp):  # type: ignore[no-untyped-def]
    """Test client."""
    return papp.test_client()


def _exception(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert isinstance(body, dict) and "type" in body and body.get("description"), body
    return body


def _wait(pc: Any, job_id: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        info = pc.get(f"/jobs/{job_id}").get_json()
        if info["status"] not in ("accepted", "running") or time.monotonic() > deadline:
            return info  # type: ignore[no-any-return]
        time.sleep(0.1)


def test_conformance_and_openapi(pc: Any) -> None:
    """The served /conformance and /api (not the module constants) announce and document Processes."""
    served = set(pc.get("/conformance").get_json()["conformsTo"])
    assert {"http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core",
            "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/job-list",
            "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/dismiss"} <= served
    paths = pc.get("/api?f=json").get_json()["paths"]
    ops = {o["operationId"]: path for path, item in paths.items() for o in item.values() if isinstance(o, dict)
           and "operationId" in o}
    wanted = {"getJobs": "/jobs", "getStatus": "/jobs/{jobId}", "getResult": "/jobs/{jobId}/results",
              "execute": "/processes/{processID}/execution", "getProcesses": "/processes",
              "getProcessDescription": "/processes/{processID}"}
    assert {k: ops.get(k) for k in wanted} == wanted


def test_process_list_limit(pc: Any) -> None:
    body = pc.get("/processes").get_json()
    assert body["processes"] and isinstance(body["links"], list)
    assert {"echo", "accessibility"} <= {p["id"] for p in body["processes"]}
    one = pc.get("/processes?limit=1").get_json()
    assert len(one["processes"]) == 1
    assert pc.get("/processes?limit=10").status_code == 200
    _exception(pc.get("/processes?limit=0"), 400)


def test_process_descriptions(pc: Any) -> None:
    for summary in pc.get("/processes").get_json()["processes"]:
        desc = pc.get(f"/processes/{summary['id']}").get_json()
        assert isinstance(desc["inputs"], dict) and isinstance(desc["outputs"], dict)
        assert all("schema" in v for v in [*desc["inputs"].values(), *desc["outputs"].values()])
        assert desc["example"]["inputs"]
        assert desc["jobControlOptions"]
    echo = pc.get("/processes/echo").get_json()
    first = next(iter(echo["inputs"]))
    assert echo["inputs"][first]["schema"] == {"type": "string"}
    assert first in echo["outputs"]
    assert echo["inputs"]["pause"]["schema"]["type"] == "integer"


def test_unknown_process(pc: Any) -> None:
    body = _exception(pc.get("/processes/no-such-process"), 404)
    assert body["type"] == NS + "no-such-process"
    _exception(pc.post("/processes/no-such-process/execution", json={"inputs": {}}), 404)


def test_echo_sync(pc: Any) -> None:
    resp = pc.post("/processes/echo/execution", json={"inputs": {"echoInput": "teststring"}},
                   headers={"Accept": "application/json"})
    assert resp.status_code == 200
    assert "teststring" in resp.get_data(as_text=True)
    assert 'rel="monitor"' in resp.headers["Link"]
    doc = pc.post("/processes/echo/execution", json={"inputs": {"echoInput": {"value": "teststring"}},
                                                     "response": "document",
                                                     "outputs": {"echoInput": {"transmissionMode": "value"}}})
    assert doc.status_code == 200 and doc.get_json() == {"echoInput": "teststring"}


def test_echo_async(pc: Any) -> None:
    resp = pc.post("/processes/echo/execution", json={"inputs": {"echoInput": "teststring"}},
                   headers={"Prefer": "respond-async"})
    assert resp.status_code == 201
    loc = resp.headers["Location"]
    info = resp.get_json()
    assert info["jobID"] in loc and info["status"] in ("accepted", "running", "successful")
    assert info["type"] == "process" and info["processID"] == "echo"
    done = _wait(pc, info["jobID"])
    assert done["status"] == "successful" and done["progress"] == 100
    rels = {lk["rel"] for lk in done["links"]}
    assert {"monitor", "http://www.opengis.net/def/rel/ogc/1.0/results"} <= rels
    res = pc.get(f"/jobs/{info['jobID']}/results")
    assert res.status_code == 200 and "teststring" in res.get_data(as_text=True)


def test_results_not_ready_then_dismiss(pc: Any) -> None:
    resp = pc.post("/processes/echo/execution", json={"inputs": {"echoInput": "teststring", "pause": 20}},
                   headers={"Prefer": "respond-async"})
    job_id = resp.get_json()["jobID"]
    body = _exception(pc.get(f"/jobs/{job_id}/results"), 404)
    assert body["type"] == NS + "result-not-ready"
    wait_for(lambda: pc.get(f"/jobs/{job_id}").get_json()["status"], lambda s: s == "running", 10, "job running")
    future = services.of(pc.application).runtime.future(job_id)
    assert future is not None and not future.done()
    gone = pc.delete(f"/jobs/{job_id}")
    assert gone.status_code == 200 and gone.get_json()["status"] == "dismissed"
    assert future.result(timeout=10) is None  # the worker stopped (long before its 20 s pause) and freed its slot
    assert _wait(pc, job_id)["status"] == "dismissed"
    again = pc.post("/processes/echo/execution", json={"inputs": {"echoInput": "x"}})
    assert again.status_code == 200
    _exception(pc.get(f"/jobs/{job_id}/results"), 404)


@pytest.mark.parametrize("body", [
    {"invalid-execute-request": "true)"},
    {"inputs": []},
    {"inputs": {"echoInput": 5}},
    {"inputs": {}},
    {"inputs": {"echoInput": "x", "pause": -1}},
    {"inputs": {"echoInput": "x", "nope": 1}},
    {"inputs": {"echoInput": "x"}, "response": "strange"},
    {"inputs": {"echoInput": "x"}, "outputs": {"missing": {}}},
])
def test_invalid_execute(pc: Any, body: dict[str, Any]) -> None:
    _exception(pc.post("/processes/echo/execution", json=body), 400)


def test_invalid_body_not_json(pc: Any) -> None:
    _exception(pc.post("/processes/echo/execution", data="{not json", content_type="application/json"), 400)


def test_jobs_list_and_unknown_job(pc: Any) -> None:
    pc.post("/processes/echo/execution", json={"inputs": {"echoInput": "teststring"}})
    jobs = pc.get("/jobs").get_json()
    assert jobs["jobs"] and isinstance(jobs["links"], list)
    assert len(pc.get("/jobs?limit=1").get_json()["jobs"]) == 1
    assert all(j["processID"] == "echo" for j in pc.get("/jobs?processID=echo").get_json()["jobs"])
    bad = f"invalid-job-{uuid.uuid4()}"
    assert _exception(pc.get(f"/jobs/{bad}"), 404)["type"] == NS + "no-such-job"
    _exception(pc.get(f"/jobs/{bad}/results"), 404)
    _exception(pc.delete(f"/jobs/{bad}"), 404)


def test_orphaned_job_is_failed(papp: Any, pc: Any) -> None:
    """A job owned by a process that no longer exists is failed by the next maintenance pass."""
    rt = services.of(papp).runtime
    job = rt.store.create("echo", {"echoInput": "x"}, "raw")
    with rt.db.transaction() as conn, conn.cursor() as cur:
        cur.execute("UPDATE meta.jobs SET owner_pid = 2147483646, status = 'running' WHERE job_id = %s",
                    (job.job_id,))
    rt.maintain()
    info = pc.get(f"/jobs/{job.job_id}").get_json()
    assert info["status"] == "failed" and "restart" in info["message"]
    body = _exception(pc.get(f"/jobs/{job.job_id}/results"), 500)
    assert body["type"] == NS + "job-results-failed"
