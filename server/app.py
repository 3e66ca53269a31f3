"""Flask application factory: one config.yml, one set of layers, every API."""

from __future__ import annotations

import logging
import os

from flask import Flask, Response

from server.config import AppConfig, load_config
from server.db import Database
from server.errors import register_error_handlers
from server.registry import LayerRegistry
from server.versions import VersionWatcher

LOGGER = logging.getLogger(__name__)


def database_url(cfg: AppConfig) -> str:
    """DATABASE_URL, config database.url, or the embedded cluster's URL."""
    url = os.environ.get("DATABASE_URL") or cfg.database.url
    if url:
        return url
    return f"postgresql://postgres@127.0.0.1:{cfg.database.embedded_port}/sejong"


def create_app(cfg: AppConfig | None = None, dsn: str | None = None) -> Flask:
    """Build the WSGI application."""
    from server import common, features, maps, styles_api, tiles

    cfg = cfg or load_config()
    app = Flask(__name__)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.url_map.strict_slashes = False
    db = Database(dsn or database_url(cfg), cfg.database.pool_size, cfg.server.statement_timeout_ms)
    registry = LayerRegistry(cfg, db)
    versions = VersionWatcher(db.dsn, on_change=registry.mark_stale)
    versions.start()
    app.config.update(SEJONG=cfg, DB=db, REGISTRY=registry, VERSIONS=versions)
    register_error_handlers(app)
    app.register_blueprint(common.BP)
    app.register_blueprint(features.BP)
    app.register_blueprint(tiles.BP)
    app.register_blueprint(styles_api.BP)
    app.register_blueprint(maps.BP)
    from processes.api import register as register_processes

    register_processes(app)

    @app.after_request
    def _headers(resp: Response) -> Response:
        if cfg.server.cors:
            resp.headers.setdefault("Access-Control-Allow-Origin", cfg.server.cors)
            resp.headers.setdefault("Access-Control-Expose-Headers", "Content-Crs, Link, Location, ETag")
        resp.headers.setdefault("Vary", "Accept, Accept-Language")
        return resp

    try:
        registry.refresh()
    except Exception:
        LOGGER.exception("could not read the layer catalog at startup; will retry on first request")
    return app
