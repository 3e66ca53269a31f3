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
    """Layer declarations resolved against the catalog; metadata re-read at most every `ttl` seconds.

    Catalog reads are serialized, so an older read never lands after a newer one. `mark_stale` bumps a generation;
    a read that began before the bump installs its layers but leaves the registry stale, so the next request reads
    again. A caller that waited while another thread ran a read begun after its call uses that read instead.
    """

    def __init__(self, config: AppConfig, db: Database, ttl: float = 30.0) -> None:
        self.config = config
        self.db = db
        self.ttl = ttl
        self._layers: dict[str, Layer] = {}
        self._stamp = 0.0
        self._lock = threading.Lock()  # one catalog read at a time
        self._state = threading.Lock()  # guards the counters below
        self._generation = 0  # bumped by mark_stale (the loaders swapped data in)
        self._loaded_generation = -1  # the generation the installed layers were read at
        self._reads_begun = 0
        self._last_read = 0  # sequence number of the read whose layers are installed

    def refresh(self) -> None:
        """Resolve every declared layer, and the unexpired result layers of processes, now."""
        called_after = self._ticket()
        with self._lock:
            if self._last_read > called_after:  # a read begun after this call finished while we waited
                return
            self._read_locked()

    def _ticket(self) -> int:
        """How many catalog reads had begun when a refresh was asked for."""
        with self._state:
            return self._reads_begun

    def _read_locked(self) -> None:
        with self._state:
            self._reads_begun += 1
            seq, generation = self._reads_begun, self._generation
        layers = self._read_catalog()
        with self._state:
            self._layers = layers
            self._last_read = seq
            self._loaded_generation = generation
            self._stamp = time.monotonic()

    def _read_catalog(self) -> dict[str, Layer]:
        """One read of the catalog: the declared layers, then the result layers they do not shadow."""
        layers: dict[str, Layer] = {}
        with self.db.connection() as conn:
            declared = dict(self.config.layers)
            declared.update({k: v for k, v in result_layers(conn).items() if k not in declared})
            for layer_id, cfg in declared.items():
                layer = resolve(conn, layer_id, cfg)
                if layer is not None:
                    layers[layer_id] = layer
        return layers

    def mark_stale(self) -> None:
        """Re-read the catalog on the next request (the loaders swapped data in)."""
        with self._state:
            self._generation += 1

    def _stale(self) -> bool:
        with self._state:
            return self._loaded_generation != self._generation or time.monotonic() - self._stamp > self.ttl

    def _fresh(self) -> dict[str, Layer]:
        if self._stale():
            with self._lock:
                if self._stale():
                    with self._state:
                        generation = self._generation
                    try:
                        self._read_locked()
                    except Exception:  # keep serving the last good metadata; try again after ttl
                        LOGGER.exception("layer refresh failed")
                        with self._state:
                            self._loaded_generation = generation
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
