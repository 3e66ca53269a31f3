# sejong-mapserver: the same steps as ./run serve, in an image.  Build: docker build -t sejong-mapserver .
# Run against a PostGIS (see docker-compose.yml):  docker run -e DATABASE_URL=postgresql://... -p 5000:5000 sejong-mapserver
FROM python:3.12-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    SEJONG_BIND=0.0.0.0:5000 SEJONG_DATA_DIR=/data

# PostgreSQL 15 + PostGIS 3 + pgRouting: the embedded database when DATABASE_URL is not given; gdal-bin for clients
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 postgresql-15-postgis-3 postgresql-15-pgrouting gdal-bin \
    nodejs npm fonts-nanum \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY core core
COPY server server
COPY layers layers
COPY loaders loaders
COPY processes processes
COPY styles styles
COPY config.yml run ./
RUN python -m venv var/venv \
 && var/venv/bin/pip install --no-cache-dir --upgrade pip \
 && var/venv/bin/pip install --no-cache-dir -e . \
 && touch "var/venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)" \
 && var/venv/bin/python -c "from pathlib import Path; from server.assets import ensure_assets; ensure_assets(Path('.'))"

# Run as an unprivileged user (the embedded cluster, when used, runs as this user too)
RUN useradd --system --home-dir /app --shell /usr/sbin/nologin sejong && mkdir -p var && chown -R sejong:sejong var
USER sejong

# The real public data is not in the image: mount it at /data (or let the loader fetch it by MANIFEST).
VOLUME ["/data"]
EXPOSE 5000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/health')"
CMD ["./run", "serve"]
