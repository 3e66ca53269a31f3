"""MapLibre styles (styles/*.json) and the glyphs they use, all served from our own host (망분리).

Styles are written with the placeholder ``{{BASE}}`` for the public base URL; it is replaced here, so every
source and glyph URL a client follows is absolute and on this server.  Layers of collections that are not
published (e.g. ``land`` before parcels are loaded) are left out of a served style.
"""

from __future__ import annotations

import contextlib
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, render_template, request

from core.config import REPO_ROOT
from core.errors import InvalidParameterValue, NotAcceptable, NotFound
from layers.query import reject_unknown
from layers.sld import SLD_MEDIA, UnsupportedStyle, to_sld
from server import access, assets, services
from server.negotiate import HTML, JSON, href, language, link, self_and_alternates
from server.params_spec import accepted

BP = Blueprint("styles_api", __name__)

STYLE_JSON = "application/vnd.mapbox.style+json"
STYLES_DIR = REPO_ROOT / "styles"
PBF = "application/x-protobuf"
COLLECTION_KEY = "sejong:collection"
_STYLE_ID = re.compile(r"^[A-Za-z0-9_-]+$")
_RANGE = re.compile(r"^(\d+)-(\d+)$")
STYLE_FORMATS = ("json", "mapbox", "html", "sld11")


def _json(doc: Any, media: str = JSON, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(doc, ensure_ascii=False), mimetype=media, headers=headers)


def style_ids() -> list[str]:
    """Ids of the style files in styles/ (default first)."""
    ids = sorted(p.stem for p in STYLES_DIR.glob("*.json"))
    return sorted(ids, key=lambda s: (s != "default", s))


@lru_cache(maxsize=64)
def _raw_style(style_id: str, mtime: float) -> str:
    return (STYLES_DIR / f"{style_id}.json").read_text(encoding="utf-8")


def _published() -> dict[str, Any]:
    """Collections the caller may read that have vector tiles, by id."""
    return {layer.id: layer for layer in access.layers() if layer.tiles_enabled}


def load_style(style_id: str, base: str) -> dict[str, Any]:
    """A style with {{BASE}} replaced and the layers of unpublished collections dropped (404 if unknown)."""
    if not _STYLE_ID.match(style_id) or not (STYLES_DIR / f"{style_id}.json").is_file():
        raise NotFound(f"style {style_id!r} not found; see /styles")
    path = STYLES_DIR / f"{style_id}.json"
    text = _raw_style(style_id, path.stat().st_mtime).replace("{{BASE}}", base)
    doc: dict[str, Any] = json.loads(text)
    published = _published()
    if style_id != "default" and style_id not in published:
        with contextlib.suppress(NotFound):  # a protected collection: 401 for an anonymous caller
            access.layer(style_id)
        raise NotFound(f"style {style_id!r}: collection {style_id!r} is not published (yet)")
    doc["layers"] = [lyr for lyr in doc["layers"]
                     if (lyr.get("metadata") or {}).get(COLLECTION_KEY, style_id) in published
                     or lyr.get("type") == "background"]
    return doc


def _style_title(style_id: str, lang: str) -> str:
    path = STYLES_DIR / f"{style_id}.json"
    doc = json.loads(_raw_style(style_id, path.stat().st_mtime))
    title = (doc.get("metadata") or {}).get("sejong:title") or {}
    return str(title.get(lang) or title.get("ko") or style_id)


def style_links(layer_id: str) -> list[dict[str, Any]]:
    """Links for a collection document: its own style and the combined default style."""
    out: list[dict[str, Any]] = []
    if (STYLES_DIR / f"{layer_id}.json").is_file():
        out.append(link("stylesheet", STYLE_JSON, f"/styles/{layer_id}", f"MapLibre style of {layer_id}"))
        out.append(link("describedby", STYLE_JSON, f"/styles/{layer_id}", f"MapLibre style of {layer_id}"))
        out.append(link("stylesheet", HTML, f"/styles/{layer_id}", f"preview of the style of {layer_id}", f="html"))
        out.append(link("stylesheet", SLD_MEDIA, f"/styles/{layer_id}", f"SLD 1.1 style of {layer_id} (QGIS, ArcGIS)",
                        f="sld11"))
    out.append(link("stylesheet", STYLE_JSON, "/styles/default", "MapLibre style of all layers"))
    return out


