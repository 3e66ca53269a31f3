"""Value converters for source text (raise ValueError with a reason) and column typing by content."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

KST = ZoneInfo("Asia/Seoul")
_DATE = re.compile(r"^(\d{4})[-./]?(\d{1,2})[-./]?(\d{1,2})\.?$")
_KO_DATE = re.compile(r"^(\d{4})\s*년\s*(\d{1,2})\s*월\s*(\d{1,2})\s*일$")
# missing-value markers of Korean tables: blank in typed columns ("-" is a dash in a statistics table, not a zero)
NULL_TOKENS = frozenset({"-", "–", "—", "n/a", "na", "null", "none", "nan", "#n/a"})
_INT = re.compile(r"^[+-]?(?:0|[1-9]\d{0,17}|[1-9]\d{0,2}(?:,\d{3}){1,5})$")  # no leading zeros: those are codes
_NUM = re.compile(r"^[+-]?(?:\d+|\d{1,3}(?:,\d{3})+)?(?:\.\d+)?(?:[eE][+-]?\d+)?$")
_DAY = r"\d{4}[-./]\d{1,2}[-./]\d{1,2}"
_TS = re.compile(rf"^{_DAY}[ T]\d{{1,2}}:\d{{2}}(?::\d{{2}}(?:\.\d+)?)?(?:Z|[+-]\d{{2}}:?\d{{2}})?$")
TRUE = frozenset({"y", "yes", "true", "t", "예", "유", "o"})
FALSE = frozenset({"n", "no", "false", "f", "아니오", "무", "x"})


def blank(v: Any) -> bool:
    """Empty, whitespace or NaN."""
    if v is None:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return isinstance(v, str) and not v.strip()


def missing(v: Any) -> bool:
    """Blank, or a missing-value marker ('-', 'N/A', 'null') — for typed columns only."""
    return blank(v) or (isinstance(v, str) and v.strip().lower() in NULL_TOKENS)


def text(v: Any) -> str | None:
    """Stripped text or None."""
    if type(v) is str:
        return v.strip() or None
    if blank(v):
        return None
    return str(v).strip()


def _number(v: Any) -> float | None:
    """A float; thousands separators allowed."""
    if missing(v):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    s = str(v).strip().replace(",", "")
    try:
        f = float(s)
    except ValueError:
        raise ValueError(f"{str(v).strip()!r} is not a number") from None
    if math.isnan(f) or math.isinf(f):
        raise ValueError(f"{str(v).strip()!r} is not a finite number")
    return f


def _decimal(v: Any) -> Decimal | None:
    """An exact decimal (for numeric columns); thousands separators allowed."""
    if missing(v):
        return None
    s = str(v).strip().replace(",", "")
    try:
        d = Decimal(s)
    except InvalidOperation:
        raise ValueError(f"{str(v).strip()!r} is not a number") from None
    if not d.is_finite():
        raise ValueError(f"{s!r} is not a finite number")
    return d


def _integer(v: Any) -> int | None:
    """An integer (12, '12', '1,234', '12.0'), exact beyond 2**53."""
    if missing(v):
        return None
    if isinstance(v, bool):
        raise ValueError(f"{v!r} is not a whole number")
    if isinstance(v, int):
        return v
    d = decimal(v)
    if d is None:
        return None
    if d != d.to_integral_value():
        raise ValueError(f"{str(v).strip()!r} is not a whole number")
    return int(d)


def boolean(v: Any) -> bool | None:
    """Y/N, 예/아니오, 유/무, O/X, true/false."""
    if missing(v) and not (isinstance(v, str) and v.strip().lower() in TRUE | FALSE):
        return None
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in TRUE:
        return True
    if s in FALSE:
        return False
    raise ValueError(f"{str(v).strip()!r} is not a yes/no value (Y/N, 예/아니오, 유/무, O/X, true/false)")


def _to_date(v: Any) -> date | None:
    """A date from YYYY-MM-DD, YYYYMMDD, YYYY.MM.DD, YYYY/MM/DD or 2023년 6월 9일."""
    if missing(v):
        return None
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    m = _KO_DATE.match(str(v).strip()) or _DATE.match(str(v).strip()[:10])
    if not m:
        raise ValueError(f"{str(v).strip()!r} is not a date")
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        raise ValueError(f"{str(v).strip()!r} is not a valid date") from None


def _timestamp(v: Any) -> datetime | None:
    """A timestamptz; naive values are Korean time; 'YYYY-MM-DD 24:00' rolls to the next day."""
    if missing(v):
        return None
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=KST)
    s = str(v).strip().replace("T", " ")
    extra = 0
    if s.endswith(" 24:00") or s.endswith(" 24:00:00"):
        s = s.split(" ")[0] + " 00:00"
        extra = 1
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        d = to_date(s)
        if d is None:
            return None
        dt = datetime(d.year, d.month, d.day)
    if extra:
        dt += timedelta(days=1)
    return dt if dt.tzinfo else dt.replace(tzinfo=KST)


# Source text repeats (codes, dates, readings): each distinct string is converted once (results are immutable).
_CACHE = 1 << 16
_number_text = lru_cache(maxsize=_CACHE)(_number)
_decimal_text = lru_cache(maxsize=_CACHE)(_decimal)
_integer_text = lru_cache(maxsize=_CACHE)(_integer)
_date_text = lru_cache(maxsize=_CACHE)(_to_date)
_timestamp_text = lru_cache(maxsize=_CACHE)(_timestamp)


def number(v: Any) -> float | None:
    """A float; thousands separators allowed."""
    return _number_text(v) if type(v) is str else _number(v)


def decimal(v: Any) -> Decimal | None:
    """An exact decimal (for numeric columns); thousands separators allowed."""
    return _decimal_text(v) if type(v) is str else _decimal(v)


def integer(v: Any) -> int | None:
    """An integer (12, '12', '1,234', '12.0'), exact beyond 2**53."""
    return _integer_text(v) if type(v) is str else _integer(v)


def to_date(v: Any) -> date | None:
    """A date from YYYY-MM-DD, YYYYMMDD, YYYY.MM.DD, YYYY/MM/DD or 2023년 6월 9일."""
    return _date_text(v) if type(v) is str else _to_date(v)


def timestamp(v: Any) -> datetime | None:
    """A timestamptz; naive values are Korean time; 'YYYY-MM-DD 24:00' rolls to the next day."""
    return _timestamp_text(v) if type(v) is str else _timestamp(v)


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "text": text, "number": number, "numeric": decimal, "int": integer, "integer": integer, "date": to_date,
    "timestamp": timestamp, "boolean": boolean,
}

# column types a load infers or --types names, and their PostgreSQL types (from code, never user text)
PG_TYPES: dict[str, str] = {"integer": "bigint", "numeric": "numeric", "date": "date", "timestamp": "timestamptz",
                            "boolean": "boolean", "text": "text"}
_ALIASES = {"int": "integer", "bigint": "integer", "number": "numeric", "float": "numeric", "double": "numeric",
            "decimal": "numeric", "bool": "boolean", "datetime": "timestamp", "timestamptz": "timestamp",
            "string": "text", "str": "text"}
_ORDER = ("boolean", "integer", "numeric", "date", "timestamp")  # the first type every value fits wins


def type_name(name: str) -> str:
    """A --types type (integer, numeric, date, timestamp, boolean, text or an alias), canonical."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in PG_TYPES:
        raise ValueError(f"type {name!r}: use one of {', '.join(PG_TYPES)}")
    return key


