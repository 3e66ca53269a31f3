"""The resolved layers of a running server, refreshed when the loaders bump a data version."""

from __future__ import annotations

import logging
import threading
import time

from layers.model import Layer, resolve
from server.config import AppConfig
from server.db import Database
from server.errors import NotFound

LOGGER = logging.getLogger(__name__)


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
        """Resolve every declared layer now."""
        layers: dict[str, Layer] = {}
        with self.db.connection() as conn:
            for layer_id, cfg in self.config.layers.items():
                layer = resolve(conn, layer_id, cfg)
                if layer is not None:
                    layers[layer_id] = layer
        self._layers = layers
        self._stamp = time.monotonic()

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
