"""Parsing and validation of OGC API Features query parameters (every failure is a 400 that says what to fix)."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg2 import sql

from core import crs as crs_mod
from core.config import ServerConfig
from core.errors import InvalidParameterValue
from layers.model import Layer
from layers.sql import ItemsQuery, sql_bbox_filter

COMMON_PARAMS = {"f", "lang"}
ITEMS_PARAMS = COMMON_PARAMS | {
    "limit", "offset", "cursor", "bbox", "bbox-crs", "crs", "datetime", "properties", "sortby",
    "filter", "filter-lang", "filter-crs", "skipGeometry",
}
ITEM_PARAMS = COMMON_PARAMS | {"crs", "properties", "skipGeometry"}
SCALAR_TYPES = ("string", "integer", "number", "boolean")  # JSON Schema types a sort key or a query value can have


def reject_unknown(args: Any, allowed: set[str] | frozenset[str]) -> None:
    """400 for a query parameter this endpoint does not define."""
    for name in args:
        if name not in allowed:
            accepts = f"accepts: {', '.join(sorted(allowed))}" if allowed else "accepts no query parameters"
            raise InvalidParameterValue(f"unknown query parameter {name!r}; this endpoint {accepts}")


def scalar_properties(layer: Layer) -> list[Any]:
    """Properties usable in sortby and as queryable query parameters (not objects or arrays)."""
    return [c for c in layer.properties if c.json_type[0] in SCALAR_TYPES]


def parse_int(value: str, name: str, minimum: int) -> int:
    """An integer parameter >= minimum that fits PostgreSQL's bigint (ASCII digits only)."""
    if not value.isascii() or not value.strip().lstrip("+-").isdigit():
        raise InvalidParameterValue(f"{name} must be an integer, got {value!r}")
    number = int(value)
    if number < minimum:
        raise InvalidParameterValue(f"{name} must be >= {minimum}, got {number}")
    if number >= 2**63:
        raise InvalidParameterValue(f"{name} must be < 2^63, got {value}")
    return number


def parse_bbox(value: str) -> tuple[float, float, float, float]:
    """bbox as 4 or 6 numbers (the height values of a 6-number bbox are ignored)."""
    try:
        nums = [float(v) for v in value.split(",")]
    except ValueError:
        raise InvalidParameterValue(f"bbox must be 4 or 6 comma-separated numbers, got {value!r}") from None
    if len(nums) == 6:
        nums = [nums[0], nums[1], nums[3], nums[4]]
    if len(nums) != 4 or any(n != n or n in (float("inf"), float("-inf")) for n in nums):
        raise InvalidParameterValue(f"bbox must be 4 or 6 comma-separated numbers, got {value!r}")
    return (nums[0], nums[1], nums[2], nums[3])


def bbox_condition(layer: Layer, bbox: tuple[float, float, float, float], bbox_crs: crs_mod.CrsInfo) -> sql.Composable:
    """SQL condition for a bbox in any supported CRS, clipped to the storage CRS's area of use."""
    if bbox_crs.srid == layer.srid and not bbox_crs.geographic:
        x1, y1, x2, y2 = bbox
        if bbox_crs.northing_first:
            x1, y1, x2, y2 = y1, x1, y2, x2
        if x1 > x2 or y1 > y2:
            raise InvalidParameterValue("bbox lower corner must not exceed the upper corner")
        return sql_bbox_filter(layer, [(x1, y1, x2, y2)], layer.srid)
    west, south, east, north = crs_mod.bbox_to_lonlat(bbox, bbox_crs)
    if south > north:
        raise InvalidParameterValue("bbox south edge must not exceed the north edge")
    if west <= east:
        boxes = [(west, south, east, north)]
    else:  # crosses the antimeridian
        boxes = [(west, south, 180.0, north), (-180.0, south, east, north)]
    aw, as_, ae, an = crs_mod.area_of_use(layer.srid)
    clipped = []
    for w, s, e, n in boxes:
        w, s, e, n = max(w, aw), max(s, as_), min(e, ae), min(n, an)
        if w <= e and s <= n:
            clipped.append((w, s, e, n))
    return sql_bbox_filter(layer, clipped, 4326)


_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")
_DATETIME_HELP = "e.g. 2022-01-01T00:00:00Z, 2022-01-01, a month 2022-01, or an interval a/b"


