"""Text by content: encoding detection (BOM, strict UTF-8, CP949), mojibake checks, zip member names."""

from __future__ import annotations

import codecs
import re
import unicodedata
import zipfile
from pathlib import Path

from loaders.errors import LoadError

ENCODINGS = ("auto", "cp949", "euc-kr", "utf-8", "utf-8-sig")
CANDIDATES = ("utf-8", "cp949")
# UTF-8 read as Latin-1/CP1252 ("ì„¸ì¢…"), or Latin-1 bytes left in a UTF-8 text
_LATIN_MOJIBAKE = re.compile("[\u00c2-\u00f4][\u0080-\u00bf\u2018-\u203a\u0152-\u0178]|[\u0080-\u009f]")


def _rare(ch: str) -> bool:
    """A character that real Korean text rarely holds but mis-decoded bytes often yield."""
    o = ord(ch)
    if 0xAC00 <= o <= 0xD7A3:  # Hangul syllable: rare unless in the 2,350 of KS X 1001 (CP949 lead and trail >= 0xA1)
        b = ch.encode("cp949")
        return b[0] < 0xA1 or b[1] < 0xA1
    if 0x4E00 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0xE000 <= o <= 0xF8FF:  # hanja, compatibility, private use
        return True
    return o == 0xFFFD or 0x80 <= o <= 0x9F or unicodedata.category(ch) == "Cn"


def text_score(text: str) -> tuple[int, int]:
    """(common Hangul syllables, rare characters) of a text: real Korean has many of the first, few of the second."""
    common = rare = 0
    for ch in text:
        if ord(ch) < 0x80:
            continue
        if _rare(ch):
            rare += 1
        elif 0xAC00 <= ord(ch) <= 0xD7A3:
            common += 1
    return common, rare


def mojibake_reason(values: list[str]) -> str | None:
    """Why these values look mis-decoded (None when they look like real text)."""
    for v in values:
        if "\ufffd" in v:
            return f"{v[:40]!r} holds U+FFFD (a byte that could not be decoded)"
        if _LATIN_MOJIBAKE.search(v):
            return f"{v[:40]!r} looks like UTF-8 read as Latin-1"
    common, rare = text_score("".join(values))
    if rare >= 5 and rare > common:
        sample = next((v for v in values if text_score(v)[1]), "")
        return f"{sample[:40]!r} looks like mojibake ({rare} rare Hangul/CJK characters against {common} common ones)"
    return None


def _strict(data: bytes, enc: str) -> str | None:
    try:
        return data.decode(enc)
    except UnicodeDecodeError as exc:
        if exc.start >= len(data) - 3:  # only the last character is cut: a truncated file in this encoding
            return data[: exc.start].decode(enc)
        return None


def _sample(text: str, n: int = 60) -> str:
    line = next((ln for ln in text.splitlines() if any(ord(c) >= 0x80 for c in ln)), text[:n])
    i = next((k for k, c in enumerate(line) if ord(c) >= 0x80), 0)
    return line[max(0, i - 10): max(0, i - 10) + n]


def detect_encoding(data: bytes, label: str = "", flag: str = "--encoding") -> str:
    """The encoding of Korean text by content: BOM; else the one of UTF-8 / CP949 that decodes strictly and reads
    as Hangul rather than rare CJK mojibake. Ambiguous bytes are refused with a sample of each reading."""
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    readings = {enc: t for enc in CANDIDATES if (t := _strict(data, enc)) is not None}
    if not readings:
        return "cp949"  # neither decodes: decode_file names the line of the first bad byte
    if "utf-8" in readings and all(ord(c) < 0x80 for c in readings["utf-8"][:200_000]):
        return "utf-8"
    if len(readings) == 1:
        return next(iter(readings))
    scores = {enc: text_score(t[:200_000]) for enc, t in readings.items()}
    good = [enc for enc, (common, rare) in scores.items() if rare * 10 <= common]
    if len(good) == 1:
        return good[0]
    ranked = sorted(scores, key=lambda e: scores[e][0] - 3 * scores[e][1], reverse=True)
    best, other = ranked[0], ranked[1]
    if scores[best][0] - 3 * scores[best][1] > 2 * max(1, scores[other][0] - 3 * scores[other][1]):
        return best
    samples = "; ".join(f"as {enc}: {_sample(readings[enc])!r}" for enc in ranked)
    raise LoadError(f"{label}: the text encoding is ambiguous ({samples}); choose one with {flag} "
                    f"{' or '.join(ranked)}")


def decode_bytes(data: bytes, encoding: str | None = "auto", label: str = "") -> tuple[str, str]:
    """Decode bytes (encoding 'auto'/None: by content); returns (text, encoding). Errors name the line."""
    enc = detect_encoding(data, label) if encoding in ("auto", "", None) else str(encoding)
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
        guess = next((e for e in CANDIDATES if e != enc and _strict(data, e) is not None), None)
        hint = f"; the file looks like {guess} — try --encoding {guess}" if guess else \
            "; it is neither UTF-8 nor CP949 — re-save it as UTF-8"
        raise LoadError(f"{label} line {line}: cannot decode byte 0x{data[exc.start]:02x} as {enc}{hint}") from exc


def decode_file(path: Path, encoding: str = "auto", label: str | None = None) -> tuple[str, str]:
    """Read and decode a text file; returns (text, encoding). Decode errors name the line."""
    label = label or path.name
    data = path.read_bytes()
    if not data.strip():
        raise LoadError(f"{label}: the file is empty")
    return decode_bytes(data, encoding, label)


def member_name(info: zipfile.ZipInfo, encoding: str | None = None) -> str:
    """A zip member's real name: UTF-8 flag or Unicode-path field; else its raw bytes decoded by content
    (Korean Windows writes CP949 names without the UTF-8 flag)."""
    if info.flag_bits & 0x800 or info.filename != info.orig_filename.replace("\\", "/"):
        return info.filename
    raw = info.orig_filename.encode("cp437")
    if raw.isascii():
        return info.filename
    text, _ = decode_bytes(raw, encoding or "auto", f"zip member name {info.filename!r}")
    return text.replace("\\", "/")


def member_names(path: Path, encoding: str | None = None) -> dict[str, zipfile.ZipInfo]:
    """Real member name -> ZipInfo of every file (not folder) in a zip."""
    with zipfile.ZipFile(path) as zf:
        return {member_name(i, encoding): i for i in zf.infolist() if not i.is_dir()}
