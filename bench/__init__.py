"""Side-by-side benchmarks: our OGC API Features server against the bare PostGIS query, pygeoapi and tipg.

Run with ``./run bench`` (or ``DATABASE_URL=... var/venv/bin/python -m bench``).
"""
