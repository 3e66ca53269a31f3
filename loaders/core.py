"""Atomic, idempotent table loads: rows -> staging table -> validate -> swap + catalog in ONE transaction."""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from core.schema import datasets, migrate
from loaders.crs import STORAGE_SRID
from loaders.errors import LoadError
from loaders.progress import Progress

DEFAULT_MAX_ROWS = 5_000_000
DEFAULT_MAX_SHRINK = 0.2  # a reload keeping fewer than 80 % of the rows is refused unless --replace
SERIAL = {"serial": "integer", "bigserial": "bigint", "smallserial": "smallint"}
POLYGONAL = {"MultiPolygon", "Polygon"}


@dataclass(frozen=True)
class Column:
    """A target column: name, PostgreSQL type (from code, never user text), Korean original name."""

    name: str
    pgtype: str = "text"
    ko: str = ""


@dataclass
class TableSpec:
    """A target table: columns (pk first), geometry type, optional partial-replace key."""

    table: str
    columns: list[Column]
    geom_type: str | None = "Point"
    pk: str = "id"
    generated_pk: bool = False
    replace_by: str | None = None
    indexes: list[str] = field(default_factory=list)

    @property
    def schema(self) -> str:
        """Schema part of the table name."""
        return self.table.split(".", 1)[0] if "." in self.table else "public"

    @property
    def name(self) -> str:
        """Unqualified table name."""
        return self.table.split(".", 1)[-1]

    @property
    def qualified(self) -> str:
        """schema.table."""
        return f"{self.schema}.{self.name}"

    def ident(self) -> sql.Composed:
        """The table as a quoted identifier."""
        return sql.Identifier(self.schema, self.name)

    def load_columns(self) -> list[str]:
        """Columns written by loaders (the generated pk excluded), geometry last."""
        cols = [c.name for c in self.columns if not (self.generated_pk and c.name == self.pk)]
        return [*cols, "geom"] if self.geom_type else cols


@dataclass(frozen=True)
class ColumnBatch:
    """Rows given as columns (equal-length sequences; a load column not among them is NULL): producers yielding
    these instead of one mapping per row skip building a dict per row."""

    columns: Mapping[str, Sequence[Any]]
    size: int


Rows = Iterable[Mapping[str, Any] | ColumnBatch]


@dataclass
class SourceFile:
    """One source file of a load, recorded in the catalog."""

    file: str
    sha256: str = ""
    url: str = ""
    rows: int = 0

    def as_json(self) -> dict[str, Any]:
        """Catalog representation."""
        d: dict[str, Any] = {"file": self.file, "sha256": self.sha256, "rows": self.rows}
        if self.url:
            d["url"] = self.url
        return d


@dataclass
class Meta:
    """Catalog text for a table."""

    title: str = ""
    licence: str = ""
    attribution: str = ""


@dataclass
class LoadResult:
    """Outcome of a successful load."""

    table: str
    rows: int
    skipped: int
    repaired: int
    data_version: int
    rejects: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    quality: dict[str, Any] = field(default_factory=dict)  # the data-quality report stored with this version


@dataclass
class RowStats:
    """Counters a row producer fills while it yields rows; rejects: rows set aside (file, line, column, reason)."""

    skipped: int = 0
    per_source: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)

    type_failures: dict[str, int] = field(default_factory=dict)  # per source column, rows set aside for a value

    def reject(self, file: str, line: int, column: str, reason: str) -> None:
        """Set a row aside (the load refuses unless its BadRows policy allows this many)."""
        self.rejects.append({"file": file, "line": line, "column": column, "reason": reason})

    def type_failure(self, file: str, line: int, column: str, reason: str) -> None:
        """Set a row aside because a value does not read as its column's type (counted for the quality report)."""
        self.type_failures[column] = self.type_failures.get(column, 0) + 1
        self.reject(file, line, column, reason)


