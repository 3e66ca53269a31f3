"""The disk tile cache stays under its bound; layer registry refreshes are serialized and never lose a change."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from core.config import AppConfig, LayerConfig, load_config
from core.db import Database
from layers.model import Layer
from server.registry import LayerRegistry
from server.tilecache import DISK_LOW_WATER, TileCache

TABLE = "registry_race_test"


def folder_bytes(folder: Path) -> int:
    """Bytes of the cached tiles on disk, measured independently of the cache's own count."""
    return sum(p.stat().st_size for p in folder.rglob("*.mvt"))


def tile(i: int, size: int = 2000) -> bytes:
    return (f"tile {i} ".encode() * size)[:size]


# ---- disk tile cache --------------------------------------------------------------------------------------------


def test_disk_folder_stays_under_bound_and_keeps_the_newest(tmp_path: Path) -> None:
    bound = 50_000
    cache = TileCache(0, str(tmp_path), disk_max_bytes=bound)  # no memory side: every get reads the folder
    for i in range(120):  # 240 kB written through a 50 kB folder
        cache.put(f"WebMercatorQuad|12/{i}/0|v1", tile(i))
        assert folder_bytes(tmp_path) <= bound, i
        assert cache.disk_bytes == folder_bytes(tmp_path)
    assert folder_bytes(tmp_path) >= bound * DISK_LOW_WATER - 2000  # swept in batches, not emptied
    reread = TileCache(0, str(tmp_path), disk_max_bytes=bound)  # a restarted worker: scans the folder once
    assert reread.disk_bytes == folder_bytes(tmp_path)
    newest = range(120 - 20, 120)  # 40 kB: within the low-water mark, so never swept
    assert all(reread.get(f"WebMercatorQuad|12/{i}/0|v1") == tile(i) for i in newest)
    assert reread.get("WebMercatorQuad|12/0/0|v1") is None  # the oldest went first


def test_startup_scan_counts_what_is_already_there(tmp_path: Path) -> None:
    big = TileCache(0, str(tmp_path), disk_max_bytes=10_000_000)
    for i in range(50):
        big.put(f"k{i}", tile(i))
    assert folder_bytes(tmp_path) == 100_000
    small = TileCache(0, str(tmp_path), disk_max_bytes=30_000)
    assert small.disk_bytes == 100_000
    small.put("k-new", tile(999))  # the first write over the bound sweeps what an earlier run left
    assert folder_bytes(tmp_path) <= 30_000
    assert small.get("k-new") == tile(999)


def test_concurrent_writers_leave_the_folder_under_bound(tmp_path: Path) -> None:
    bound = 40_000
    cache = TileCache(0, str(tmp_path), disk_max_bytes=bound)
    start = threading.Barrier(8)

    def writer(n: int) -> None:
        start.wait()
        for i in range(40):
            cache.put(f"t{n}/{i}", tile(n * 1000 + i, 1000))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert folder_bytes(tmp_path) <= bound
    assert cache.disk_bytes >= folder_bytes(tmp_path)  # the count never under-reads the folder
    assert not list(tmp_path.rglob("*.tmp"))


# ---- layer registry ---------------------------------------------------------------------------------------------


class CountingRegistry(LayerRegistry):
    """The real registry on the real catalog, counting its catalog reads; it can hold one read (by number)."""

    def __init__(self, config: AppConfig, db: Database) -> None:
        super().__init__(config, db, ttl=3600.0)
        self.reads = 0
        self.hold_read: int | None = None
        self.holding = threading.Event()
        self.release = threading.Event()
        self.asked: threading.Barrier | None = None
        self._count = threading.Lock()

    def _ticket(self) -> int:
        ticket = super()._ticket()
        if self.asked is not None:
            self.asked.wait()  # this refresh is asked for, behind the held read
        return ticket

    def _read_catalog(self) -> dict[str, Layer]:
        with self._count:
            self.reads += 1
            number = self.reads
        layers = super()._read_catalog()
        if number == self.hold_read:
            self.holding.set()
            assert self.release.wait(60), "never released"
        return layers


@pytest.fixture()
def registry(dsn: str) -> Iterator[CountingRegistry]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS public.{TABLE}")
        cur.execute(f"CREATE TABLE public.{TABLE} (id int PRIMARY KEY, geom geometry(Point, 4326))")
        cur.execute(f"INSERT INTO public.{TABLE} VALUES (1, ST_SetSRID(ST_MakePoint(127.289, 36.48), 4326))")
    cfg = load_config()
    names = {"ko": "시험", "en": "test"}
    layer = LayerConfig.model_validate({"title": names, "description": names, "table": f"public.{TABLE}"})
    db = Database(dsn, pool_size=4)
    reg = CountingRegistry(cfg.model_copy(update={"layers": {TABLE: layer}}), db)
    try:
        yield reg
    finally:
        reg.release.set()
        db.close()
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS public.{TABLE}")


def add_column(dsn: str) -> None:
    """The data changes (as a loader swapping a table in would)."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(f"ALTER TABLE public.{TABLE} ADD COLUMN note text")


def columns(reg: LayerRegistry) -> set[str]:
    return {c.name for c in reg.get(TABLE).columns}


def run(target: Any) -> threading.Thread:
    t = threading.Thread(target=target)
    t.start()
    return t


def test_a_read_begun_before_a_change_does_not_land_after_the_newer_one(registry: CountingRegistry, dsn: str) -> None:
    registry.refresh()
    assert registry.reads == 1 and "note" not in columns(registry)
    registry.hold_read = 2
    first = run(registry.refresh)  # read 2 sees the old table, then waits
    assert registry.holding.wait(60)
    add_column(dsn)
    registry.mark_stale()
    registry.asked = threading.Barrier(3, timeout=60)
    second, third = run(registry.refresh), run(registry.refresh)  # both asked after the change
    registry.asked.wait()
    registry.asked = None
    registry.release.set()
    for t in (first, second, third):
        t.join()
    assert "note" in columns(registry)  # the newest state, not read 2's
    assert registry.reads == 3  # read 2, then one read for both later callers; get() needed none


def test_mark_stale_during_a_read_is_not_lost(registry: CountingRegistry, dsn: str) -> None:
    registry.refresh()
    registry.hold_read = 2
    first = run(registry.refresh)
    assert registry.holding.wait(60)
    add_column(dsn)
    registry.mark_stale()  # the version watcher fires while read 2 is under way
    registry.release.set()
    first.join()
    assert "note" in columns(registry)  # the next request re-read the catalog
    assert registry.reads == 3
    assert "note" in columns(registry) and registry.reads == 3  # and then it is fresh (ttl is an hour)


def test_a_direct_refresh_reads_again(registry: CountingRegistry, dsn: str) -> None:
    registry.refresh()
    add_column(dsn)
    registry.refresh()  # nothing else is running: a direct refresh always reads
    assert registry.reads == 2 and "note" in columns(registry)
