"""Flask application factory: one config.yml, one set of layers, every API."""

from __future__ import annotations

import logging

from flask import Flask, Response
from werkzeug.middleware.proxy_fix import ProxyFix

from core.config import AppConfig, database_url, load_config
from server import auth, hygiene, limits, metrics, ratelimit, security_headers, services
from server.errors import register_error_handlers
from server.readpath import read_path
from server.registry import LayerRegistry
from server.tilecache import TileCache

LOGGER = logging.getLogger(__name__)


def create_app(cfg: AppConfig | None = None, dsn: str | None = None) -> Flask:
    """Build the WSGI application."""
    from server import common, coverages, editing, features, maps, processes_api, quality, styles_api, tiles

    cfg = cfg or load_config()
    app = Flask(__name__)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.url_map.strict_slashes = False
    reads = read_path(cfg, dsn)  # one database, or a replica falling back to the primary (server.readpath)
    db, health_db, versions = reads.db, reads.health_db, reads.versions
    registry = LayerRegistry(cfg, db)
    versions.on_change = registry.mark_stale
    versions.start()
    cache = TileCache(cfg.tiles.memory_mb * 1024 * 1024, cfg.tiles.directory, cfg.tiles.disk_mb * 1024 * 1024)
    services.install(app, services.Services(config=cfg, db=db, write_url=database_url(cfg, dsn), health_db=health_db,
                                            registry=registry, versions=versions, tile_cache=cache))
    app.config["MAX_CONTENT_LENGTH"] = cfg.server.max_body_kb * 1024
    if cfg.server.trusted_proxies:  # behind the balancer: the client address is the one it forwards
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=cfg.server.trusted_proxies)  # type: ignore[method-assign]
    register_error_handlers(app)
    hygiene.install(app)
    auth.install(app)  # server.auth.current(): the caller's identity, in every view
    ratelimit.install(app, cfg.server)
    security_headers.install(app, cfg)
    limits.install(app, limits.Limiter(cfg.server.threads - 1, cfg.server.per_client_concurrency))
    app.register_blueprint(common.BP)
    app.register_blueprint(features.BP)
    app.register_blueprint(editing.BP)  # Features Part 4 on layers with `editable:` roles
    app.register_blueprint(quality.BP)
    app.register_blueprint(tiles.BP)
    app.register_blueprint(styles_api.BP)
    app.register_blueprint(maps.BP)
    processes_api.register(app)
    metrics.install(app)  # /metrics, request ids (X-Request-Id, application_name), JSON access log
    coverages.install(app)  # air-quality surfaces: OGC API - Coverages and PNG map tiles

    @app.context_processor
    def _template_globals() -> dict[str, str]:
        return {"base_url": cfg.server.url}

    @app.after_request
    def _headers(resp: Response) -> Response:
        if cfg.server.cors:
            resp.headers.setdefault("Access-Control-Allow-Origin", cfg.server.cors)
            resp.headers.setdefault("Access-Control-Expose-Headers", "Content-Crs, Link, Location, ETag")
        resp.headers.setdefault("Vary", "Accept, Accept-Language, Authorization, X-API-Key")
        return resp

    try:
        registry.refresh()
    except Exception:
        LOGGER.exception("could not read the layer catalog at startup; will retry on first request")
    return app


def close_app(app: Flask) -> None:
    """Stop an app's background work (job runtime, data-version and API-key listeners) and close its pools."""
    svc = services.of(app)
    if svc.runtime is not None:
        svc.runtime.shutdown()
    if svc.versions is not None:
        svc.versions.stop()
    auth.of(app).keys.stop()
    if svc.db.replica is not None:
        svc.db.replica.stop()
    svc.db.close()
    svc.health_db.close()