@dataclass(frozen=True)
class BadRows:
    """How many rows that cannot be placed a load may set aside: a count, or a percentage of the rows read."""

    count: int = 0
    percent: float | None = None

    @classmethod
    def parse(cls, text: str | int | None) -> BadRows:
        """'0' (the default: refuse), '77' or '3%'."""
        raw = str(text if text is not None else "0").strip()
        try:
            if raw.endswith("%"):
                pct = float(raw[:-1])
                if 0 <= pct <= 100:
                    return cls(0, pct)
            elif int(raw) >= 0:
                return cls(int(raw))
        except ValueError:
            pass
        raise LoadError(f"--max-bad-rows {raw!r}: give a row count (e.g. 80) or a percentage (e.g. 3%)")

    def allows(self, bad: int, total: int) -> bool:
        """True when `bad` of `total` rows may be set aside."""
        if self.percent is not None:
            return bad <= total * self.percent / 100
        return bad <= self.count

    def __str__(self) -> str:
        return f"{self.percent:g}%" if self.percent is not None else str(self.count)


def connect(dsn: str) -> psycopg2.extensions.connection:
    """Open a connection (autocommit off)."""
    try:
        return psycopg2.connect(dsn)
    except psycopg2.OperationalError as exc:
        raise LoadError(f"cannot connect to the database ({dsn}): {exc}".strip()) from exc


def ensure_table(conn: psycopg2.extensions.connection, spec: TableSpec) -> bool:
    """CREATE TABLE IF NOT EXISTS with pk, geometry, GiST index and Korean column comments (in the caller's
    transaction); returns True when the table was created."""
    defs: list[sql.Composable] = []
    for c in spec.columns:
        pk = sql.SQL(" PRIMARY KEY") if c.name == spec.pk else sql.SQL("")
        defs.append(sql.SQL("{} {}{}").format(sql.Identifier(c.name), sql.SQL(c.pgtype), pk))
    if spec.geom_type:
        defs.append(sql.SQL("geom geometry({}, {})").format(sql.SQL(spec.geom_type), sql.Literal(STORAGE_SRID)))
    with conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(spec.schema)))
        cur.execute(sql.SQL("SELECT to_regclass({})").format(sql.Literal(spec.qualified)))
        row = cur.fetchone()
        if row is not None and row[0] is not None:
            return False
        cur.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(spec.ident(), sql.SQL(", ").join(defs)))
        if spec.geom_type:
            cur.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING gist (geom)").format(
                sql.Identifier(f"{spec.name}_geom_gist"), spec.ident()))
        for col in spec.indexes:
            cols = [sql.Identifier(p.strip()) for p in col.split(",")]
            idx = f"{spec.name}_{'_'.join(p.strip() for p in col.split(','))}_idx"
            cur.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
                sql.Identifier(idx[:63]), spec.ident(), sql.SQL(", ").join(cols)))
        for c in spec.columns:
            if c.ko:
                cur.execute(sql.SQL("COMMENT ON COLUMN {}.{} IS {}").format(
                    spec.ident(), sql.Identifier(c.name), sql.Literal(c.ko)))
    return True


def prepare(dsn: str, specs: Iterable[TableSpec]) -> None:
    """Migrate the project's own schema (core.schema), then create the (empty) target tables if missing."""
    conn = connect(dsn)
    try:
        migrate(dsn)
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('sejong-loaders-ddl'))")
        for spec in specs:
            ensure_table(conn, spec)
        conn.commit()
    finally:
        conn.close()


_ESC = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_SPECIAL = re.compile(r"[\\\t\n\r]")
NULL = "\\N"
COPY_BATCH = 10_000  # rows per COPY round trip


def _copy_value(v: Any) -> str:
    """One value in COPY text format."""
    if v is None:
        return NULL
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, (int, float, Decimal)):
        return str(v)
    if isinstance(v, (datetime, date, time)):
        return v.isoformat()
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False).translate(_ESC)
    return str(v).translate(_ESC)


_PLAIN: dict[type, Any] = {int: str, float: str, Decimal: str, datetime: datetime.isoformat, date: date.isoformat,
                           time: time.isoformat, bool: lambda b: "t" if b else "f"}


