"""`./run ingest airkorea` against AirKorea's recorded real responses, served by a local HTTP server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from db_helpers import query

from core.config import load_config
from loaders.airkorea import SOURCE, ingest
from loaders.errors import LoadError

REPO = Path(__file__).resolve().parent.parent
FIELDS_MD = "korea/airkorea-stations/AIRKOREA_API_FIELDS.md"
OPERATION = "/getCtprvnRltmMesureDnsty"
KST = ZoneInfo("Asia/Seoul")


def recorded_items() -> list[dict[str, Any]]:
    """The real Sejong response records quoted in AIRKOREA_API_FIELDS.md."""
    text = (load_config().data.path() / FIELDS_MD).read_text(encoding="utf-8")
    items = [json.loads(line) for line in text.splitlines() if re.match(r'\{"so2Grade"', line)]
    assert len(items) == 2
    return items


def envelope(items: list[dict[str, Any]], total: int | None = None, code: str = "00", msg: str = "NORMAL_CODE",
             page: int = 1, rows: int = 100) -> bytes:
    """AirKorea's JSON response envelope around items."""
    return json.dumps({"response": {"header": {"resultCode": code, "resultMsg": msg}, "body": {
        "totalCount": len(items) if total is None else total, "items": items, "pageNo": page, "numOfRows": rows}}},
        ensure_ascii=False).encode()


