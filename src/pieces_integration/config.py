"""Settings: defaults < YAML file < environment.

The YAML file has the keys of the spec's `app.yaml` (section 5.1). It is chosen by
`CONFIG_FILE`, else `config/<APP_ENV>.yaml` under the working directory when present.
The environment uses the spec's deployment names (`PORT`, `LOG_LEVEL`, `DATABASE_URL`, ...),
and any key can also be set as `PIECES_INTEGRATION_<SECTION>__<KEY>`.

Nothing here runs at import: `load_settings()` is called by the composition root.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Mapping
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal

import yaml
from platformdirs import user_data_dir
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
Environment = Literal["development", "production", "test"]


class ConfigError(Exception):
    """Configuration is invalid; the message is one line naming the key and the problem."""


class ServerSettings(BaseModel):
    model_config = {"extra": "forbid"}
    # bandit B104: the container default; `serve` binds 127.0.0.1 unless told otherwise.
    host: str = "0.0.0.0"  # nosec B104
    port: int = Field(8080, ge=1, le=65535)
    websocket_port: int | None = Field(None, ge=1, le=65535)
    # On SIGTERM `/ready` answers 503 for this long while requests are still served, so a
    # load balancer (HAProxy's check, Kubernetes' endpoints) stops routing here before the
    # listeners close. The chart's terminationGracePeriodSeconds covers it (deploy/README.md).
    drain_seconds: float = Field(0.0, ge=0, le=120)
    cors_origins: list[str] = Field(default_factory=lambda: ["http://localhost:3000"])
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024)
    max_import_bytes: int = Field(512 * 1024 * 1024, ge=1024)  # POST /users/{id}/import
    # WebSocket fan-out: write one pre-encoded frame straight to each idle socket (off:
    # every message through ASGI), with the socket writes of one event spread over this
    # many threads (1: on the event loop's thread). More threads gave nothing measurable on
    # a 2-core host with its load generator beside it (bench/bench_ws_fanout.py); they are
    # for larger hosts, to be measured there.
    websocket_direct_writes: bool = True
    websocket_write_threads: int = Field(1, ge=1, le=64)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value


class RateLimitSettings(BaseModel):
    model_config = {"extra": "forbid"}
    requests_per_minute: int = Field(100, ge=0)
    burst_size: int = Field(10, ge=0)


class PiecesSettings(BaseModel):
    model_config = {"extra": "forbid"}
    default_timeout: int = Field(30_000, ge=1, description="milliseconds, as in the spec")
    retry_attempts: int = Field(3, ge=0, le=10)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    default_url: str | None = None
    legacy_port: int = Field(1000, ge=1, le=65535)
    scan_ports: tuple[int, int] = (39300, 39333)
    # PEM CA bundle to verify Pieces OS over TLS with (a developer's own CA), trusted instead
    # of the system's roots; TLS is verified either way.
    ca_file: Path | None = None
    # Bridges (DEVIATIONS 5): heartbeat interval both ways; a link silent for two of them is
    # declared dead on either side.
    bridge_heartbeat_seconds: float = Field(15.0, gt=0, le=300)

    @field_validator("ca_file", mode="before")
    @classmethod
    def _readable_ca_file(cls, value: Any) -> Any:
        if value is None or value == "":
            return None
        try:  # refused at start-up, not at the first connection
            ssl.create_default_context(cafile=str(value))
        except OSError as exc:  # ssl.SSLError included
            detail = exc.strerror or exc
            raise ValueError(f"cannot use {value} as a CA bundle ({detail})") from None
        return value

    @property
    def timeout_seconds(self) -> float:
        return self.default_timeout / 1000


class SyncSettings(BaseModel):
    model_config = {"extra": "forbid"}
    interval_seconds: float = Field(30, gt=0)
    batch_size: int = Field(50, ge=1, le=10_000)
    max_retries: int = Field(3, ge=0)
    conflict_strategy: Literal["last_writer_wins", "prefer_pieces", "prefer_aiwfe"] = (
        "last_writer_wins"
    )


class IntelligenceSettings(BaseModel):
    model_config = {"extra": "forbid"}
    min_relevance_score: float = Field(0.6, ge=0, le=1)
    max_suggestions: int = Field(10, ge=1, le=100)
    context_window_days: int = Field(30, ge=1)
    # Embedded vector store maintenance (service_layer/vector_maintenance.py): optimise once
    # a collection got this many point writes and writing paused this long, or at the latest
    # this long after the threshold was crossed. Ignored with a Qdrant server.
    vector_optimize_min_writes: int = Field(5_000, ge=1)
    vector_optimize_quiet_seconds: float = Field(30.0, ge=0)
    vector_optimize_max_delay_seconds: float = Field(600.0, ge=0)


class MonitoringSettings(BaseModel):
    model_config = {"extra": "forbid"}
    metrics_enabled: bool = True
    metrics_require_auth: bool = False
    tracing_enabled: bool = False
    log_level: LogLevel = "info"
    log_format: Literal["auto", "json", "console"] = "auto"

    @field_validator("log_level", mode="before")
    @classmethod
    def _normalise_level(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower()
            return "warning" if value == "warn" else value
        return value


class CacheSettings(BaseModel):
    model_config = {"extra": "forbid"}
    default_ttl: int = Field(3600, ge=1)
    max_size: int = Field(1000, ge=1)


class ApiSettings(BaseModel):
    model_config = {"extra": "forbid"}
    rate_limit_per_minute: int = Field(1200, ge=0)
    rate_limit_burst: int = Field(200, ge=0)
    # Shared by every user of one tenant (auth.tenant_claim), on top of each user's own
    # limit (issue 20); 0: no tenant limit.
    tenant_rate_limit_per_minute: int = Field(0, ge=0)
    tenant_rate_limit_burst: int = Field(1000, ge=0)
    max_asset_bytes: int = Field(1024 * 1024, ge=1)
    max_tags: int = Field(50, ge=0)
    max_tag_length: int = Field(64, ge=1)
    max_name_length: int = Field(512, ge=1)
    max_query_length: int = Field(2000, ge=1)
    default_page_size: int = Field(50, ge=1)
    max_page_size: int = Field(500, ge=1)


class McpSettings(BaseModel):
    """The MCP server (entrypoints/mcp): streamable HTTP at `/mcp`, and `pieces-integration mcp`."""

    model_config = {"extra": "forbid"}
    enabled: bool = True
    read_only: bool = False  # list and serve no tool that writes (save, update, delete, ...)
    # The SDK refuses any other Host / Origin (DNS-rebinding protection): list the names the
    # service is reached by. `name:*` allows any port; a name alone, only the default port.
    allowed_hosts: list[str] = Field(
        default_factory=lambda: [
            f"{name}{port}" for name in ("127.0.0.1", "localhost", "[::1]") for port in ("", ":*")
        ]
    )
    # Browser clients' origins (server.cors_origins are allowed as well).
    allowed_origins: list[str] = Field(
        default_factory=lambda: [
            f"http://{name}{port}"
            for name in ("127.0.0.1", "localhost", "[::1]")
            for port in ("", ":*")
        ]
    )
    tool_timeout_seconds: float = Field(30.0, gt=0, le=600)
    sync_wait_seconds: float = Field(20.0, ge=0, le=600)  # sync_now answers "in progress" after
    session_idle_seconds: float = Field(30 * 60, gt=0)
    max_sessions: int = Field(1000, ge=1)

    @field_validator("allowed_hosts", "allowed_origins", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


class AuthSettings(BaseModel):
    model_config = {"extra": "forbid"}
    jwt_secret: SecretStr | None = None
    jwt_public_key: str | None = None
    jwks_url: str | None = None
    jwt_issuer: str = "pieces-integration"
    jwt_audience: str = "pieces-integration"
    token_ttl_seconds: int = Field(3600, ge=60)
    # The JWT claim naming the user's tenant ("org_id", "tid", ...); None: no tenants.
    tenant_claim: str | None = Field(None, min_length=1, max_length=64)
    # Brute-force limits (issue 20): failed authentications within the window that lock out
    # a client address / a claimed identity; lockouts double from the base up to the maximum.
    failures_per_address: int = Field(20, ge=1)
    failures_per_identity: int = Field(10, ge=1)
    failure_window_seconds: float = Field(300.0, gt=0)
    lockout_seconds: float = Field(30.0, gt=0)
    lockout_max_seconds: float = Field(3600.0, gt=0)


def _normalise_database_url(url: str) -> str:
    """Map the URLs people write onto the async drivers we ship; refuse anything else."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ValueError(f"not a database URL ({exc})") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend in ("postgresql", "postgres"):
        if not parsed.host and not parsed.query.get("host"):
            raise ValueError("a PostgreSQL URL needs a host, e.g. postgresql://user@host:5432/db")
        if not parsed.database:
            raise ValueError("a PostgreSQL URL needs a database name")
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database {backend!r}; use postgresql:// or sqlite://")


