"""OGC API - Processes routes (Flask blueprint), conformance classes and OpenAPI paths."""

from __future__ import annotations

import functools
import json
import logging
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, Response, request

from core.config import ProcessesConfig
from core.errors import Forbidden, InvalidParameterValue, OGCError, TooManyRequests
from layers.query import parse_int, reject_unknown
from processes import quotas
from processes.base import Processor
from processes.errors import InputError, JobFailed, NoSuchJob, NoSuchProcess, ResultNotReady
from processes.jobs import EVERYONE, Job
from processes.runtime import Runtime
from server import auth, hygiene, services
from server.auth import ADMIN, owner_of
from server.negotiate import JSON, href, link
from server.params_spec import accepted

LOGGER = logging.getLogger(__name__)
BP = Blueprint("processes", __name__)
REL = "http://www.opengis.net/def/rel/ogc/1.0/"
CONFORMANCE: list[str] = [
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/ogc-process-description",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/json",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/job-list",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/dismiss",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/oas30",
]
EXECUTE_KEYS = {"inputs", "outputs", "response", "mode", "subscriber"}
QUALIFIED_KEYS = {"value", "mediaType", "encoding", "schema"}


def processors(cfg: ProcessesConfig) -> dict[str, Processor]:
    """Every process of this server by id: ours, then the pygeoapi plugins of config.yml (PluginError if one fails)."""
    from processes.accessibility import AccessibilityProcessor
    from processes.air_exposure import AirExposureProcessor
    from processes.echo import EchoProcessor
    from processes.pygeoapi_bridge import load_plugins
    from processes.soc_siting import SocSitingProcessor

    procs: list[Processor] = [EchoProcessor(cfg), AccessibilityProcessor(cfg), SocSitingProcessor(cfg),
                              AirExposureProcessor(cfg)]
    procs += load_plugins(cfg, taken=[p.id for p in procs])
    return {p.id: p for p in procs}


