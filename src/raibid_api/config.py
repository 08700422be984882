"""The settings model: one YAML file, overridden by ``RAIBID_*`` environment variables, validated.

`load_settings` is the only way to get a `Settings`; nothing reads configuration at import time.
Precedence, highest first: keyword arguments > environment > YAML file > defaults.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from raibid_api import __version__
from raibid_api.errors import ConfigError

ENV_PREFIX = "RAIBID_"
ENV_CONFIG_PATH = "RAIBID_CONFIG"

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PLACEHOLDER_SECRETS = frozenset({"...", "changeme", "changethis", "secret", "xxx"})
_LOOPBACK = {4: ipaddress.ip_address("127.0.0.1"), 6: ipaddress.ip_address("::1")}


def parse_duration(value: object) -> object:
    """Turn ``90s``, ``5m``, ``1h30m``, ``24h`` or a number of seconds into a `timedelta`."""
    if isinstance(value, timedelta | bool):
        return value
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if not isinstance(value, str):
        raise ValueError("expected a duration such as 90s, 5m or 24h")
    text = value.strip().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", text):
        text += "s"
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{value!r} is not a duration; use e.g. 90s, 5m, 1h30m or 24h")
    try:
        return timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in parts))
    except OverflowError:
        raise ValueError(f"{value!r} is too long a duration") from None


def format_duration(value: timedelta) -> str:
    """Render a `timedelta` the way the configuration spells durations (``90s``, ``24h``)."""
    seconds = value.total_seconds()
    for unit in ("d", "h", "m", "s"):
        size = _UNIT_SECONDS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
PositiveDuration = Annotated[Duration, Field(gt=timedelta(0))]
FORGE_DELIVERY_TIMEOUT = timedelta(seconds=5)
"""How long Gitea waits for the answer to a delivery (the shortest of the forges), unretried."""


def _below_forge_timeout(value: timedelta) -> timedelta:
    if value >= FORGE_DELIVERY_TIMEOUT:
        raise ValueError("must be below 5s, the time Gitea waits for the answer to a delivery")
    return value


DeliveryDeadline = Annotated[PositiveDuration, AfterValidator(_below_forge_timeout)]
"""A wait within the handling of one delivery: the forge must have its answer before it leaves."""


class Section(BaseModel):
    """Base of every configuration section: unknown keys are errors, ``<name>_file`` reads a secret.

    A key ``<name>_file`` beside a secret field ``<name>`` names a file (a mounted Kubernetes
    secret) whose content, stripped of surrounding white space, becomes the secret.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        resolved = dict(data)
        for key, value in data.items():
            if not (isinstance(key, str) and key.endswith("_file")):
                continue
            field = key.removesuffix("_file")
            if field not in cls.model_fields:
                continue
            del resolved[key]
            if value is None:
                continue
            try:
                resolved[field] = Path(value).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"{key}: cannot read {value}: {exc.strerror}") from None
        return resolved


def _reject_placeholder(secret: SecretStr) -> SecretStr:
    if not secret.get_secret_value():
        raise ValueError("is empty; leave the key out instead")
    if secret.get_secret_value().strip().lower() in _PLACEHOLDER_SECRETS:
        raise ValueError("is a placeholder; set a real secret")
    return secret


Secret = Annotated[SecretStr, AfterValidator(_reject_placeholder)]


class ServerSettings(Section):
    """Where the HTTP server listens and how it names itself in links.

    ``public_url: null`` (the default) names the server by the address it listens on; `serve`
    fills it in with the address it actually bound (``--port 0`` picks a free port).
    """

    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8080, ge=1, le=65535)
    public_url: str | None = None
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    environment: Literal["development", "production"] = "development"
    header_timeout: PositiveDuration = timedelta(seconds=30)
    body_timeout: PositiveDuration = timedelta(seconds=30)
    max_header_bytes: int = Field(default=65_536, ge=4096, le=1_048_576)
    max_headers: int = Field(default=100, ge=16, le=1000)
    max_connections: int = Field(default=4096, ge=16, le=1_000_000)
    shutdown_grace: PositiveDuration = timedelta(seconds=30)
    """How long `serve` takes at most to stop on SIGTERM/SIGINT (its pod's grace, minus preStop)."""

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an absolute http(s) URL")
        return value.rstrip("/")

    @property
    def local_url(self) -> str:
        """``http://host:port``, a wildcard host (``0.0.0.0``, ``::``) named by its loopback."""
        try:
            address = ipaddress.ip_address(self.host)
        except ValueError:  # a host name
            return f"http://{self.host}:{self.port}"
        if address.is_unspecified:
            address = _LOOPBACK[address.version]
        host = f"[{address}]" if address.version == 6 else str(address)
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The URL links are built from: `public_url`, else `local_url`."""
        return self.public_url or self.local_url


class SentinelSettings(Section):
    """Redis behind Sentinel: the master's name and where its Sentinels listen."""

    master: str | None = Field(default=None, min_length=1)
    addresses: list[str] = Field(default_factory=list)
    password: Secret | None = None
    """The Sentinels' own password (``requirepass`` in their configuration), if they have one."""

    @field_validator("addresses")
    @classmethod
    def _host_port(cls, value: list[str]) -> list[str]:
        for address in value:
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{address!r} is not host:port")
        return value

    @model_validator(mode="after")
    def _both_or_neither(self) -> SentinelSettings:
        if bool(self.master) != bool(self.addresses):
            raise ValueError("give both master and addresses, or neither")
        return self

    def endpoints(self) -> list[tuple[str, int]]:
        """The Sentinels as (host, port)."""
        found = []
        for address in self.addresses:
            host, _, port = address.rpartition(":")
            found.append((host.strip("[]"), int(port)))
        return found


