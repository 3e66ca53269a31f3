"""OGC API Features Part 3 (CQL2) filters: parse cql2-text or cql2-json, translate to SQL WHERE clauses.

Parsing produces pygeofilter AST nodes (``pygeofilter.ast`` / ``pygeofilter.values``) plus the few node
types below that pygeofilter 0.4.0 lacks (``TimeIntersects``, ``Arith`` for ``%``/``div``/``^``).
The parsers are our own (a lark grammar for cql2-text, a walker for cql2-json) because the
pygeofilter 0.4.0 parsers do not accept large parts of the CQL2 1.0 standard (e.g. ``NOT (a OR b)``,
``T_AFTER(a, b)``, ``''`` in strings, bare ``true``; cql2-json ``between`` with three args, ``t_intersects``
is mapped to ``t_overlaps``, no ``accenti``).  pygeofilter is still used for its AST classes.

Translation (:func:`to_sql`) builds a ``psycopg2.sql.Composable``: property names only become
``sql.Identifier`` after they were found in the queryables, every value is a ``sql.Literal``.

Semantics worth knowing:

* string comparisons, LIKE and IN use ``COLLATE "C"`` on both sides (code point order, which is
  what the CQL2 abstract test suite expects);
* CASEI(x) is ``lower(x COLLATE "und-x-icu")`` (Unicode case folding, independent of the database
  LC_CTYPE; needs PostgreSQL built with ICU);
* ACCENTI(x) is ``translate(x, <accented letters>, <base letters>)`` over Latin letters (Latin-1,
  Latin Extended-A/B, Latin Extended Additional); it needs no ``unaccent`` extension. Letters that do
  not decompose to one base letter (ß, æ, œ, þ) are left unchanged;
* temporal operands are instants (``DATE``, ``TIMESTAMP``, date/timestamp properties) or intervals
  (``INTERVAL(a, b)`` whose ends are literals, ``'..'`` or properties); instants are degenerate closed
  intervals and the relations follow OWL-Time as required by the standard. Interval-only functions
  (T_CONTAINS, T_DURING, T_FINISHES, ...) with an instant operand are a client error;
* geometry literals are in ``filter_crs_srid`` (default 4326, i.e. CRS84 lon/lat) and are transformed
  once to ``storage_srid``; a BBOX with minx > maxx in lon/lat crosses the antimeridian;
* S_DWITHIN(a, b, distance[, units]) (not part of CQL2 1.0) is evaluated on geography (geodesic metres);
  against a literal it also gets an index-usable ``column && box`` prefilter (see ``_Compiler.dwithin``);
* array functions (A_*) and other functions are not supported (FilterError);
* size limits (MAX_TEXT_LENGTH, MAX_JSON_LENGTH, MAX_DEPTH, MAX_TOKENS, MAX_NODES) are checked by a cheap
  scan before parsing; a refused filter is a FilterError naming the limit.

Why lark and not the ``cql2`` package (Rust, used by tipg), measured by ``python -m bench.cql2`` (cql2 0.6.0):
cql2 parses 170-700x faster (15 chars: 2.4 ms vs 0.004 ms; 2,825 chars: 361 ms vs 0.5 ms), and its
CQL2-JSON output fed to our JSON walker accepts 439 of the 441 test filters as expected. It is not used
(yet) because: it overflows its native stack and kills the process (SIGSEGV, not an exception) on nested
input such as ``'a = ' + '-' * 7990 + '1'`` (default 8 MiB stack) or 600 unary minus/NOT in a 256 KiB thread
stack; it turns every number into a float (9007199254740993 becomes 9007199254740992.0, integer typing is
lost); it accepts a bare property or number as a condition (``pop_other``, ``... AND 3``). A switch needs
those three guarded (the limits here keep it to 30 parentheses and 600 tokens) and our error messages mapped.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import shapely
import shapely.geometry
from lark import Lark, Token, Transformer, v_args
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, VisitError
from psycopg2 import sql
from pygeofilter import ast, values

__all__ = [
    "Arith",
    "FilterError",
    "Queryable",
    "TimeIntersects",
    "parse_filter",
    "queryables_from_columns",
    "to_sql",
]


class FilterError(ValueError):
    """Bad filter: message says what to fix (becomes an HTTP 400)."""


@dataclass(frozen=True)
class Queryable:
    """One filterable property."""

    column: str  # real column name in the table
    type: str  # 'string' | 'integer' | 'number' | 'boolean' | 'date' | 'timestamp' | 'geometry'


QUERYABLE_TYPES = ("string", "integer", "number", "boolean", "date", "timestamp", "geometry")

_PG_TYPES: dict[str, str] = {
    "character varying": "string", "varchar": "string", "text": "string", "character": "string",
    "char": "string", "bpchar": "string", "name": "string", "citext": "string", "uuid": "string",
    "smallint": "integer", "integer": "integer", "bigint": "integer", "int2": "integer",
    "int4": "integer", "int8": "integer",
    "numeric": "number", "decimal": "number", "real": "number", "double precision": "number",
    "float4": "number", "float8": "number",
    "boolean": "boolean", "bool": "boolean",
    "date": "date",
    "timestamp with time zone": "timestamp", "timestamp without time zone": "timestamp",
    "timestamptz": "timestamp", "timestamp": "timestamp",
    "geometry": "geometry", "geography": "geometry",
}


def queryables_from_columns(rows: Iterable[Sequence[str] | Mapping[str, str]]) -> dict[str, Queryable]:
    """Queryables from information_schema.columns rows.

    Each row is ``(column_name, data_type[, udt_name])`` or a mapping with those keys. Columns of other
    types (json, arrays, bytea, ...) are left out.
    """
    out: dict[str, Queryable] = {}
    for row in rows:
        if isinstance(row, Mapping):
            name, dtype, udt = row["column_name"], row["data_type"], row.get("udt_name", "")
        else:
            name, dtype = row[0], row[1]
            udt = row[2] if len(row) > 2 else ""
        dtype = (dtype or "").lower()
        qtype = _PG_TYPES.get(dtype)
        if qtype is None and dtype == "user-defined":
            qtype = _PG_TYPES.get((udt or "").lower())
        if qtype is not None:
            out[name] = Queryable(column=name, type=qtype)
    return out


# --------------------------------------------------------------------------------------------- AST extras


@dataclass
class TimeIntersects(ast.Predicate):
    """T_INTERSECTS (pygeofilter 0.4.0 has no node for it)."""

    lhs: Any
    rhs: Any

    def get_sub_nodes(self) -> list[Any]:
        return [self.lhs, self.rhs]


@dataclass
class Arith(ast.Expression):
    """Arithmetic operators pygeofilter lacks: '%' (modulo), 'div' (integer division), '^' (power)."""

    op: str
    lhs: Any
    rhs: Any

    def get_sub_nodes(self) -> list[Any]:
        return [self.lhs, self.rhs]


_SPATIAL: dict[str, type[ast.SpatialComparisonPredicate]] = {
    "s_intersects": ast.GeometryIntersects, "s_disjoint": ast.GeometryDisjoint,
    "s_contains": ast.GeometryContains, "s_within": ast.GeometryWithin, "s_touches": ast.GeometryTouches,
    "s_crosses": ast.GeometryCrosses, "s_overlaps": ast.GeometryOverlaps, "s_equals": ast.GeometryEquals,
}
_TEMPORAL: dict[str, type[ast.Node]] = {
    "t_after": ast.TimeAfter, "t_before": ast.TimeBefore, "t_contains": ast.TimeContains,
    "t_disjoint": ast.TimeDisjoint, "t_during": ast.TimeDuring, "t_equals": ast.TimeEquals,
    "t_finishedby": ast.TimeEndedBy, "t_finishes": ast.TimeEnds, "t_intersects": TimeIntersects,
    "t_meets": ast.TimeMeets, "t_metby": ast.TimeMetBy, "t_overlappedby": ast.TimeOverlappedBy,
    "t_overlaps": ast.TimeOverlaps, "t_startedby": ast.TimeBegunBy, "t_starts": ast.TimeBegins,
}
_COMPARISON: dict[str, type[ast.Comparison]] = {
    "=": ast.Equal, "<>": ast.NotEqual, "!=": ast.NotEqual, "<": ast.LessThan, "<=": ast.LessEqual,
    ">": ast.GreaterThan, ">=": ast.GreaterEqual,
}
_ARITH: dict[str, type[ast.Arithmetic]] = {"+": ast.Add, "-": ast.Sub, "*": ast.Mul, "/": ast.Div}
_UNITS_M = {
    "meters": 1.0, "meter": 1.0, "metres": 1.0, "metre": 1.0, "m": 1.0,
    "kilometers": 1000.0, "kilometer": 1000.0, "kilometres": 1000.0, "km": 1000.0,
    "feet": 0.3048, "foot": 0.3048, "ft": 0.3048, "statute miles": 1609.344, "miles": 1609.344,
    "mi": 1609.344, "nautical miles": 1852.0, "nmi": 1852.0,
}


# ------------------------------------------------------------------------------------------ literal helpers


def _parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except (ValueError, TypeError):
        raise FilterError(f"invalid date '{text}': use DATE('YYYY-MM-DD')") from None


def _parse_timestamp(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except (ValueError, TypeError):
        raise FilterError(f"invalid timestamp '{text}': use TIMESTAMP('YYYY-MM-DDTHH:MM:SSZ')") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)  # CQL2 timestamps are UTC
    return value


def _interval_end(value: Any) -> Any:
    """An interval bound: None for '..', a date/datetime for strings, properties pass through."""
    if isinstance(value, str):
        if value == "..":
            return None
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return _parse_date(value)
        return _parse_timestamp(value)
    if value is None or isinstance(value, dt.date | ast.Attribute):
        return value
    raise FilterError("INTERVAL bounds must be date/timestamp strings, '..' or properties")


def _bbox(coords: Sequence[Any]) -> values.Envelope:
    if len(coords) not in (4, 6) or not all(
        isinstance(c, int | float) and not isinstance(c, bool) for c in coords
    ):
        raise FilterError("BBOX needs 4 (or 6) numbers: minx, miny, maxx, maxy")
    nums = [float(c) for c in coords]
    if len(nums) == 6:
        nums = [nums[0], nums[1], nums[3], nums[4]]
    if nums[1] > nums[3]:
        raise FilterError("BBOX miny is greater than maxy")
    return values.Envelope(nums[0], nums[2], nums[1], nums[3])


_GEOMETRY_TYPES = ("point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
                   "geometrycollection")
# Limits, checked before parsing: the Earley parser costs ~1 ms per token (see bench/cql2.py).
MAX_TEXT_LENGTH = 8_000  # characters of cql2-text
MAX_JSON_LENGTH = 200_000  # characters of serialized cql2-json (json.loads is cheap; geometries can be big)
MAX_DEPTH = 30  # parentheses in cql2-text; nested objects/arrays in cql2-json
MAX_TOKENS = 600  # cql2-text tokens (names, literals, operators, coordinates): bounds the parser's time
MAX_NODES = 5_000  # cql2-json values outside geometry coordinates
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_TOKEN = re.compile(r"'(?:[^']|'')*'?|\"(?:[^\"]|\"\")*\"?|[A-Za-z_][\w.:]*"  # strings, quoted names, names
                    r"|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[<>!]=|<>|\S")  # numbers, operators


def _function(name: str, args: list[Any]) -> Any:
    """Build the node for a function-call syntax (predicates, CASEI, DATE, ...)."""
    low = name.lower()

    def nargs(n: int) -> None:
        if len(args) != n:
            raise FilterError(f"{name.upper()} takes {n} argument(s), got {len(args)}")

    if low in _SPATIAL:
        nargs(2)
        return _SPATIAL[low](args[0], args[1])
    if low in _TEMPORAL:
        nargs(2)
        return _TEMPORAL[low](args[0], args[1])
    if low == "s_dwithin":
        if len(args) not in (3, 4):
            raise FilterError("S_DWITHIN takes (geometry, geometry, distance[, units])")
        units = args[3] if len(args) == 4 else "meters"
        if isinstance(units, ast.Attribute):
            units = units.name
        if not isinstance(units, str) or units.lower() not in _UNITS_M:
            raise FilterError(f"S_DWITHIN units must be one of: {', '.join(sorted(_UNITS_M))}")
        dist = args[2]
        if isinstance(dist, bool) or not isinstance(dist, int | float) or dist < 0:
            raise FilterError("S_DWITHIN distance must be a non-negative number")
        return ast.DistanceWithin(args[0], args[1], float(dist), units.lower())
    if low.startswith("a_") and low in ("a_equals", "a_contains", "a_containedby", "a_overlaps"):
        raise FilterError(f"array function {name.upper()} is not supported")
    if low == "casei":
        nargs(1)
        return ast.Function("lower", [args[0]])
    if low == "accenti":
        nargs(1)
        return ast.Function("accenti", [args[0]])
    if low == "date":
        nargs(1)
        if not isinstance(args[0], str):
            raise FilterError("DATE() takes a string: DATE('YYYY-MM-DD')")
        return _parse_date(args[0])
    if low == "timestamp":
        nargs(1)
        if not isinstance(args[0], str):
            raise FilterError("TIMESTAMP() takes a string: TIMESTAMP('YYYY-MM-DDTHH:MM:SSZ')")
        return _parse_timestamp(args[0])
    if low == "interval":
        nargs(2)
        return values.Interval(_interval_end(args[0]), _interval_end(args[1]))
    if low == "bbox":
        return _bbox(args)
    if low in _GEOMETRY_TYPES:
        raise FilterError(f"invalid {name.upper()} geometry literal: coordinates are 'x y', separated by commas")
    raise FilterError(f"function '{name}' is not supported")


# --------------------------------------------------------------------------------------- cql2-text parser

_GRAMMAR = r"""
?start: bool_expr
?bool_expr: bool_term | bool_expr _OR bool_term -> or_
?bool_term: bool_factor | bool_term _AND bool_factor -> and_
?bool_factor: bool_primary | _NOT bool_primary -> not_
?bool_primary: predicate | func | "(" bool_expr ")" | BOOL -> bool_lit

