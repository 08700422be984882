"""The `raibid-api` command: serve, agent, config check, dispatch render, openapi, jobs, logs."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, NoReturn

import structlog
import typer
import uvicorn
import yaml

from raibid_api.api.connections import ConnectionLimits, guarded_protocol
from raibid_api.client import commands as client
from raibid_api.config import (
    RedisSettings,
    Settings,
    load_settings,
    parse_duration,
    secret_values,
)
from raibid_api.embedded import DataDirLock
from raibid_api.errors import AuthenticationError, ConfigError, PermissionDeniedError
from raibid_api.observability.logging import SecretRedactor, configure_logging

if TYPE_CHECKING:
    from raibid_api.api.deps import AppState

app = typer.Typer(help="raibid-api: the orchestration server of raibid-ci.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
dispatch_app = typer.Typer(help="Inspect what the dispatcher creates.", no_args_is_help=True)
app.add_typer(dispatch_app, name="dispatch")
app.add_typer(client.jobs_app, name="jobs")
app.command("logs")(client.logs)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML configuration file (default: $RAIBID_CONFIG)."),
]


def _load(path: Path | None) -> Settings:
    try:
        return load_settings(path)
    except ConfigError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        for problem in exc.problems:
            typer.echo(f"  - {problem}", err=True)
        raise typer.Exit(2) from None


def masked_config(settings: Settings) -> dict[str, object]:
    """The effective configuration with every secret shown as ``***``."""
    data = settings.model_dump(mode="json")
    redactor = SecretRedactor(secret_values(settings))
    text = redactor.redact_text(json.dumps(data))
    return dict(json.loads(text.replace('"**********"', '"***"')))


def _exit_after_shutdown(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


HostOption = Annotated[
    str | None, typer.Option("--host", help="Address to listen on (default: server.host).")
]
PortOption = Annotated[
    int | None,
    typer.Option(
        "--port", min=0, max=65535, help="Port; 0 picks a free one (default: server.port)."
    ),
]


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port`` (the family chosen as uvicorn chooses it)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen()
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            reason = "address already in use (is another raibid-api running? use --port)"
        else:
            text = exc.strerror or str(exc)
            reason = text[:1].lower() + text[1:]
        _fail(f"cannot listen on {_address(host, port)}: {reason}")
    return sock


@contextlib.contextmanager
def _claim_data_dir(redis: RedisSettings) -> Iterator[None]:
    """Hold the embedded Redis data folder while the server lives (an external Redis: nothing)."""
    if redis.external:
        yield
        return
    try:
        lock = DataDirLock(redis.data_dir).acquire()
    except ConfigError as exc:
        _fail(exc.message)
    try:
        yield
    finally:
        lock.release()


# files the server keeps open besides its connections: Redis pools, the spool, logs, the agent
_FILES_BESIDE_CONNECTIONS = 256


def _fit_open_files(max_connections: int) -> None:
    """Raise the soft open-files limit so that ``max_connections`` fit (up to the hard limit)."""
    wanted = max_connections + _FILES_BESIDE_CONNECTIONS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        if raised < wanted:
            typer.echo(
                f"warning: the open-files limit is {raised} (hard limit): fewer than "
                f"server.max_connections ({max_connections}) connections fit",
                err=True,
            )


def _bound_to(settings: Settings, sock: socket.socket) -> Settings:
    """``settings`` naming the address ``sock`` got; an unset public_url follows it."""
    host, port = sock.getsockname()[:2]
    server = settings.server.model_copy(update={"host": host, "port": port})
    server = server.model_copy(update={"public_url": server.base_url})
    return settings.model_copy(update={"server": server})


def _banner(settings: Settings, config: Path | None) -> str:
    base = settings.server.base_url
    where = config or "built-in defaults (no --config, no $RAIBID_CONFIG)"
    redis = (
        "external" if settings.redis.external else f"embedded, data in {settings.redis.data_dir}"
    )
    return (
        f"raibid-api ready, listening on "
        f"http://{_address(settings.server.host, settings.server.port)}\n"
        f"  web:      {base}/\n"
        f"  jobs:     {base}/jobs\n"
        f"  webhook:  {base}/webhook/gitea  (also /webhook/forgejo, /webhook/github)\n"
        f"  api docs: {base}/docs\n"
        f"  config:   {where}\n"
        f"  redis:    {redis}"
    )


@app.command()
def serve(config: ConfigOption = None, host: HostOption = None, port: PortOption = None) -> None:
    """Start the server (with an embedded Redis when redis.url is not set)."""
    settings = _load(config)
    configure_logging(settings.logging.level, settings.logging.format, secret_values(settings))
    # bound before the app exists, so the app is told the address it really got (--port 0)
    where = (host or settings.server.host, settings.server.port if port is None else port)
    with _listen(*where) as sock, _claim_data_dir(settings.redis):
        from raibid_api.app import create_app  # imported late: a refusal needs none of it

        settings = _bound_to(settings, sock)
        # uvicorn shuts down gracefully on SIGTERM, then raises the signal again under the
        # handler it found installed: make that one exit 0, since a requested, completed
        # shutdown is a success
        signal.signal(signal.SIGTERM, _exit_after_shutdown)
        _fit_open_files(settings.server.max_connections)
        server_config = uvicorn.Config(
            create_app(settings),
            loop="uvloop",
            http=guarded_protocol(ConnectionLimits.of(settings.server)),
            log_config=None,
            access_log=False,
            proxy_headers=True,
        )
        grace = settings.server.shutdown_grace.total_seconds()
        _Server(server_config, _banner(settings, config), grace).run(sockets=[sock])


_log = structlog.get_logger("raibid_api")
_LOCAL_AGENT_MAX_S = 10.0  # the most of the grace the built-in agent's hand-back may take


class _Server(uvicorn.Server):
    """uvicorn's server, announcing itself once ready, and stopping within ``shutdown_grace``.

    On SIGTERM/SIGINT (`handle_exit`), live log streams end with a `retry` hint, held heartbeats
    answer and long-polling claims answer "no job": uvicorn waits for open responses before it
    runs the app's shutdown, and these would otherwise hold it until its timeout. Then
    (`shutdown`), while still listening, the built-in agent is stopped and hands its jobs back
    over HTTP; then uvicorn stops accepting, lets in-flight requests finish within what is left
    of the grace (minus a reserve for the app's own shutdown), and runs the app's shutdown.
    """

    def __init__(self, config: uvicorn.Config, banner: str, shutdown_grace: float) -> None:
        super().__init__(config)
        self._banner = banner
        self._grace = shutdown_grace
        self._stop_asked: float | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start the app, then serve on ``sockets``; print the banner only if both succeeded."""
        await super().startup(sockets=sockets)
        # here the lifespan has run (Redis up, state built) and the socket is being served: the
        # lifespan itself could not say so, as it does not know the address and starts under
        # test clients that serve none
        if self.started and not self.should_exit:
            typer.echo(self._banner, err=True)

    def _state(self) -> AppState | None:
        state: AppState | None = getattr(getattr(self.config.app, "state", None), "raibid", None)
        return state

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """A stop was asked (SIGTERM, SIGINT): end what would hold the shutdown up."""
        if self._stop_asked is None:
            self._stop_asked = time.monotonic()
        state = self._state()
        if state is not None:
            with contextlib.suppress(RuntimeError):  # no loop running: nothing is streaming
                asyncio.get_running_loop().call_soon_threadsafe(state.live_logs.fanout.close_all)
                # long-polling claims end too, or they would hold the shutdown until they time out
                asyncio.get_running_loop().call_soon_threadsafe(state.agents.drain)
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Hand the built-in agent's jobs back, then uvicorn's shutdown, all within the grace."""
        asked = self._stop_asked if self._stop_asked is not None else time.monotonic()
        state = self._state()
        if state is not None and state.local_agent is not None:
            _log.info("stopping the built-in agent; its running jobs are handed back")
            await state.local_agent.hand_back(min(_LOCAL_AGENT_MAX_S, self._grace / 3))
        # the app's shutdown (background loops, Redis, the embedded Redis) keeps a reserve
        left = self._grace - (time.monotonic() - asked) - min(5.0, self._grace / 4)
        self.config.timeout_graceful_shutdown = max(1, int(left))
        await super().shutdown(sockets=sockets)


@app.command()
def agent(
    server: Annotated[str, typer.Option(help="The raibid-api server URL.")],
    token: Annotated[
        str | None,
        typer.Option(envvar="RAIBID_AGENT_TOKEN", help="Agent-scoped bearer token."),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(help="Read the token from this file, then delete it (instead of --token)."),
    ] = None,
    agent_id: Annotated[str | None, typer.Option(help="Name (default: host-pid).")] = None,
    once: Annotated[bool, typer.Option(help="Claim one job, run it, exit.")] = False,
    concurrency: Annotated[int, typer.Option(min=1, max=64)] = 1,
    workspace: Annotated[Path | None, typer.Option(help="Where checkouts go.")] = None,
    label: Annotated[list[str] | None, typer.Option(help="Label (repeatable).")] = None,
    job_timeout: Annotated[str, typer.Option(help="Default step timeout, e.g. 1h.")] = "1h",
    secret_env: Annotated[
        list[str] | None,
        typer.Option(help="Name of an env var steps may ask for (masked in logs; repeatable)."),
    ] = None,
) -> None:
    """Run the reference build agent against a server.

    Its build steps cannot read its token: it hides its own process from them (not dumpable) and
    deletes --token-file once read.
    """
    from raibid_api.agent.credentials import hide_process, take_token_file
    from raibid_api.agent.worker import run_agent

    configure_logging("info", "auto")
    if token is not None and token_file is not None:
        raise typer.BadParameter("give --token or --token-file, not both")
    hide_process()
    if token_file is not None:
        try:
            token = take_token_file(token_file)
        except ConfigError as exc:
            _fail("; ".join(exc.problems))
    if token is None:
        raise typer.BadParameter("give --token (or RAIBID_AGENT_TOKEN) or --token-file")
    try:
        timeout = parse_duration(job_timeout)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--job-timeout") from None
    names = secret_env or []
    missing = [name for name in names if name not in os.environ]
    if missing:
        raise typer.BadParameter(f"not set: {', '.join(missing)}", param_hint="--secret-env")
    try:
        asyncio.run(
            run_agent(
                server, token, agent_id, once=once, concurrency=concurrency,
                workspace_root=workspace, labels=label or [],
                job_timeout=timeout.total_seconds() if isinstance(timeout, timedelta) else 3600.0,
                secrets={name: os.environ[name] for name in names}, handle_signals=True,
            )
        )  # fmt: skip
    except (AuthenticationError, PermissionDeniedError) as exc:
        typer.echo(f"error: the server refused the agent token: {exc.message}", err=True)
        raise typer.Exit(2) from None


@config_app.command("check")
def config_check(config: ConfigOption = None) -> None:
    """Validate the configuration and print it, secrets masked; exit 2 when invalid."""
    settings = _load(config)
    typer.echo(yaml.safe_dump(masked_config(settings), sort_keys=False), nl=False)


class _PlainDumper(yaml.SafeDumper):
    """YAML without anchors: an object shared by two places is written out in both."""

    def ignore_aliases(self, data: object) -> bool:
        return True


async def _attempt_of(settings: Settings, job_id: str) -> int:
    """The current attempt of ``job_id``, read from the configured Redis."""
    from raibid_api.storage.connection import create_redis
    from raibid_api.storage.job_store import JobStore
    from raibid_api.storage.keys import Keys

    if settings.redis.url is None:
        _fail("--job-id reads the job from Redis: set redis.url (an embedded Redis is not read)")
    redis = create_redis(settings.redis.url.get_secret_value(), settings.redis)
    try:
        store = JobStore(redis, Keys(settings.redis.key_prefix), retention_s=0, status_maxlen=1)
        job = await store.get(job_id)
    finally:
        await redis.aclose()
    if job is None:
        _fail(f"no job {job_id}")
    return int(job["attempt"])


@dispatch_app.command("render")
def dispatch_render(
    config: ConfigOption = None,
    job_id: Annotated[
        str | None, typer.Option(help="A job in Redis (default: an example job, attempt 1).")
    ] = None,
) -> None:
    """Print as YAML the objects dispatch.mode kubernetes would create for a job; create none.

    The claim token is shown as a placeholder, and the Secret's owner uid as zeros.
    """
    from raibid_api.dispatch.manifests import AgentJobTemplate
    from raibid_api.dispatch.render import EXAMPLE_JOB_ID, render_agent_objects
    from raibid_api.domain.jobs import parse_job_id
    from raibid_api.errors import InvalidJobIdError, ServiceUnavailableError

    configure_logging("warning", "auto")  # stdout is the YAML alone
    settings = _load(config)
    try:
        job = parse_job_id(job_id) if job_id else EXAMPLE_JOB_ID
        attempt = asyncio.run(_attempt_of(settings, job)) if job_id else 1
    except InvalidJobIdError as exc:
        _fail(exc.message)
    except ServiceUnavailableError as exc:
        _fail(f"cannot read the job: {exc.message}")
    template = AgentJobTemplate.from_settings(settings)
    objects = asyncio.run(render_agent_objects(template, job, attempt))
    typer.echo(yaml.dump_all(objects, Dumper=_PlainDumper, sort_keys=False), nl=False)


@app.command()
def openapi() -> None:
    """Print the OpenAPI document the server serves at /openapi.json."""
    from raibid_api.app import create_app

    spec = create_app(Settings()).openapi()
    sys.stdout.write(json.dumps(spec, indent=2, sort_keys=True) + "\n")
