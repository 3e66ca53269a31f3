"""What every view may use, typed: the configuration, the read pool, the layer registry, the caches, the job runtime."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask, current_app

from core.config import REPO_ROOT, AppConfig
from core.db import Database
from server.registry import LayerRegistry
from server.tilecache import TileCache
from server.versions import VersionWatcher

if TYPE_CHECKING:
    from processes.runtime import Runtime

EXTENSION = "sejong"


@dataclass
class Services:
    """The app's shared objects (one set per worker process)."""

    config: AppConfig
    db: Database  # read-only role
    write_url: str  # write role: jobs and their result layers
    health_db: Database  # one connection of its own, so /health answers while the request pool is busy
    registry: LayerRegistry
    versions: VersionWatcher | None
    tile_cache: TileCache
    assets_root: Path = REPO_ROOT
    runtime: Runtime | None = field(default=None)


def install(app: Flask, services: Services) -> None:
    """Attach the services to an app."""
    app.extensions[EXTENSION] = services


def of(app: Flask) -> Services:
    """The services of an app."""
    found: Services = app.extensions[EXTENSION]
    return found


def current() -> Services:
    """The services of the app handling this request."""
    return of(current_app)
