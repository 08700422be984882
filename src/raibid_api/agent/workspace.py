"""A job's workspace: a fresh directory with the repository checked out at the job's commit.

Layout: ``<root>/job-<id>-<random>/checkout`` holds the repository and ``.../tmp`` is the steps'
``TMPDIR``; the whole directory is removed when the job ends. Credentials embedded in a clone URL
never reach a log line or ``.git/config``: the URL is passed to ``git fetch`` only.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import stat
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import structlog

from raibid_api.agent.processes import OutputOptions, StopReason, Stream, run_in_group
from raibid_api.errors import RaibidError

_COMMIT = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_REF = re.compile(r"^refs/(?:heads|tags)/[A-Za-z0-9._/-]+$")  # never starts with "-": not an option
_CREDENTIAL_SCHEMES = frozenset({"http", "https", "ftp", "ftps"})

logger = structlog.get_logger()


class CloneError(RaibidError):
    """The job's commit could not be checked out; the message is safe to show (no credentials)."""

    code = "clone_failed"


@dataclass(frozen=True)
class Workspace:
    """The directories of one job."""

    root: Path
    checkout: Path
    tmp: Path


def url_credentials(url: str) -> list[str]:
    """The secret parts of a clone URL, as written and percent-decoded.

    That is its password (and ``user:password`` whole), or over http(s) a lone user name, which
    forges take as a token (``https://<token>@host/...``); a user name beside a password is not
    secret (masking every "git" in a log would hide nothing and garble everything).
    """
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return []
    userinfo = parts.netloc.rsplit("@", 1)[0]
    user, has_password, password = userinfo.partition(":")
    if has_password:
        found = [userinfo, password] if parts.scheme in _CREDENTIAL_SCHEMES else [password]
    else:
        found = [user] if parts.scheme in _CREDENTIAL_SCHEMES else []
    found += [unquote(value) for value in found]
    return [value for value in dict.fromkeys(found) if value]


def redact_url(url: str) -> str:
    """The URL with its credentials replaced by ``***``, for log lines."""
    redacted = url
    for secret in sorted(url_credentials(url), key=len, reverse=True):
        redacted = redacted.replace(secret, "***")
    return redacted


@asynccontextmanager
async def job_workspace(root: Path, job_id: str) -> AsyncIterator[Workspace]:
    """A fresh workspace for one job under ``root``, removed on exit whatever happened."""
    workspace = await asyncio.to_thread(_create_workspace, root, job_id)
    try:
        yield workspace
    finally:
        await asyncio.shield(asyncio.to_thread(remove_tree, workspace.root))


def _create_workspace(root: Path, job_id: str) -> Workspace:
    root.mkdir(parents=True, exist_ok=True)
    safe_id = re.sub(r"[^A-Za-z0-9_-]", "_", job_id)[:64]
    path = Path(tempfile.mkdtemp(prefix=f"job-{safe_id}-", dir=root))
    workspace = Workspace(root=path, checkout=path / "checkout", tmp=path / "tmp")
    workspace.checkout.mkdir()
    workspace.tmp.mkdir()
    return workspace


def remove_tree(path: Path) -> None:
    """Delete ``path`` even where a build left read-only directories (Go's module cache does)."""
    shutil.rmtree(path, onerror=_make_writable_and_retry)
    if path.exists():
        logger.warning("workspace_not_removed", path=str(path))


def _make_writable_and_retry(func: Callable[..., Any], name: str, _exc: object) -> None:
    path = Path(name)
    try:
        path.parent.chmod(stat.S_IRWXU)
        if path.is_dir() and not path.is_symlink():
            path.chmod(stat.S_IRWXU)
        func(name)
    except OSError as exc:
        logger.warning("workspace_path_not_removed", path=name, error=exc.strerror)


@dataclass(frozen=True)
class GitRun:
    """How git commands of one clone run: environment, output, deadline, cancellation."""

    env: Mapping[str, str]
    output: OutputOptions
    deadline: float
    cancel: asyncio.Event
    kill_grace: float


