"""config.yml, typed: the one reader and the one model of a deployment (database, server, data, processes, layers)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from core import presets

REPO_ROOT = Path(__file__).resolve().parent.parent
_ENV_PATTERN = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def substitute_env(text: str) -> str:
    """Replace ${VAR} and ${VAR:-default} with environment values."""
    return _ENV_PATTERN.sub(lambda m: os.environ.get(m.group(1)) or (m.group(2) or ""), text)


class Bilingual(BaseModel):
    """A Korean text with its English counterpart."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    ko: str
    en: str

    def get(self, lang: str) -> str:
        """Text in lang (ko or en)."""
        return self.en if lang == "en" else self.ko


class TilesConfig(BaseModel):
    """Vector-tile options of a layer."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    minzoom: int = Field(default=0, ge=0, le=24)
    maxzoom: int = Field(default=18, ge=0, le=24)
    properties: list[str] | None = None  # properties carried in tiles (default: all)
    # from zoom k upward the tiles carry these properties ("*": all); below the lowest k only the id
    properties_by_zoom: dict[int, list[str] | Literal["*"]] | None = None


class LayerConfig(BaseModel):
    """One thematic layer, declared once and served as features, tiles and a style."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    title: Bilingual
    description: Bilingual
    table: str
    geometry: str = "geom"
    id: str = "id"
    datetime: str | None = None
    properties: list[str] | None = None
    keywords: list[str] = []
    public: bool = True
    tiles: TilesConfig | bool = TilesConfig()
    # Korean and English title of each property: column -> [ko, en] (the column name where none is given)
    titles: dict[str, tuple[str, str]] = {}

    @field_validator("table")
    @classmethod
    def _qualified(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][\w]*\.[A-Za-z_][\w]*", value):
            raise ValueError("table must be schema-qualified, e.g. public.bike_stations")
        return value

    @property
    def schema_name(self) -> str:
        """Schema part of the table name."""
        return self.table.split(".", 1)[0]

    @property
    def table_name(self) -> str:
        """Table part of the table name."""
        return self.table.split(".", 1)[1]


class TileCacheConfig(BaseModel):
    """Tile cache: in-process LRU plus an optional folder; keys carry the layers' data versions."""

    model_config = ConfigDict(extra="forbid")
    memory_mb: int = Field(default=128, ge=0)
    directory: str | None = None
    disk_mb: int = Field(default=1024, ge=1)  # the folder is kept under this; the oldest-written tiles go first
    cache_control: str = "public, max-age=60"


class ServerConfig(BaseModel):
    """HTTP server options."""

    model_config = ConfigDict(extra="forbid")
    url: str = "http://127.0.0.1:5000"
    bind: str = "127.0.0.1:5000"
    workers: int = 2
    threads: int = 4
    limit_default: int = Field(default=10, ge=1)
    limit_max: int = Field(default=10000, ge=1)
    statement_timeout_ms: int = Field(default=15000, ge=100)
    max_body_kb: int = Field(default=2048, ge=1)  # larger request bodies are refused with 413
    per_client_concurrency: int = Field(default=8, ge=1)  # data requests at once from one client address (429)
    cors: str | None = "*"

    @field_validator("url")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.rstrip("/")


class DatabaseConfig(BaseModel):
    """Database connections: the write URL (loads, jobs) and the read URL the web server uses."""

    model_config = ConfigDict(extra="forbid")
    url: str = ""
    read_url: str = ""
    embedded_port: int = 54329
    pool_size: int = 8


