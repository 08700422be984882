"""The terminal client's commands (`raibid-api jobs ...`, `raibid-api logs ...`), kept off cli.py.

Each command builds an `ApiClient` from ``--url``/``--token``/``--token-file`` (or
``RAIBID_API_URL``/``RAIBID_TOKEN``/``RAIBID_TOKEN_FILE``), makes its calls, and prints through
`Output`. Every `ClientError` becomes one ``error: ...`` line on stderr and its exit status.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from raibid_api.client import exits
from raibid_api.client.follow import Retry, follow
from raibid_api.client.http import ApiClient, ClientError, Connection, Job, check_url
from raibid_api.client.output import Output, status_text
from raibid_api.domain.jobs import JobEvent, JobStatus, parse_job_id
from raibid_api.errors import InvalidJobIdError

DEFAULT_URL = "http://127.0.0.1:8080"

jobs_app = typer.Typer(
    help="List, show, cancel, retry and run jobs on a server (RAIBID_API_URL, RAIBID_TOKEN).",
    no_args_is_help=True,
)

UrlOption = Annotated[
    str,
    typer.Option("--url", envvar="RAIBID_API_URL", help="The server's URL."),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token", envvar="RAIBID_TOKEN", show_default=False,
        help="Bearer token (better: RAIBID_TOKEN or --token-file; a flag shows in `ps`).",
    ),
]  # fmt: skip
TokenFileOption = Annotated[
    Path | None,
    typer.Option(
        "--token-file", envvar="RAIBID_TOKEN_FILE", show_default=False,
        help="A file holding the bearer token (used when no token is given).",
    ),
]  # fmt: skip
JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON.")]
FollowOption = Annotated[
    bool,
    typer.Option("--follow", "-f", help="Follow the job's log to its end; exit with its outcome."),
]
ReconnectOption = Annotated[
    float,
    typer.Option(
        "--reconnect-for", min=0.0, metavar="SECONDS",
        help="With -f: how long to keep reconnecting to a server that went away.",
    ),
]  # fmt: skip


def _job_id(text: str) -> str:
    """A job id as the server writes it; anything else is refused before any call."""
    try:
        return parse_job_id(text.strip())
    except InvalidJobIdError as exc:
        raise typer.BadParameter(exc.message) from None


JobArgument = Annotated[
    str, typer.Argument(help="The job id.", show_default=False, callback=_job_id)
]


def fail(message: str, code: int) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _token(token: str | None, token_file: Path | None) -> str | None:
    if token:
        return token.strip()
    if token_file is None:
        return None
    try:
        text = token_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        fail(f"cannot read the token file {token_file}: {reason}", exits.USAGE)
    if not text:
        fail(f"the token file {token_file} is empty", exits.USAGE)
    return text


@contextmanager
def _client(url: str, token: str | None, token_file: Path | None) -> Iterator[ApiClient]:
    try:
        base = check_url(url)
    except ValueError as exc:
        fail(str(exc), exits.USAGE)
    with ApiClient(Connection(base, _token(token, token_file))) as client:
        try:
            yield client
        except ClientError as exc:
            fail(exc.message, exc.exit_code)
        except KeyboardInterrupt:
            raise typer.Exit(exits.INTERRUPTED) from None


def _follow_to_end(client: ApiClient, job_id: str, reconnect_for: float) -> NoReturn:
    """Print the job's log as it comes, status changes on stderr; exit with the outcome."""
    errors = Console(stderr=True, highlight=False)

    def on_log(entry: dict[str, str]) -> None:
        sys.stdout.write(entry.get("line", "") + "\n")
        sys.stdout.flush()  # a pipe sees each line at once (`logs -f JOB | grep ...`)

    def on_status(job: Job) -> None:
        announce(errors, job)

    final = follow(client, job_id, on_log, on_status, Retry(budget=reconnect_for))
    raise typer.Exit(exits.of_job(str(final["status"])))