async def clone_at_revision(
    url: str, revision: str, checkout: Path, run: GitRun
) -> StopReason | None:
    """Check out ``revision`` (a full sha, or a ref such as ``refs/heads/main``) of ``url``.

    Fetches only that revision (``--depth 1``) when the server allows it; for a sha it otherwise
    fetches every branch and tag and checks the commit out from them.

    Returns:
        None when the revision is checked out; ``"timeout"`` or ``"cancelled"`` when stopped.

    Raises:
        CloneError: the revision is neither a full sha nor a ref, or git failed (its masked
            output was logged).
    """
    if not (_COMMIT.match(revision) or _REF.match(revision)):
        raise CloneError("the job's revision is neither a full hexadecimal sha nor a ref")
    await _note(run, f"[raibid] fetching {redact_url(url)} at {revision}")
    stopped = await _git(["init", "--quiet", "."], checkout, run, "git init failed")
    if stopped:
        return stopped
    # "--" ends the options: a URL starting with "-" must not become one (--upload-pack=...).
    shallow = ["fetch", "--quiet", "--no-tags", "--depth", "1", "--", url, revision]
    if _REF.match(revision):
        stopped = await _git(shallow, checkout, run, f"git fetch of {revision} failed")
    else:
        try:
            # Its error is expected from servers that refuse fetching by sha: keep it quiet.
            stopped = await _git(shallow, checkout, _silenced(run), "shallow fetch refused")
        except CloneError:
            return await _fetch_everything(url, revision, checkout, run)
    if stopped:
        return stopped
    checkout_head = ["checkout", "--quiet", "--detach", "FETCH_HEAD"]
    return await _git(checkout_head, checkout, run, "git checkout failed")


def is_commit(revision: str) -> bool:
    """Whether ``revision`` is a full sha (rather than a ref)."""
    return bool(_COMMIT.match(revision))


async def head_commit(checkout: Path, env: Mapping[str, str]) -> str | None:
    """The full sha checked out in ``checkout``; None when git cannot tell."""
    process = await asyncio.create_subprocess_exec(
        "git", "rev-parse", "--verify", "HEAD", cwd=checkout, env=dict(env),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    out, _ = await process.communicate()
    sha = out.decode(errors="replace").strip()
    return sha if process.returncode == 0 and _COMMIT.match(sha) else None


async def _fetch_everything(
    url: str, commit: str, checkout: Path, run: GitRun
) -> StopReason | None:
    await _note(run, "[raibid] fetching the commit alone failed; fetching all history")
    refspecs = ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]
    failed = f"git fetch of {redact_url(url)} failed"
    stopped = await _git(["fetch", "--quiet", "--", url, *refspecs], checkout, run, failed)
    if stopped:
        return stopped
    missing = f"commit {commit} not found in {redact_url(url)}"
    return await _git(["checkout", "--quiet", "--detach", commit], checkout, run, missing)


async def _git(argv: list[str], checkout: Path, run: GitRun, failure: str) -> StopReason | None:
    try:
        result = await run_in_group(
            ["git", *argv],
            cwd=checkout,
            env=run.env,
            output=run.output,
            time_limit=run.deadline - time.monotonic(),
            cancel=run.cancel,
            kill_grace=run.kill_grace,
        )
    except FileNotFoundError:
        raise CloneError("git is not installed on this agent") from None
    if result.exit_code:
        raise CloneError(f"{failure} (exit code {result.exit_code})")
    return result.reason


def _silenced(run: GitRun) -> GitRun:
    async def discard(_stream: Stream, _line: str) -> None:
        return None

    output = OutputOptions(discard, run.output.masker, run.output.max_line_bytes)
    return GitRun(run.env, output, run.deadline, run.cancel, run.kill_grace)


async def _note(run: GitRun, line: str) -> None:
    await run.output.sink("stdout", run.output.masker.mask(line))