def _column_text(values: list[Any]) -> list[str]:
    """One column of a batch in COPY text format: one conversion per column type instead of per-value dispatch."""
    kinds = set(map(type, values))
    has_null = type(None) in kinds
    kinds.discard(type(None))
    if not kinds:
        return [NULL] * len(values)
    if len(kinds) == 1:
        kind = kinds.pop()
        if kind is str:
            if _SPECIAL.search("".join([v for v in values if v is not None] if has_null else values)):
                values = [v if v is None else v.translate(_ESC) for v in values]
            return [NULL if v is None else v for v in values] if has_null else values
        fmt = _PLAIN.get(kind)
        if fmt is not None:
            if has_null:
                return [NULL if v is None else fmt(v) for v in values]
            return list(map(fmt, values))
    return list(map(_copy_value, values))


class TextSample:
    """The first 2,000 non-ASCII values of each text column (and the first holding U+FFFD), gathered while the rows
    go to COPY, so the mis-decoding check needs no scan of the staging table."""

    LIMIT = 2000

    def __init__(self, columns: Iterable[str]) -> None:
        self.values: dict[str, list[str]] = {c: [] for c in columns}
        self.fffd: dict[str, str] = {}

    def add(self, name: str, column: list[Any]) -> None:
        """One column of a batch (values as loaded: str, or what COPY writes for others)."""
        present = [v if type(v) is str else _stored_text(v) for v in column if v is not None]
        joined = "".join(present)
        if joined.isascii():
            return
        found = self.values[name]
        if len(found) < self.LIMIT:
            found.extend([v for v in present if not v.isascii()][:self.LIMIT - len(found)])
        if name not in self.fffd and "\ufffd" in joined:
            self.fffd[name] = next(v for v in present if "\ufffd" in v)

    def of(self, name: str) -> list[str]:
        """The values to judge for one column (as SELECTed before: the non-ASCII ones, then one with U+FFFD)."""
        return self.values.get(name, []) + ([self.fffd[name]] if name in self.fffd else [])


def _stored_text(v: Any) -> str:
    """A non-str value as a text column stores it."""
    return json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else _copy_value(v)


def copy_text(batch: list[Mapping[str, Any]] | ColumnBatch, cols: list[str], sample: TextSample | None = None) -> str:
    """Rows in COPY text format (tab-separated, \\N for NULL, backslash escapes), built column by column."""
    if isinstance(batch, ColumnBatch):
        given = batch.columns
        raw = [list(given[c]) if c in given else [None] * batch.size for c in cols]
    else:
        raw = [[row.get(c) for row in batch] for c in cols]
    if sample is not None:
        for c, values in zip(cols, raw, strict=True):
            if c in sample.values:
                sample.add(c, values)
    columns = [_column_text(values) for values in raw]
    return "\n".join(map("\t".join, zip(*columns, strict=True))) + "\n"


def max_rows_default() -> int:
    """Row limit per load: SEJONG_LOADER_MAX_ROWS or 5,000,000."""
    return int(os.environ.get("SEJONG_LOADER_MAX_ROWS", DEFAULT_MAX_ROWS))


def _copy_rows(cur: psycopg2.extensions.cursor, staging: sql.Composed, cols: list[str], rows: Rows, label: str,
               max_rows: int, total: int | None, sample: TextSample | None = None) -> int:
    """Stream rows (mappings or ColumnBatch blocks) into the staging table with COPY in batches; returns the count."""
    copy = sql.SQL("COPY {} ({}) FROM STDIN").format(staging, sql.SQL(", ").join(map(sql.Identifier, cols)))
    copy_sql = copy.as_string(cur)
    progress = Progress(label, total)
    batch: list[Mapping[str, Any]] = []
    n = 0

    def send(block: list[Mapping[str, Any]] | ColumnBatch) -> None:
        cur.copy_expert(copy_sql, io.StringIO(copy_text(block, cols, sample)), size=1 << 20)
        progress.tick(block.size if isinstance(block, ColumnBatch) else len(block))

    for row in rows:
        size = row.size if isinstance(row, ColumnBatch) else 1
        if n + size > max_rows:
            raise LoadError(f"{label}: more than {max_rows:,} rows — refused by the row limit "
                            f"(raise it with --max-rows or SEJONG_LOADER_MAX_ROWS)")
        n += size
        if isinstance(row, ColumnBatch):
            if batch:
                send(batch)
                batch = []
            if row.size:
                send(row)
            continue
        batch.append(row)
        if len(batch) >= COPY_BATCH:
            send(batch)
            batch = []
    if batch:
        send(batch)
    progress.finish()
    return n


