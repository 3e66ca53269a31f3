"""AirKorea real-time ingest: 시도별 실시간 측정정보 (getCtprvnRltmMesureDnsty) -> public.air_quality_readings.

`./run ingest airkorea` (or `python -m loaders.airkorea`) asks the AirKorea OpenAPI for the latest hourly readings
of a 시도 with the service key in AIRKOREA_SERVICE_KEY, parses AirKorea's invalid markers ("-", empty values,
*Flag fields) and upserts the readings (station, hour) in one transaction with the catalog versions, re-judging the
stored hourly series of the ingested stations for stuck PM sensors (loaders.flat_runs, so a run spanning two ingests
is flagged 'flat'): an error response (resultCode other than "00") or a malformed page stores nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.error import URLError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

from psycopg2 import sql
from psycopg2.extras import execute_values

from core.config import NoDatabase, database_url, load_config
from loaders.core import RowStats, connect
from loaders.datasets import air_quality_readings, air_quality_tables
from loaders.errors import LoadError
from loaders.flat_runs import flag_stored_flat_runs
from loaders.readings import POLLUTANTS, airkorea_rows
from loaders.surfaces.build import build_all

BASE_URL = "https://apis.data.go.kr/B552584/ArpltnInforInqireSvc"
OPERATION = "getCtprvnRltmMesureDnsty"
SOURCE = f"airkorea-api:{OPERATION}"  # readings.source of every ingested row
KEY_ENV = "AIRKOREA_SERVICE_KEY"
URL_ENV = "AIRKOREA_BASE_URL"
MAX_PAGES = 50  # a 시도 has at most a few hundred stations: more pages means a runaway totalCount
COLUMNS = ("station_name", "measured_at", "period", *POLLUTANTS, *(f"{p}_flag" for p in POLLUTANTS), "source")


@dataclass(frozen=True)
class IngestResult:
    """What one ingest stored."""

    rows: int
    stations: int
    newest: datetime | None
    data_version: int


def parse_page(body: bytes, label: str) -> tuple[list[Any], int]:
    """(items, totalCount) of one response page; an error response or a malformed page is a LoadError."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        start = body[:80].decode("utf-8", "replace")
        raise LoadError(f"{label}: the answer is not JSON ({exc}); it starts with {start!r}") from None
    response = doc.get("response") if isinstance(doc, dict) else None
    header = response.get("header") if isinstance(response, dict) else None
    if not isinstance(header, dict):
        raise LoadError(f"{label}: no response.header in the answer")
    code = str(header.get("resultCode", ""))
    if code != "00":
        raise LoadError(f"{label}: AirKorea answered resultCode {code} ({header.get('resultMsg', '')})")
    body_doc = response.get("body") if isinstance(response, dict) else None
    items = body_doc.get("items") if isinstance(body_doc, dict) else None
    if isinstance(items, dict) and "item" in items:
        items = items["item"]
    if not isinstance(body_doc, dict) or not isinstance(items, list):
        raise LoadError(f"{label}: no response.body.items list in the answer")
    raw_total = body_doc.get("totalCount", len(items))
    try:
        total = int(raw_total)
    except (TypeError, ValueError):
        raise LoadError(f"{label}: totalCount {raw_total!r} is not a number") from None
    return items, total


def fetch(service_key: str, sido: str, base_url: str, page_size: int = 100,
          timeout: float = 30) -> tuple[list[Any], str]:
    """Every item of the 시도's real-time readings (all pages) and the sha256 of the answers."""
    digest = hashlib.sha256()
    items: list[Any] = []
    for page in range(1, MAX_PAGES + 1):
        query = {"serviceKey": service_key, "returnType": "json", "numOfRows": page_size, "pageNo": page,
                 "sidoName": sido, "ver": "1.0"}
        label = f"AirKorea {OPERATION} {sido} page {page}"
        url = f"{base_url.rstrip('/')}/{OPERATION}?{urlencode(query)}"
        try:
            with urlopen(Request(url, headers={"Accept": "application/json"}), timeout=timeout) as resp:
                body = resp.read()
        except (URLError, OSError) as exc:  # never echo the URL: it carries the key
            raise LoadError(f"{label}: request failed ({getattr(exc, 'reason', exc)})") from None
        digest.update(body)
        got, total = parse_page(body, label)
        items.extend(got)
        if not got or len(items) >= total:
            return items, digest.hexdigest()
    raise LoadError(f"AirKorea {OPERATION} {sido}: more than {MAX_PAGES} pages; refusing")


def _store(dsn: str, rows: Sequence[Mapping[str, Any]], source_entry: dict[str, str]) -> int:
    """Upsert the readings by (station, hour) and bump the catalog, in one transaction; the readings version."""
    _ensure_views(dsn)
    table = sql.Identifier(*air_quality_readings.TABLE.split("."))
    cols = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('sejong-airkorea-ingest'))")
            keys = [(r["station_name"], r["measured_at"]) for r in rows]
            execute_values(cur, sql.SQL(
                "DELETE FROM {t} r USING (VALUES %s) AS k(station_name, measured_at) "
                "WHERE r.station_name = k.station_name AND r.measured_at = k.measured_at::timestamptz "
                "AND r.period = 'hour'").format(t=table).as_string(cur), keys)
            execute_values(cur, sql.SQL("INSERT INTO {t} ({c}) VALUES %s").format(t=table, c=cols).as_string(cur),
                           [tuple(r[c] for c in COLUMNS) for r in rows])
            flag_stored_flat_runs(cur, air_quality_readings.TABLE, sorted({r["station_name"] for r in rows}))
            version = _bump_catalog(cur, table, source_entry)
            air_quality_tables.sync_view_catalog(cur)
        conn.commit()
        return version
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()


