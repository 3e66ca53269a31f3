"""The served OpenAPI under schemathesis: every operation, fixed seed, bounded examples, never a 5xx.

Runs against the real server under gunicorn (`live_server`), with inputs that fit the schema (positive) and
inputs that do not (negative). Each operation gets the same share of an overall time budget; the test fails on
any response >= 500 and on any error response that is not JSON (an OGC exception).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

SEED = 20240613
EXAMPLES = 40  # per operation and generation mode: about 5,000 requests, 60-120 s on the 2-core CI machine
BUDGET_S = 120.0  # the whole run; each operation gets an equal share of what is left (a warning names any cut short)
TIMEOUT_S = 20.0  # one request
# Nothing is excluded. DELETE /jobs/{jobId} gets random ids (404); POST /processes/{processID}/execution runs real
# processes on generated bodies, bounded by the server itself: server.max_body_kb (413), processes.max_sync (429).


class _OutOfTime(Exception):
    """An operation's share of the time budget is spent."""


@dataclass
class Tally:
    """What the run saw: request count, bad responses (deduplicated by operation and status), unrun operations."""

    cases: int = 0
    failures: dict[tuple[str, int, str], str] = field(default_factory=dict)
    cut_short: list[str] = field(default_factory=list)
    long_lines: int = 0  # request lines over gunicorn's maximum, answered by gunicorn itself


def _gunicorns_own_414(resp: schemathesis.Response) -> bool:
    """gunicorn answers a request line over its maximum (8190 bytes, server/gunicorn_conf.py) with an HTML 414
    before the app sees it, and has no setting for that page's format: the one non-JSON error allowed, and only
    for a line really over that maximum."""
    line = f"{resp.request.method} {resp.request.path_url} HTTP/1.1"
    return resp.status_code == 414 and len(line.encode()) > 8190


def _check(tally: Tally, label: str, case: Any, resp: schemathesis.Response) -> None:
    """Record a 5xx, or an error (>= 400) that is not an OGC exception in JSON."""
    tally.cases += 1
    ctype = resp.headers.get("content-type", [""])[0]  # schemathesis' Response: lowercase keys, list values
    problem = ""
    if resp.status_code >= 500:
        problem = "server error"
    elif resp.status_code >= 400 and not ctype.startswith("application/json"):
        if _gunicorns_own_414(resp):
            tally.long_lines += 1
            return
        problem = f"error response is {ctype or 'untyped'}, not JSON"
    elif resp.status_code >= 400:
        body = resp.json()
        if not (isinstance(body, dict) and body.get("code") and body.get("description")):
            problem = "error response is not an OGC exception"
    if problem:
        key = (label, resp.status_code, problem)
        tally.failures.setdefault(key, f"{resp.text[:200]!r}\n    {case.as_curl_command()}")


def _run_operation(op: Any, base: str, session: requests.Session, tally: Tally, until: float) -> None:
    """Fuzz one operation in both generation modes, each with half of the time left before `until` (monotonic)."""
    label = op.label
    for mode, mode_until in ((GenerationMode.POSITIVE, (time.monotonic() + until) / 2),
                             (GenerationMode.NEGATIVE, until)):

        @seed(SEED)
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False, print_blob=False,
                  phases=[Phase.explicit, Phase.generate],  # no shrinking: failures are collected, not raised
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy(generation_mode=mode))
        def fuzz(case: Any) -> None:
            if time.monotonic() > mode_until:  # noqa: B023 (called within this iteration only)
                raise _OutOfTime  # ends this operation's run (Hypothesis would otherwise generate every example)
            resp = case.call(base_url=base, session=session, timeout=TIMEOUT_S)
            _check(tally, label, case, resp)

        try:
            fuzz()
        except _OutOfTime:
            tally.cut_short.append(f"{label} ({mode.value})")
        except Unsatisfiable:
            # negative mode on an operation with nothing to get wrong (no parameters, no body): no cases exist
            assert mode is GenerationMode.NEGATIVE, label


def test_every_operation_without_a_server_error(live_server: str) -> None:
    schema = schemathesis.openapi.from_url(f"{live_server}/api?f=json", timeout=30)
    operations = []
    for result in schema.get_all_operations():
        operations.append(result.ok())  # an operation the schema cannot describe fails here, not silently
    assert len(operations) > 20, [op.label for op in operations]
    tally = Tally()
    start = time.monotonic()
    with requests.Session() as session:
        for i, op in enumerate(operations):
            share = (BUDGET_S - (time.monotonic() - start)) / (len(operations) - i)
            _run_operation(op, live_server, session, tally, time.monotonic() + max(share, 1.0))
    print(f"\nschemathesis: {len(operations)} operations, {tally.cases} requests in {time.monotonic() - start:.0f} s; "
          f"{tally.long_lines} request lines over gunicorn's maximum; "
          f"cut short by the time budget: {tally.cut_short or 'none'}")
    if tally.cut_short:
        warnings.warn(f"time budget spent before {EXAMPLES} examples of: {tally.cut_short}", stacklevel=1)
    if tally.failures:
        lines = [f"{label} -> {status}: {problem}\n    {detail}" for (label, status, problem), detail
                 in sorted(tally.failures.items())]
        pytest.fail(f"{len(tally.failures)} bad responses:\n" + "\n".join(lines))
