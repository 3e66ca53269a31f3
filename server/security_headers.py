"""Browser security headers: a Content-Security-Policy without inline script on HTML pages, nosniff, no framing,
a strict Referrer-Policy, and CORS preflights that allow the credential headers (never cookies with `*`)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from urllib.parse import urlsplit

from flask import Flask, Response, request

from core.config import AppConfig

# The one inline <script> the pages may carry: the import map naming MapLibre under /assets (import maps count as
# inline script for CSP, so it is allowed by its hash, and only when it is exactly that map).
_IMPORT_MAP = re.compile(rb'<script type="importmap">(.*?)</script>', re.S)
ALLOWED_HEADERS = "Authorization, X-API-Key, Content-Type, Content-Crs, Prefer, If-Match, If-None-Match"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def policy(cfg: AppConfig, script_hashes: tuple[str, ...] = ()) -> str:
    """The Content-Security-Policy of an HTML page: scripts and styles sheets from this server only."""
    own = f"'self' {_origin(cfg.server.url)}"
    scripts = " ".join([own, *(f"'{h}'" for h in script_hashes)])
    # the /map sign-in exchanges its code for tokens at the provider (fetch), so the issuer is reachable
    idp = f" {_origin(cfg.auth.issuer)}" if cfg.auth.enabled and cfg.auth.issuer else ""
    return "; ".join([
        "default-src 'none'",
        f"script-src {scripts}",
        f"style-src {own} 'unsafe-inline'",  # base.html has an inline <style>; styles run no code
        f"img-src {own} data: blob:",
        f"font-src {own}",
        f"connect-src {own}{idp}",  # features, tiles, styles, glyphs; the provider's token endpoint
        f"worker-src {own} blob:",  # MapLibre's workers
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "object-src 'none'",
    ])


def install(app: Flask, cfg: AppConfig) -> None:
    """Add the headers to every answer (the CSP to HTML ones)."""
    expected_map = {"imports": {"maplibre-gl": cfg.server.url + "/assets/maplibre/maplibre-gl.mjs"}}
    plain = policy(cfg)
    with_map: dict[bytes, str] = {}

    def _page_policy(resp: Response) -> str:
        if resp.is_streamed:
            return plain
        match = _IMPORT_MAP.search(resp.get_data())
        if match is None:
            return plain
        content = match.group(1)
        found = with_map.get(content)
        if found is None:
            try:
                ok = json.loads(content) == expected_map
            except ValueError:
                ok = False
            digest = "sha256-" + base64.b64encode(hashlib.sha256(content).digest()).decode()
            found = with_map[content] = policy(cfg, (digest,)) if ok else plain
        return found

    @app.after_request
    def _security_headers(resp: Response) -> Response:
        headers = resp.headers
        headers["X-Content-Type-Options"] = "nosniff"
        headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        if resp.mimetype == "text/html":
            headers["Content-Security-Policy"] = _page_policy(resp)
            headers["X-Frame-Options"] = "DENY"  # frame-ancestors for browsers without CSP level 2
        if cfg.server.cors:
            if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
                headers.setdefault("Access-Control-Allow-Headers", ALLOWED_HEADERS)
                headers.setdefault("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
            if cfg.server.cors.strip() == "*":
                # `*` is for anonymous reads and bearer headers only: browsers refuse `*` with credentials (cookies),
                # and we never send Access-Control-Allow-Credentials together with it
                headers.pop("Access-Control-Allow-Credentials", None)
        return resp
