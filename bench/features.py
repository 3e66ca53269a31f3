"""Items-page benchmark: check every system returns the bare query's features, then time them round-robin."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg2.extensions
import requests

from bench.oursql import our_sql_call
from bench.queries import Query, bare_sql, run_bare
from bench.servers import Server

ACCEPT = {"Accept": "application/geo+json, application/json;q=0.9"}
WARMUP = 3


@dataclass
class Check:
    """What one system returned for one query, compared with the bare query."""

    count: int | None = None
    ids: list[str] = field(default_factory=list)
    error: str | None = None
    mismatch: str | None = None
    note: str | None = None


@dataclass
class Result:
    """One (query, system) cell."""

    system: str
    check: Check
    samples_ms: list[float] = field(default_factory=list)
    errors: int = 0


@dataclass
class Target:
    """A timed call for one (query, system): returns seconds, or raises."""

    system: str
    url: str | None
    call: Callable[[], float]


def _ids(features: list[dict[str, Any]], id_col: str, bare: bool) -> list[str]:
    if bare:
        return [str(f.get("properties", {}).get(id_col)) for f in features]
    return [str(f.get("id")) for f in features]


def http_target(session: requests.Session, system: str, url: str, params: dict[str, str] | None) -> Target:
    """A GET whose time includes reading the whole body."""
    prepared = session.prepare_request(requests.Request("GET", url, params=params, headers=ACCEPT))
    full = str(prepared.url)

    def call() -> float:
        t0 = time.perf_counter()
        r = session.send(prepared, timeout=120)
        _ = r.content
        elapsed = time.perf_counter() - t0
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {r.text[:300]}")
        return elapsed

    return Target(system, full, call)


def http_check(session: requests.Session, url: str, id_col: str) -> Check:
    """Fetch once and read numberReturned / features."""
    try:
        r = session.get(url, headers=ACCEPT, timeout=120)
        if r.status_code != 200:
            return Check(error=f"HTTP {r.status_code} for {url}: {r.text[:400]}")
        doc = r.json()
        feats = doc.get("features") or []
        check = Check(count=len(feats), ids=_ids(feats, id_col, bare=False))
        nr = doc.get("numberReturned")
        if nr is not None and int(nr) != len(feats):
            check.note = f"numberReturned={nr} but {len(feats)} features"
        return check
    except (requests.RequestException, ValueError) as exc:
        return Check(error=f"{type(exc).__name__}: {exc}")


def follow_next(session: requests.Session, first_url: str, hops: int) -> str:
    """The URL reached by following `next` links `hops` times (our server's keyset cursor)."""
    url = first_url
    for _ in range(hops):
        doc = session.get(url, headers=ACCEPT, timeout=120).json()
        nxt = [link["href"] for link in doc.get("links", []) if link.get("rel") == "next"]
        if not nxt:
            raise RuntimeError(f"no next link at {url}")
        url = nxt[0]
    return url


def compare(check: Check, bare: Check) -> None:
    """Set check.mismatch when the number of features (or, as a note, the id set) differs from the bare page."""
    if check.error or bare.count is None:
        return
    if check.count != bare.count:
        got, want = set(check.ids), set(bare.ids)
        check.mismatch = (f"{check.count} features, bare query has {bare.count} "
                          f"(+{len(got - want)} extra, -{len(want - got)} missing ids)")
    elif set(check.ids) != set(bare.ids):
        check.note = (check.note + "; " if check.note else "") + "same count but a different set of ids"


def run_query(q: Query, conn: psycopg2.extensions.connection, servers: list[Server], session: requests.Session,
              reps: int, systems: list[str]) -> dict[str, Result]:
    """Check then time one query on every selected system."""
    stmt = bare_sql(q).as_string(conn)
    _, text, count = run_bare(conn, stmt)
    bare_check = Check(count=count, ids=_ids(json.loads(text), q.table.id_col, bare=True))
    results: dict[str, Result] = {}
    targets: list[Target] = []
    if "bare" in systems:
        results["bare"] = Result("bare", bare_check)
        targets.append(Target("bare", None, lambda: run_bare(conn, stmt)[0]))
    for srv in servers:
        if q.table.table not in srv.collection:
            continue
        base = srv.items_url(q.table)
        params = {**q.params(), **srv.extra_params}
        try:
            if srv.name == "ours" and q.kind == "deep":
                # keyset paging: the page our clients reach by following next links
                first = session.prepare_request(requests.Request("GET", base, params={"limit": params["limit"]}))
                url = follow_next(session, str(first.url), q.offset // int(params["limit"]))
                target = http_target(session, srv.name, url, None)
            else:
                target = http_target(session, srv.name, base, params)
        except Exception as exc:  # report, keep benchmarking the others
            results[srv.name] = Result(srv.name, Check(error=f"{type(exc).__name__}: {exc}"))
            continue
        check = http_check(session, str(target.url), q.table.id_col)
        compare(check, bare_check)
        results[srv.name] = Result(srv.name, check)
        if check.error is None:
            targets.append(target)
        if srv.name == "ours" and srv.config is not None and check.error is None:
            try:  # diagnostic: our server's own statements without HTTP
                call = our_sql_call(conn, srv.config, srv.collection[q.table.table], str(target.url))
                results["ours-sql"] = Result("ours-sql", Check(count=check.count))
                targets.append(Target("ours-sql", None, call))
            except Exception as exc:
                conn.rollback()
                results["ours-sql"] = Result("ours-sql", Check(error=f"{type(exc).__name__}: {exc}"))
    for i in range(WARMUP + reps):
        for target in targets:  # round-robin, so drift and noise hit every system alike
            res = results[target.system]
            try:
                elapsed = target.call()
            except Exception as exc:
                res.errors += 1
                res.check.error = res.check.error or f"{type(exc).__name__}: {exc}"
                continue
            if i >= WARMUP:
                res.samples_ms.append(elapsed * 1000.0)
    if "bare" not in systems:
        results["bare"] = Result("bare", bare_check)  # still the reference for counts
    return results


def http_floor(servers: list[Server], session: requests.Session, reps: int) -> dict[str, list[float]]:
    """Round trip of a trivial route (/conformance) per server: the HTTP + framework floor, in ms."""
    targets = [http_target(session, srv.name, f"{srv.base}/conformance", {"f": "json"}) for srv in servers]
    out: dict[str, list[float]] = {t.system: [] for t in targets}
    for i in range(WARMUP + reps):
        for target in targets:
            try:
                elapsed = target.call()
            except Exception:
                continue
            if i >= WARMUP:
                out[target.system].append(elapsed * 1000.0)
    return out