?predicate: scalar COMP_OP scalar -> comparison
    | scalar _LIKE scalar -> like
    | scalar _NOT _LIKE scalar -> not_like
    | scalar _BETWEEN scalar _AND scalar -> between
    | scalar _NOT _BETWEEN scalar _AND scalar -> not_between
    | scalar _IN "(" scalar ("," scalar)* ")" -> in_
    | scalar _NOT _IN "(" scalar ("," scalar)* ")" -> not_in
    | scalar _IS _NULL -> is_null
    | scalar _IS _NOT _NULL -> is_not_null

?scalar: sum
?sum: product | sum "+" product -> add | sum "-" product -> sub
?product: power | product "*" power -> mul | product "/" power -> div
    | product "%" power -> mod | product _DIV power -> intdiv
?power: unary | unary "^" power -> pow
?unary: primary | "-" unary -> neg
?primary: STRING -> string
    | NUMBER -> number
    | BOOL -> bool_lit
    | property
    | func
    | geometry
    | "(" scalar ")"
property: IDENT | DQSTRING
func: IDENT "(" [scalar ("," scalar)*] ")"
geometry: GEOM_KW _geom_body
_geom_body: Z? ("(" _geom_items ")" | EMPTY)
_geom_items: _geom_item ("," _geom_item)*
_geom_item: coord | "(" _geom_items ")" | geometry
coord: SNUMBER SNUMBER SNUMBER?