def _fits(kind: str, s: str) -> bool:
    """Whether stripped, non-missing text s reads as kind."""
    if kind == "boolean":
        return s.lower() in TRUE or s.lower() in FALSE
    if kind == "integer":
        return bool(_INT.match(s)) and (len(s) < 19 or abs(int(s.replace(",", ""))) < 2**63)
    if kind == "numeric":
        return bool(_NUM.match(s)) and any(c.isdigit() for c in s) and not (
            len(s) > 1 and s[0] == "0" and s[1].isdigit())  # 0123: a code, not a number
    if kind == "date":
        if not (_KO_DATE.match(s) or (_DATE.match(s) and len(s) >= 8)):
            return False
        try:
            d = to_date(s)
        except ValueError:
            return False
        return d is not None and 1800 <= d.year <= 2200
    if kind == "timestamp":
        if not (_TS.match(s) or _fits("date", s)):
            return False
        try:
            return timestamp(s) is not None
        except ValueError:
            return False
    return True


class TypeGuess:
    """Streams a column's values and keeps the types every non-missing value fits."""

    def __init__(self) -> None:
        self.left = list(_ORDER)
        self.seen = 0
        self.booleans: set[str] = set()
        self._checked: set[str] = set()  # values already tested (columns repeat their values)

    def add(self, v: Any) -> None:
        """One value."""
        if not self.left:
            return
        s = v.strip() if isinstance(v, str) else ("" if missing(v) else str(v).strip())
        if not s or s in self._checked or s.lower() in NULL_TOKENS:
            return
        if len(self._checked) < 200_000:
            self._checked.add(s)
        self.seen += 1
        self.left = [k for k in self.left if _fits(k, s)]
        if "boolean" in self.left:
            self.booleans.add(s.lower())

    @property
    def kind(self) -> str:
        """The column's type: the narrowest every value fits (text when none, or no values)."""
        left = list(self.left)
        if "boolean" in left and not (self.booleans & TRUE and self.booleans & FALSE):
            left.remove("boolean")  # one word only ('O' alone) is a mark, not a yes/no column
        return left[0] if self.seen and left else "text"


def infer_types(header: list[str], records: Iterable[list[str]]) -> list[str]:
    """The type of each column of a table by content (integer, numeric, date, timestamp, boolean, text)."""
    guesses = [TypeGuess() for _ in header]
    for rec in records:
        for g, v in zip(guesses, rec, strict=False):
            g.add(v)
    return [g.kind for g in guesses]
