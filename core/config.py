"""config.yml, typed: the one reader and the one model of a deployment (database, server, data, processes, layers)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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
    # polygons: each tile also carries `<id>_label`, one label point per feature (in the tile holding the point)
    labels: bool = False


class LayerConfig(BaseModel):
    """One thematic layer, declared once and served as features, tiles and a style."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    title: Bilingual
    description: Bilingual | None = None  # optional: a collection without one has an empty description
    table: str
    geometry: str = "geom"
    id: str = "id"
    datetime: str | None = None
    properties: list[str] | None = None
    keywords: list[str] = []
    # who may read it: "public" (everyone), or the roles that may (e.g. [department]); [] hides it from everyone
    access: Literal["public"] | list[str] = "public"
    # the roles that may create, replace, update and delete its features (Features Part 4); [] (default): none
    editable: list[str] = []
    tiles: TilesConfig | bool = TilesConfig()
    # Korean and English title of each property: column -> [ko, en] (the column name where none is given)
    titles: dict[str, tuple[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _public_alias(cls, data: Any) -> Any:
        """Deprecated `public: false` means `access: []` (nobody); `public: true` means `access: public`."""
        if isinstance(data, dict) and "public" in data:
            data = dict(data)
            public = data.pop("public")
            if not isinstance(public, bool):
                raise ValueError("public must be true or false (deprecated: use access: public or a list of roles)")
            if "access" in data and (data["access"] == "public") != public:
                raise ValueError("public and access disagree; remove public (deprecated) and keep access")
            data.setdefault("access", "public" if public else [])
        return data

    @field_validator("access")
    @classmethod
    def _roles(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list):
            bad = [r for r in value if not re.fullmatch(r"[a-z][a-z0-9_-]*", r)]
            if bad:
                raise ValueError(f"access: {bad} are not role names (lower-case letters, digits, - and _)")
            return sorted(set(value))
        return value

    @field_validator("editable")
    @classmethod
    def _editor_roles(cls, value: list[str]) -> list[str]:
        bad = [r for r in value if not re.fullmatch(r"[a-z][a-z0-9_-]*", r)]
        if bad:
            raise ValueError(f"editable: {bad} are not role names (lower-case letters, digits, - and _)")
        return sorted(set(value))

    @property
    def public(self) -> bool:
        """Readable by everyone, anonymous callers included."""
        return self.access == "public"

    def readable_by(self, roles: frozenset[str]) -> bool:
        """Whether a caller holding these roles may read the layer."""
        return self.access == "public" or not roles.isdisjoint(self.access)

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
    trusted_proxies: int = Field(default=0, ge=0, le=4)  # proxies in front (nginx: 1) whose X-Forwarded-For is used
    rate_limit_anonymous: int = Field(default=3000, ge=0)  # requests a minute per client address per worker (0: off)
    rate_limit_authenticated: int = Field(default=12000, ge=0)  # requests a minute per identity per worker (0: off)
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
    replica_url: str = ""  # the read role on a streaming replica: reads go there while it keeps up; empty: none
    replica_max_lag_s: float = Field(default=5.0, gt=0)  # beyond this (or unreachable), reads go to the primary
    version_poll_s: float = Field(default=1.0, gt=0)  # with a replica: how often its catalog is read for versions

    @field_validator("url", "read_url", "replica_url", mode="before")
    @classmethod
    def _empty(cls, value: object) -> object:
        return "" if value is None else value  # `url: ${DATABASE_URL:-}` unquoted reads as null when unset
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


class SurfaceRegion(BaseModel):
    """One area surfaces are built for: a lon/lat box and the 시도 whose stations' readings count."""

    model_config = ConfigDict(extra="forbid")
    title: Bilingual
    bbox: tuple[float, float, float, float]  # lon/lat [min lon, min lat, max lon, max lat] of the grid
    sido: list[str] = Field(min_length=1)  # stations of these 시도 (any distance from the box) supply readings


class SurfacesConfig(BaseModel):
    """Air-quality surfaces (README "Air-quality surfaces"): interpolated PM grids written as COGs."""

    model_config = ConfigDict(extra="forbid")
    directory: str = "var/surfaces"  # the COGs, one per collection, pollutant and day
    cell_m: float = Field(default=100, ge=100, le=250)  # EPSG:5186 cell size
    max_distance_m: float = Field(default=6000, gt=0)  # cells farther than this from every station are nodata
    methods: list[Literal["idw", "kriging", "nearest"]] = ["idw", "kriging", "nearest"]  # cross-validated
    method: Literal["auto", "idw", "kriging", "nearest"] = "auto"  # auto: the lowest cross-validated RMSE
    idw_power: float = Field(default=2.0, gt=0)
    min_kriging_stations: int = Field(default=8, ge=4)  # fewer stations on a day: kriging falls back to IDW
    pollutants: list[Literal["pm10", "pm25"]] = ["pm10", "pm25"]
    recent_days: int = Field(default=7, ge=1)  # the load builds the newest N days with readings
    recent_hours: int = Field(default=24, ge=1)  # ... and the newest N hours where hourly readings exist
    regions: dict[str, SurfaceRegion] = {}

    def path(self) -> Path:
        """Absolute folder of the COGs (relative paths are taken from the repository root)."""
        p = Path(self.directory)
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


class Quota(BaseModel):
    """Limits on one caller's analyses, below the server-wide ones; an unset field adds no limit of its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    concurrent_jobs: int | None = Field(default=None, ge=0)  # queued + running jobs (all servers); 0: may not run any
    max_points: int | None = Field(default=None, ge=1)  # demand sample points of one execution
    max_facilities: int | None = Field(default=None, ge=1)  # candidate, existing and facility sites of one execution
    max_time_limit_s: float | None = Field(default=None, gt=0)  # a solver's `time_limit` input


class Quotas(BaseModel):
    """Per-identity quotas: anonymous callers, authenticated ones, and roles that replace the authenticated quota
    (`null`: no quota, e.g. `roles: {admin: null}`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    anonymous: Quota | None = None
    authenticated: Quota | None = None
    roles: dict[str, Quota | None] = {}

    def of(self, anonymous: bool, roles: frozenset[str]) -> Quota | None:
        """A caller's quota: the anonymous one, else the most generous of their roles' (field by field; an unlimited
        role wins), else the authenticated one. None: unlimited."""
        if anonymous:
            return self.anonymous
        held = [self.roles[r] for r in sorted(roles) if r in self.roles]
        if not held:
            return self.authenticated
        if any(q is None for q in held):
            return None
        merged: dict[str, Any] = {}
        for name in Quota.model_fields:
            values = [getattr(q, name) for q in held]
            merged[name] = None if any(v is None for v in values) else max(values)
        return Quota(**merged)


class ProcessesConfig(BaseModel):
    """Processes runtime and analysis defaults."""

    model_config = ConfigDict(extra="forbid")
    workers: int = Field(default=2, ge=1, le=64)
    sync_timeout_s: float = Field(default=120.0, gt=0)
    job_timeout_s: float = Field(default=600.0, gt=0)
    result_ttl_hours: float = Field(default=24.0, gt=0)
    job_retention_hours: float = Field(default=168.0, gt=0)  # finished jobs and their results are deleted after
    lease_s: float = Field(default=60.0, ge=5)  # a job whose server stops renewing it for this long is failed
    claim_poll_s: float = Field(default=1.0, gt=0, le=60)  # how often an idle instance looks for queued jobs
    max_queued: int = Field(default=64, ge=1)  # queued + running jobs per server process; more get 429
    max_sync: int = Field(default=2, ge=1)  # concurrent synchronous executions per server process; more get 429
    quotas: Quotas = Quotas()  # per-identity limits (README "Security"); default: none beyond the ones here
    max_points: int = Field(default=50_000, ge=1)
    max_facilities: int = Field(default=5_000, ge=1)
    max_minutes: float = Field(default=180.0, gt=0)
    max_snap_m: float = Field(default=500.0, gt=0)
    max_solve_memory_mb: int = Field(default=2048, ge=8)  # a siting solve estimated above this is refused (400)
    solve_in_child: bool = True  # solve in a child process whose address space is limited to max_solve_memory_mb
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


KAIS_SPEEDS_KMH: dict[Mode, dict[int, float | None]] = {
    "walk": {1: None, 2: 4.5, 3: 4.5, 4: 4.5}, "bike": {1: None, 2: 15.0, 3: 15.0, 4: 15.0},
    "car": {1: 100.0, 2: 50.0, 3: 50.0, 4: 30.0}}


class NetworkConfig(BaseModel):
    """A road network built from an official file (format kais: 도로명주소 도로구간 TL_SPRD_MANAGE)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    format: Literal["kais"] = "kais"
    file: str  # relative to data.dir (or absolute)
    encoding: str = "cp949"  # KAIS ships the DBF in CP949 without a .cpg
    snap_m: float = Field(default=1.0, gt=0, le=50)  # endpoints this close are one node; T-junction tolerance
    # km/h per mode and road class ROA_CLS_SE (1 고속도로, 2 대로, 3 로, 4 길); null: the mode may not use it
    speeds_kmh: dict[Mode, dict[int, float | None]] = Field(default_factory=lambda: dict(KAIS_SPEEDS_KMH))
    car_min_width_m: float = Field(default=0.0, ge=0)  # narrower roads (ROAD_BT > 0) are closed to cars
    narrow_width_m: float = Field(default=0.0, ge=0)  # roads narrower than this (ROAD_BT > 0) ...
    narrow_car_kmh: float | None = Field(default=None, gt=0)  # ... are driven at most this fast
    no_car_names: list[str] = []  # road names containing one of these (e.g. 자전거) are closed to cars
    sources: dict[str, str] = {}  # where the speeds and rules come from, per mode

    @field_validator("speeds_kmh")
    @classmethod
    def _classes(cls, value: dict[str, dict[int, float | None]]) -> dict[str, dict[int, float | None]]:
        for mode in ("walk", "bike", "car"):
            got = value.get(mode, {})
            if sorted(got) != [1, 2, 3, 4]:
                raise ValueError(f"speeds_kmh.{mode}: give km/h (or null) for each road class 1, 2, 3 and 4")
            bad = [k for k, v in got.items() if v is not None and not 0 < v <= 200]
            if bad:
                raise ValueError(f"speeds_kmh.{mode}: classes {bad} need a speed above 0 and at most 200 km/h")
        return value


# Signature algorithms a token may use: asymmetric only, so no HMAC-with-public-key confusion and never `none`
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


class AuthConfig(BaseModel):
    """Who is asking: OpenID Connect bearer tokens and API keys (server/auth.py). Off: every caller is anonymous."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = False  # off: credentials are refused with 401 (never silently ignored)
    issuer: str = ""  # OpenID provider; empty: API keys only
    jwks_url: str = ""  # empty: jwks_uri from issuer/.well-known/openid-configuration
    audience: str = ""  # the token's `aud` must contain this (required with an issuer)
    client_id: str = ""  # public client of the /map sign-in (authorization code + PKCE)
    algorithms: list[str] = ["RS256", "ES256"]
    leeway_s: float = Field(default=30.0, ge=0, le=300)  # clock skew allowed on exp/nbf/iat
    roles_claim: str = "roles"  # dotted path into the claims, e.g. realm_access.roles
    role_map: dict[str, str] = {}  # claim value -> our role; unmapped values give no role

    @field_validator("issuer", "jwks_url", "audience", "client_id", mode="before")
    @classmethod
    def _empty(cls, value: object) -> object:
        return "" if value is None else value  # `issuer: ${VAR:-}` unquoted reads as null when VAR is unset

    @field_validator("algorithms")
    @classmethod
    def _asymmetric(cls, value: list[str]) -> list[str]:
        bad = [a for a in value if a not in ASYMMETRIC_ALGORITHMS]
        if bad or not value:
            raise ValueError(f"{bad or value} not allowed: use asymmetric algorithms only "
                             f"({', '.join(ASYMMETRIC_ALGORITHMS)})")
        return value

    @field_validator("issuer", "jwks_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.strip()

    @model_validator(mode="after")
    def _audience(self) -> AuthConfig:
        if self.enabled and self.issuer and not self.audience:
            raise ValueError("auth.audience is required with auth.issuer (the client id tokens are issued for)")
        return self


class AppConfig(BaseModel):
    """The whole config.yml."""

    model_config = ConfigDict(extra="forbid")
    server: ServerConfig = ServerConfig()
    metadata: Metadata
    database: DatabaseConfig = DatabaseConfig()
    data: DataConfig = DataConfig()
    tiles: TileCacheConfig = TileCacheConfig()
    processes: ProcessesConfig = ProcessesConfig()
    auth: AuthConfig = AuthConfig()
    networks: dict[str, NetworkConfig] = {}  # road networks loaded with the bundled data (network.<name>_edges)
    surfaces: SurfacesConfig = SurfacesConfig()
    layers: dict[str, LayerConfig]

    @field_validator("layers")
    @classmethod
    def _ids(cls, value: dict[str, LayerConfig]) -> dict[str, LayerConfig]:
        for key in value:
            if not re.fullmatch(r"[a-z][a-z0-9_]*", key):
                raise ValueError(f"layer id {key!r}: use lower-case letters, digits and _")
        return value

    @field_validator("networks")
    @classmethod
    def _network_names(cls, value: dict[str, NetworkConfig]) -> dict[str, NetworkConfig]:
        for key in value:
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", key):
                raise ValueError(f"network name {key!r}: use lower-case letters, digits and _ (e.g. sejong)")
        return value


def config_path() -> Path:
    """config.yml location (SEJONG_CONFIG overrides)."""
    return Path(os.environ.get("SEJONG_CONFIG", REPO_ROOT / "config.yml"))


class ConfigError(ValueError):
    """config.yml is unreadable or invalid: str() is one line per problem, naming the file and the setting."""


def _problem(where: str, err: Any) -> str:
    """One pydantic error as 'config.yml: layers.parks.table: <what to do>'."""
    loc = ".".join(str(p) for p in err["loc"])
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "missing":
        msg = "required setting missing"
    elif err["type"] == "extra_forbidden":
        msg = f"unknown setting (remove it, or check its spelling); value {err.get('input')!r}"[:160]
    return f"{where}: {loc or '(top level)'}: {msg}"


def load_config(path: Path | None = None) -> AppConfig:
    """Read, substitute and validate config.yml (the only reader of it); ConfigError lists every problem."""
    path = path or config_path()
    try:
        raw: Any = yaml.safe_load(substitute_env(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration ({exc.strerror}); set SEJONG_CONFIG") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{at}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings (metadata:, layers:, ...), "
                          f"found {type(raw).__name__}")
    try:
        return AppConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError("\n".join(_problem(path.name, e) for e in exc.errors())) from None


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


def replica_database_url(cfg: AppConfig | None = None) -> str:
    """The streaming replica the web server prefers for reads: DATABASE_REPLICA_URL, database.replica_url, or ''."""
    cfg = cfg or load_config()
    return os.environ.get("DATABASE_REPLICA_URL") or cfg.database.replica_url


def read_database_url(cfg: AppConfig | None = None, dsn: str | None = None) -> str:
    """The URL the web server reads with: an explicit dsn, DATABASE_READ_URL, database.read_url, else the write URL."""
    cfg = cfg or load_config()
    return dsn or os.environ.get("DATABASE_READ_URL") or cfg.database.read_url or database_url(cfg)
