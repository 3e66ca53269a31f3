"""Content negotiation, language choice and absolute links."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import request
from werkzeug.datastructures import LanguageAccept

from core.errors import InvalidParameterValue
from server import services

JSON = "application/json"
GEOJSON = "application/geo+json"
HTML = "text/html"
OPENAPI_JSON = "application/vnd.oai.openapi+json;version=3.0"
SCHEMA_JSON = "application/schema+json"

LANGUAGES = ("ko", "en")  # the first is the default

_F_VALUES = {"json": JSON, "geojson": GEOJSON, "html": HTML, "jsonschema": SCHEMA_JSON}


def response_format(offered: list[str]) -> str:
    """The media type to answer with: ?f=… first, then Accept, then the first offered."""
    jsonish = [m for m in offered if m != HTML]
    f = request.args.get("f")
    if f is not None:
        if f == "html" and HTML in offered:
            return HTML
        if f in ("json", "geojson", "jsonschema") and jsonish:
            return jsonish[0]
        names = (["json"] if jsonish else []) + (["html"] if HTML in offered else [])
        raise InvalidParameterValue(f"f={f!r} is not offered here; use one of: {', '.join(names)}")
    if not request.headers.get("Accept"):
        return offered[0]
    best = request.accept_mimetypes.best_match([*offered, JSON])
    if best is None:
        return offered[0]
    if best not in offered:
        return jsonish[0] if jsonish else offered[0]
    return best


def language() -> str:
    """ko (default) or en, from ?lang= or Accept-Language."""
    lang = request.args.get("lang")
    if lang:
        return "en" if lang.lower().startswith("en") else "ko"
    return lookup_language(request.accept_languages, LANGUAGES)


def lookup_language(accepted: LanguageAccept, supported: tuple[str, ...]) -> str:
    """RFC 4647 lookup over an RFC 9110 Accept-Language: ranges by q-value (header order among equals), each
    matched by werkzeug (case-insensitive, ko-KR falls back to ko); a wildcard adds nothing before other ranges;
    q=0 excludes a language; nothing matched: the first supported one not excluded (ko)."""
    ranked = sorted((item for item in accepted if item[1] > 0 and item[0] != "*"), key=lambda item: -item[1])
    for value, quality in ranked:
        match = LanguageAccept([(value, quality)]).best_match(supported)
        if match:
            return match
    excluded = {LanguageAccept([(v, 1)]).best_match(supported) for v, q in accepted if q == 0 and v != "*"}
    return next((lang for lang in supported if lang not in excluded), supported[0])


def base_url() -> str:
    """Public base URL of the service (no trailing slash)."""
    return str(services.current().config.server.url)


def href(path: str, **params: Any) -> str:
    """Absolute URL of a path with query parameters (None values dropped)."""
    clean = {k: v for k, v in params.items() if v is not None}
    query = f"?{urlencode(clean)}" if clean else ""
    return f"{base_url()}{path}{query}"


def link(rel: str, type_: str, path: str, title: str | None = None, **params: Any) -> dict[str, Any]:
    """A link object."""
    out: dict[str, Any] = {"rel": rel, "type": type_, "href": href(path, **params)}
    if title:
        out["title"] = title
    return out


def self_and_alternates(path: str, current: str, offered: list[str], **params: Any) -> list[dict[str, Any]]:
    """self link for the current representation, alternate links for the others."""
    names = {JSON: "json", GEOJSON: "json", HTML: "html", SCHEMA_JSON: "json"}
    out = []
    for media in offered:
        rel = "self" if media == current else "alternate"
        out.append(link(rel, media, path, f"this document as {names[media].upper()}", f=names[media], **params))
    return out


def link_header(links: list[dict[str, Any]]) -> str:
    """RFC 8288 Link header value for a document's links."""
    return ", ".join(f'<{lk["href"]}>; rel="{lk["rel"]}"; type="{lk["type"]}"' for lk in links if lk.get("type"))
