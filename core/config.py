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
    cors: str | None = "*"

    @field_validator("url")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.rstrip("/")


class DatabaseConfig(BaseModel):
    """Database connection: DATABASE_URL, or the embedded cluster when empty."""

    model_config = ConfigDict(extra="forbid")
    url: str = ""
    embedded_port: int = 54329
    pool_size: int = 8


class DataConfig(BaseModel):
    """Where the real public data lives (every table is stored in EPSG:5186, core.crs.STORAGE_SRID)."""

    model_config = ConfigDict(extra="forbid")
    dir: str = "../shared/data"

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
    """No database is named and the caller may not fall back to the embedded cluster."""


def embedded_database_url(cfg: AppConfig) -> str:
    """URL of the project-local cluster under var/ (started by ./run)."""
    return f"postgresql://postgres@127.0.0.1:{cfg.database.embedded_port}/sejong"


def database_url(cfg: AppConfig | None = None, dsn: str | None = None, *, embedded: bool = True) -> str:
    """The one DATABASE_URL resolution: an explicit dsn, DATABASE_URL, database.url, else the embedded cluster."""
    cfg = cfg or load_config()
    url = dsn or os.environ.get("DATABASE_URL") or cfg.database.url
    if url:
        return url
    if not embedded:
        raise NoDatabase("no database: pass --dsn or set DATABASE_URL=postgresql://user@host:port/db "
                         "(./run load … sets it to the embedded cluster)")
    return embedded_database_url(cfg)
