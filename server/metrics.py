"""Observability: /metrics (Prometheus text format), a request id on every request, structured access logs.

The request id is the balancer's `X-Request-Id` (nginx's $request_id) or a new one; it is echoed in the response,
written in the JSON access log line (logger `sejong.access`) and set as the PostgreSQL application_name of the
connections the request uses (core.requestid), so a slow query in pg_stat_activity or the server log names its
request. Metrics are per process: run one gunicorn worker per instance (as `./run cluster` does) for whole-instance
numbers, or scrape each worker.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import uuid
from collections.abc import Iterator

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core import requestid
from layers.query import reject_unknown
from server import services
from server.params_spec import accepted

ACCESS = logging.getLogger("sejong.access")
BP = Blueprint("metrics", __name__)
EXTENSION = "sejong-metrics"
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0)
REQUEST_SECONDS = Histogram("sejong_request_duration_seconds", "Request latency by route family",
                            ["family", "method"], buckets=BUCKETS)
REQUESTS = Counter("sejong_requests", "Requests by route family and status class", ["family", "status"])
FAMILIES = (("/tiles", "tiles"), ("/collections/<collection_id>/tiles", "tiles"), ("/tilejson", "tiles"),
            ("/collections/<collection_id>/items/", "item"), ("/collections/<collection_id>/items", "items"),
            ("/collections", "collections"), ("/processes", "processes"), ("/jobs", "jobs"), ("/styles", "styles"),
            ("/health", "health"), ("/metrics", "metrics"))


def family(rule: str | None) -> str:
    """The route family of a URL rule (tiles, items, item, collections, processes, jobs, styles, …; other)."""
    if rule is None:
        return "unmatched"
    for prefix, name in FAMILIES:
        if rule.startswith(prefix):
            return name
    return "other"


class _AppCollector(Collector):
    """Gauges read at scrape time from one app: pools, replica lag, data versions, job queue."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        svc = services.of(self.app)
        pools = GaugeMetricFamily("sejong_db_connections", "Pooled connections of this process",
                                  labels=["pool", "state"])
        for name, db in (("read", svc.db), ("health", svc.health_db)):
            for target, (used, idle) in db.usage().items():
                pools.add_metric([f"{name}-{target}", "used"], used)
                pools.add_metric([f"{name}-{target}", "idle"], idle)
        yield pools
        replica = svc.db.replica
        if replica is not None:
            lag = replica.lag_s
            yield GaugeMetricFamily("sejong_replica_up", "Whether reads may go to the replica",
                                    value=1.0 if replica.usable() else 0.0)
            yield GaugeMetricFamily("sejong_replica_lag_seconds", "Replication lag (NaN: unreachable)",
                                    value=math.nan if lag is None else lag)
        versions = svc.versions.current() if svc.versions is not None else None
        known = GaugeMetricFamily("sejong_data_version", "Data version this process vouches for", labels=["table"])
        for table, version in sorted((versions or {}).items()):
            known.add_metric([table], version)
        yield known
        if svc.runtime is not None:
            jobs = GaugeMetricFamily("sejong_jobs", "Active jobs on the shared queue by state", labels=["state"])
            try:
                for state, count in svc.runtime.store.queue_depth().items():
                    jobs.add_metric([state], count)
            except Exception:  # the database is down: no queue numbers this scrape
                pass
            yield jobs


def install(app: Flask) -> None:
    """Request ids, access logs, latency histograms and /metrics for an app."""
    if not ACCESS.handlers:  # one JSON line per request on stderr (gunicorn's log), whatever the root logger says
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        ACCESS.addHandler(handler)
        ACCESS.setLevel(logging.INFO)
        ACCESS.propagate = False
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_AppCollector(app))
    app.extensions[EXTENSION] = registry
    app.register_blueprint(BP)

    @app.before_request
    def _begin() -> None:
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex[:16]
        g.request_t0 = time.perf_counter()
        g.request_token = requestid.REQUEST_ID.set(g.request_id)

    @app.after_request
    def _end(resp: Response) -> Response:
        t0 = g.get("request_t0")
        if t0 is None:
            return resp
        seconds = time.perf_counter() - t0
        fam = family(request.url_rule.rule if request.url_rule is not None else None)
        REQUEST_SECONDS.labels(fam, request.method).observe(seconds)
        REQUESTS.labels(fam, f"{resp.status_code // 100}xx").inc()
        resp.headers["X-Request-Id"] = g.request_id
        if ACCESS.isEnabledFor(logging.INFO):
            ACCESS.info(json.dumps({"rid": g.request_id, "method": request.method, "path": request.full_path,
                                    "status": resp.status_code, "ms": round(seconds * 1000, 2), "family": fam,
                                    "client": request.remote_addr}, ensure_ascii=False))
        return resp

    @app.teardown_request
    def _forget(_: BaseException | None) -> None:
        token = g.pop("request_token", None)
        if token is not None:
            requestid.REQUEST_ID.reset(token)


@BP.route("/metrics")
def metrics() -> Response:
    """Prometheus text format: request latency per route family, tile cache, pools, replica lag, jobs."""
    reject_unknown(request.args, accepted("/metrics"))
    from flask import current_app

    own: CollectorRegistry = current_app.extensions[EXTENSION]
    return Response(generate_latest(REGISTRY) + generate_latest(own), mimetype=CONTENT_TYPE_LATEST)