@BP.route("/styles")
def styles_list() -> Response:
    """The styles we serve."""
    reject_unknown(request.args, accepted("/styles"))
    lang = language()
    published = _published()
    items = []
    for sid in style_ids():
        if sid != "default" and sid not in published:
            continue
        items.append({
            "id": sid,
            "title": _style_title(sid, lang),
            "links": [
                link("stylesheet", STYLE_JSON, f"/styles/{sid}", "MapLibre style"),
                link("preview", HTML, f"/styles/{sid}", "map preview", f="html"),
                link("stylesheet", SLD_MEDIA, f"/styles/{sid}", "SLD 1.1 / SE 1.1 (QGIS, ArcGIS)", f="sld11"),
            ],
        })
    fmt = HTML if request.args.get("f") == "html" else JSON
    doc = {"styles": items, "links": self_and_alternates("/styles", fmt, [JSON, HTML])}
    if fmt == HTML:
        return Response(render_template("map_styles.html", doc=doc, lang=lang), mimetype=HTML)
    return _json(doc)


@BP.route("/styles/<style_id>")
def style(style_id: str) -> Response:
    """One MapLibre style (JSON), ?f=sld11 for SLD 1.1 / SE 1.1, or ?f=html for a preview map."""
    reject_unknown(request.args, accepted("/styles/{styleId}"))
    fmt = request.args.get("f", "json")
    if fmt not in STYLE_FORMATS:
        raise InvalidParameterValue(f"f={fmt!r}: the style encodings are {', '.join(STYLE_FORMATS)}")
    base = str(services.current().config.server.url)
    doc = load_style(style_id, base)
    if fmt == "sld11":
        return _sld(style_id, doc)
    if fmt == "html":
        return Response(render_template("map_style.html", style_id=style_id, base=base, lang=language(),
                                        title=_style_title(style_id, language()),
                                        style_url=href(f"/styles/{style_id}")), mimetype=HTML)
    return _json(doc, STYLE_JSON, headers={"Cache-Control": "no-cache"})


def _sld(style_id: str, doc: dict[str, Any]) -> Response:
    lang = language()
    titles = {layer.id: layer.config.title.get(lang) for layer in access.layers()}
    try:
        text = to_sld(doc, style_id, titles)
    except UnsupportedStyle as exc:  # a style file we cannot translate is our fault, said plainly
        raise NotAcceptable(f"style {style_id!r} has no SLD encoding: {exc}") from exc
    return Response(text, content_type=f"{SLD_MEDIA}; charset=utf-8", headers={
        "Cache-Control": "no-cache",
        "Content-Disposition": f'inline; filename="{style_id}.sld"'})


@BP.route("/fonts/<fontstack>/<glyph_range>.pbf")
def glyphs(fontstack: str, glyph_range: str) -> Response:
    """Glyph PBFs built at setup; any fontstack name gets our font, ranges we did not build are empty."""
    reject_unknown(request.args, accepted("/fonts/{fontstack}/{glyphRange}.pbf"))
    m = _RANGE.match(glyph_range)
    if not m:
        raise NotFound(f"glyph range {glyph_range!r} is not of the form start-end")
    start, end = int(m.group(1)), int(m.group(2))
    if start % 256 or end != start + 255 or start > 0xFFFF:
        raise NotFound(f"glyph range {glyph_range!r} is not a 256-glyph range")
    path = assets.fonts_dir(_assets_root()) / assets.FONTSTACK / f"{start}-{end}.pbf"
    data = path.read_bytes() if path.is_file() else assets.empty_glyphs(fontstack.split(",")[0], start)
    return Response(data, mimetype=PBF, headers={"Cache-Control": "public, max-age=86400"})


def _assets_root() -> Path:
    return services.current().assets_root
