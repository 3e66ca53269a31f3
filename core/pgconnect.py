"""psycopg2.connect with per-session settings that also works through PgBouncer.

Settings go as libpq startup `options` (-c name=value: no extra round trip). PgBouncer (1.18, Debian 12) refuses
that startup parameter; for such a server they are applied right after connecting with set_config(..., false),
which lasts for the session: PgBouncer must pool by SESSION (it resets with DISCARD ALL when the client leaves).

Multi-host URLs (`host1:p1,host2:p2`, as `./run cluster` gives its instances) are tried host by host here, each
checked with a query. libpq's own `target_session_attrs` check trusts the server's startup parameters, and a
PgBouncer whose primary is gone still logs clients in with the ones it cached: libpq would stay on it, and every
query would fail, instead of moving on to the promoted node behind the next bouncer.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import psycopg2
import psycopg2.extensions

REFUSED = "unsupported startup parameter: options"
SETTING = re.compile(r"-c\s*([\w.]+)=(\S+)")
_no_options: set[str] = set()  # DSNs whose server refused startup options (a PgBouncer)
_lock = threading.Lock()


def connect(dsn: str, options: str = "", **kwargs: Any) -> psycopg2.extensions.connection:
    """A connection with the `-c name=value` settings of options in force for its whole session; for a multi-host
    URL, to the first host that answers a query and is what `target_session_attrs` asks for."""
    params = psycopg2.extensions.parse_dsn(dsn)
    hosts = _single_hosts(params)
    if not hosts:
        return _connect(dsn, options, **kwargs)
    wanted = params.get("target_session_attrs", "any")
    failures = []
    for label, one in hosts:
        try:
            conn = _connect(one, options, **kwargs)
        except psycopg2.OperationalError as err:
            failures.append(f"{label}: {_first_line(err)}")
            continue
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_is_in_recovery()")
                row = cur.fetchone()
            conn.rollback()
        except psycopg2.Error as err:
            conn.close()
            failures.append(f"{label}: {_first_line(err)}")
            continue
        standby = bool(row and row[0])
        if (wanted in ("read-write", "primary") and standby) or (wanted in ("read-only", "standby") and not standby):
            conn.close()
            failures.append(f"{label}: {'a standby' if standby else 'a primary'}, not {wanted}")
            continue
        return conn
    raise psycopg2.OperationalError(f"no host of the URL is usable ({wanted}): " + "; ".join(failures))


def _single_hosts(params: dict[str, str]) -> list[tuple[str, str]]:
    """(host:port, a DSN of that host alone) for each host of a multi-host DSN's parameters; [] for one host."""
    hosts = params.get("host", "").split(",")
    if len(hosts) < 2:
        return []
    ports = params.get("port", "").split(",")
    if len(ports) == 1:
        ports *= len(hosts)
    return [(f"{h}:{p}", psycopg2.extensions.make_dsn(**{**params, "host": h, **({"port": p} if p else {})}))
            for h, p in zip(hosts, ports, strict=True)]


def _first_line(err: Exception) -> str:
    """The first line of a driver error (never the DSN: libpq does not echo passwords)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _connect(dsn: str, options: str = "", **kwargs: Any) -> psycopg2.extensions.connection:
    """One host: settings as startup options, or after connecting where a PgBouncer refuses those."""
    if options and dsn not in _no_options:
        try:
            return psycopg2.connect(dsn, options=options, **kwargs)
        except psycopg2.OperationalError as err:
            if REFUSED not in str(err):
                raise
            with _lock:
                _no_options.add(dsn)
    conn = psycopg2.connect(dsn, **kwargs)
    settings = SETTING.findall(options)
    if settings:
        try:
            with conn.cursor() as cur:
                for name, value in settings:
                    cur.execute("SELECT set_config(%s, %s, false)", (name, value))
            conn.commit()
        except psycopg2.Error:
            conn.close()
            raise
    return conn