class FakeAirKorea:
    """A local HTTP server answering each request with the next prepared body, recording the queries."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                outer.requests.append((parts.path, parse_qs(parts.query)))
                body = outer.bodies.pop(0) if outer.bodies else b"{}"
                self.send_response(200)
                self.send_header("Content-Type", "application/json;charset=UTF-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture()
def airkorea(dsn: str, loaded: dict[str, int]) -> Iterator[FakeAirKorea]:
    """The fake service; the readings it stored are removed afterwards (and the catalog's row count restored)."""
    before = query(dsn, "SELECT rows_loaded FROM meta.datasets WHERE table_name = 'public.air_quality_readings'")
    server = FakeAirKorea()
    yield server
    server.httpd.shutdown()
    query(dsn, "DELETE FROM public.air_quality_readings WHERE source = %s", (SOURCE,))
    query(dsn, "DELETE FROM meta.surfaces WHERE period = 'hour'")  # hourly surfaces an ingest may have built
    if before:
        query(dsn, "UPDATE meta.datasets SET rows_loaded = %s WHERE table_name = 'public.air_quality_readings'",
              (before[0][0],))


def stored(dsn: str) -> list[tuple[Any, ...]]:
    return query(dsn, "SELECT station_name, measured_at, period, pm10, pm25, o3, no2, co, so2, pm10_flag, co_flag, "
                      "so2_flag FROM public.air_quality_readings WHERE source = %s ORDER BY measured_at", (SOURCE,))


def version(dsn: str, table: str) -> int:
    rows = query(dsn, "SELECT data_version FROM meta.datasets WHERE table_name = %s", (table,))
    return int(rows[0][0]) if rows else 0


def run_cli(args: list[str], key: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AIRKOREA_SERVICE_KEY"}
    if key is not None:
        env["AIRKOREA_SERVICE_KEY"] = key
    return subprocess.run([sys.executable, "-m", "server.cli", "ingest", "airkorea", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_ingest_stores_the_recorded_readings(dsn: str, airkorea: FakeAirKorea) -> None:
    airkorea.bodies.append(envelope(recorded_items()))
    before = version(dsn, "public.air_quality_readings"), version(dsn, "public.air_quality_latest")
    proc = run_cli(["--base-url", airkorea.url], key="test-key/with+chars")
    assert proc.returncode == 0, proc.stderr
    path, params = airkorea.requests[0]
    assert path.endswith(OPERATION)
    assert params["serviceKey"] == ["test-key/with+chars"] and params["sidoName"] == ["세종"]
    assert params["returnType"] == ["json"]
    kst = datetime.fromisoformat
    assert stored(dsn) == [
        ("신흥동", kst("2024-02-01T11:00:00+09:00"), "hour", Decimal(102), None, Decimal("0.023"), Decimal("0.025"),
         Decimal("0.9"), Decimal("0.004"), None, None, None),
        ("조치원읍", kst("2026-10-02T21:00:00+09:00"), "hour", Decimal(34), Decimal(8), Decimal("0.027"),
         Decimal("0.017"), None, None, None, "통신장애", "통신장애"),
    ]
    assert version(dsn, "public.air_quality_readings") == before[0] + 1
    assert version(dsn, "public.air_quality_latest") > before[1]  # the tiles of air_quality are rebuilt
    latest = query(dsn, "SELECT pm10, pm10_grade, measured_at FROM public.air_quality_latest WHERE name = '신흥동'")
    assert latest == [(Decimal(102), "나쁨", datetime(2024, 2, 1, 2, 0, tzinfo=UTC))]
    assert "2 readings" in proc.stderr


def test_ingest_again_replaces_the_same_hour(dsn: str, airkorea: FakeAirKorea) -> None:
    items = recorded_items()
    again = [dict(items[1], pm10Value="-", pm10Flag="점검및교정")]  # 신흥동, the same hour, now invalid
    airkorea.bodies.extend([envelope(items), envelope(items), envelope(again)])
    ingest(dsn, "key", base_url=airkorea.url)
    ingest(dsn, "key", base_url=airkorea.url)
    assert len(stored(dsn)) == 2
    ingest(dsn, "key", base_url=airkorea.url)
    rows = {(r[0], r[1]): r for r in stored(dsn)}
    assert len(rows) == len(stored(dsn)) == 2
    shin = next(r for (name, _), r in rows.items() if name == "신흥동")
    assert (shin[3], shin[9]) == (None, "점검및교정")


def test_pages_are_followed(dsn: str, airkorea: FakeAirKorea) -> None:
    items = recorded_items()
    airkorea.bodies.extend([envelope(items[:1], total=2, rows=1), envelope(items[1:], total=2, page=2, rows=1)])
    result = ingest(dsn, "key", base_url=airkorea.url, page_size=1)
    assert result.rows == 2 and len(stored(dsn)) == 2
    assert [p["pageNo"] for _, p in airkorea.requests] == [["1"], ["2"]]


@pytest.mark.parametrize(("bodies", "message"), [
    ([envelope([], code="30", msg="SERVICE_KEY_IS_NOT_REGISTERED_ERROR")], "resultCode 30"),
    ([envelope([], code="22", msg="LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR")], "resultCode 22"),
    ([b'<OpenAPI_ServiceResponse><cmmMsgHeader><errMsg>SERVICE ERROR</errMsg></cmmMsgHeader>'
      b'</OpenAPI_ServiceResponse>'], "not JSON"),
    (["TRUNCATED"], "not JSON"),
    ([b'{"response": {"header": {"resultCode": "00"}, "body": {"items": "none"}}}'], "items"),
    ([b'{"response": {"header": {"resultCode": "00"}, "body": {"items": [{"stationName": "x"}]}}}'], "dataTime"),
    (["PAGE2_ERROR"], "resultCode 99"),
])
def test_a_bad_response_stores_nothing(dsn: str, airkorea: FakeAirKorea, bodies: list[Any], message: str) -> None:
    items = recorded_items()
    if bodies == ["TRUNCATED"]:
        bodies = [envelope(items)[:-40]]
    if bodies == ["PAGE2_ERROR"]:  # the first page is fine: still nothing is stored
        bodies = [envelope(items[:1], total=2, rows=1), envelope([], code="99", msg="UNKNOWN_ERROR")]
    airkorea.bodies.extend(bodies)
    before = query(dsn, "SELECT count(*) FROM public.air_quality_readings")[0][0]
    versions = version(dsn, "public.air_quality_readings"), version(dsn, "public.air_quality_latest")
    with pytest.raises(LoadError, match=message):
        ingest(dsn, "key", base_url=airkorea.url, page_size=1 if len(bodies) > 1 else 100)
    assert query(dsn, "SELECT count(*) FROM public.air_quality_readings")[0][0] == before
    assert (version(dsn, "public.air_quality_readings"), version(dsn, "public.air_quality_latest")) == versions


def test_cli_refuses_without_a_key(dsn: str, airkorea: FakeAirKorea) -> None:
    proc = run_cli(["--base-url", airkorea.url], key=None)
    assert proc.returncode == 2
    assert "AIRKOREA_SERVICE_KEY" in proc.stderr and "Traceback" not in proc.stderr
    assert airkorea.requests == [] and stored(dsn) == []


def test_cli_reports_an_error_response(dsn: str, airkorea: FakeAirKorea) -> None:
    airkorea.bodies.append(envelope([], code="30", msg="SERVICE_KEY_IS_NOT_REGISTERED_ERROR"))
    proc = run_cli(["--base-url", airkorea.url], key="wrong")
    assert proc.returncode == 1
    assert "SERVICE_KEY_IS_NOT_REGISTERED_ERROR" in proc.stderr and "Traceback" not in proc.stderr
    assert "wrong" not in proc.stderr  # the key is never printed
    assert stored(dsn) == []


def hourly_items(pm10: list[str], first_hour: int = 1, day: str = "2024-03-05") -> list[dict[str, Any]]:
    """신흥동's real record re-dated to consecutive hours of `day` with the given PM10 values (PM2.5 varies)."""
    base = recorded_items()[1]
    return [dict(base, dataTime=f"{day} {first_hour + i:02d}:00", pm10Value=v, pm25Value=str(10 + first_hour + i))
            for i, v in enumerate(pm10)]


def pm_flags(dsn: str) -> list[tuple[int, Any, Any, Any]]:
    """(KST hour, pm10, pm10_flag, pm25_flag) of the ingested rows in time order."""
    return [(r[0].astimezone(KST).hour, r[1], r[2], r[3]) for r in query(
        dsn, "SELECT measured_at, pm10, pm10_flag, pm25_flag FROM public.air_quality_readings WHERE source = %s "
             "ORDER BY measured_at", (SOURCE,))]


def test_a_stuck_sensor_spanning_two_ingests_is_flagged(dsn: str, airkorea: FakeAirKorea) -> None:
    airkorea.bodies.extend([envelope(hourly_items(["40"] * 8)), envelope(hourly_items(["40"] * 3, first_hour=9))])
    ingest(dsn, "key", base_url=airkorea.url)
    ingest(dsn, "key", base_url=airkorea.url)
    assert [f[2] for f in pm_flags(dsn)] == [None] * 11  # 11 stuck hours: not yet a flat run
    airkorea.bodies.append(envelope(hourly_items(["40", "55"], first_hour=12)))
    ingest(dsn, "key", base_url=airkorea.url)
    rows = pm_flags(dsn)
    assert [h for h, *_ in rows] == list(range(1, 14))
    assert all(r[1] == Decimal(40) and r[2] == "flat" for r in rows[:12])  # kept, flagged over the stored series
    assert rows[12][1:3] == (Decimal(55), None)
    assert all(r[3] is None for r in rows)  # PM2.5 changes every hour: never flat


def test_a_corrected_hour_unflags_the_run_and_other_flags_end_runs(dsn: str, airkorea: FakeAirKorea) -> None:
    airkorea.bodies.append(envelope(hourly_items(["40"] * 12)))
    ingest(dsn, "key", base_url=airkorea.url)
    assert [f[2] for f in pm_flags(dsn)] == ["flat"] * 12
    fixed = [dict(hourly_items(["-"], first_hour=6)[0], pm10Flag="점검및교정")]  # hour 6 now invalid
    airkorea.bodies.append(envelope(fixed))
    ingest(dsn, "key", base_url=airkorea.url)
    rows = pm_flags(dsn)
    assert rows[5][1:3] == (None, "점검및교정")
    assert [r[2] for r in rows[:5] + rows[6:]] == [None] * 11  # runs of 5 and 6 hours: the flags are withdrawn
