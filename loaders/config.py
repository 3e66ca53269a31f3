"""Tiny reader for config.yml with ${VAR:-default} substitution (no coupling to server/)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def substitute(text: str) -> str:
    """Replace ${VAR} and ${VAR:-default} from the environment."""
    return _VAR.sub(lambda m: os.environ.get(m.group(1)) or (m.group(2) or ""), text)


def read_config(path: Path | None = None) -> dict[str, Any]:
    """Parse config.yml (default: the repository's) after variable substitution."""
    path = path or REPO_ROOT / "config.yml"
    data = yaml.safe_load(substitute(path.read_text(encoding="utf-8")))
    return data if isinstance(data, dict) else {}


def storage_srid(cfg: dict[str, Any] | None = None) -> int:
    """The one storage CRS for every table (data.storage_srid, 5186)."""
    cfg = cfg if cfg is not None else read_config()
    return int(cfg.get("data", {}).get("storage_srid", 5186))


def data_dir(cfg: dict[str, Any] | None = None) -> Path:
    """Data folder: SEJONG_DATA_DIR, else data.dir of config.yml, relative to the repository root."""
    env = os.environ.get("SEJONG_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    cfg = cfg if cfg is not None else read_config()
    raw = str(cfg.get("data", {}).get("dir") or "../shared/data")
    p = Path(raw).expanduser()
    return (p if p.is_absolute() else REPO_ROOT / p).resolve()


def layer_tables(cfg: dict[str, Any] | None = None) -> dict[str, str]:
    """Layer id -> declared table name."""
    cfg = cfg if cfg is not None else read_config()
    return {lid: str(spec.get("table", "")) for lid, spec in (cfg.get("layers") or {}).items()}


def database_url(dsn: str | None = None) -> str:
    """The DSN from the argument or DATABASE_URL; error when neither is set."""
    url = dsn or os.environ.get("DATABASE_URL") or ""
    if not url:
        raise SystemExit("no database: pass --dsn or set DATABASE_URL=postgresql://user@host:port/db")
    return url
