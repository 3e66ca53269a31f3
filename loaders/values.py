"""Value converters for source text: numbers, integers, dates, timestamps (raise ValueError with a reason)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

KST = ZoneInfo("Asia/Seoul")
_DATE = re.compile(r"^(\d{4})[-./]?(\d{1,2})[-./]?(\d{1,2})\.?$")


def blank(v: Any) -> bool:
    """Empty, whitespace or NaN."""
    if v is None:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return isinstance(v, str) and not v.strip()


def text(v: Any) -> str | None:
    """Stripped text or None."""
    if blank(v):
        return None
    return str(v).strip()


def number(v: Any) -> float | None:
    """A float; thousands separators allowed."""
    if blank(v):
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


def decimal(v: Any) -> Decimal | None:
    """An exact decimal (for numeric columns)."""
    if blank(v):
        return None
    s = str(v).strip().replace(",", "")
    try:
        d = Decimal(s)
    except InvalidOperation:
        raise ValueError(f"{str(v).strip()!r} is not a number") from None
    if not d.is_finite():
        raise ValueError(f"{s!r} is not a finite number")
    return d


def integer(v: Any) -> int | None:
    """An integer (12, '12', '1,234', '12.0')."""
    f = number(v)
    if f is None:
        return None
    if not f.is_integer():
        raise ValueError(f"{str(v).strip()!r} is not a whole number")
    return int(f)


def to_date(v: Any) -> date | None:
    """A date from YYYY-MM-DD, YYYYMMDD, YYYY.MM.DD or YYYY/MM/DD."""
    if blank(v):
        return None
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    m = _DATE.match(str(v).strip()[:10])
    if not m:
        raise ValueError(f"{str(v).strip()!r} is not a date")
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        raise ValueError(f"{str(v).strip()!r} is not a valid date") from None


def timestamp(v: Any) -> datetime | None:
    """A timestamptz; naive values are Korean time; 'YYYY-MM-DD 24:00' rolls to the next day."""
    if blank(v):
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
        from datetime import timedelta

        dt += timedelta(days=1)
    return dt if dt.tzinfo else dt.replace(tzinfo=KST)


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "text": text, "number": number, "numeric": decimal, "int": integer, "date": to_date, "timestamp": timestamp,
}
