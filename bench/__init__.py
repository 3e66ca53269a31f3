"""Side-by-side benchmarks: our OGC API Features server against the bare PostGIS query, pygeoapi and tipg.

Run with ``./run bench`` (or ``DATABASE_URL=... var/venv/bin/python -m bench``).
"""

import os

# The servers a benchmark starts measure throughput from one client address: no request rate limit there.
os.environ.setdefault("SEJONG_RATE_LIMIT_ANONYMOUS", "0")
os.environ.setdefault("SEJONG_RATE_LIMIT_AUTHENTICATED", "0")