class RedisSettings(Section):
    """The Redis server; ``url: null`` (and no Sentinel) starts a private embedded one."""

    url: SecretStr | None = None
    sentinel: SentinelSettings = SentinelSettings()
    password: Secret | None = None
    """With Sentinel: the password of the master and replicas (a URL carries its own)."""
    db: int = Field(default=0, ge=0)
    """With Sentinel: the database number (a URL names its own)."""
    min_replica_acks: int | None = Field(default=None, ge=0)
    """Replicas that must hold a webhook's job before it is acknowledged; None: 1 with Sentinel."""
    replica_ack_timeout: DeliveryDeadline = timedelta(milliseconds=500)
    key_prefix: str = Field(default="raibid", min_length=1, pattern=r"^[^\s:]+$")
    data_dir: Path = Path(".raibid/redis")
    binary: Path | None = None
    max_connections: int = Field(default=64, ge=2, le=10_000)
    socket_timeout: PositiveDuration = timedelta(seconds=5)
    connect_timeout: PositiveDuration = timedelta(seconds=2)
    pool_timeout: PositiveDuration = timedelta(seconds=5)

    @model_validator(mode="after")
    def _one_way_in(self) -> RedisSettings:
        if self.url is not None and self.sentinel.master:
            raise ValueError("give url or sentinel, not both")
        return self

    @property
    def external(self) -> bool:
        """A Redis of the operator's (a URL or Sentinels), not the embedded one."""
        return self.url is not None or bool(self.sentinel.master)

    @property
    def replica_acks(self) -> int:
        """`min_replica_acks`, its default filled in: 1 with Sentinel, else 0."""
        if self.min_replica_acks is not None:
            return self.min_replica_acks
        return 1 if self.sentinel.master else 0


Scope = Literal["read", "write", "agent"]
EventKind = Literal["push", "tag", "pull_request"]
CloneScheme = Literal["https", "http", "ssh", "git", "file"]


class TokenSettings(Section):
    """One bearer token: its name, scopes, and either its value or the sha256 hex of its value."""

    name: str = Field(min_length=1)
    scopes: list[Scope] = Field(min_length=1)
    value: Secret | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")

    @model_validator(mode="after")
    def _exactly_one_form(self) -> TokenSettings:
        if (self.value is None) == (self.sha256 is None):
            raise ValueError("give exactly one of value, value_file or sha256")
        return self


class AuthSettings(Section):
    """Who may call what."""

    anonymous_read: bool = False
    tokens: list[TokenSettings] = Field(default_factory=list)
    stream_token_secret: Secret | None = None

    @model_validator(mode="after")
    def _unique_names(self) -> AuthSettings:
        names = [t.name for t in self.tokens]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"token names must be unique: {', '.join(duplicates)}")
        return self


class RepoWebhookSettings(Section):
    """Per-repository webhook rules (keyed by ``owner/name``)."""

    secret: Secret | None = None
    branches: list[str] = Field(default_factory=list)
    exclude_branches: list[str] = Field(default_factory=list)
    events: list[EventKind] | None = None
    paths: list[str] = Field(default_factory=list)
    auto_cancel_exempt: list[str] | None = None


class ForgeWebhookSettings(Section):
    """The secrets one forge signs its deliveries with (several at once during a rotation)."""

    secret: Secret | None = None
    secrets: list[Secret] = Field(default_factory=list)
    authorization: Secret | None = None

    def all_secrets(self) -> list[SecretStr]:
        """The current secret first, then the ones still accepted during a rotation."""
        return ([self.secret] if self.secret else []) + list(self.secrets)


