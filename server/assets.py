"""Offline front-end assets (망분리): MapLibre GL JS from npm and glyph PBFs built from a Debian font.

Everything lands in ``var/assets/`` (ignored by git) and is served by our own blueprints, so a map page never
asks another host for a script, a font or a sprite.  ``ensure_assets`` is idempotent: a second call with
everything in place returns in milliseconds.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

LOGGER = logging.getLogger(__name__)

# npm packages vendored at setup: the map library, the style validator and the browser driver used by the tests
NPM_PACKAGES: dict[str, str] = {
    "maplibre-gl": "6.17.0",
    "@maplibre/maplibre-gl-style-spec": "26.6.0",
    "playwright-core": "1.65.1",
}

# The one fontstack our styles use; the glyph route serves it for any requested stack name.
FONTSTACK = "Nanum Gothic Regular"
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",                 # Debian fonts-nanum
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",          # Debian fonts-noto-cjk
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",                 # Latin only (fonts-dejavu-core)
)
# Unicode blocks (start of each 256-code-point range) we build: Latin, punctuation, symbols, Hangul.
GLYPH_BLOCKS: tuple[tuple[int, int], ...] = (
    (0x0000, 0x02FF),   # Basic Latin, Latin-1, Latin Extended-A/B
    (0x1100, 0x11FF),   # Hangul Jamo
    (0x2000, 0x22FF),   # punctuation, super/subscripts, currency, letterlike (℃, №), arrows, maths
    (0x3000, 0x33FF),   # CJK symbols, Hangul compatibility jamo, CJK compatibility (㎍, ㎥, ㎡)
    (0xAC00, 0xD7FF),   # Hangul syllables
    (0xFF00, 0xFFFF),   # full-width forms
)
GLYPH_BUILDER_VERSION = 1

# SDF parameters of the MapLibre glyph format (the ones its shaders assume)
SIZE = 24        # em size in pixels
BUFFER = 3       # padding around each glyph bitmap
RADIUS = 8       # distance, in pixels, covered by the 0..255 range
CUTOFF = 0.25    # fraction of the range used for the inside
OVERSAMPLE = 4   # rasterise at 4x and measure distances there


def assets_dir(root: Path) -> Path:
    """Folder of the vendored assets (git-ignored)."""
    return root / "var" / "assets"


def maplibre_dist(root: Path) -> Path:
    """Folder of MapLibre's built files."""
    return assets_dir(root) / "node_modules" / "maplibre-gl" / "dist"


def fonts_dir(root: Path) -> Path:
    """Folder of the glyph PBFs, one subfolder per fontstack."""
    return assets_dir(root) / "fonts"


def ensure_assets(root: Path) -> None:
    """Install MapLibre (npm) and build the glyph PBFs if missing; cheap when everything is in place."""
    ensure_npm(root)
    ensure_glyphs(root)


# --------------------------------------------------------------------------------------------- npm packages

def _npm_ok(folder: Path) -> bool:
    for name, version in NPM_PACKAGES.items():
        manifest = folder / "node_modules" / name / "package.json"
        try:
            if json.loads(manifest.read_text())["version"] != version:
                return False
        except (OSError, ValueError, KeyError):
            return False
    return (folder / "node_modules" / "maplibre-gl" / "dist" / "maplibre-gl.mjs").exists()


