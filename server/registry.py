"""The resolved layers of a running server, refreshed when the loaders bump a data version."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from core.config import AppConfig, LayerConfig
from core.db import Database
from core.errors import NotFound
from layers.model import Layer, resolve

LOGGER = logging.getLogger(__name__)


def result_layers(conn: Any) -> dict[str, LayerConfig]:
    """Temporary collections written by processes (meta.result_layers), until they expire."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('meta.result_layers') IS NOT NULL")
        if not cur.fetchone()[0]:
            return {}
        cur.execute("SELECT layer_id, table_name, title_ko, title_en FROM meta.result_layers "
                    "WHERE expires_at IS NULL OR expires_at > now() ORDER BY created_at")
        rows = cur.fetchall()
    out = {}
    for layer_id, table, title_ko, title_en in rows:
        try:
            out[layer_id] = LayerConfig.model_validate({
                "title": {"ko": title_ko or layer_id, "en": title_en or layer_id},
                "description": {"ko": f"분석 결과 ({layer_id})", "en": f"analysis result ({layer_id})"},
                "table": table, "keywords": ["result"], "tiles": {"minzoom": 5, "maxzoom": 18},
            })
        except ValueError:
            LOGGER.warning("result layer %s has an unusable table name %r", layer_id, table)
    return out


class LayerRegistry:
    """Layer declarations resolved against the catalog; metadata re-read at most every `ttl` seconds."""

    def __init__(self, config: AppConfig, db: Database, ttl: float = 30.0) -> None:
        self.config = config
        self.db = db
        self.ttl = ttl
        self._layers: dict[str, Layer] = {}
        self._stamp = 0.0
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Resolve every declared layer, and the unexpired result layers of processes, now."""
        layers: dict[str, Layer] = {}
        with self.db.connection() as conn:
            declared = dict(self.config.layers)
            declared.update({k: v for k, v in result_layers(conn).items() if k not in declared})
            for layer_id, cfg in declared.items():
                layer = resolve(conn, layer_id, cfg)
                if layer is not None:
                    layers[layer_id] = layer
        self._layers = layers
        self._stamp = time.monotonic()

    def mark_stale(self) -> None:
        """Re-read the catalog on the next request (the loaders swapped data in)."""
        self._stamp = 0.0

    def _fresh(self) -> dict[str, Layer]:
        if time.monotonic() - self._stamp > self.ttl:
            with self._lock:
                if time.monotonic() - self._stamp > self.ttl:
                    try:
                        self.refresh()
                    except Exception:  # keep serving the last good metadata
                        LOGGER.exception("layer refresh failed")
                        self._stamp = time.monotonic()
        return self._layers

    def public(self) -> list[Layer]:
        """Layers open to everyone, in config order."""
        return [layer for layer in self._fresh().values() if layer.config.public]

    def get(self, layer_id: str) -> Layer:
        """A public layer by id, or 404."""
        layer = self._fresh().get(layer_id)
        if layer is None or not layer.config.public:
            raise NotFound(f"collection {layer_id!r} not found; see /collections")
        return layer