class WebhookSettings(Section):
    """The intake of forge webhooks."""

    gitea: ForgeWebhookSettings = ForgeWebhookSettings()
    forgejo: ForgeWebhookSettings = ForgeWebhookSettings()
    github: ForgeWebhookSettings = ForgeWebhookSettings()
    allow_unsigned: bool = False
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    branches: list[str] = Field(default_factory=list)
    exclude_branches: list[str] = Field(default_factory=list)
    events: list[EventKind] = Field(default_factory=lambda: list(get_args(EventKind)))
    auto_cancel: bool = True
    auto_cancel_running: bool = False
    auto_cancel_exempt: list[str] = Field(default_factory=lambda: ["main", "master"])
    rate_limit_per_minute: int = Field(default=600, ge=1)
    # past it a delivery is spooled, so that its answer leaves long before the forge gives up
    store_deadline: DeliveryDeadline = timedelta(seconds=2.5)
    # past it a delivery is let in uncounted: a slow Redis must not hold every delivery up
    rate_limit_deadline: DeliveryDeadline = timedelta(milliseconds=500)
    spool_dir: Path | None = Path(".raibid/spool")
    spool_max_bytes: int = Field(default=256 * 1_048_576, ge=0)
    repos: dict[str, RepoWebhookSettings] = Field(default_factory=dict)


class JobSettings(Section):
    """The job lifecycle."""

    retention: PositiveDuration = timedelta(hours=24)
    max_attempts: int = Field(default=3, ge=1, le=100)
    lease: PositiveDuration = timedelta(seconds=60)
    timeout: PositiveDuration = timedelta(hours=1)
    clone_url_schemes: list[CloneScheme] = Field(
        default_factory=lambda: list(get_args(CloneScheme)), min_length=1
    )
    reaper_interval: PositiveDuration = timedelta(seconds=5)


class LogSettings(Section):
    """Job logs and their live stream."""

    max_lines: int = Field(default=100_000, ge=100)
    heartbeat: PositiveDuration = timedelta(seconds=15)
    max_batch_lines: int = Field(default=5_000, ge=1)
    max_line_bytes: int = Field(default=65_536, ge=256)
    status_events_max: int = Field(default=10_000, ge=100)
    stream_token_ttl: PositiveDuration = timedelta(minutes=5)


class MetricsSettings(Section):
    """`GET /metrics`, the Prometheus text format (docs/operations.md, "Metrics")."""

    enabled: bool = True
    anonymous: bool = False
    cache: PositiveDuration = timedelta(seconds=2)


class LoggingSettings(Section):
    """The server's own log output."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class KubernetesSettings(Section):
    """How agent Jobs are created in ``dispatch.mode: kubernetes``."""

    namespace: str = "ci"
    # the agent is `raibid-api agent` of the server's own image, at this release's version
    image: str = f"ghcr.io/raibid-ci/raibid-api:{__version__}"
    service_account: str | None = "raibid-agent"
    # requests: what the scheduler reserves per build; limits: what one build may burst to.
    # Why these four: "Agents' size" in docs/deployment.md.
    cpu: str = "1"
    memory: str = "2Gi"
    cpu_limit: str = "2"
    memory_limit: str = "4Gi"
    ttl_seconds_after_finished: int = Field(default=3600, ge=0)
    node_selector: dict[str, str] = Field(default_factory=lambda: {"kubernetes.io/arch": "arm64"})


class KedaSettings(Section):
    """Who may claim in ``dispatch.mode: keda``: the agent pods' ServiceAccount, by TokenReview."""

    namespace: str = "ci"
    service_account: str = "raibid-agent"
    audience: str = "raibid-api"
    # how long the server remembers that a pod claimed its one job (longer than any pod lives)
    pod_claim_ttl: PositiveDuration = timedelta(days=7)


class DispatchSettings(Section):
    """Who runs the jobs."""

    mode: Literal["local", "keda", "kubernetes", "none"] = "local"
    local_concurrency: int = Field(default=1, ge=1, le=64)
    local_workspace: Path = Path(".raibid/workspaces")
    kubernetes: KubernetesSettings = KubernetesSettings()
    keda: KedaSettings = KedaSettings()


class ForgeApiSettings(Section):
    """Where commit statuses go for one forge."""

    url: str | None = None
    token: Secret | None = None
    context: str = "raibid-ci"