def ensure_npm(root: Path) -> None:
    """npm install the pinned packages into var/assets/ (from the npm registry only)."""
    folder = assets_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    if _npm_ok(folder):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed: install Debian's nodejs/npm so the map pages can be vendored")
    manifest = {"name": "sejong-mapserver-assets", "private": True, "description": "vendored at setup; never committed",
                "dependencies": NPM_PACKAGES}
    (folder / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    LOGGER.info("npm install %s into %s", " ".join(f"{k}@{v}" for k, v in NPM_PACKAGES.items()), folder)
    subprocess.run([npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
                   cwd=folder, check=True)
    if not _npm_ok(folder):
        raise RuntimeError(f"npm install in {folder} did not produce the pinned packages")


# --------------------------------------------------------------------------------------------- glyphs

def font_file() -> Path | None:
    """The first installed font of FONT_CANDIDATES."""
    for cand in FONT_CANDIDATES:
        if Path(cand).exists():
            return Path(cand)
    return None


def glyph_ranges() -> list[int]:
    """Start code points of the 256-glyph ranges we build."""
    starts: list[int] = []
    for first, last in GLYPH_BLOCKS:
        starts.extend(range(first - first % 256, last + 1, 256))
    return sorted(set(starts))


def ensure_glyphs(root: Path) -> None:
    """Build var/assets/fonts/<FONTSTACK>/<start>-<end>.pbf from the installed font, once."""
    font = font_file()
    if font is None:
        raise RuntimeError("no font found: install the Debian package fonts-nanum (or fonts-noto-cjk)")
    out = fonts_dir(root) / FONTSTACK
    stamp = out / "stamp.json"
    want = {"font": str(font), "size": font.stat().st_size, "builder": GLYPH_BUILDER_VERSION,
            "ranges": glyph_ranges()}
    try:
        if json.loads(stamp.read_text()) == want:
            return
    except (OSError, ValueError):
        pass
    if "DejaVu" in font.name:
        LOGGER.warning("only %s is installed: Hangul labels need the Debian package fonts-nanum", font)
    out.mkdir(parents=True, exist_ok=True)
    starts = glyph_ranges()
    LOGGER.info("building %d glyph ranges from %s into %s", len(starts), font, out)
    with ProcessPoolExecutor() as pool:
        for start, data in zip(starts, pool.map(_range_pbf, [str(font)] * len(starts), starts), strict=True):
            tmp = out / f".{start}-{start + 255}.pbf.tmp"
            tmp.write_bytes(data)
            tmp.replace(out / f"{start}-{start + 255}.pbf")
    stamp.write_text(json.dumps(want))


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_varint(num: int, value: int) -> bytes:
    return _varint(num << 3) + _varint(value)


def _field_bytes(num: int, value: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(value)) + value


def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 31)


def encode_glyphs(stack: str, start: int, glyphs: Iterable[tuple[int, bytes, int, int, int, int, int]]) -> bytes:
    """The glyphs protobuf (fontstack name, range, glyphs: id, bitmap, width, height, left, top, advance)."""
    body = _field_bytes(1, stack.encode()) + _field_bytes(2, f"{start}-{start + 255}".encode())
    for gid, bitmap, width, height, left, top, advance in glyphs:
        g = _field_varint(1, gid)
        if bitmap:
            g += _field_bytes(2, bitmap)
        g += (_field_varint(3, width) + _field_varint(4, height) + _field_varint(5, _zigzag(left))
              + _field_varint(6, _zigzag(top)) + _field_varint(7, advance))
        body += _field_bytes(3, g)
    return _field_bytes(1, body)


def _covered(font_path: str) -> set[int]:
    from fontTools.ttLib import TTFont

    tt = TTFont(font_path, fontNumber=0, lazy=True)
    cmap = tt.getBestCmap() or {}
    tt.close()
    return set(cmap)


def _range_pbf(font_path: str, start: int) -> bytes:
    """One 256-glyph range as signed-distance-field glyphs."""
    covered = _covered(font_path)
    big = ImageFont.truetype(font_path, SIZE * OVERSAMPLE)
    glyphs = []
    for cp in range(start, start + 256):
        if cp not in covered or cp < 0x20 or 0xD800 <= cp <= 0xDFFF:
            continue
        glyphs.append(_sdf_glyph(big, cp))
    return encode_glyphs(FONTSTACK, start, glyphs)


def _sdf_glyph(big: ImageFont.FreeTypeFont, cp: int) -> tuple[int, bytes, int, int, int, int, int]:
    ch = chr(cp)
    s = OVERSAMPLE
    advance = round(big.getlength(ch) / s)
    x0, y0, x1, y1 = big.getbbox(ch, anchor="ls")  # y grows downwards, origin at the baseline
    if x1 <= x0 or y1 <= y0:
        return (cp, b"", 0, 0, 0, 0, advance)
    left = int(np.floor(x0 / s))
    top = int(np.ceil(-y0 / s))
    width = max(int(np.ceil(x1 / s)) - left, 1)
    height = max(top - int(np.floor(-y1 / s)), 1)
    bw, bh = width + 2 * BUFFER, height + 2 * BUFFER
    img = Image.new("L", (bw * s, bh * s), 0)
    ImageDraw.Draw(img).text(((BUFFER - left) * s, (BUFFER + top) * s), ch, font=big, fill=255, anchor="ls")
    inside = np.asarray(img) >= 128
    outside_dist = ndimage.distance_transform_edt(~inside)
    inside_dist = ndimage.distance_transform_edt(inside)
    signed = (np.asarray(outside_dist) - np.asarray(inside_dist)) / s  # > 0 outside, in 24 px units
    centre = signed[s // 2::s, s // 2::s][:bh, :bw]
    value = 255 - np.clip(centre * (256 / RADIUS) + CUTOFF * 256, 0, 255)
    return (cp, value.astype(np.uint8).tobytes(), width, height, left, top, advance)


def empty_glyphs(stack: str, start: int) -> bytes:
    """A valid glyph PBF with no glyphs (ranges we do not build)."""
    return encode_glyphs(stack, start, [])
