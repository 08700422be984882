"""The `raibid-api` command: serve, agent, config check, openapi."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
import uvicorn
import yaml

from raibid_api.config import Settings, load_settings, parse_duration, secret_values
from raibid_api.errors import AuthenticationError, ConfigError, PermissionDeniedError
from raibid_api.observability.logging import SecretRedactor, configure_logging

app = typer.Typer(help="raibid-api: the orchestration server of raibid-ci.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

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


@app.command()
def serve(config: ConfigOption = None) -> None:
    """Start the server (with an embedded Redis when redis.url is not set)."""
    settings = _load(config)
    configure_logging(settings.logging.level, settings.logging.format, secret_values(settings))
    from raibid_api.app import create_app  # imported here: `config check` needs none of it

    base = settings.server.public_url
    where = config or "built-in defaults (no --config, no $RAIBID_CONFIG)"
    redis = "external" if settings.redis.url else f"embedded, data in {settings.redis.data_dir}"
    typer.echo(
        f"raibid-api listening on http://{settings.server.host}:{settings.server.port}\n"
        f"  jobs:     {base}/jobs\n"
        f"  webhook:  {base}/webhook/gitea  (also /webhook/forgejo, /webhook/github)\n"
        f"  api docs: {base}/docs\n"
        f"  config:   {where}\n"
        f"  redis:    {redis}",
        err=True,
    )
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again under the handler it
    # found installed: make that one exit 0, since a requested, completed shutdown is a success
    signal.signal(signal.SIGTERM, _exit_after_shutdown)
    server_config = uvicorn.Config(
        create_app(settings),
        host=settings.server.host,
        port=settings.server.port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )
    _Server(server_config).run()


class _Server(uvicorn.Server):
    """uvicorn's server, ending live log streams as soon as a shutdown is asked for.

    uvicorn waits for open responses before it runs the app's shutdown, and a log stream stays
    open until its job ends (a held heartbeat too, and a claim until its wait is over): without
    this, every shutdown would wait out its grace period.
    """

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        app = self.config.app
        state = getattr(getattr(app, "state", None), "raibid", None)
        if state is not None:
            with contextlib.suppress(RuntimeError):  # no loop running: nothing is streaming
                asyncio.get_running_loop().call_soon_threadsafe(state.live_logs.fanout.close_all)
                # long-polling claims end too, or they would hold the shutdown until they time out
                asyncio.get_running_loop().call_soon_threadsafe(state.agents.drain)
        super().handle_exit(sig, frame)


@app.command()
def agent(
    server: Annotated[str, typer.Option(help="The raibid-api server URL.")],
    token: Annotated[
        str, typer.Option(envvar="RAIBID_AGENT_TOKEN", help="Agent-scoped bearer token.")
    ],
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
    """Run the reference build agent against a server."""
    from raibid_api.agent.worker import run_agent

    configure_logging("info", "auto")
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


@app.command()
def openapi() -> None:
    """Print the OpenAPI document the server serves at /openapi.json."""
    from raibid_api.app import create_app

    spec = create_app(Settings()).openapi()
    sys.stdout.write(json.dumps(spec, indent=2, sort_keys=True) + "\n")
