"""Tile cache: an in-process LRU bounded in bytes, plus an optional on-disk folder bounded in bytes too.

Not diskcache/cachetools: the memory side is a dozen lines of OrderedDict, and the folder is shared by the gunicorn
workers as plain files (one per tile, atomically renamed in), which a size-bounded sweep by mtime is enough for.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path

from prometheus_client import Counter

LOGGER = logging.getLogger(__name__)
DISK_LOW_WATER = 0.9  # an eviction sweep deletes the oldest tiles until the folder is at 90% of its bound
WRITES_REMEMBERED = 65536  # recent writes whose order breaks mtime ties (coarse filesystem clocks)
LOOKUPS = Counter("sejong_tile_cache_lookups", "Tile cache lookups by tier (memory, disk) and result",
                  ["tier", "result"])


class TileCache:
    """Thread-safe byte-bounded LRU; keys already include the layers' data versions, so entries never go stale.

    Tiles of older data versions are never asked for again, so the folder is swept oldest-written first: its size
    is scanned once at start, counted up on every write, and when the count passes `disk_max_bytes` one thread
    rescans the folder (catching the other workers' writes) and deletes the oldest files down to the low-water
    mark. Workers sharing a folder each count only their own writes between sweeps, so with N of them the folder
    may briefly pass the bound by up to (N - 1) x 10% of it.
    """

    def __init__(self, max_bytes: int, directory: str | None = None, disk_max_bytes: int = 1024 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self.directory = Path(directory) if directory else None
        self.disk_max_bytes = disk_max_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self._disk_lock = threading.Lock()  # guards _disk_size
        self._sweeping = threading.Lock()  # one sweep at a time; writers never wait for it
        self._disk_size = 0
        self._writes = 0
        self._written: dict[Path, int] = {}  # this process's writes since the last sweep: orders same-mtime files
        if self.directory is not None:
            self._disk_size = sum(size for _, size, _ in self._scan())

    @property
    def disk_bytes(self) -> int:
        """Bytes in the folder as this process counts them (exact right after a sweep or at start)."""
        with self._disk_lock:
            return self._disk_size

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
        if data is not None:
            LOOKUPS.labels("memory", "hit").inc()
            return data
        LOOKUPS.labels("memory", "miss").inc()
        if self.directory is not None:
            try:
                data = self._path(key).read_bytes()
            except FileNotFoundError:  # never written, or swept (possibly by another worker) meanwhile
                LOOKUPS.labels("disk", "miss").inc()
                return None
            LOOKUPS.labels("disk", "hit").inc()
            self._remember(key, data)
            return data
        return None

    def put(self, key: str, data: bytes) -> None:
        """Store bytes (memory, then disk when configured)."""
        self._remember(key, data)
        if self.directory is None or len(data) > self.disk_max_bytes * DISK_LOW_WATER:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        with self._disk_lock:
            self._disk_size += len(data)
            self._writes += 1
            self._written.pop(path, None)
            self._written[path] = self._writes
            if len(self._written) > WRITES_REMEMBERED:  # only the newest matter (ties at the young end)
                del self._written[next(iter(self._written))]
            over = self._disk_size > self.disk_max_bytes
        if over:
            self._sweep()

    def _scan(self) -> list[tuple[int, int, Path]]:
        """(mtime_ns, size, path) of every cached tile file in the folder."""
        assert self.directory is not None
        out: list[tuple[int, int, Path]] = []
        if not self.directory.is_dir():
            return out
        for sub in os.scandir(self.directory):
            if not sub.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(sub.path):
                if entry.name.endswith(".mvt"):
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    out.append((st.st_mtime_ns, st.st_size, Path(entry.path)))
        return out

    def _sweep(self) -> None:
        """Delete the oldest-written tiles until the folder is at the low-water mark."""
        if not self._sweeping.acquire(blocking=False):
            return  # another thread is sweeping; its count takes in this write
        try:
            with self._disk_lock:
                counted_before, written = self._disk_size, dict(self._written)
            files = self._scan()
            total = sum(size for _, size, _ in files)
            target = int(self.disk_max_bytes * DISK_LOW_WATER)
            files.sort(key=lambda f: (f[0], written.get(f[2], 0)))  # mtimes can tie on coarse clocks
            removed = 0
            for _, size, path in files:
                if total <= target:
                    break
                path.unlink(missing_ok=True)  # another worker's sweep may have got it
                total -= size
                removed += 1
            with self._disk_lock:  # plus what this process wrote while the scan ran (counted twice at worst)
                self._disk_size = total + self._disk_size - counted_before
                last = max(written.values(), default=0)
                self._written = {p: n for p, n in self._written.items() if n > last}
            LOGGER.info("tile cache: swept %d files, folder now %d bytes", removed, total)
        finally:
            self._sweeping.release()

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
