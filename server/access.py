"""Per-layer access in the views: the layers the caller may read, and answers with protected data kept private.

The decision itself is `server.registry.readable` (config.yml `access:`); here it is applied to the caller of the
request (`auth.current()`). A view that lists or fetches layers through `layers()` / `layer()` gets: protected
layers left out of lists, 401 for an anonymous caller asking for one, 404 for a caller without its role, and
`Cache-Control: private` (plus `Vary` on the credentials) on any answer that carries a protected layer.
"""

from __future__ import annotations

from flask import Response, g

from layers.model import Layer
from server import auth, services
from server.registry import access_key

_FLAG = "sejong_protected"


def layers() -> list[Layer]:
    """The layers the caller may read, in config order."""
    found: list[Layer] = services.current().registry.visible(auth.current())
    mark(found)
    return found


def layer(layer_id: str) -> Layer:
    """A layer the caller may read: 401 (anonymous) or 404 (without its role) for a protected one."""
    found: Layer = services.current().registry.get(layer_id, auth.current())
    mark([found])
    return found


def key(layers_: list[Layer]) -> str:
    """The caller's part of a cache key over these layers ('' when all are public)."""
    return access_key(layers_, auth.current())


def mark(layers_: list[Layer]) -> None:
    """Note that this answer carries these layers (private when any is protected)."""
    if any(not lyr.config.public for lyr in layers_):
        g.setdefault(_FLAG, True)


def private(resp: Response) -> Response:
    """after_request: an answer carrying a protected layer is never stored by a shared cache."""
    if g.get(_FLAG):
        cache = resp.headers.get("Cache-Control", "")
        if "public" in cache:
            cache = cache.replace("public", "private")
        elif "private" not in cache:
            cache = f"private, {cache}" if cache else "private"
        resp.headers["Cache-Control"] = cache
        resp.vary.update(("Authorization", "X-API-Key"))
    return resp