COMP_OP: "<>" | "<=" | ">=" | "!=" | "=" | "<" | ">"
_OR.2: /OR\b/i
_AND.2: /AND\b/i
_NOT.2: /NOT\b/i
_LIKE.2: /LIKE\b/i
_BETWEEN.2: /BETWEEN\b/i
_IN.2: /IN\b/i
_IS.2: /IS\b/i
_NULL.2: /NULL\b/i
_DIV.2: /DIV\b/i
BOOL.2: /(TRUE|FALSE)\b/i
Z.2: /Z\b/i
EMPTY.2: /EMPTY\b/i
GEOM_KW.3: /(POINT|LINESTRING|POLYGON|MULTIPOINT|MULTILINESTRING|MULTIPOLYGON|GEOMETRYCOLLECTION)\b/i
IDENT: /(?!(AND|OR|NOT|LIKE|BETWEEN|IN|IS|NULL|TRUE|FALSE|DIV)\b)[A-Za-z_][A-Za-z0-9_.:]*/i
DQSTRING: /"(?:[^"]|"")*"/
STRING: /'(?:[^']|'')*'/
NUMBER: /(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?/
SNUMBER: /[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?/
%import common.WS
%ignore WS
"""


@lru_cache(maxsize=1)
def _text_parser() -> Lark:
    return Lark(_GRAMMAR, parser="earley", lexer="dynamic", propagate_positions=True, ambiguity="resolve")


def _num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _TextToAst(Transformer[Token, Any]):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def or_(self, items: list[Any]) -> Any:
        return ast.Or(items[0], items[1])

    def and_(self, items: list[Any]) -> Any:
        return ast.And(items[0], items[1])

    def not_(self, items: list[Any]) -> Any:
        return ast.Not(items[0])

    def bool_lit(self, items: list[Any]) -> Any:
        return str(items[0]).lower() == "true"

    def comparison(self, items: list[Any]) -> Any:
        return _COMPARISON[str(items[1])](items[0], items[2])

    @staticmethod
    def _like(items: list[Any], not_: bool) -> Any:
        return ast.Like(items[0], items[1], nocase=False, wildcard="%", singlechar="_", escapechar="\\",
                        not_=not_)

    def like(self, items: list[Any]) -> Any:
        return self._like(items, False)

    def not_like(self, items: list[Any]) -> Any:
        return self._like(items, True)

    def between(self, items: list[Any]) -> Any:
        return ast.Between(items[0], items[1], items[2], not_=False)

    def not_between(self, items: list[Any]) -> Any:
        return ast.Between(items[0], items[1], items[2], not_=True)

    def in_(self, items: list[Any]) -> Any:
        return ast.In(items[0], list(items[1:]), not_=False)

    def not_in(self, items: list[Any]) -> Any:
        return ast.In(items[0], list(items[1:]), not_=True)

    def is_null(self, items: list[Any]) -> Any:
        return ast.IsNull(items[0], not_=False)

    def is_not_null(self, items: list[Any]) -> Any:
        return ast.IsNull(items[0], not_=True)

    def add(self, items: list[Any]) -> Any:
        return ast.Add(items[0], items[1])

    def sub(self, items: list[Any]) -> Any:
        return ast.Sub(items[0], items[1])

    def mul(self, items: list[Any]) -> Any:
        return ast.Mul(items[0], items[1])

    def div(self, items: list[Any]) -> Any:
        return ast.Div(items[0], items[1])

    def mod(self, items: list[Any]) -> Any:
        return Arith("%", items[0], items[1])

    def intdiv(self, items: list[Any]) -> Any:
        return Arith("div", items[0], items[1])

    def pow(self, items: list[Any]) -> Any:
        return Arith("^", items[0], items[1])

    def neg(self, items: list[Any]) -> Any:
        if _num(items[0]):
            return -items[0]
        return ast.Sub(0, items[0])

    def string(self, items: list[Any]) -> Any:
        return str(items[0])[1:-1].replace("''", "'")

    def number(self, items: list[Any]) -> Any:
        text = str(items[0])
        if re.fullmatch(r"\d+", text):
            return int(text)
        return float(text)

    def property(self, items: list[Any]) -> Any:
        tok = str(items[0])
        if tok.startswith('"'):
            tok = tok[1:-1].replace('""', '"')
        return ast.Attribute(tok)

    def func(self, items: list[Any]) -> Any:
        args = [a for a in items[1:] if a is not None]
        return _function(str(items[0]), args)

    @v_args(meta=True)
    def geometry(self, meta: Any, items: list[Any]) -> Any:
        wkt = self.text[meta.start_pos:meta.end_pos]
        try:
            geom = shapely.from_wkt(wkt)
        except Exception as exc:  # shapely raises GEOSException
            raise FilterError(f"invalid geometry literal {wkt[:60]!r}: {exc}") from None
        return values.Geometry(shapely.geometry.mapping(geom))

    def coord(self, items: list[Any]) -> Any:
        return None


def _parse_text(text: str) -> Any:
    if not text.strip():
        raise FilterError("empty filter")
    try:
        tree = _text_parser().parse(text)
    except UnexpectedCharacters as exc:
        pos = exc.pos_in_stream or 0
        raise FilterError(
            f"cql2-text syntax error at line {exc.line} column {exc.column}: "
            f"unexpected {text[pos:pos + 20]!r}"
        ) from None
    except UnexpectedEOF:
        raise FilterError("cql2-text syntax error: the filter ends unexpectedly") from None
    except UnexpectedInput as exc:
        raise FilterError(f"cql2-text syntax error at line {exc.line} column {exc.column}") from None
    except LarkError as exc:
        raise FilterError(f"cql2-text syntax error: {exc}") from None
    try:
        return _TextToAst(text).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, FilterError):
            raise exc.orig_exc from None
        raise FilterError(f"invalid filter: {exc.orig_exc}") from None


# --------------------------------------------------------------------------------------- cql2-json parser


def _json_node(node: Any) -> Any:
    if node is None:
        raise FilterError("null is not allowed in a cql2-json filter")
    if isinstance(node, bool | int | float | str):
        if isinstance(node, float) and not math.isfinite(node):
            raise FilterError("numbers must be finite")
        return node
    if isinstance(node, list):
        return [_json_node(n) for n in node]
    if not isinstance(node, dict):
        raise FilterError(f"unexpected JSON value {node!r}")
    if "filter" in node and "op" not in node:
        return _json_node(node["filter"])
    if "property" in node:
        if not isinstance(node["property"], str):
            raise FilterError("'property' must be a string")
        return ast.Attribute(node["property"])
    if "date" in node:
        return _parse_date(node["date"])
    if "timestamp" in node:
        return _parse_timestamp(node["timestamp"])
    if "interval" in node:
        bounds = node["interval"]
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise FilterError("'interval' must be a list of two bounds")
        return values.Interval(*(_interval_end(_json_node(b)) for b in bounds))
    if "bbox" in node:
        return _bbox(node["bbox"])
    if "type" in node and ("coordinates" in node or "geometries" in node):
        try:
            geom = shapely.geometry.shape(node)
        except Exception as exc:
            raise FilterError(f"invalid GeoJSON geometry: {exc}") from None
        return values.Geometry(shapely.geometry.mapping(geom))
    if "lower" in node:  # pre-standard pygeofilter form
        return ast.Function("lower", [_json_node(node["lower"])])
    if "function" in node:
        fn = node["function"]
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise FilterError("'function' needs a 'name'")
        return _function(fn["name"], _json_node(fn.get("args", fn.get("arguments", []))))
    if "op" not in node:
        raise FilterError(f"cannot understand JSON object with keys {sorted(node)}")
    op = node["op"]
    if not isinstance(op, str):
        raise FilterError("'op' must be a string")
    raw_args = node.get("args", [])
    if not isinstance(raw_args, list):
        raw_args = [raw_args]
    args = _json_node(raw_args)
    low = op.lower()

    def nargs(n: int) -> None:
        if len(args) != n:
            raise FilterError(f"op '{op}' takes {n} args, got {len(args)}")

    if low in ("and", "or"):
        if len(args) < 2:
            raise FilterError(f"op '{op}' needs at least 2 args")
        return _balanced(ast.And if low == "and" else ast.Or, args)
    if low == "not":
        nargs(1)
        return ast.Not(args[0])
    if low == "isnull":
        nargs(1)
        return ast.IsNull(args[0], not_=False)
    if op in _COMPARISON:
        nargs(2)
        return _COMPARISON[op](args[0], args[1])
    if low == "like":
        nargs(2)
        return ast.Like(args[0], args[1], nocase=False, wildcard="%", singlechar="_", escapechar="\\",
                        not_=False)
    if low == "between":
        if len(args) == 2 and isinstance(args[1], list) and len(args[1]) == 2:  # pre-standard form
            args = [args[0], *args[1]]
        nargs(3)
        return ast.Between(args[0], args[1], args[2], not_=False)
    if low == "in":
        nargs(2)
        if not isinstance(args[1], list) or not args[1]:
            raise FilterError("op 'in' needs [value, [list of values]]")
        return ast.In(args[0], args[1], not_=False)
    if op in _ARITH:
        nargs(2)
        return _ARITH[op](args[0], args[1])
    if low in ("%", "div", "^"):
        nargs(2)
        return Arith(low, args[0], args[1])
    return _function(op, args)


def _balanced(cls: type[ast.And] | type[ast.Or], args: list[Any]) -> Any:
    """A balanced tree of a long AND/OR list (depth log2(n), so translation does not recurse n deep)."""
    if len(args) == 1:
        return args[0]
    mid = len(args) // 2
    return cls(_balanced(cls, args[:mid]), _balanced(cls, args[mid:]))


def _parse_json(value: str | dict[str, Any]) -> Any:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise FilterError(
                f"cql2-json is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(value, dict | bool):
        raise FilterError("cql2-json filter must be a JSON object")
    _check_json(value)
    return _json_node(value)


def _too_big(what: str, limit: int) -> FilterError:
    return FilterError(f"filter is too complex: more than {limit} {what}")


def _check_text(text: str) -> None:
    """Length, parenthesis depth and token count of cql2-text, in one cheap scan before parsing."""
    if len(text) > MAX_TEXT_LENGTH:
        raise FilterError(f"filter is too long: more than {MAX_TEXT_LENGTH} characters")
    depth = tokens = 0
    for match in _TOKEN.finditer(text):
        tokens += 1
        tok = match.group()
        if tok == "(":
            depth += 1
            if depth > MAX_DEPTH:
                raise FilterError(f"filter is nested too deeply: more than {MAX_DEPTH} levels of parentheses")
        elif tok == ")":
            depth -= 1
    if tokens > MAX_TOKENS:
        raise _too_big("tokens (names, values, operators)", MAX_TOKENS)


def _check_json(doc: Any) -> None:
    """Depth and node count of a decoded cql2-json document, iteratively (no recursion)."""
    nodes = 0
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise FilterError(f"filter is nested too deeply: more than {MAX_DEPTH} levels of objects and arrays")
        nodes += 1
        if nodes > MAX_NODES:
            raise _too_big("values (operators, names, literals)", MAX_NODES)
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for k, v in node.items() if k not in ("coordinates", "bbox"))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def _check_size(text_or_json: str | dict[str, Any], lang: str) -> None:
    if lang == "cql2-text":
        if isinstance(text_or_json, str):
            _check_text(text_or_json)
        return
    if isinstance(text_or_json, str):
        if len(text_or_json) > MAX_JSON_LENGTH:
            raise FilterError(f"filter is too long: more than {MAX_JSON_LENGTH} characters")
        depth = 0
        for match in _JSON_TOKEN.finditer(text_or_json):  # before json.loads, which recurses
            tok = match.group()
            if tok in "[{":
                depth += 1
                if depth > MAX_DEPTH:
                    raise FilterError(
                        f"filter is nested too deeply: more than {MAX_DEPTH} levels of objects and arrays")
            elif tok in "]}":
                depth -= 1


def parse_filter(text_or_json: str | dict[str, Any], lang: str | None) -> Any:
    """Parse a CQL2 filter into an AST (pygeofilter nodes, literals as Python values).

    lang: None (detect: dict or text starting with '{' is cql2-json), 'cql2-text' or 'cql2-json'.
    """
    if lang not in (None, "cql2-text", "cql2-json"):
        raise FilterError(f"unsupported filter-lang '{lang}': use cql2-text or cql2-json")
    if lang is None:
        lang = "cql2-json" if isinstance(text_or_json, dict) or text_or_json.lstrip().startswith("{") \
            else "cql2-text"
    _check_size(text_or_json, lang)
    try:
        if lang == "cql2-json":
            return _parse_json(text_or_json)
        if not isinstance(text_or_json, str):
            raise FilterError("cql2-text filter must be a string")
        return _parse_text(text_or_json)
    except RecursionError:
        raise FilterError("filter is nested too deeply") from None


# ------------------------------------------------------------------------------------------ SQL generation

_NUMERIC = ("integer", "number")
_TEMPORAL_T = ("date", "timestamp")
_C = sql.SQL(' COLLATE "C"')


def _accent_table() -> tuple[str, str]:
    src, dst = [], []
    ranges = [range(0xC0, 0x250), range(0x1E00, 0x1F00)]
    extra = {"ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ł": "l", "Ł": "L", "ħ": "h", "Ħ": "H", "ı": "i"}
    for rng in ranges:
        for cp in rng:
            ch = chr(cp)
            if ch in extra:
                continue
            base = unicodedata.normalize("NFD", ch)[0]
            if base != ch and base.isascii() and base.isalpha():
                src.append(ch)
                dst.append(base)
    for k, v in extra.items():
        src.append(k)
        dst.append(v)
    return "".join(src), "".join(dst)


_ACCENT_FROM, _ACCENT_TO = _accent_table()


@dataclass
class _Val:
    """A compiled scalar: SQL, CQL2 type, and (for plain literals) the Python value."""

    sql: sql.Composable
    type: str  # a Queryable type, or 'interval'
    value: Any = None
    literal: bool = False


def _py_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dt.datetime):
        return "timestamp"
    if isinstance(value, dt.date):
        return "date"
    raise FilterError(f"unsupported literal {value!r}")


def _family(t: str) -> str:
    if t in _NUMERIC:
        return "numeric"
    if t in _TEMPORAL_T:
        return "temporal"
    return t


def _describe(v: _Val) -> str:
    return f"literal {v.value!r}" if v.literal else f"a {v.type} expression"


class _Compiler:
    def __init__(self, queryables: Mapping[str, Queryable], geometry_column: str, storage_srid: int,
                 filter_crs_srid: int, swap_xy: bool) -> None:
        self.q = queryables
        self.lower_q = {k.lower(): v for k, v in queryables.items()}
        self.geometry_column = geometry_column
        self.storage_srid = storage_srid
        self.filter_srid = filter_crs_srid
        self.swap_xy = swap_xy

    # ---- names
    def prop(self, name: str) -> _Val:
        q = self.q.get(name) or self.lower_q.get(name.lower())
        if q is None and name.lower() in ("geometry", "geom") and self.geometry_column:
            q = Queryable(self.geometry_column, "geometry")
        if q is None:
            known = ", ".join(sorted(self.q)) or "(none)"
            raise FilterError(f"unknown property '{name}' in filter; queryables are: {known}")
        if q.type not in QUERYABLE_TYPES:
            raise FilterError(f"property '{name}' has unsupported type {q.type}")
        return _Val(sql.Identifier(q.column), q.type)

    # ---- scalars
    def scalar(self, node: Any) -> _Val:
        if isinstance(node, ast.Attribute):
            return self.prop(node.name)
        if isinstance(node, float) and not math.isfinite(node):
            raise FilterError("numbers must be finite")
        if isinstance(node, bool | int | float | str | dt.date):
            return _Val(sql.Literal(node), _py_type(node), node, True)
        if isinstance(node, values.Geometry | values.Envelope):
            return _Val(self.geom_literal(node), "geometry")
        if isinstance(node, values.Interval):
            raise FilterError("INTERVAL can only be used in temporal functions (T_*)")
        if isinstance(node, ast.Function):
            return self.function(node)
        if isinstance(node, ast.Arithmetic | Arith):
            return self.arith(node)
        if isinstance(node, ast.Node):
            raise FilterError("a predicate was used where a value is expected")
        raise FilterError(f"unsupported value {node!r}")

    def function(self, node: ast.Function) -> _Val:
        if node.name in ("lower", "accenti") and len(node.arguments) == 1:
            arg = self.scalar(node.arguments[0])
            if arg.type != "string":
                raise FilterError(f"{'CASEI' if node.name == 'lower' else 'ACCENTI'} needs a string, "
                                  f"got {_describe(arg)}")
            if node.name == "lower":
                expr = sql.SQL('lower(({}) COLLATE "und-x-icu")').format(arg.sql)
            else:
                expr = sql.SQL("translate({}, {}, {})").format(
                    arg.sql, sql.Literal(_ACCENT_FROM), sql.Literal(_ACCENT_TO))
            return _Val(expr, "string")
        raise FilterError(f"function '{node.name}' is not supported")

    def arith(self, node: Any) -> _Val:
        lhs, rhs = (self.coerce(self.scalar(n), "number") for n in (node.lhs, node.rhs))
        for side in (lhs, rhs):
            if side.type not in _NUMERIC:
                raise FilterError(f"arithmetic needs numbers, got {_describe(side)}")
        op = node.op if isinstance(node, Arith) else {
            ast.ArithmeticOp.ADD: "+", ast.ArithmeticOp.SUB: "-",
            ast.ArithmeticOp.MUL: "*", ast.ArithmeticOp.DIV: "/"}[node.op]
        if op in ("/", "%", "div") and rhs.literal and rhs.value == 0:
            raise FilterError("division by zero in filter")
        rtype = "integer" if lhs.type == rhs.type == "integer" and op in ("+", "-", "*", "%", "div") \
            else "number"
        a, b = lhs.sql, rhs.sql
        if op in ("+", "-", "*"):
            expr = sql.SQL("({} " + op + " {})").format(a, b)
        elif op == "/":
            expr = sql.SQL("(({})::numeric / NULLIF(({})::numeric, 0))").format(a, b)
        elif op == "%":
            expr = sql.SQL("mod(({})::numeric, NULLIF(({})::numeric, 0))").format(a, b)
        elif op == "div":
            expr = sql.SQL("div(({})::numeric, NULLIF(({})::numeric, 0))").format(a, b)
        else:
            expr = sql.SQL("power(({})::numeric, ({})::numeric)").format(a, b)
        return _Val(expr, rtype)

    def coerce(self, v: _Val, target: str) -> _Val:
        """Convert a plain literal to the type family of the other operand, or fail with FilterError."""
        if not v.literal or _family(v.type) == _family(target):
            return v
        value = v.value
        try:
            if target in _NUMERIC and isinstance(value, str):
                num: int | float = int(value) if re.fullmatch(r"[+-]?\d+", value.strip()) else float(value)
                if not math.isfinite(num):
                    raise ValueError(value)
                return _Val(sql.Literal(num), _py_type(num), num, True)
            if target == "date" and isinstance(value, str):
                d = _parse_date(value.strip())
                return _Val(sql.Literal(d), "date", d, True)
            if target == "timestamp" and isinstance(value, str):
                t = _parse_timestamp(value.strip())
                return _Val(sql.Literal(t), "timestamp", t, True)
            if target == "boolean" and isinstance(value, str) and value.lower() in ("true", "false"):
                b = value.lower() == "true"
                return _Val(sql.Literal(b), "boolean", b, True)
            if target == "string" and _num(value):
                return _Val(sql.Literal(str(value)), "string", str(value), True)
        except (ValueError, FilterError):
            pass
        raise FilterError(f"type mismatch: {_describe(v)} cannot be compared with a {target} value")

    def unify(self, a: _Val, b: _Val, what: str) -> tuple[_Val, _Val]:
        if a.literal and not b.literal:
            a = self.coerce(a, b.type)
        elif b.literal and not a.literal:
            b = self.coerce(b, a.type)
        if _family(a.type) != _family(b.type):
            raise FilterError(f"type mismatch in {what}: {_describe(a)} vs {_describe(b)}")
        if a.type == "geometry":
            raise FilterError(
                f"geometries cannot be used in {what}; use spatial functions (S_INTERSECTS, ...)")
        return a, b

    @staticmethod
    def collate(v: _Val) -> sql.Composable:
        if v.type == "string":
            return sql.SQL("({})").format(v.sql) + _C
        return v.sql

    # ---- geometry
    def geom_literal(self, node: values.Geometry | values.Envelope, srid: int | None = None) -> sql.Composable:
        """A geometry literal as SQL in ``srid`` (default: the storage CRS), transformed once."""
        if isinstance(node, values.Envelope):
            x1, x2, y1, y2 = node.x1, node.x2, node.y1, node.y2
            if x1 > x2 and self.filter_srid == 4326 and not self.swap_xy:
                geom: Any = shapely.MultiPolygon(
                    [shapely.box(x1, y1, 180.0, y2), shapely.box(-180.0, y1, x2, y2)])
            else:
                geom = shapely.box(min(x1, x2), y1, max(x1, x2), y2)
        else:
            try:
                geom = shapely.geometry.shape(node.geometry)
            except Exception as exc:
                raise FilterError(f"invalid geometry: {exc}") from None
        wkt = shapely.to_wkt(geom, rounding_precision=-1, trim=True)
        expr: sql.Composable = sql.SQL("ST_GeomFromText({}, {})").format(
            sql.Literal(wkt), sql.Literal(self.filter_srid))
        if self.swap_xy:
            expr = sql.SQL("ST_FlipCoordinates({})").format(expr)
        target = self.storage_srid if srid is None else srid
        if self.filter_srid != target:
            expr = sql.SQL("ST_Transform({}, {})").format(expr, sql.Literal(target))
        return expr

    def geom(self, node: Any, fn: str) -> sql.Composable:
        v = self.scalar(node)
        if v.type != "geometry":
            raise FilterError(f"{fn} needs geometries, got {_describe(v)}")
        return v.sql

    def dwithin(self, node: ast.DistanceWithin) -> sql.Composable:
        """S_DWITHIN: geodesic distance in metres (on geography), plus an index-usable box on the column.

        The exact test casts both sides to geography (lon/lat), which no index on the stored column can
        serve. When one side is the stored geometry column and the other a literal, a conservative
        ``column && box`` is added: the box (in the storage CRS, computed once by the planner) holds every
        point within ``distance`` of the literal, so the GiST index picks candidates and the result is
        exactly that of the geography test alone.
        """
        meters = float(node.distance) * _UNITS_M[node.units]
        sides = []
        for arg in (node.lhs, node.rhs):
            if isinstance(arg, values.Geometry | values.Envelope):
                sides.append(self.geom_literal(arg, 4326))
            else:
                expr = self.geom(arg, "S_DWITHIN")
                if self.storage_srid != 4326:
                    expr = sql.SQL("ST_Transform({}, 4326)").format(expr)
                sides.append(expr)
        exact = sql.SQL("ST_DWithin(({})::geography, ({})::geography, {})").format(
            sides[0], sides[1], sql.Literal(meters))
        column = literal = None
        for this, other in ((node.lhs, node.rhs), (node.rhs, node.lhs)):
            if isinstance(this, ast.Attribute) and isinstance(other, values.Geometry | values.Envelope):
                column, literal = self.geom(this, "S_DWITHIN"), self.geom_literal(other, 4326)
                break
        if column is None or literal is None:
            return exact
        return sql.SQL("({} && {} AND {})").format(column, self.dwithin_box(literal, meters), exact)

    def dwithin_box(self, lonlat: sql.Composable, meters: float) -> sql.Composable:
        """A box in the storage CRS holding every point within ``meters`` (on WGS84) of ``lonlat``.

        On the ellipsoid one degree of latitude is at least 110 574 m and one degree of longitude at least
        111 319.49 m * cos(latitude), so widening the literal's lon/lat bounds by meters / those lengths
        (0.1 % more, plus ~1 cm) covers the geodesic disc. Near the poles or across the antimeridian the box
        is everything. For a projected storage CRS the box edges are densified before transforming.
        """
        pad = meters * 1.001
        box: sql.Composable = sql.SQL("ST_MakeEnvelope(x1, y1, x2, y2, 4326)")
        srid = sql.Literal(self.storage_srid)
        if self.storage_srid != 4326:
            box = sql.SQL("ST_Envelope(ST_Transform(ST_Segmentize({}, 0.01), {}))").format(box, srid)
        return sql.SQL(
            "(SELECT CASE WHEN lat >= 85 OR x1 < -180 OR x2 > 180 OR x2 - x1 + y2 - y1 > 90 "
            "THEN ST_MakeEnvelope(-1e30, -1e30, 1e30, 1e30, {srid}) ELSE {box} END "
            "FROM (SELECT lat, ST_XMin(b) - dlon AS x1, ST_YMin(b) - {dlat} AS y1, ST_XMax(b) + dlon AS x2, "
            "ST_YMax(b) + {dlat} AS y2 "
            "FROM (SELECT b, lat, {per_lon} / cos(radians(LEAST(lat, 89.0))) + 1e-7 AS dlon "
            "FROM (SELECT b, GREATEST(abs(ST_YMin(b)), abs(ST_YMax(b))) + {dlat} AS lat "
            "FROM (SELECT ({lonlat})::box2d AS b) AS s0) AS s1) AS s2) AS s3)").format(
            srid=srid, box=box, dlat=sql.Literal(pad / 110_574.0 + 1e-7),
            per_lon=sql.Literal(pad / 111_319.49), lonlat=lonlat)

    # ---- temporal
    def instant_or_interval(self, node: Any, fn: str) -> tuple[sql.Composable, sql.Composable, bool]:
        """(start, end, is_interval) of a temporal operand."""
        if isinstance(node, values.Interval):
            ends = []
            for bound, inf in ((node.start, "-infinity"), (node.end, "infinity")):
                if bound is None:
                    ends.append(sql.SQL("{}::timestamptz").format(sql.Literal(inf)))
                    continue
                v = self.scalar(bound)
                if v.type not in _TEMPORAL_T:
                    raise FilterError(f"INTERVAL bounds must be dates or timestamps, got {_describe(v)}")
                ends.append(v.sql)
            return ends[0], ends[1], True
        v = self.scalar(node)
        if v.literal and isinstance(v.value, str):
            v = self.coerce(v, "timestamp")
        if v.type not in _TEMPORAL_T:
            raise FilterError(f"{fn} needs dates, timestamps or intervals, got {_describe(v)}")
        return v.sql, v.sql, False

    def temporal(self, node: Any) -> sql.Composable:
        name = {ast.TimeAfter: "T_AFTER", ast.TimeBefore: "T_BEFORE", ast.TimeContains: "T_CONTAINS",
                ast.TimeDisjoint: "T_DISJOINT", ast.TimeDuring: "T_DURING", ast.TimeEquals: "T_EQUALS",
                ast.TimeEndedBy: "T_FINISHEDBY", ast.TimeEnds: "T_FINISHES", TimeIntersects: "T_INTERSECTS",
                ast.TimeMeets: "T_MEETS", ast.TimeMetBy: "T_METBY", ast.TimeOverlappedBy: "T_OVERLAPPEDBY",
                ast.TimeOverlaps: "T_OVERLAPS", ast.TimeBegunBy: "T_STARTEDBY",
                ast.TimeBegins: "T_STARTS"}.get(type(node))
        if name is None:
            raise FilterError(f"temporal operator {type(node).__name__} is not supported")
        s1, e1, i1 = self.instant_or_interval(node.lhs, name)
        s2, e2, i2 = self.instant_or_interval(node.rhs, name)
        if name not in ("T_AFTER", "T_BEFORE", "T_DISJOINT", "T_EQUALS", "T_INTERSECTS") and not (i1 and i2):
            raise FilterError(f"{name} applies to intervals only; use INTERVAL(start, end) on both sides")
        templates = {
            "T_AFTER": "({s1} > {e2})",
            "T_BEFORE": "({e1} < {s2})",
            "T_DISJOINT": "({s1} > {e2} OR {e1} < {s2})",
            "T_EQUALS": "({s1} = {s2} AND {e1} = {e2})",
            "T_INTERSECTS": "({s1} <= {e2} AND {e1} >= {s2})",
            "T_CONTAINS": "({s1} < {s2} AND {e1} > {e2})",
            "T_DURING": "({s1} > {s2} AND {e1} < {e2})",
            "T_FINISHEDBY": "({s1} < {s2} AND {e1} = {e2})",
            "T_FINISHES": "({s1} > {s2} AND {e1} = {e2})",
            "T_MEETS": "({e1} = {s2})",
            "T_METBY": "({s1} = {e2})",
            "T_OVERLAPPEDBY": "({s1} > {s2} AND {s1} < {e2} AND {e1} > {e2})",
            "T_OVERLAPS": "({s1} < {s2} AND {e1} > {s2} AND {e1} < {e2})",
            "T_STARTEDBY": "({s1} = {s2} AND {e1} > {e2})",
            "T_STARTS": "({s1} = {s2} AND {e1} < {e2})",
        }
        return sql.SQL(templates[name]).format(s1=s1, e1=e1, s2=s2, e2=e2)

    # ---- predicates
    def predicate(self, node: Any) -> sql.Composable:
        if isinstance(node, bool):
            return sql.SQL("TRUE" if node else "FALSE")
        if isinstance(node, ast.Include):
            return sql.SQL("FALSE" if node.not_ else "TRUE")
        if isinstance(node, ast.And | ast.Or):
            word = " AND " if isinstance(node, ast.And) else " OR "
            parts = [self.predicate(node.lhs), self.predicate(node.rhs)]
            return sql.SQL("({})").format(sql.SQL(word).join(parts))
        if isinstance(node, ast.Not):
            return sql.SQL("(NOT {})").format(self.predicate(node.sub_node))
        if isinstance(node, ast.Comparison):
            a, b = self.unify(self.scalar(node.lhs), self.scalar(node.rhs), "comparison")
            op = {ast.ComparisonOp.EQ: "=", ast.ComparisonOp.NE: "<>", ast.ComparisonOp.LT: "<",
                  ast.ComparisonOp.LE: "<=", ast.ComparisonOp.GT: ">", ast.ComparisonOp.GE: ">="}[node.op]
            if a.type == "boolean" and op not in ("=", "<>"):
                raise FilterError("booleans can only be compared with = or <>")
            return sql.SQL("({} " + op + " {})").format(self.collate(a), self.collate(b))
        if isinstance(node, ast.Like):
            a = self.scalar(node.lhs)
            p = self.scalar(node.pattern)
            if a.literal:
                a = self.coerce(a, "string")
            if a.type != "string" or p.type != "string":
                raise FilterError(f"LIKE needs strings, got {_describe(a)} LIKE {_describe(p)}")
            expr = sql.SQL("({} LIKE {})").format(self.collate(a), self.collate(p))
            return sql.SQL("(NOT {})").format(expr) if node.not_ else expr
        if isinstance(node, ast.Between):
            x = self.scalar(node.lhs)
            lo, hi = self.scalar(node.low), self.scalar(node.high)
            x, lo = self.unify(x, lo, "BETWEEN")
            x, hi = self.unify(x, hi, "BETWEEN")
            if _family(x.type) not in ("numeric", "temporal"):
                raise FilterError(f"BETWEEN needs numbers, got {_describe(x)}")
            expr = sql.SQL("({} BETWEEN {} AND {})").format(x.sql, lo.sql, hi.sql)
            return sql.SQL("(NOT {})").format(expr) if node.not_ else expr
        if isinstance(node, ast.In):
            x = self.scalar(node.lhs)
            items = []
            for item in node.sub_nodes:
                x, v = self.unify(x, self.scalar(item), "IN")
                items.append(self.collate(v))
            if not items:
                raise FilterError("IN needs at least one value")
            expr = sql.SQL("({} IN ({}))").format(self.collate(x), sql.SQL(", ").join(items))
            return sql.SQL("(NOT {})").format(expr) if node.not_ else expr
        if isinstance(node, ast.IsNull):
            x = self.scalar(node.lhs)
            return sql.SQL("({} IS NOT NULL)" if node.not_ else "({} IS NULL)").format(x.sql)
        if isinstance(node, ast.SpatialComparisonPredicate):
            fn = {ast.SpatialComparisonOp.INTERSECTS: "ST_Intersects", ast.SpatialComparisonOp.DISJOINT:
                  "ST_Disjoint", ast.SpatialComparisonOp.CONTAINS: "ST_Contains",
                  ast.SpatialComparisonOp.WITHIN: "ST_Within", ast.SpatialComparisonOp.TOUCHES: "ST_Touches",
                  ast.SpatialComparisonOp.CROSSES: "ST_Crosses", ast.SpatialComparisonOp.OVERLAPS:
                  "ST_Overlaps", ast.SpatialComparisonOp.EQUALS: "ST_Equals"}[node.op]
            name = "S_" + fn[3:].upper()
            return sql.SQL(fn + "({}, {})").format(self.geom(node.lhs, name), self.geom(node.rhs, name))
        if isinstance(node, ast.DistanceWithin):
            return self.dwithin(node)
        if isinstance(node, ast.TemporalPredicate | TimeIntersects):
            return self.temporal(node)
        if isinstance(node, ast.Function):
            raise FilterError(f"function '{node.name}' cannot be used as a condition")
        if isinstance(node, ast.Node):
            raise FilterError(f"{type(node).__name__} is not supported in filters")
        raise FilterError(f"a value ({node!r}) was used where a condition is expected")


def to_sql(ast_node: Any, queryables: dict[str, Queryable], geometry_column: str, storage_srid: int,
           filter_crs_srid: int = 4326, *, filter_crs_swap_xy: bool = False) -> sql.Composable:
    """Translate a parsed filter into a boolean SQL expression.

    Property names are matched against ``queryables`` (exact first, then case-insensitive); geometry
    literals are in ``filter_crs_srid`` (x/y = lon/lat for 4326, i.e. CRS84; pass
    ``filter_crs_swap_xy=True`` when the filter-crs has lat/lon axis order, e.g. EPSG:4326 by URI).
    """
    compiler = _Compiler(queryables, geometry_column, storage_srid, filter_crs_srid, filter_crs_swap_xy)
    try:
        return compiler.predicate(ast_node)
    except RecursionError:
        raise FilterError("filter is nested too deeply") from None
