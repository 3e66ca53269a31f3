"""The data-quality report of a load, after the public-data quality dimensions (공공데이터 품질관리 수준평가):
completeness, validity, uniqueness and timeliness; computed in the load's transaction and stored with its version."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg2.extensions
from psycopg2 import sql

from loaders.crs import STORAGE_SRID

# spec, stats and sources are the load's loaders.core TableSpec, RowStats and SourceFile objects (duck-typed: this
# module must not import loaders.core, which calls it)

KST = ZoneInfo("Asia/Seoul")
# columns whose values should identify a row (a duplicate is reported, not refused): ids, codes, numbers
_ID_NAME = re.compile(r"(^|_)(id|code|no|pnu|gid|uid|ufid)(_src)?$|코드$|번호$|식별|관리번호", re.IGNORECASE)
_NOT_ID = re.compile(r"전화|팩스|우편|tel|phone|fax|zip", re.IGNORECASE)  # shared contact numbers are not ids
# the data's own date: a column named like a reference date wins over other date columns
_DATE_NAME = re.compile(r"기준|date|일자|updated|수정|갱신|측정", re.IGNORECASE)
_FILE_DATE = re.compile(r"(?<!\d)(20\d{2})[-_.]?(0[1-9]|1[0-2])[-_.]?(0[1-9]|[12]\d|3[01])(?!\d)")
_DATE_TYPES = {"date", "timestamptz", "timestamp with time zone", "timestamp", "timestamp without time zone"}
_ID_TYPES = {"text", "integer", "bigint", "smallint", "numeric"}


def region_bbox() -> tuple[float, float, float, float] | None:
    """The deployment's region from config.yml (None when the config cannot be read)."""
    try:
        from core.config import load_config

        return load_config().data.region
    except Exception:  # the report is still useful without the out-of-region count
        return None


def report(cur: psycopg2.extensions.cursor, spec: Any, stats: Any, repaired: int,
           sources: list[Any], region: tuple[float, float, float, float] | None) -> dict[str, Any]:
    """The quality of the rows now in spec.table (read inside the load's transaction)."""
    cols = [c for c in spec.columns if not (spec.generated_pk and c.name == spec.pk)]
    geo = bool(spec.geom_type)
    parts: list[sql.Composable] = [sql.SQL("count(*)")]
    parts += [sql.SQL("count({})").format(sql.Identifier(c.name)) for c in cols]
    if geo:
        parts.append(sql.SQL("count(*) FILTER (WHERE geom IS NULL OR ST_IsEmpty(geom))"))
        if region:
            parts.append(sql.SQL("count(*) FILTER (WHERE geom IS NOT NULL AND NOT ST_Intersects(geom, "
                                 "ST_Transform(ST_MakeEnvelope({}, {}, {}, {}, 4326), {})))").format(
                *map(sql.Literal, region), sql.Literal(STORAGE_SRID)))
    cur.execute(sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(parts), spec.ident()))
    counts = list(cur.fetchone() or [])
    rows = int(counts[0])
    nulls = {c.name: rows - int(n) for c, n in zip(cols, counts[1:1 + len(cols)], strict=True)}
    cells = rows * len(cols)
    validity: dict[str, Any] = {
        "rowsRejected": len(stats.rejects),
        "typeFailures": dict(stats.type_failures),
        "geometriesRepaired": repaired,
    }
    if geo:
        validity["emptyGeometries"] = int(counts[1 + len(cols)])
        validity["outOfRegion"] = int(counts[2 + len(cols)]) if region else None
        validity["region"] = list(region) if region else None
    return {
        "rows": rows,
        "completeness": {
            "complete": round(1 - sum(nulls.values()) / cells, 4) if cells else 1.0,
            "nulls": {k: v for k, v in nulls.items() if v},
            "columns": len(cols),
        },
        "validity": validity,
        "uniqueness": _uniqueness(cur, spec, cols, geo),
        "timeliness": _timeliness(cur, spec, cols, sources),
        "types": {c.name: c.pgtype for c in cols},
    }


