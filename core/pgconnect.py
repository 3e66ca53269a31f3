"""psycopg2.connect with per-session settings that also works through PgBouncer.

Settings go as libpq startup `options` (-c name=value: no extra round trip). PgBouncer (1.18, Debian 12) refuses
that startup parameter; for such a server they are applied right after connecting with set_config(..., false),
which lasts for the session: PgBouncer must pool by SESSION (it resets with DISCARD ALL when the client leaves).
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
    """A connection with the `-c name=value` settings of options in force for its whole session."""
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
