"""API keys for services: `sjk_<id>_<secret>`, stored as the sha256 of the secret with roles and an optional expiry.

The id is public (it names the key in `./run keys list` and is the look-up key); the secret is 256 random bits,
shown once by `./run keys create` and never stored. The web server reads keys with the read role and caches each
look-up for at most `CACHE_S`; a change to meta.api_keys (revocation) notifies every server, which drops its entry
at once (LISTEN sejong_api_keys).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import select
import threading
import time
from dataclasses import dataclass
from datetime import datetime

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from core import pgconnect, schema
from core.db import Database

LOGGER = logging.getLogger(__name__)

PREFIX = "sjk_"
CHANNEL = "sejong_api_keys"
CACHE_S = 1.0  # the longest a server trusts a look-up without a notification from the database
_KEY = re.compile(r"sjk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
ROLE = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_TABLE = sql.Identifier(schema.SCHEMA, "api_keys")
_COLUMNS = sql.SQL("key_id, name, roles, created_at, expires_at, revoked_at")


@dataclass(frozen=True)
class ApiKey:
    """A stored key (never its secret)."""

    key_id: str
    name: str
    roles: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def usable(self, now: float | None = None) -> bool:
        """Not revoked and not expired."""
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at.timestamp() > (time.time() if now is None else now)


def digest(secret: str) -> str:
    """Hex sha256 of a key's secret (a 256-bit random secret needs no slow hash)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def parse(raw: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None."""
    match = _KEY.fullmatch(raw)
    return (match.group(1), match.group(2)) if match else None


def _row(r: tuple[object, ...]) -> ApiKey:
    return ApiKey(str(r[0]), str(r[1]), tuple(r[2] or ()), r[3], r[4], r[5])  # type: ignore[arg-type]


def check_roles(roles: list[str]) -> list[str]:
    """Role names, each lower-case letters, digits, _ and -; ValueError otherwise."""
    bad = [r for r in roles if not ROLE.fullmatch(r)]
    if bad:
        raise ValueError(f"role names {bad} are not lower-case letters, digits, _ and -")
    return sorted(set(roles))


def create_key(dsn: str, name: str, roles: list[str], expires_at: datetime | None = None) -> tuple[ApiKey, str]:
    """Store a new key (write role) and return it with the full key string, which is shown only this once."""
    if not name.strip():
        raise ValueError("a key needs a name (who or what uses it)")
    roles = check_roles(roles)
    schema.migrate(dsn)
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    conn = pgconnect.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql.SQL("INSERT INTO {} (key_id, name, secret_sha256, roles, expires_at) "
                                "VALUES (%s, %s, %s, %s, %s) RETURNING {}").format(_TABLE, _COLUMNS),
                        (key_id, name.strip(), digest(secret), roles, expires_at))
            row = cur.fetchone()
    finally:
        conn.close()
    assert row is not None
    return _row(row), f"{PREFIX}{key_id}_{secret}"


def list_keys(dsn: str) -> list[ApiKey]:
    """Every stored key, newest first."""
    schema.migrate(dsn)
    conn = pgconnect.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT {} FROM {} ORDER BY created_at DESC, key_id").format(_COLUMNS, _TABLE))
            return [_row(r) for r in cur.fetchall()]
    finally:
        conn.close()


def revoke_key(dsn: str, key_id: str) -> bool:
    """Revoke a key by id (or full key); False when no such unrevoked key exists. Servers refuse it at once."""
    parsed = parse(key_id)
    key_id = parsed[0] if parsed else key_id.removeprefix(PREFIX)
    schema.migrate(dsn)
    conn = pgconnect.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql.SQL("UPDATE {} SET revoked_at = now() WHERE key_id = %s AND revoked_at IS NULL")
                        .format(_TABLE), (key_id,))
            return cur.rowcount == 1
    finally:
        conn.close()


class KeyStore:
    """The server's look-up of presented keys: cached per key id for at most CACHE_S, dropped on notification."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[str, tuple[float, ApiKey | None, str]] = {}  # key id -> (fetched, key, secret digest)
        self._listener: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def lookup(self, raw: str) -> ApiKey | None:
        """The stored key a presented string is (revoked and expired keys too: the caller says why), else None."""
        parsed = parse(raw)
        if parsed is None:
            return None
        key_id, secret = parsed
        now = time.monotonic()
        hit = self._cache.get(key_id)
        if hit is None or now - hit[0] > CACHE_S:
            self._listen()
            hit = (now, *self._fetch(key_id))
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key_id] = hit
        _, key, stored = hit
        if key is None or not hmac.compare_digest(stored, digest(secret)):
            return None
        return key

    def forget(self, key_id: str | None = None) -> None:
        """Drop one cached key (or all)."""
        if key_id is None:
            self._cache.clear()
        else:
            self._cache.pop(key_id, None)

    def _fetch(self, key_id: str) -> tuple[ApiKey | None, str]:
        with self.db.connection() as conn, conn.cursor() as cur:
            try:
                cur.execute(sql.SQL("SELECT {}, secret_sha256 FROM {} WHERE key_id = %s").format(_COLUMNS, _TABLE),
                            (key_id,))
            except psycopg2.errors.UndefinedTable:  # a database not yet migrated to 0004 has no keys
                LOGGER.warning("meta.api_keys does not exist: run ./run keys list (it migrates) to create it")
                return None, ""
            row = cur.fetchone()
        return (_row(row), str(row[6])) if row else (None, "")

    def _listen(self) -> None:
        """Start the notification listener (once, on the first key presented)."""
        if self._listener is not None and self._listener.is_alive():
            return
        with self._lock:
            if self._listener is None or not self._listener.is_alive():
                self._listener = threading.Thread(target=self._run, name="api-key-listener", daemon=True)
                self._listener.start()

    def stop(self) -> None:
        """Stop the listener at its next wake-up."""
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            conn = None
            try:
                conn = pgconnect.connect(self.db.dsn, application_name="sejong-mapserver-api-keys")
                conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
                self.forget()  # anything cached before listening may be stale
                while not self._stop.is_set():
                    if select.select([conn], [], [], 30.0) == ([], [], []):
                        conn.poll()  # keep-alive; also surfaces a dead connection
                        continue
                    conn.poll()
                    for note in conn.notifies:
                        self.forget(note.payload)
                    conn.notifies.clear()
            except Exception as err:  # the CACHE_S bound still holds while reconnecting
                LOGGER.warning("API key listener: %s; retrying", err)
                self._stop.wait(2.0)
            finally:
                if conn is not None and not conn.closed:
                    conn.close()