def _merge_sources(old: list[dict[str, Any]], new: list[SourceFile], replace: bool) -> list[dict[str, Any]]:
    """New catalog source list; partial replaces keep other files' entries."""
    fresh = [s.as_json() for s in new]
    if replace:
        return fresh
    names = {s.file for s in new}
    return [o for o in old if o.get("file") not in names] + fresh


def max_shrink_default() -> float:
    """Share of rows a reload may lose without --replace: SEJONG_LOADER_MAX_SHRINK (e.g. 0.2) or 20 %."""
    return float(os.environ.get("SEJONG_LOADER_MAX_SHRINK", DEFAULT_MAX_SHRINK))


def load_table(dsn: str, spec: TableSpec, rows: Rows, *, label: str,
               sources: list[SourceFile], meta: Meta, stats: RowStats | None = None,
               max_rows: int | None = None, total: int | None = None, bad_rows: BadRows | None = None,
               replace: bool = False, max_shrink: float | None = None) -> LoadResult:
    """Load rows into spec.table atomically: the table (when new), its rows and its catalog row are written in
    ONE transaction, so a refused load leaves the database exactly as it was.

    Refused: rows set aside beyond `bad_rows`, mis-decoded text, a changed column set or a reload losing more
    than `max_shrink` of the rows (both allowed by `replace`)."""
    stats = stats or RowStats()
    max_rows = max_rows if max_rows is not None else max_rows_default()
    bad_rows = bad_rows or BadRows()
    max_shrink = max_shrink if max_shrink is not None else max_shrink_default()
    migrate(dsn)
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (spec.qualified,))
            cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(spec.schema)))
            if not ensure_table(conn, spec):
                _check_schema(cur, spec, label, replace)
            stg = sql.Identifier("staging", re.sub(r"\W", "_", f"{spec.schema}__{spec.name}")[:50] + "_load")
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(stg))
            cur.execute(sql.SQL("CREATE UNLOGGED TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(stg, spec.ident()))
            cols = spec.load_columns()
            sample = TextSample(c.name for c in spec.columns if c.pgtype == "text" and c.name in cols)
            n = _copy_rows(cur, stg, cols, rows, label, max_rows, total, sample)
            _check_rejects(stats, bad_rows, n, label)
            if n == 0:
                raise LoadError(f"{label}: zero rows to load (empty file or nothing matched the filter)")
            for src in sources:
                src.rows = src.rows or stats.per_source.get(src.file, n if len(sources) == 1 else 0)
            _check_text(spec, sample, label)
            repaired = _repair(cur, spec, stg)
            _check_unique(cur, spec, stg, label)
            if not replace:
                _check_shrink(cur, spec, stg, n, label, max_shrink)
            version = _swap(cur, spec, stg, meta, sources, stats, repaired)
            quality = _quality(cur, spec, stats, repaired, sources, version)
            cur.execute(sql.SQL("DROP TABLE {}").format(stg))
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(spec.ident()))
            total_rows = int(_one(cur))
        conn.commit()
    except psycopg2.Error as exc:
        conn.rollback()
        raise LoadError(f"{label}: database refused the data: {str(exc).strip().splitlines()[0]}") from exc
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()
    return LoadResult(spec.qualified, total_rows if spec.replace_by else n, len(stats.rejects) or stats.skipped,
                      repaired, version, list(stats.rejects), list(stats.notes), quality)


def _quality(cur: psycopg2.extensions.cursor, spec: TableSpec, stats: RowStats, repaired: int,
             sources: list[SourceFile], version: int) -> dict[str, Any]:
    """The data-quality report of the rows now in the table, stored with this data version (same transaction)."""
    from loaders import quality

    doc = quality.report(cur, spec, stats, repaired, sources, quality.region_bbox())
    cur.execute("SELECT loaded_at FROM meta.datasets WHERE table_name = %s", (spec.qualified,))
    quality.store(cur, spec.qualified, version, _one(cur), doc)
    return doc


def format_reject(r: Mapping[str, Any]) -> str:
    """'file line 12, column 위도: reason'."""
    column = f", column {r['column']}" if r.get("column") else ""
    return f"{r.get('file', '')} line {r.get('line', '?')}{column}: {r.get('reason', '')}"


def _check_rejects(stats: RowStats, bad_rows: BadRows, n: int, label: str) -> None:
    """Refuse when more rows were set aside than the policy allows (default: any)."""
    bad = len(stats.rejects)
    if not bad or bad_rows.allows(bad, n + bad):
        return
    shown = "\n  ".join(format_reject(r) for r in stats.rejects[:10])
    more = f"\n  … and {bad - 10:,} more" if bad > 10 else ""
    allowed = "" if str(bad_rows) == "0" else f" (allowed: {bad_rows})"
    raise LoadError(f"{label}: {bad:,} of {n + bad:,} rows cannot be placed{allowed}:\n  {shown}{more}\n"
                    f"fix them, or set them aside with --max-bad-rows {bad} (or a percentage, e.g. "
                    f"{max(1, -(-bad * 100 // (n + bad)))}%): they are kept in the load's rejects report")


def _canonical_types(cur: psycopg2.extensions.cursor, names: Iterable[str]) -> dict[str, str]:
    """PostgreSQL's own name of each type (integer for int4 and serial; typmods dropped)."""
    out: dict[str, str] = {}
    for name in set(names):
        cur.execute("SELECT format_type(to_regtype(%s), NULL)", (SERIAL.get(name.lower(), name),))
        out[name] = str(_one(cur) or name)
    return out


def _check_schema(cur: psycopg2.extensions.cursor, spec: TableSpec, label: str, replace: bool) -> None:
    """An existing table must have the load's columns (names, types, geometry type); with replace a different
    one is dropped and created anew inside the load's transaction."""
    cur.execute("SELECT a.attname, format_type(a.atttypid, NULL), format_type(a.atttypid, a.atttypmod) "
                "FROM pg_attribute a WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped",
                (spec.qualified,))
    have = {r[0]: (r[1], r[2]) for r in cur.fetchall()}
    types = _canonical_types(cur, [c.pgtype for c in spec.columns])
    want = {c.name: types[c.pgtype] for c in spec.columns}
    diffs = [f"new column {c}" for c in want if c not in have]
    diffs += [f"column {c} gone" for c in have if c not in want and c != "geom"]
    diffs += [f"column {c}: {have[c][0]} -> {t}" for c, t in want.items() if c in have and have[c][0] != t]
    if spec.geom_type:
        geom = f"geometry({spec.geom_type},{STORAGE_SRID})"
        if "geom" not in have:
            diffs.append("new column geom")
        elif have["geom"][1].lower().replace(" ", "") != geom.lower():
            diffs.append(f"geom: {have['geom'][1]} -> {geom}")
    elif "geom" in have:
        diffs.append("column geom gone")
    if not diffs:
        return
    if not replace:
        raise LoadError(f"{label}: table {spec.qualified} exists with other columns ({'; '.join(diffs[:6])}); "
                        f"pass --replace to replace the table, load into another --table, or "
                        f"python -m loaders drop {spec.qualified}")
    cur.execute(sql.SQL("DROP TABLE {}").format(spec.ident()))
    ensure_table(cur.connection, spec)


def _check_text(spec: TableSpec, sample: TextSample, label: str) -> None:
    """Refuse text columns holding U+FFFD or mojibake (a wrong encoding must never be stored)."""
    from loaders.textio import mojibake_reason

    for c in spec.columns:
        values = sample.of(c.name) if c.pgtype == "text" else []
        why = mojibake_reason(values) if values else None
        if why:
            raise LoadError(f"{label}: column {c.name}: {why}; the file's text encoding was read wrong — "
                            f"pass --encoding (utf-8 or cp949)")


def _check_shrink(cur: psycopg2.extensions.cursor, spec: TableSpec, stg: sql.Composed, n: int, label: str,
                  max_shrink: float) -> None:
    """Refuse a reload that would lose more than max_shrink of the rows it replaces."""
    if spec.replace_by:
        key = sql.Identifier(spec.replace_by)
        cur.execute(sql.SQL("SELECT count(*) FROM {t} WHERE {k} IN (SELECT DISTINCT {k} FROM {s})").format(
            t=spec.ident(), k=key, s=stg))
    else:
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(spec.ident()))
    old = int(_one(cur))
    if old and n < old * (1 - max_shrink):
        raise LoadError(f"{label}: would replace {old:,} rows of {spec.qualified} with {n:,} "
                        f"({(old - n) / old:.0%} fewer; more than {max_shrink:.0%} is refused as a likely partial "
                        f"file); pass --replace if the new file is complete")