def announce(console: Console, job: Job) -> None:
    """``[raibid] job <id> <status>`` on stderr (coloured on a terminal)."""
    line = Text(f"[raibid] job {job.get('id')} ", style="dim")
    line.append(status_text(str(job.get("status"))))
    console.print(line)


def logs(
    job_id: JobArgument,
    follow_log: FollowOption = False,
    reconnect_for: ReconnectOption = 120.0,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    token_file: TokenFileOption = None,
) -> None:
    """Print a job's log; with -f follow it live to the job's end and exit with its outcome.

    Exit status with -f: 0 success, 1 failed, 3 cancelled; 4 refused (unknown job, bad token),
    5 server unreachable.
    """
    with _client(url, token, token_file) as client:
        if follow_log:
            _follow_to_end(client, job_id, reconnect_for)
        sys.stdout.write(client.log_text(job_id))


@jobs_app.command("list")
def list_jobs(
    status: Annotated[JobStatus | None, typer.Option(help="Only jobs in this status.")] = None,
    repo: Annotated[str | None, typer.Option(help="Only this repository (owner/name).")] = None,
    branch: Annotated[str | None, typer.Option(help="Only this branch.")] = None,
    event: Annotated[JobEvent | None, typer.Option(help="Only jobs made by this event.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200, help="How many, newest first.")] = 20,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    token_file: TokenFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """List jobs, newest first."""
    params: dict[str, str | int] = {"limit": limit}
    for name, value in (("status", status), ("repo", repo), ("branch", branch), ("event", event)):
        if value is not None:
            params[name] = str(value)
    with _client(url, token, token_file) as client:
        page = client.list_jobs(params)
    Output(as_json).jobs(page["jobs"], int(page["total"]), page)


@jobs_app.command("show")
def show_job(
    job_id: JobArgument,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    token_file: TokenFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one job."""
    with _client(url, token, token_file) as client:
        job = client.job(job_id)
    Output(as_json).job(job)


@jobs_app.command("cancel")
def cancel_job(
    job_id: JobArgument,
    reason: Annotated[str | None, typer.Option(help="Why (shown in the job).")] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    token_file: TokenFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel a pending or running job (write scope)."""
    with _client(url, token, token_file) as client:
        job = client.cancel(job_id, reason)
    Output(as_json).job_id(job, "cancelled")


def _made(
    make: Callable[[ApiClient], Job], what: str, follow_log: bool, reconnect_for: float,
    as_json: bool, url: str, token: str | None, token_file: Path | None,
) -> None:  # fmt: skip
    with _client(url, token, token_file) as client:
        job = make(client)
        if follow_log:
            announce(Console(stderr=True, highlight=False), job)
            _follow_to_end(client, str(job["id"]), reconnect_for)
    Output(as_json).job_id(job, what)


@jobs_app.command("retry")
def retry_job(
    job_id: JobArgument,
    follow_log: FollowOption = False,
    reconnect_for: ReconnectOption = 120.0,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    token_file: TokenFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Build again what an ended job built (write scope); prints the new job's id."""
    _made(
        lambda c: c.retry(job_id),
        "retried as",
        follow_log,
        reconnect_for,
        as_json,
        url,
        token,
        token_file,
    )


@jobs_app.command("run")
def run_job(
    repo: Annotated[str, typer.Option(help="owner/name.", show_default=False)],
    clone_url: Annotated[str, typer.Option(help="What the agent clones.", show_default=False)],
    branch: Annotated[str | None, typer.Option(help="Branch to build.")] = None,
    commit: Annotated[str | None, typer.Option(help="Commit to build (full sha).")] = None,
    follow_log: FollowOption = False,
    reconnect_for: ReconnectOption = 120.0,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    token_file: TokenFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start a job by hand (write scope); prints its id, or with -f follows it to its end."""
    body = {"repo": repo, "clone_url": clone_url}
    body |= {k: v for k, v in (("branch", branch), ("commit", commit)) if v is not None}
    _made(
        lambda c: c.trigger(body),
        "started",
        follow_log,
        reconnect_for,
        as_json,
        url,
        token,
        token_file,
    )
