"""Typed `processes:` section of config.yml (read raw until AppConfig carries it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from processes import presets

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


def from_raw(raw: Any) -> ProcessesConfig:
    """ProcessesConfig from the `processes:` mapping (None: defaults)."""
    return ProcessesConfig.model_validate(raw or {})


def load(path: Path | None = None, app_config: Any = None) -> ProcessesConfig:
    """The AppConfig's `processes` if it has one, else the raw `processes:` key of config.yml."""
    existing = getattr(app_config, "processes", None)
    if isinstance(existing, ProcessesConfig):
        return existing
    from server.config import config_path, substitute_env

    file = path or config_path()
    raw = yaml.safe_load(substitute_env(file.read_text(encoding="utf-8"))) if file.exists() else {}
    return from_raw((raw or {}).get("processes"))
