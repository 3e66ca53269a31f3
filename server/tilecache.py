"""Tile cache: an in-process LRU bounded in bytes, plus an optional on-disk folder."""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path


class TileCache:
    """Thread-safe byte-bounded LRU; keys already include the layers' data versions, so entries never go stale."""

    def __init__(self, max_bytes: int, directory: str | None = None) -> None:
        self.max_bytes = max_bytes
        self.directory = Path(directory) if directory else None
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def _path(self, key: str) -> Path:
        assert self.directory is not None
        digest = hashlib.sha1(key.encode()).hexdigest()
        return self.directory / digest[:2] / f"{digest}.mvt"

    def get(self, key: str) -> bytes | None:
        """Cached bytes or None."""
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
                return data
        if self.directory is not None:
            path = self._path(key)
            if path.exists():
                data = path.read_bytes()
                self._remember(key, data)
                return data
        return None

    def put(self, key: str, data: bytes) -> None:
        """Store bytes (memory, then disk when configured)."""
        self._remember(key, data)
        if self.directory is not None:
            path = self._path(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)

    def _remember(self, key: str, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= len(old)
            self._items[key] = data
            self._size += len(data)
            while self._size > self.max_bytes and self._items:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)