class DataConfig(BaseModel):
    """Where the real public data lives (every table is stored in EPSG:5186, core.crs.STORAGE_SRID)."""

    model_config = ConfigDict(extra="forbid")
    dir: str = "../shared/data"
    # the deployment's region, lon/lat [min lon, min lat, max lon, max lat]: file loads whose coordinates fall
    # outside are refused (loads of national layers pass --national); default: Sejong's extent plus ~5 km
    region: tuple[float, float, float, float] = (127.05, 36.35, 127.50, 36.80)

    @field_validator("region")
    @classmethod
    def _bbox(cls, value: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        x0, y0, x1, y1 = value
        if not (-180 <= x0 < x1 <= 180 and -90 <= y0 < y1 <= 90):
            raise ValueError(f"data.region {list(value)} is not [min lon, min lat, max lon, max lat] in degrees")
        return value

    def path(self) -> Path:
        """Absolute data folder (relative paths are taken from the repository root)."""
        p = Path(self.dir)
        return p if p.is_absolute() else (REPO_ROOT / p).resolve()


class Metadata(BaseModel):
    """Service-level metadata."""

    model_config = ConfigDict(extra="forbid")
    title: Bilingual
    description: Bilingual
    keywords: list[str] = []
    provider: dict[str, str] = {}
    license: dict[str, str] = {}

Mode = Literal["walk", "bike", "car"]


class Preset(BaseModel):
    """A facility type's service standard."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    mode: Mode
    minutes: list[float] = Field(min_length=1)
    source: str = ""


class AnalysisLayer(BaseModel):
    """A table usable as a process input before it is declared in `layers:`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    table: str
    geometry: str = "geom"
    id: str = "id"
    title: str = ""


class ProcessesConfig(BaseModel):
    """Processes runtime and analysis defaults."""

    model_config = ConfigDict(extra="forbid")
    workers: int = Field(default=2, ge=1, le=64)
    sync_timeout_s: float = Field(default=120.0, gt=0)
    job_timeout_s: float = Field(default=600.0, gt=0)
    result_ttl_hours: float = Field(default=24.0, gt=0)
    job_retention_hours: float = Field(default=168.0, gt=0)  # finished jobs and their results are deleted after
    lease_s: float = Field(default=60.0, ge=5)  # a job whose server stops renewing it for this long is failed
    max_queued: int = Field(default=64, ge=1)  # queued + running jobs per server process; more get 429
    max_sync: int = Field(default=2, ge=1)  # concurrent synchronous executions per server process; more get 429
    max_points: int = Field(default=50_000, ge=1)
    max_facilities: int = Field(default=5_000, ge=1)
    max_minutes: float = Field(default=180.0, gt=0)
    max_snap_m: float = Field(default=500.0, gt=0)
    detour_factor: float = Field(default=presets.DETOUR_FACTOR, ge=1.0, le=5.0)
    speeds_kmh: dict[str, float] = Field(default_factory=lambda: dict(presets.SPEEDS_KMH))
    presets: dict[str, Preset] = Field(
        default_factory=lambda: {k: Preset.model_validate(v) for k, v in presets.PRESETS.items()})
    analysis_layers: dict[str, AnalysisLayer] = Field(default_factory=lambda: {
        "facilities_paju": AnalysisLayer(table="public.facilities_paju", title="Paju facilities"),
        "paju_emd": AnalysisLayer(table="public.paju_emd", title="Paju 읍면동 with voters"),
    })
    # pygeoapi process plugins run in our job runtime: process id -> dotted path of a BaseProcessor subclass
    plugins: dict[str, str] = {}

    @field_validator("plugins")
    @classmethod
    def _dotted(cls, value: dict[str, str]) -> dict[str, str]:
        for pid, path in value.items():
            if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", path):
                raise ValueError(f"plugin {pid!r}: {path!r} is not a dotted path like package.module.ClassName")
        return value


class AppConfig(BaseModel):
    """The whole config.yml."""

    model_config = ConfigDict(extra="forbid")
    server: ServerConfig = ServerConfig()
    metadata: Metadata
    database: DatabaseConfig = DatabaseConfig()
    data: DataConfig = DataConfig()
    tiles: TileCacheConfig = TileCacheConfig()
    processes: ProcessesConfig = ProcessesConfig()
    layers: dict[str, LayerConfig]

    @field_validator("layers")
    @classmethod
    def _ids(cls, value: dict[str, LayerConfig]) -> dict[str, LayerConfig]:
        for key in value:
            if not re.fullmatch(r"[a-z][a-z0-9_]*", key):
                raise ValueError(f"layer id {key!r}: use lower-case letters, digits and _")
        return value


def config_path() -> Path:
    """config.yml location (SEJONG_CONFIG overrides)."""
    return Path(os.environ.get("SEJONG_CONFIG", REPO_ROOT / "config.yml"))


def load_config(path: Path | None = None) -> AppConfig:
    """Read, substitute and validate config.yml (the only reader of it)."""
    raw: Any = yaml.safe_load(substitute_env((path or config_path()).read_text(encoding="utf-8")))
    return AppConfig.model_validate(raw)


class NoDatabase(ValueError):
    """No database is named (./run starts the embedded cluster and names it)."""


def database_url(cfg: AppConfig | None = None, dsn: str | None = None) -> str:
    """The one write-URL resolution: an explicit dsn, DATABASE_URL, else database.url."""
    cfg = cfg or load_config()
    url = dsn or os.environ.get("DATABASE_URL") or cfg.database.url
    if not url:
        raise NoDatabase("no database: set DATABASE_URL=postgresql://user:password@host:port/db "
                         "(./run serve, ./run load and ./run test start the embedded cluster and set it)")
    return url


def read_database_url(cfg: AppConfig | None = None, dsn: str | None = None) -> str:
    """The URL the web server reads with: an explicit dsn, DATABASE_READ_URL, database.read_url, else the write URL."""
    cfg = cfg or load_config()
    return dsn or os.environ.get("DATABASE_READ_URL") or cfg.database.read_url or database_url(cfg)