class Settings(BaseSettings):
    """All configuration of one service process."""

    model_config = SettingsConfigDict(
        env_prefix="PIECES_INTEGRATION_",
        env_nested_delimiter="__",
        extra="ignore",
        validate_default=True,
    )

    env: Environment = "development"
    data_dir: Path = Field(default_factory=lambda: Path(user_data_dir("pieces-integration")))
    database_url: SecretStr | None = None
    database_schema: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    redis_url: SecretStr | None = None
    redis_key_prefix: str = "pi:"
    qdrant_url: str | None = None
    qdrant_api_key: SecretStr | None = None
    aiwfe_api_url: str | None = None
    aiwfe_api_key: SecretStr | None = None
    aiwfe_webhook_secret: SecretStr | None = None
    encryption_key: SecretStr | None = None

    server: ServerSettings = Field(default_factory=ServerSettings)
    pieces: PiecesSettings = Field(default_factory=PiecesSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    intelligence: IntelligenceSettings = Field(default_factory=IntelligenceSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    mcp: McpSettings = Field(default_factory=McpSettings)

    @field_validator("database_url", mode="before")
    @classmethod
    def _check_database_url(cls, value: Any) -> Any:
        if value is None or value == "":
            return None
        raw = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        return _normalise_database_url(raw)

    @field_validator("redis_url", mode="before")
    @classmethod
    def _check_redis_url(cls, value: Any) -> Any:
        if value is None or value == "":
            return None
        raw = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        if not raw.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return raw

    @model_validator(mode="after")
    def _production_needs_secrets(self) -> Settings:
        if self.env == "production" and self.encryption_key is None:
            raise ValueError("production requires ENCRYPTION_KEY (secrets are encrypted at rest)")
        auth = self.auth
        if self.env == "production" and not (
            auth.jwt_secret or auth.jwt_public_key or auth.jwks_url
        ):
            raise ValueError("production requires JWT_SECRET, JWT_PUBLIC_KEY or JWKS_URL")
        return self

    @property
    def embedded(self) -> bool:
        """True when running on the single-machine default (SQLite, in-process cache/bus)."""
        return self.database_url is None

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite+aiosqlite:///{self.data_dir / 'pieces-integration.db'}"

    @property
    def log_format(self) -> Literal["json", "console"]:
        chosen = self.monitoring.log_format
        if chosen == "auto":
            return "json" if self.env == "production" else "console"
        return chosen

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            SpecEnvironmentSource(settings_cls),
            env_settings,
            YamlFileSource(settings_cls),
        )


# The spec's deployment names (section 5.1) and where each lands in Settings.
SPEC_ENV_NAMES: dict[str, tuple[str, ...]] = {
    "APP_ENV": ("env",),
    "PORT": ("server", "port"),
    "WEBSOCKET_PORT": ("server", "websocket_port"),
    "CORS_ORIGINS": ("server", "cors_origins"),
    "LOG_LEVEL": ("monitoring", "log_level"),
    "LOG_FORMAT": ("monitoring", "log_format"),
    "DATABASE_URL": ("database_url",),
    "DATABASE_SCHEMA": ("database_schema",),
    "REDIS_URL": ("redis_url",),
    "REDIS_KEY_PREFIX": ("redis_key_prefix",),
    "QDRANT_URL": ("qdrant_url",),
    "QDRANT_API_KEY": ("qdrant_api_key",),
    "AIWFE_API_URL": ("aiwfe_api_url",),
    "AIWFE_API_KEY": ("aiwfe_api_key",),
    "AIWFE_WEBHOOK_SECRET": ("aiwfe_webhook_secret",),
    "PIECES_DEFAULT_URL": ("pieces", "default_url"),
    "ENCRYPTION_KEY": ("encryption_key",),
    "PIECES_ENCRYPTION_KEY": ("encryption_key",),
    "PIECES_INTEGRATION_DATA_DIR": ("data_dir",),
    "JWT_SECRET": ("auth", "jwt_secret"),
    "JWT_PUBLIC_KEY": ("auth", "jwt_public_key"),
    "JWKS_URL": ("auth", "jwks_url"),
    "RATE_LIMIT_PER_MINUTE": ("api", "rate_limit_per_minute"),
    "RATE_LIMIT_BURST": ("api", "rate_limit_burst"),
    "TENANT_CLAIM": ("auth", "tenant_claim"),
    "TENANT_RATE_LIMIT_PER_MINUTE": ("api", "tenant_rate_limit_per_minute"),
    "TENANT_RATE_LIMIT_BURST": ("api", "tenant_rate_limit_burst"),
    "AUTH_FAILURES_PER_ADDRESS": ("auth", "failures_per_address"),
    "AUTH_FAILURES_PER_IDENTITY": ("auth", "failures_per_identity"),
    "AUTH_LOCKOUT_SECONDS": ("auth", "lockout_seconds"),
    "AUTH_LOCKOUT_MAX_SECONDS": ("auth", "lockout_max_seconds"),
    "MCP_READ_ONLY": ("mcp", "read_only"),
    "MCP_ALLOWED_HOSTS": ("mcp", "allowed_hosts"),
    "MCP_ALLOWED_ORIGINS": ("mcp", "allowed_origins"),
}


def _environment_name(environ: Mapping[str, str]) -> str:
    return environ.get("APP_ENV") or environ.get("PIECES_INTEGRATION_ENV") or "development"


def _set_path(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value


class SpecEnvironmentSource(PydanticBaseSettingsSource):
    """Reads the plain environment names of the spec's deployment."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything is produced in __call__

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, path in SPEC_ENV_NAMES.items():
            raw = os.environ.get(name)
            if raw is not None and raw != "":
                _set_path(values, path, raw)
        return values


class YamlFileSource(YamlConfigSettingsSource):
    """`CONFIG_FILE`, or `config/<APP_ENV>.yaml` in the working directory if present, read by
    pydantic-settings' own YAML source; only the file's choice and the errors are ours."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls, yaml_file=config_file_path(os.environ))

    def _read_file(self, file_path: Path | Traversable) -> dict[str, Any]:
        try:
            loaded: Any = super()._read_file(file_path)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{file_path}: not valid YAML ({exc})".replace("\n", " ")) from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{file_path}: the top level must be a mapping of sections")
        return loaded


def config_file_path(environ: Mapping[str, str]) -> Path | None:
    explicit = environ.get("CONFIG_FILE")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"CONFIG_FILE: {path} does not exist")
        return path
    candidate = Path("config") / f"{_environment_name(environ)}.yaml"
    return candidate if candidate.is_file() else None


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem: `key.path: message` (the first is what start-up prints)."""
    lines = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "settings"
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{location}: {message}")
    return "; ".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Build Settings from defaults, the YAML file and the environment; ConfigError if invalid."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None