def register(app: Flask) -> Runtime:
    """Add the Processes routes to the app and start the job runtime (idempotent)."""
    svc = services.of(app)
    if svc.runtime is not None:
        return svc.runtime
    cfg = svc.config.processes
    spare = max(1, svc.config.server.threads // 2)
    if cfg.max_sync > spare:  # waiting synchronous requests must leave request threads for tiles and features
        LOGGER.warning("processes.max_sync %d lowered to %d: half of server.threads (%d)", cfg.max_sync, spare,
                       svc.config.server.threads)
        cfg = cfg.model_copy(update={"max_sync": spare})
    runtime = Runtime(svc.write_url, cfg, processors(cfg), services_for=functools.partial(_services_of_job, app))
    svc.runtime = runtime
    app.register_blueprint(BP)
    try:
        runtime.start()
    except Exception:
        LOGGER.exception("processes runtime could not start (database?); jobs will fail until it can")
    return runtime


def _services_of_job(app: Flask, job: Job) -> dict[str, Any]:
    """The services a queued job claimed by this instance runs with: its owner (with the roles it had) as caller."""
    svc = services.of(app)
    with app.app_context():
        base = href("")
    return {"registry": svc.registry, "read_db": svc.db, "base_url": base, "caller": _owner_identity(job)}


def _owner_identity(job: Job) -> auth.Identity:
    """The identity owner_of() recorded for a job (anonymous, api-key:<id> or oidc:<sub>) with its roles then."""
    if job.owner is None:
        return auth.ANONYMOUS
    via, _, subject = job.owner.partition(":")
    roles = frozenset(job.owner_roles)
    return auth.Identity(job.owner, roles, "api-key") if via == "api-key" else auth.Identity(subject, roles, "oidc")


def _runtime() -> Runtime:
    runtime = services.current().runtime
    assert runtime is not None  # register() set it before the routes exist
    return runtime


def _json(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(doc, ensure_ascii=False), status=status, mimetype=JSON, headers=headers or {})


def _processor(process_id: str) -> Processor:
    proc = _runtime().processors.get(process_id)
    if proc is None:
        raise NoSuchProcess(f"process {process_id!r} not found; see /processes")
    return proc


def _summary(proc: Processor) -> dict[str, Any]:
    meta = proc.PROCESS_METADATA
    return {
        "id": proc.id, "title": meta["title"], "description": meta["description"], "version": meta["version"],
        "keywords": meta.get("keywords", []), "jobControlOptions": meta["jobControlOptions"],
        "outputTransmission": meta.get("outputTransmission", ["value"]),
        "links": [link("self", JSON, f"/processes/{proc.id}", "process description"),
                  {**link(f"{REL}execute", JSON, f"/processes/{proc.id}/execution", "execute"), "method": "POST"}],
    }


@BP.route("/processes")
def list_processes() -> Response:
    """Process list (limit, offset)."""
    reject_unknown(request.args, accepted("/processes"))
    limit = min(parse_int(request.args.get("limit", "100"), "limit", 1), 1000)
    offset = parse_int(request.args.get("offset", "0"), "offset", 0)
    procs = list(_runtime().processors.values())
    page = procs[offset:offset + limit]
    links = [link("self", JSON, "/processes", "this document", limit=limit, offset=offset or None)]
    if offset + limit < len(procs):
        links.append(link("next", JSON, "/processes", "next page", limit=limit, offset=offset + limit))
    return _json({"processes": [_summary(p) for p in page], "links": links})


@BP.route("/processes/<process_id>")
def describe_process(process_id: str) -> Response:
    """Process description: inputs and outputs with JSON Schema, and a runnable example."""
    reject_unknown(request.args, accepted("/processes/{processID}"))
    proc = _processor(process_id)
    meta = proc.PROCESS_METADATA
    doc = {**_summary(proc), "inputs": meta["inputs"], "outputs": meta["outputs"], "example": meta.get("example")}
    return _json(doc)


def _unwrap(value: Any) -> Any:
    """A qualified input value {"value": x, "mediaType": ...} -> x."""
    if isinstance(value, dict) and "value" in value and set(value) <= QUALIFIED_KEYS:
        return value["value"]
    return value


def _parse_execute(proc: Processor) -> tuple[dict[str, Any], list[str], str, bool]:
    """(inputs, selected outputs, response raw|document, async) from the execute request."""
    body = hygiene.load_json_body()
    if not isinstance(body, dict):
        raise InvalidParameterValue('the execute request body must be a JSON object like {"inputs": {...}}')
    unknown = sorted(set(body) - EXECUTE_KEYS)
    if unknown:
        raise InvalidParameterValue(f"unknown member(s) {', '.join(unknown)} in the execute request; "
                                    f"use: {', '.join(sorted(EXECUTE_KEYS))}")
    inputs = body.get("inputs", {})
    if not isinstance(inputs, dict):
        raise InvalidParameterValue("inputs must be an object keyed by input id")
    inputs = {k: _unwrap(v) for k, v in inputs.items()}
    all_outputs = list(proc.PROCESS_METADATA["outputs"])
    wanted = body.get("outputs") or {}
    if not isinstance(wanted, dict):
        raise InvalidParameterValue("outputs must be an object keyed by output id")
    bad = [o for o in wanted if o not in all_outputs]
    if bad:
        raise InvalidParameterValue(f"unknown output(s) {', '.join(bad)}; {proc.id} has: {', '.join(all_outputs)}")
    response = body.get("response", "raw")
    if response not in ("raw", "document"):
        raise InvalidParameterValue("response must be 'raw' or 'document'")
    prefer = request.headers.get("Prefer", "").lower()
    is_async = "respond-async" in prefer or body.get("mode") == "async"
    if is_async and "async-execute" not in proc.PROCESS_METADATA["jobControlOptions"]:
        is_async = False
    return inputs, list(wanted) or all_outputs, response, is_async


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def status_info(job: Job) -> dict[str, Any]:
    """OGC statusInfo of a job."""
    links = [link("self", JSON, f"/jobs/{job.job_id}", "this job"),
             link("monitor", JSON, f"/jobs/{job.job_id}", "job status"),
             link("up", JSON, "/jobs", "job list")]
    if job.status == "successful":
        links.append(link(f"{REL}results", JSON, f"/jobs/{job.job_id}/results", "results"))
    return {"type": "process", "processID": job.process_id, "jobID": job.job_id, "status": job.status,
            "message": job.message, "progress": job.progress, "created": _iso(job.created),
            "started": _iso(job.started), "finished": _iso(job.finished), "updated": _iso(job.updated),
            "links": links}


def _results_response(outputs: dict[str, Any], response: str, headers: dict[str, str]) -> Response:
    if response == "raw" and len(outputs) == 1:
        value = next(iter(outputs.values()))
        if isinstance(value, str):
            return Response(value, mimetype="text/plain", headers=headers)
    return _json(outputs, headers=headers)


@BP.route("/processes/<process_id>/execution", methods=["POST"])
def execute(process_id: str) -> Response:
    """Execute: 200 with results (sync), or 201 + Location with a statusInfo (Prefer: respond-async)."""
    reject_unknown(request.args, accepted("/processes/{processID}/execution", "post"))
    rt = _runtime()
    proc = _processor(process_id)
    inputs, outputs, response, is_async = _parse_execute(proc)
    svc = services.current()
    caller = auth.current()
    # the caller at submission: inputs read only the layers it may (processes.inputs.layer)
    context = {"registry": svc.registry, "read_db": svc.db, "base_url": href(""), "caller": caller}
    quota = rt.config.quotas.of(caller.anonymous, caller.roles)
    if quota is not None and quota.concurrent_jobs == 0:
        if caller.anonymous:
            raise auth.challenge("this server runs analyses for signed-in callers and API keys only", None)
        raise Forbidden("your quota allows no analyses (processes.quotas: concurrent_jobs 0)")
    clean = proc.validate(inputs, context)
    quotas.check(quota, inputs, clean)
    clean["_outputs"] = outputs
    rt.admit()

    def create() -> Job:  # owned by the caller; 429 beyond their concurrent_jobs
        return rt.store.create(proc.id, _jsonable(inputs), response, owner_of(caller), caller.roles,
                               quota.concurrent_jobs if quota is not None else None)

    if is_async:
        job = create()
        rt.submit(job, clean, context)
        monitor = href(f"/jobs/{job.job_id}")
        return _json(status_info(job), 201, {"Location": monitor, "Preference-Applied": "respond-async"})
    if not rt.sync_slots.acquire(blocking=False):
        raise TooManyRequests(f"{rt.config.max_sync} synchronous executions are running; send "
                              "'Prefer: respond-async' to queue this one as a job")
    try:
        job = create()
    except BaseException:
        rt.sync_slots.release()
        raise
    future = rt.submit(job, clean, context, sync=True)  # its own pool; the slot is given back when the job ends
    monitor = href(f"/jobs/{job.job_id}")
    try:
        result = future.result(timeout=rt.config.sync_timeout_s)
    except FutureTimeout:
        raise OGCError(f"the process did not finish within {rt.config.sync_timeout_s:.0f} s; it continues as job "
                       f"{monitor}; next time send 'Prefer: respond-async'") from None
    if result is None:
        raise JobFailed("the job was dismissed before it finished", 500)
    return _results_response(result, response, {"Link": f'<{monitor}>; rel="monitor"'})


def _jsonable(inputs: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(inputs, default=str))


@BP.route("/jobs")
def list_jobs() -> Response:
    """The caller's jobs, newest first (limit, offset, processID, status); admin: everyone's."""
    reject_unknown(request.args, accepted("/jobs"))
    limit = min(parse_int(request.args.get("limit", "100"), "limit", 1), 1000)
    offset = parse_int(request.args.get("offset", "0"), "offset", 0)
    status = request.args.getlist("status") or None
    caller = auth.current()
    if caller.anonymous and services.current().config.auth.enabled:
        # anonymous jobs have no owner: their unguessable id is their only key, so they are never listed
        raise auth.challenge("sign in or send an API key to list your jobs", None)
    owner = EVERYONE if ADMIN in caller.roles else owner_of(caller)
    jobs = _runtime().store.list_jobs(limit, offset, request.args.get("processID"), status, owner)
    links = [link("self", JSON, "/jobs", "this document", limit=limit, offset=offset or None)]
    if len(jobs) == limit:
        links.append(link("next", JSON, "/jobs", "next page", limit=limit, offset=offset + limit))
    return _json({"jobs": [status_info(j) for j in jobs], "links": links})


def _job(job_id: str) -> Job:
    """A job the caller may see: theirs (an anonymous job: to anonymous callers, by its id), or any for admin.

    Another identity's job is 404 like a missing one; an anonymous caller asking for an owned job, with
    authentication on, gets 401 (sign in as its owner).
    """
    job = _runtime().store.get(job_id)
    caller = auth.current()
    if job is not None and (job.owner == owner_of(caller) or ADMIN in caller.roles):
        return job
    if job is not None and caller.anonymous and services.current().config.auth.enabled:
        raise auth.challenge(f"job {job_id} belongs to a signed-in caller; send its credentials", None)
    raise NoSuchJob(f"job {job_id!r} not found; see /jobs")


@BP.route("/jobs/<job_id>")
def get_job(job_id: str) -> Response:
    """statusInfo of a job."""
    reject_unknown(request.args, accepted("/jobs/{jobId}"))
    return _json(status_info(_job(job_id)))


@BP.route("/jobs/<job_id>", methods=["DELETE"])
def dismiss_job(job_id: str) -> Response:
    """Dismiss a job: a running one stops at its next progress check; results are dropped."""
    reject_unknown(request.args, accepted("/jobs/{jobId}", "delete"))
    _job(job_id)  # the caller's, or 404
    job = _runtime().store.dismiss(job_id)
    if job is None:
        raise NoSuchJob(f"job {job_id!r} not found")
    from processes import results

    results.drop_job_layers(_runtime().db, job_id)
    return _json(status_info(job))


@BP.route("/jobs/<job_id>/results")
def job_results(job_id: str) -> Response:
    """Results of a successful job; 404 result-not-ready while it runs."""
    reject_unknown(request.args, accepted("/jobs/{jobId}/results"))
    job = _job(job_id)
    if job.status in ("accepted", "running"):
        raise ResultNotReady(f"job {job_id} is {job.status} ({job.progress} %); poll /jobs/{job_id}")
    if job.status == "dismissed":
        raise NoSuchJob(f"job {job_id} was dismissed; its results were deleted")
    outputs, error = _runtime().store.results(job_id)
    if job.status == "failed":
        err = error or {}
        raise JobFailed(str(err.get("description") or job.message), int(err.get("status") or 500))
    return _results_response(outputs or {}, job.response, {})


def openapi_paths(layers: Any = None) -> dict[str, Any]:
    """OpenAPI 3.0 path items of the Processes routes (parameters are filled in from server.params_spec)."""
    exc = {"application/json": {"schema": {"$ref": "#/components/schemas/exception"}}}
    obj = {"application/json": {"schema": {"type": "object"}}}
    pid = {"name": "processID", "in": "path", "required": True, "schema": {"type": "string"}}
    jid = {"name": "jobId", "in": "path", "required": True, "schema": {"type": "string"}}

    def op(op_id: str, summary: str, params: list[dict[str, Any]], ok: str = "200", **extra: Any) -> dict[str, Any]:
        return {"operationId": op_id, "summary": summary, "tags": ["Processes"], "parameters": params,
                "responses": {ok: {"description": summary, "content": obj},
                              "400": {"description": "invalid request", "content": exc},
                              "404": {"description": "not found", "content": exc},
                              "500": {"description": "server error", "content": exc}}, **extra}

    execute_op = op("execute", "execute a process (sync 200; Prefer: respond-async -> 201)", [pid],
                    requestBody={"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "properties": {"inputs": {"type": "object"}, "outputs": {"type": "object"},
                                                         "response": {"type": "string",
                                                                      "enum": ["raw", "document"]}}}}}})
    execute_op["responses"]["201"] = {"description": "job created (async)", "content": obj,
                                      "headers": {"Location": {"schema": {"type": "string"}}}}
    execute_op["responses"]["401"] = {"description": "analyses need credentials (quota of zero jobs)", "content": exc}
    execute_op["responses"]["403"] = {"description": "the caller's quota allows no analyses", "content": exc}
    execute_op["responses"]["429"] = {"description": "concurrent jobs of the caller, queue or synchronous pool full",
                                      "content": exc, "headers": {"Retry-After": {"schema": {"type": "integer"}}}}
    return {
        "/processes": {"get": op("getProcesses", "process list", [])},
        "/processes/{processID}": {"get": op("getProcessDescription", "process description", [pid])},
        "/processes/{processID}/execution": {"post": execute_op},
        "/jobs": {"get": op("getJobs", "job list", [])},
        "/jobs/{jobId}": {"get": op("getStatus", "job status", [jid]),
                          "delete": op("dismiss", "dismiss a job", [jid])},
        "/jobs/{jobId}/results": {"get": op("getResult", "job results", [jid])},
    }


__all__ = ["CONFORMANCE", "InputError", "openapi_paths", "register", "status_info"]
