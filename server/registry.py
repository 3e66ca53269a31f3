"""The resolved layers of a running server, refreshed when the loaders bump a data version."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

from core.config import AppConfig, LayerConfig
from core.db import Database
from core.errors import NotFound, Unauthorized
from layers.model import Layer, resolve

LOGGER = logging.getLogger(__name__)
REALM = "sejong-mapserver"  # the realm of server.auth's challenges (auth imports services, which imports this module)


class Caller(Protocol):
    """Who is asking, as far as layer access goes (server.auth.Identity is one)."""

    @property
    def roles(self) -> frozenset[str]:
        """The caller's roles."""

    @property
    def anonymous(self) -> bool:
        """True when no credentials were presented."""

    @property
    def owner(self) -> str | None:
        """What owns the caller's jobs (meta.jobs.owner), None when anonymous."""

    @property
    def admin(self) -> bool:
        """True when the caller holds the admin role (every result layer)."""


class AuthenticationRequired(Unauthorized):
    """401: an anonymous caller asked for a layer that needs a role (WWW-Authenticate: Bearer, no error)."""

    def __init__(self, description: str) -> None:
        super().__init__(description, headers={"WWW-Authenticate": f'Bearer realm="{REALM}"'})


def readable(layer: Layer, caller: Caller | None, owner: str | None = None) -> bool:
    """Whether the caller may read the layer (None: an anonymous caller). The one access decision.

    `owner`: the layer is a result layer of that caller's job (access: [], see result_layers): readable by its
    owner and admin only."""
    if owner is not None:
        return caller is not None and not caller.anonymous and (caller.admin or caller.owner == owner)
    return layer.config.public or (caller is not None and layer.config.readable_by(caller.roles))


def access_key(layers: list[Layer], caller: Caller | None) -> str:
    """What a cached answer over these layers depends on beyond the layers: '' when all are public, else the
    caller's sorted roles (so an answer with protected data is never reused for a caller with other roles)."""
    if all(layer.config.public for layer in layers):
        return ""
    return "roles=" + ",".join(sorted(caller.roles if caller is not None else ()))


OWNER_UNKNOWN = ""  # a result layer whose job is gone: its owner cannot be told, so only admin reads it


def result_layers(conn: Any) -> dict[str, tuple[LayerConfig, str | None]]:
    """Temporary collections written by processes (meta.result_layers), until they expire, with their owner.

    The owner is the job's (meta.jobs.owner): an owned job's results are `access: []` and read by that owner and
    admin only (see `readable`); an anonymous job's are public, as the job itself is to whoever holds its id. A
    result whose job is gone (or unknown) gets OWNER_UNKNOWN: admin only, never public.
    """
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('meta.result_layers') IS NOT NULL AND to_regclass('meta.jobs') IS NOT NULL")
        if not cur.fetchone()[0]:
            return {}
        cur.execute("SELECT r.layer_id, r.table_name, r.title_ko, r.title_en, j.job_id IS NOT NULL, j.owner "
                    "FROM meta.result_layers r LEFT JOIN meta.jobs j ON j.job_id = r.job_id "
                    "WHERE r.expires_at IS NULL OR r.expires_at > now() ORDER BY r.created_at")
        rows = cur.fetchall()
    out = {}
    for layer_id, table, title_ko, title_en, has_job, job_owner in rows:
        owner = job_owner if has_job else OWNER_UNKNOWN
        try:
            cfg = LayerConfig.model_validate({
                "title": {"ko": title_ko or layer_id, "en": title_en or layer_id},
                "description": {"ko": f"분석 결과 ({layer_id})", "en": f"analysis result ({layer_id})"},
                "table": table, "keywords": ["result"], "tiles": {"minzoom": 5, "maxzoom": 18},
                "access": "public" if owner is None else [],
            })
        except ValueError:
            LOGGER.warning("result layer %s has an unusable table name %r", layer_id, table)
            continue
        out[layer_id] = (cfg, owner)
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
        self._owners: dict[str, str] = {}  # result layers of owned jobs: layer id -> owner (see result_layers)
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
        layers, owners = self._read_catalog()
        with self._state:
            self._layers, self._owners = layers, owners
            self._last_read = seq
            self._loaded_generation = generation
            self._stamp = time.monotonic()

    def _read_catalog(self) -> tuple[dict[str, Layer], dict[str, str]]:
        """One read of the catalog: the declared layers, then the result layers they do not shadow (and the owners
        of those that belong to a signed-in caller's job)."""
        layers: dict[str, Layer] = {}
        with self.db.connection() as conn:
            declared = dict(self.config.layers)
            results = {k: v for k, v in result_layers(conn).items() if k not in declared}
            declared.update({k: cfg for k, (cfg, _) in results.items()})
            for layer_id, cfg in declared.items():
                layer = resolve(conn, layer_id, cfg)
                if layer is not None:
                    layers[layer_id] = layer
        return layers, {k: owner for k, (_, owner) in results.items() if owner is not None}

    def mark_stale(self) -> None:
        """Re-read the catalog on the next request (the loaders swapped data in)."""
        with self._state:
            self._generation += 1

    def _stale(self) -> bool:
        with self._state:
            return self._loaded_generation != self._generation or time.monotonic() - self._stamp > self.ttl

    def _fresh(self) -> tuple[dict[str, Layer], dict[str, str]]:
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
        with self._state:
            return self._layers, self._owners

    def public(self) -> list[Layer]:
        """Layers open to everyone, in config order."""
        return [layer for layer in self._fresh()[0].values() if layer.config.public]

    def visible(self, caller: Caller | None) -> list[Layer]:
        """Layers the caller may read (None: anonymous), in config order."""
        layers, owners = self._fresh()
        return [layer for layer in layers.values() if readable(layer, caller, owners.get(layer.id))]

    def get(self, layer_id: str, caller: Caller | None = None) -> Layer:
        """A layer the caller may read (None: anonymous); a protected one is 401 to anonymous callers, else as
        absent as an unknown id (404)."""
        layers, owners = self._fresh()
        layer, owner = layers.get(layer_id), owners.get(layer_id)
        if layer is not None and not readable(layer, caller, owner):
            # access: [] is nobody's (404), unless it is a result layer: its owner may sign in
            if (caller is None or caller.anonymous) and (layer.config.access or owner is not None):
                raise AuthenticationRequired(f"collection {layer_id!r} needs a signed-in caller with a role that "
                                             "may read it; send a bearer token or an API key")
            layer = None
        if layer is None:
            raise NotFound(f"collection {layer_id!r} not found; see /collections")
        return layer