class GitHubApiSettings(ForgeApiSettings):
    """Where commit statuses go on GitHub (or a GitHub Enterprise API)."""

    url: str | None = "https://api.github.com"


class ForgeSettings(Section):
    """Commit status reporting, one entry per forge."""

    gitea: ForgeApiSettings = ForgeApiSettings()
    forgejo: ForgeApiSettings = ForgeApiSettings()
    github: GitHubApiSettings = GitHubApiSettings()


_config_path: ContextVar[Path | None] = ContextVar("raibid_config_path", default=None)


OTEL_ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
OTEL_TRACES_ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"


class TracingSettings(Section):
    """OpenTelemetry traces, exported over OTLP/HTTP (protobuf) when an endpoint is known."""

    otlp_endpoint: str | None = None
    """The collector's base URL (``http://otel-collector:4318``); traces go to ``/v1/traces``."""

    @field_validator("otlp_endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an absolute http(s) URL, such as http://otel-collector:4318")
        return value

    def traces_url(self, environ: Mapping[str, str]) -> str | None:
        """Where spans go: ``otlp_endpoint``, else the standard OpenTelemetry variables; or None.

        ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is the full URL, ``OTEL_EXPORTER_OTLP_ENDPOINT``
        a base URL, as the OpenTelemetry specification has them; ``OTEL_SDK_DISABLED=true``
        turns tracing off whatever the rest says.
        """
        if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            return None
        if self.otlp_endpoint is not None:
            return f"{self.otlp_endpoint.rstrip('/')}/v1/traces"
        if environ.get(OTEL_TRACES_ENDPOINT_ENV):
            return environ[OTEL_TRACES_ENDPOINT_ENV]
        if environ.get(OTEL_ENDPOINT_ENV):
            return f"{environ[OTEL_ENDPOINT_ENV].rstrip('/')}/v1/traces"
        return None


class Settings(BaseSettings):
    """The whole configuration of one raibid-api process."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    server: ServerSettings = ServerSettings()
    redis: RedisSettings = RedisSettings()
    auth: AuthSettings = AuthSettings()
    webhooks: WebhookSettings = WebhookSettings()
    jobs: JobSettings = JobSettings()
    logs: LogSettings = LogSettings()
    logging: LoggingSettings = LoggingSettings()
    metrics: MetricsSettings = MetricsSettings()
    dispatch: DispatchSettings = DispatchSettings()
    forges: ForgeSettings = ForgeSettings()
    tracing: TracingSettings = TracingSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then ``RAIBID_*`` env, then the YAML file given to `load_settings`."""
        path = _config_path.get()
        if path is None:
            return (init_settings, env_settings)
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls, yaml_file=path))

    @model_validator(mode="after")
    def _production_needs_external_redis(self) -> Settings:
        if self.server.environment == "production" and not self.redis.external:
            raise ValueError(
                "redis.url: production needs an external Redis (the embedded one "
                "is for development)"
            )
        return self


def _check_yaml(path: Path) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of sections at the top level")


def _check_env_sections() -> None:
    known = {name.upper() for name in Settings.model_fields}
    for name in os.environ:
        # only RAIBID_<SECTION>__<KEY> configures anything; other RAIBID_* names (such as the
        # RAIBID_API_PORT service links Kubernetes injects) are not ours to judge
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section = name.removeprefix(ENV_PREFIX).split("__", 1)[0]
        if section not in known:
            listed = ", ".join(sorted(known)).lower()
            problem = f"{name}: unknown section {section.lower()!r} (known: {listed})"
            raise ConfigError("invalid configuration", [problem])


def describe_validation_error(exc: ValidationError) -> list[str]:
    """One line per problem: the dotted key path and the reason, never the offending value."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        path = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        problems.append(f"{path}: {message.removeprefix('Value error, ')}")
    return problems


def secret_values(settings: BaseModel) -> list[str]:
    """Every secret value in ``settings`` (tokens, webhook secrets, the Redis URL)."""
    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    walk(settings)
    return found


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from the YAML file at ``path`` (or ``$RAIBID_CONFIG``) and the env.

    Raises:
        ConfigError: the file is unreadable or not YAML, or a key is unknown or invalid;
            ``problems`` names each key path with its reason.
    """
    if path is None and os.environ.get(ENV_CONFIG_PATH):
        path = Path(os.environ[ENV_CONFIG_PATH])
    if path is not None:
        _check_yaml(path)
    _check_env_sections()
    token = _config_path.set(path)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError("invalid configuration", describe_validation_error(exc)) from None
    finally:
        _config_path.reset(token)