def _uniqueness(cur: psycopg2.extensions.cursor, spec: Any, cols: list[Any], geo: bool) -> dict[str, Any]:
    """Rows sharing an id-like value (per column) and rows sharing their exact geometry."""
    ids = [c for c in cols if c.name != spec.pk and c.pgtype in _ID_TYPES and _ID_NAME.search(c.name)
           and not _NOT_ID.search(c.name)][:5]
    dup_ids: dict[str, int] = {}
    for c in ids:
        cur.execute(sql.SQL("SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM {t} WHERE {c} IS NOT NULL "
                            "GROUP BY {c} HAVING count(*) > 1) d").format(t=spec.ident(), c=sql.Identifier(c.name)))
        dup_ids[c.name] = int((cur.fetchone() or [0])[0])
    out: dict[str, Any] = {"duplicateIds": dup_ids}
    if geo:
        cur.execute(sql.SQL("SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM {t} WHERE geom IS NOT NULL "
                            "GROUP BY ST_AsEWKB(geom) HAVING count(*) > 1) d").format(t=spec.ident()))
        out["duplicateGeometries"] = int((cur.fetchone() or [0])[0])
    return out


def _timeliness(cur: psycopg2.extensions.cursor, spec: Any, cols: list[Any],
                sources: list[Any]) -> dict[str, Any]:
    """The data's own newest date (a date column, else a date in the source file names) against the load date."""
    today = datetime.now(KST).date()
    dated = [c for c in cols if c.pgtype.lower() in _DATE_TYPES]
    dated.sort(key=lambda c: not _DATE_NAME.search(c.name))
    if dated:
        col = dated[0]
        cur.execute(sql.SQL("SELECT min({c}), max({c}) FROM {t}").format(c=sql.Identifier(col.name),
                                                                         t=spec.ident()))
        lo, hi = cur.fetchone() or (None, None)
        if hi is not None:
            return _age({"source": "column", "column": col.name}, _day(lo), _day(hi), today)
    found = [date(int(m[0]), int(m[1]), int(m[2])) for s in sources for m in _FILE_DATE.findall(s.file)]
    if found:
        return _age({"source": "file name", "column": None}, min(found), max(found), today)
    return {"source": None, "column": None, "loadDate": today.isoformat(),
            "note": "no date column and no date in the file name: the data's age is unknown"}


def _day(v: Any) -> date | None:
    if isinstance(v, datetime):
        return v.astimezone(KST).date() if v.tzinfo else v.date()
    return v if isinstance(v, date) else None


def _age(head: dict[str, Any], lo: date | None, hi: date | None, today: date) -> dict[str, Any]:
    return {**head, "oldest": lo.isoformat() if lo else None, "newest": hi.isoformat() if hi else None,
            "loadDate": today.isoformat(), "ageDays": (today - hi).days if hi else None}


def store(cur: psycopg2.extensions.cursor, table: str, version: int, loaded_at: Any, doc: dict[str, Any]) -> None:
    """Write the report of this data version into meta.datasets.quality (same transaction as the swap)."""
    doc = {"dataVersion": version, "loadedAt": loaded_at.isoformat() if loaded_at else None, **doc}
    cur.execute("UPDATE meta.datasets SET quality = %s::jsonb WHERE table_name = %s",
                (json.dumps(doc, ensure_ascii=False), table))


def summary_lines(doc: dict[str, Any]) -> list[str]:
    """The report in a few lines for the load output."""
    comp, val, uni, tim = (doc.get(k) or {} for k in ("completeness", "validity", "uniqueness", "timeliness"))
    nulls = ", ".join(f"{k} {v:,}" for k, v in list(comp.get("nulls", {}).items())[:6]) or "none"
    lines = [f"quality: completeness {comp.get('complete', 1):.1%} (nulls: {nulls})",
             f"quality: validity: {val.get('rowsRejected', 0):,} rows rejected, {val.get('geometriesRepaired', 0):,} "
             f"geometries repaired, {sum(val.get('typeFailures', {}).values()):,} type failures"
             + (f", {val['outOfRegion']:,} outside the region" if val.get("outOfRegion") is not None else "")]
    dups = ", ".join(f"{k} {v:,}" for k, v in uni.get("duplicateIds", {}).items() if v)
    lines.append(f"quality: uniqueness: duplicate ids {dups or 'none'}"
                 + (f", {uni['duplicateGeometries']:,} rows share a geometry" if "duplicateGeometries" in uni else ""))
    if tim.get("newest"):
        where = f"column {tim['column']}" if tim.get("column") else "the file name"
        lines.append(f"quality: timeliness: newest {tim['newest']} ({where}), {tim['ageDays']:,} days before the load")
    else:
        lines.append("quality: timeliness: unknown (no date column)")
    return lines