def _one(cur: psycopg2.extensions.cursor) -> Any:
    row = cur.fetchone()
    return row[0] if row else None


def _repair(cur: psycopg2.extensions.cursor, spec: TableSpec, stg: sql.Composed) -> int:
    """ST_MakeValid invalid polygons in staging; returns the number repaired."""
    if spec.geom_type not in POLYGONAL:
        return 0
    fix = "ST_Multi(ST_CollectionExtract(ST_MakeValid(geom), 3))" if spec.geom_type.startswith("Multi") \
        else "ST_CollectionExtract(ST_MakeValid(geom), 3)"
    cur.execute(sql.SQL("UPDATE {} SET geom = " + fix + " WHERE geom IS NOT NULL AND NOT ST_IsValid(geom)")
                .format(stg))
    return int(cur.rowcount)


def _check_unique(cur: psycopg2.extensions.cursor, spec: TableSpec, stg: sql.Composed, label: str) -> None:
    """Refuse duplicate or missing primary keys with a clear message."""
    if spec.generated_pk:
        return
    pk = sql.Identifier(spec.pk)
    cur.execute(sql.SQL("SELECT {pk}::text, count(*) FROM {t} GROUP BY {pk} HAVING count(*) > 1 OR {pk} IS NULL "
                        "LIMIT 1").format(pk=pk, t=stg))
    row = cur.fetchone()
    if row:
        raise LoadError(f"{label}: column {spec.pk}: value {row[0]!r} occurs {row[1]} times (must be unique)")