def _ensure_views(dsn: str) -> None:
    """The readings table and the air-quality views, created only where missing (no DDL lock every hour)."""
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL",
                        tuple(vc.view for vc in air_quality_tables.VIEW_CATALOG))
            present = bool(cur.fetchone()[0])
    finally:
        conn.close()
    if not present:
        air_quality_tables.ensure_views(dsn)


def _bump_catalog(cur: Any, table: sql.Identifier, source_entry: dict[str, str]) -> int:
    """The readings' catalog row: the API as a source, new row count and load time, data version + 1."""
    meta = air_quality_readings.META
    cur.execute(sql.SQL("SELECT count(*) FROM {}").format(table))
    rows_now = int(cur.fetchone()[0])
    cur.execute("SELECT sources FROM meta.datasets WHERE table_name = %s FOR UPDATE", (air_quality_readings.TABLE,))
    found = cur.fetchone()
    sources = [s for s in (found[0] if found and found[0] else []) if s.get("file") != source_entry["file"]]
    sources.append(source_entry)
    cur.execute(
        """INSERT INTO meta.datasets AS d (table_name, title, licence, attribution, sources, loaded_at, rows_loaded,
                                           rows_skipped, geometries_repaired, data_version)
           VALUES (%s, %s, %s, %s, %s::jsonb, now(), %s, 0, 0, 1)
           ON CONFLICT (table_name) DO UPDATE SET sources = EXCLUDED.sources, loaded_at = now(),
             rows_loaded = EXCLUDED.rows_loaded, data_version = d.data_version + 1
           RETURNING data_version""",
        (air_quality_readings.TABLE, meta.title, meta.licence, meta.attribution,
         json.dumps(sources, ensure_ascii=False), rows_now))
    return int(cur.fetchone()[0])


def ingest(dsn: str, service_key: str, *, sido: str = "세종", base_url: str = BASE_URL, page_size: int = 100,
           timeout: float = 30, surfaces: bool = True) -> IngestResult:
    """Fetch the 시도's real-time readings and upsert them atomically; then (with `surfaces`) rebuild the hourly
    surfaces (only hourly ones: the daily surfaces follow the next readings load)."""
    if not service_key:
        raise LoadError(f"no AirKorea service key: set {KEY_ENV} (공공데이터포털 인증키, decoded form)")
    items, sha = fetch(service_key, sido, base_url, page_size, timeout)
    label = f"AirKorea {OPERATION} {sido}"
    rows = list(_latest_per_hour(airkorea_rows(items, RowStats(), label, SOURCE)))
    entry = {"file": f"{OPERATION}?sidoName={sido}", "sha256": sha, "url": f"{base_url.rstrip('/')}/{OPERATION}"}
    version = _store(dsn, rows, entry) if rows else 0
    if rows and surfaces:
        build_all(dsn, periods=("hour",))
    newest = max((r["measured_at"] for r in rows), default=None)
    return IngestResult(len(rows), len({r["station_name"] for r in rows}), newest, version)


def _latest_per_hour(rows: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    """One row per (station, hour): the last one the answer lists."""
    return {(r["station_name"], r["measured_at"]): r for r in rows}.values()


def main(argv: list[str] | None = None) -> int:
    """python -m loaders.airkorea [--sido 세종] [--base-url URL] [--dsn URL]"""
    ap = argparse.ArgumentParser(prog="./run ingest airkorea", description=(
        "AirKorea real-time readings (시도별 실시간 측정정보) into public.air_quality_readings; the service key "
        f"comes from ${KEY_ENV}"))
    ap.add_argument("--sido", default="세종", help="시도 name as AirKorea spells it (default 세종)")
    ap.add_argument("--base-url", default=os.environ.get(URL_ENV) or BASE_URL,
                    help=f"service base URL (default ${URL_ENV} or {BASE_URL})")
    ap.add_argument("--page-size", type=int, default=100, help="numOfRows per request (default 100)")
    ap.add_argument("--dsn", help="PostgreSQL URL (default: $DATABASE_URL)")
    args = ap.parse_args(argv)
    key = os.environ.get(KEY_ENV, "").strip()
    if not key:
        print(f"error: set {KEY_ENV} to your 공공데이터포털 service key for AirKorea (B552584)", file=sys.stderr)
        return 2
    try:
        dsn = args.dsn or database_url(load_config())
        res = ingest(dsn, key, sido=args.sido, base_url=args.base_url, page_size=args.page_size)
    except (LoadError, NoDatabase) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    newest = res.newest.isoformat() if res.newest else "-"
    print(f"{air_quality_readings.TABLE}: {res.rows} readings of {res.stations} stations upserted "
          f"(newest {newest}, version {res.data_version})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
