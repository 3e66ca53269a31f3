"""Helpers the loader tests share to make their file variants."""

from __future__ import annotations

import csv
import io
from pathlib import Path


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8",
              newline: str = "\r\n") -> Path:
    """A CSV of `header` and `rows` in `encoding` (CRLF lines, as Korean portals and Excel write them)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator=newline).writerows([header, *rows])
    path.write_bytes(buf.getvalue().encode(encoding))
    return path