def _drop_indexes(cur: psycopg2.extensions.cursor, spec: TableSpec, keys: bool) -> list[sql.Composable]:
    """Drop the target's indexes in the load's transaction and return the statements building them again once the
    rows are in (one bulk build, sorted GiST, instead of an index insertion per row). Indexes backing a constraint
    go only with `keys` (the table was emptied) and when no foreign key refers to the table. The definitions come
    from the catalog (pg_get_indexdef / pg_get_constraintdef), never from user text."""
    rebuild: list[sql.Composable] = []
    if keys:
        cur.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = to_regclass(%s) "
                    "AND contype IN ('p', 'u') AND NOT EXISTS (SELECT 1 FROM pg_constraint f "
                    "WHERE f.confrelid = to_regclass(%s))", (spec.qualified, spec.qualified))
        for name, definition in cur.fetchall():
            cur.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(spec.ident(), sql.Identifier(name)))
            rebuild.append(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(spec.ident(), sql.Identifier(name))
                           + sql.SQL(definition))
    cur.execute("SELECT n.nspname, c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE i.indrelid = to_regclass(%s) "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)", (spec.qualified,))
    for schema, name, definition in cur.fetchall():
        cur.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, name)))
        rebuild.append(sql.SQL(definition))
    return rebuild


def _swap(cur: psycopg2.extensions.cursor, spec: TableSpec, stg: sql.Composed, meta: Meta,
          sources: list[SourceFile], stats: RowStats, repaired: int) -> int:
    """Replace the target's rows and bump the catalog in the current transaction."""
    cols = sql.SQL(", ").join(map(sql.Identifier, spec.load_columns()))
    if spec.replace_by:
        key = sql.Identifier(spec.replace_by)
        cur.execute(sql.SQL("DELETE FROM {t} WHERE {k} IN (SELECT DISTINCT {k} FROM {s})").format(
            t=spec.ident(), k=key, s=stg))
        # A partial replace keeps the indexes: dropping one would lock readers out of the rows that stay until
        # commit (a full replace holds that lock anyway, for its TRUNCATE).
        rebuild: list[sql.Composable] = []
    else:
        cur.execute(sql.SQL("TRUNCATE {}").format(spec.ident()))
        rebuild = _drop_indexes(cur, spec, keys=True)
    cur.execute(sql.SQL("INSERT INTO {} ({c}) SELECT {c} FROM {}").format(spec.ident(), stg, c=cols))
    for ddl in rebuild:
        cur.execute(ddl)
    cur.execute(sql.SQL("SELECT count(*) FROM {}").format(spec.ident()))
    rows_now = int(_one(cur))
    cur.execute("SELECT sources FROM meta.datasets WHERE table_name = %s FOR UPDATE", (spec.qualified,))
    row = cur.fetchone()
    old = list(row[0]) if row and row[0] else []
    merged = _merge_sources(old, sources, replace=not spec.replace_by)
    cur.execute(
        """INSERT INTO meta.datasets AS d (table_name, title, licence, attribution, sources, loaded_at,
                                           rows_loaded, rows_skipped, geometries_repaired, data_version)
           VALUES (%s, %s, %s, %s, %s::jsonb, now(), %s, %s, %s, 1)
           ON CONFLICT (table_name) DO UPDATE SET title = EXCLUDED.title, licence = EXCLUDED.licence,
             attribution = EXCLUDED.attribution, sources = EXCLUDED.sources, loaded_at = now(),
             rows_loaded = EXCLUDED.rows_loaded, rows_skipped = EXCLUDED.rows_skipped,
             geometries_repaired = EXCLUDED.geometries_repaired, data_version = d.data_version + 1
           RETURNING data_version""",
        (spec.qualified, meta.title, meta.licence, meta.attribution, json.dumps(merged, ensure_ascii=False),
         rows_now, len(stats.rejects) or stats.skipped, repaired))
    version = int(_one(cur))
    if "rejects" in datasets.c:  # the rejects report of this version (empty when nothing was set aside)
        cur.execute("UPDATE meta.datasets SET rejects = %s::jsonb WHERE table_name = %s",
                    (json.dumps(stats.rejects, ensure_ascii=False), spec.qualified))
    return version