def _next_month(value: datetime) -> datetime:
    return value.replace(year=value.year + value.month // 12, month=value.month % 12 + 1)


def _period(text: str) -> tuple[datetime, datetime, bool] | None:
    """A datetime value as (first instant, end, end excluded): a month (YYYY-MM, an extension of RFC 3339) and a
    day are whole periods up to the next one; a timestamp is itself. None for '..' or an empty end."""
    if text in ("..", ""):
        return None
    month = _MONTH_RE.match(text)
    try:
        if month:
            first = datetime(int(month.group(1)), int(month.group(2)), 1, tzinfo=UTC)
            return first, _next_month(first), True
        if _DATE_RE.match(text):
            day = datetime.fromisoformat(text).replace(tzinfo=UTC)
            return day, day + timedelta(days=1), True
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidParameterValue(f"datetime {text!r} is not RFC 3339 or a month ({_DATETIME_HELP})") from None
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return value, value, False


def _instant(text: str) -> datetime | None:
    """The first instant of a datetime value (None for '..')."""
    period = _period(text)
    return period[0] if period else None


def datetime_condition(layer: Layer, value: str) -> sql.Composable | None:
    """SQL for an instant, a day, a month or a closed/open interval on the layer's time column (None: no time
    column). A `date` column is compared with dates (never through the session's time zone)."""
    if not layer.config.datetime:
        return None
    col = sql.Identifier(layer.config.datetime)
    is_date = any(c.name == layer.config.datetime and c.cql_type == "date" for c in layer.columns)

    def lit(v: datetime) -> sql.Literal:
        return sql.Literal(v.astimezone(UTC).date() if is_date else v)

    if "/" in value:
        start_s, end_s = value.split("/", 1)
        start, end = _period(start_s), _period(end_s)
        if start and end and start[0] > end[0]:
            raise InvalidParameterValue("datetime interval start is after its end")
    else:
        start = end = _period(value)
        if start is None:
            raise InvalidParameterValue("datetime '..' is only allowed as one end of an interval")
    parts = []
    if start and end and not start[2] and start == end:
        return sql.SQL("{c} = {v}").format(c=col, v=lit(start[0]))
    if start:
        parts.append(sql.SQL("{c} >= {v}").format(c=col, v=lit(start[0])))
    if end:
        op = "<" if end[2] else "<="
        parts.append(sql.SQL("{c} " + op + " {v}").format(c=col, v=lit(end[1])))
    return sql.SQL(" AND ").join(parts) if parts else None


def latest_condition(layer: Layer) -> sql.Composable | None:
    """The latest time step of a layer whose time column is a calendar date (monthly or daily snapshots, e.g.
    population): what its tiles show without datetime. None for other layers (all their features are shown)."""
    col = layer.config.datetime
    if not col or not any(c.name == col and c.cql_type == "date" for c in layer.columns):
        return None
    return sql.SQL("{c} = (SELECT max({c}) FROM {t})").format(c=sql.Identifier(col), t=layer.table)


def parse_properties(layer: Layer, value: str) -> list[Any]:
    """properties=a,b as columns (unknown names are a 400)."""
    cols = []
    for name in [v.strip() for v in value.split(",") if v.strip()]:
        col = layer.column(name)
        if col is None:
            raise InvalidParameterValue(
                f"unknown property {name!r}; available: {', '.join(c.name for c in layer.properties)}")
        cols.append(col)
    return cols


def parse_sortby(layer: Layer, value: str) -> list[tuple[str, bool]]:
    """sortby=+a,-b as (column, descending)."""
    order = []
    for item in [v.strip() for v in value.split(",") if v.strip()]:
        desc = item.startswith("-")
        name = item.lstrip("+-").strip()
        if name.endswith(" DESC") or name.endswith(" ASC"):
            desc = name.endswith(" DESC")
            name = name.rsplit(" ", 1)[0]
        sortable = scalar_properties(layer)
        if name not in {c.name for c in sortable}:
            raise InvalidParameterValue(
                f"cannot sort by {name!r}; sortable (see /collections/{layer.id}/sortables): "
                f"{', '.join(c.name for c in sortable)}")
        order.append((name, desc))
    return order


def encode_cursor(offset: int, last_id: Any) -> str:
    """Opaque keyset cursor: the next page's offset and the last id seen."""
    raw = json.dumps([offset, last_id], separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str) -> tuple[int, Any]:
    """Inverse of encode_cursor (400 when tampered with)."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        offset, last = json.loads(raw)
        if not isinstance(offset, int) or offset < 0 or not isinstance(last, (int, str)):
            raise ValueError
        return offset, last
    except (ValueError, TypeError, json.JSONDecodeError):
        raise InvalidParameterValue("cursor is not valid; follow the next link as given") from None


def parse_filter(layer: Layer, args: Any) -> sql.Composable | None:
    """CQL2 text or JSON filter (Part 3) as SQL."""
    text = args.get("filter")
    if text is None:
        return None
    from layers import cql

    lang = args.get("filter-lang")
    if lang not in (None, "cql2-text", "cql2-json"):
        raise InvalidParameterValue(f"filter-lang {lang!r} is not supported; use cql2-text or cql2-json")
    filter_crs = crs_mod.crs84()
    if args.get("filter-crs"):
        filter_crs = crs_mod.parse_crs(args["filter-crs"], layer.srid, "filter-crs")
    queryables = {c.name: cql.Queryable(column=c.name, type=c.cql_type) for c in layer.properties}
    queryables[layer.config.geometry] = cql.Queryable(column=layer.config.geometry, type="geometry")
    queryables.setdefault("geometry", cql.Queryable(column=layer.config.geometry, type="geometry"))
    try:
        ast = cql.parse_filter(text, lang)
        return cql.to_sql(ast, queryables, layer.config.geometry, layer.srid, filter_crs.srid,
                          filter_crs_swap_xy=filter_crs.northing_first)
    except cql.FilterError as err:
        raise InvalidParameterValue(f"filter: {err}") from None


def typed_value(kind: str, text: str, name: str) -> Any:
    """A queryable's query-parameter value converted to the column's type (400 when it does not convert)."""
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text)
        if kind == "boolean":
            if text not in ("true", "false"):
                raise ValueError
            return text == "true"
        if kind in ("date", "timestamp"):
            value = _instant(text)
            if value is None:
                raise ValueError
            return value.date() if kind == "date" and _DATE_RE.match(text) else value
    except (ValueError, InvalidParameterValue):
        raise InvalidParameterValue(f"{name}={text!r}: expected a {kind} value") from None
    if kind in ("object", "array", "geometry"):
        raise InvalidParameterValue(f"{name} cannot be used as a query parameter; use filter=")
    return text


def build_items_query(layer: Layer, args: Any, server: ServerConfig) -> tuple[ItemsQuery, dict[str, Any]]:
    """Validate every items parameter and compose the query; also returns parsed values for links."""
    queryable_names = {c.name for c in scalar_properties(layer)}
    reject_unknown(args, ITEMS_PARAMS | queryable_names)
    limit = server.limit_default
    if "limit" in args:
        limit = min(parse_int(args["limit"], "limit", 1), server.limit_max)
    offset = parse_int(args["offset"], "offset", 0) if "offset" in args else 0
    out_crs = crs_mod.parse_crs(args["crs"], layer.srid) if "crs" in args else crs_mod.crs84()
    q = ItemsQuery(out_crs=out_crs, limit=limit, offset=offset)
    if "cursor" in args:
        q.offset, q.after = decode_cursor(args["cursor"])
        id_type = layer.id_column.json_type[0]
        if (id_type == "integer") != isinstance(q.after, int):
            raise InvalidParameterValue("cursor does not belong to this collection")
    if "bbox" in args:
        bbox_crs = (crs_mod.parse_crs(args["bbox-crs"], layer.srid, "bbox-crs") if "bbox-crs" in args
                    else crs_mod.crs84())
        q.where.append(bbox_condition(layer, parse_bbox(args["bbox"]), bbox_crs))
    elif "bbox-crs" in args:
        crs_mod.parse_crs(args["bbox-crs"], layer.srid, "bbox-crs")
    if "datetime" in args:
        cond = datetime_condition(layer, args["datetime"])
        if cond is not None:
            q.where.append(cond)
    if "properties" in args:
        q.properties = parse_properties(layer, args["properties"])
    if "sortby" in args:
        q.order = parse_sortby(layer, args["sortby"])
    if "skipGeometry" in args:
        if args["skipGeometry"] not in ("true", "false"):
            raise InvalidParameterValue("skipGeometry must be true or false")
        q.skip_geometry = args["skipGeometry"] == "true"
    cql_cond = parse_filter(layer, args)
    if cql_cond is not None:
        q.where.append(cql_cond)
    for name in (n for n in args if n in queryable_names):
        col = layer.column(name)
        assert col is not None
        value = typed_value(col.cql_type, args[name], name)
        q.where.append(sql.SQL("{c} = {v}").format(c=sql.Identifier(name), v=sql.Literal(value)))
    if q.order and q.after is not None:
        raise InvalidParameterValue("cursor cannot be combined with sortby; use offset")
    return q, {"limit": limit}
