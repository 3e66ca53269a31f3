"""Typed view of config.yml: the one place a deployment describes database, server and layers."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from processes.config import ProcessesConfig

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
    """Where the real public data lives."""

    model_config = ConfigDict(extra="forbid")
    dir: str = "../shared/data"
    storage_srid: int = 5186

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
    """Read, substitute and validate config.yml."""
    raw: Any = yaml.safe_load(substitute_env((path or config_path()).read_text(encoding="utf-8")))
    return AppConfig.model_validate(raw)