def catalog_entry(dsn: str, table: str) -> dict[str, Any] | None:
    """The catalog row of a table (None when never loaded)."""
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('meta.datasets')")
            if _one(cur) is None:
                return None
            cur.execute("SELECT table_name, sources, rows_loaded, data_version FROM meta.datasets "
                        "WHERE table_name = %s", (table,))
            row = cur.fetchone()
            if not row:
                return None
            return {"table_name": row[0], "sources": row[1], "rows_loaded": row[2], "data_version": row[3]}
    finally:
        conn.close()


def catalog(dsn: str) -> list[dict[str, Any]]:
    """Every table in the catalog: name, rows, version, load time, whether it still exists."""
    migrate(dsn)
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT table_name, title, rows_loaded, rows_skipped, data_version, loaded_at, "
                        "to_regclass(table_name) IS NOT NULL FROM meta.datasets ORDER BY table_name")
            keys = ("table_name", "title", "rows_loaded", "rows_skipped", "data_version", "loaded_at", "exists")
            return [dict(zip(keys, r, strict=True)) for r in cur.fetchall()]
    finally:
        conn.close()


def drop_table(dsn: str, table: str) -> int:
    """Drop a catalogued table and its catalog row in one transaction; returns the rows it held.
    Tables not in the catalog are refused (the loaders only drop what they loaded)."""
    spec = TableSpec(table if "." in table else f"public.{table}", [])
    migrate(dsn)
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (spec.qualified,))
            cur.execute("SELECT 1 FROM meta.datasets WHERE table_name = %s", (spec.qualified,))
            if cur.fetchone() is None:
                raise LoadError(f"{spec.qualified} is not in the catalog (meta.datasets): the loaders only drop "
                                f"tables they loaded; see python -m loaders list")
            rows = 0
            cur.execute("SELECT to_regclass(%s)", (spec.qualified,))
            if _one(cur) is not None:
                cur.execute(sql.SQL("SELECT count(*) FROM {}").format(spec.ident()))
                rows = int(_one(cur))
                cur.execute(sql.SQL("DROP TABLE {}").format(spec.ident()))
            cur.execute("DELETE FROM meta.datasets WHERE table_name = %s", (spec.qualified,))
        conn.commit()
        return rows
    except psycopg2.Error as exc:
        conn.rollback()
        raise LoadError(f"cannot drop {spec.qualified}: {str(exc).strip().splitlines()[0]}") from exc
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()
