"""Text files: encoding detection (BOM / UTF-8 / CP949 / charset-normalizer) and decoding with line-exact errors."""

from __future__ import annotations

import codecs
from pathlib import Path

from loaders.errors import LoadError

ENCODINGS = ("auto", "cp949", "euc-kr", "utf-8", "utf-8-sig")


def detect_encoding(data: bytes) -> str:
    """Guess the encoding of Korean public-data text: BOM, then strict UTF-8, then CP949, then a detector."""
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    for enc in ("utf-8", "cp949"):
        try:
            data.decode(enc)
            return enc
        except UnicodeDecodeError as exc:
            if exc.start >= len(data) - 3:  # only the last character is cut: a truncated file in this encoding
                return enc
    from charset_normalizer import from_bytes

    best = from_bytes(data[:200_000]).best()
    return best.encoding if best is not None else "cp949"


def decode_file(path: Path, encoding: str = "auto", label: str | None = None) -> tuple[str, str]:
    """Read and decode a text file; returns (text, encoding). Decode errors name the line."""
    label = label or path.name
    data = path.read_bytes()
    if not data.strip():
        raise LoadError(f"{label}: the file is empty")
    enc = detect_encoding(data) if encoding in ("auto", "", None) else encoding
    if enc.lower().replace("_", "-") in ("utf-8", "utf8") and data.startswith(codecs.BOM_UTF8):
        enc = "utf-8-sig"
    try:
        return data.decode(enc), enc
    except LookupError as exc:
        raise LoadError(f"{label}: unknown encoding {enc!r}") from exc
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        if exc.start >= len(data) - 3:
            raise LoadError(f"{label} line {line}: the file ends in the middle of a character "
                            f"(truncated file?)") from exc
        guess = detect_encoding(data)
        hint = f"; the file looks like {guess} — try --encoding {guess}" if guess != enc else ""
        raise LoadError(f"{label} line {line}: cannot decode byte 0x{data[exc.start]:02x} as {enc}{hint}") from exc
