"""JobService: creating, reading, listing, cancelling and retrying jobs (the domain entry point)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypedDict, Unpack
from urllib.parse import urlsplit

import orjson

from raibid_api.domain.badges import Badge
from raibid_api.domain.jobs import (
    JOB_FIELDS,
    REPO_PATTERN,
    AttemptGuard,
    Clock,
    Delivery,
    Job,
    JobEvent,
    JobFilter,
    JobId,
    JobPage,
    JobStatus,
    Supersession,
    format_time,
    job_links,
    new_job_id,
    parse_time_ms,
)
from raibid_api.domain.limits import RateLimit
from raibid_api.errors import (
    InvalidInputError,
    JobNotFoundError,
    TransitionConflictError,
)
from raibid_api.jobs.cursor import CursorCodec
from raibid_api.storage.codec import decode_job
from raibid_api.storage.job_store import JobStore
from raibid_api.storage.scripts import CreateOutcome

COMMIT_PATTERN = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_CONFLICT_RETRIES = 5

JobListener = Callable[[Job], Awaitable[None]]
"""Called with a job after each change of its status (commit status reporting, metrics)."""


@dataclass(frozen=True)
class ManualTrigger:
    """A build asked for by hand: `POST /jobs`."""

    repo: str
    clone_url: str
    branch: str | None = None
    commit: str | None = None
    requested_by: str | None = None


class CreateStep(TypedDict, total=False):
    """How a job is stored besides itself (`JobStore.create`): dedup, limits, supersession."""

    delivery: Delivery | None
    """The forge delivery; a known one returns the job it made."""
    coalesce: bool
    """While a job building the same is pending or running, return it instead."""
    limit: RateLimit | None
    """Count the request against these sliding windows (a full one refuses it)."""
    supersede: Supersession | None
    """Make the job its line's newest and cancel the job it supersedes."""
    default_branch: str | None
    """The repository's default branch, as the forge named it (for its badge)."""


@dataclass(frozen=True)
class Created:
    """A job made (or found already made) from a request, and what its creation did besides.

    Attributes:
        job: the job made or found, with its links.
        duplicate: ``delivery`` or ``content`` for a job found rather than made.
        superseded: a job the new one supersedes that is left to the caller to end (running,
            with ``cancel_running``, or from before content keys were named).
    """

    job: Job
    duplicate: Literal["delivery", "content"] | None = None
    superseded: JobId | None = None


class JobService:
    """The jobs: every rule about them; storage does the atomic writes."""

    def __init__(
        self,
        store: JobStore,
        clock: Clock,
        cursors: CursorCodec,
        *,
        public_url: str,
        clone_url_schemes: Sequence[str],
        listeners: Sequence[JobListener] = (),
    ) -> None:
        self._store = store
        self._clock = clock
        self._cursors = cursors
        self._public_url = public_url
        self._schemes = frozenset(clone_url_schemes)
        self._listeners = list(listeners)

    def add_listener(self, listener: JobListener) -> None:
        """Call ``listener`` after every status change from now on."""
        self._listeners.append(listener)

    def with_links(self, job: Job) -> Job:
        """The job as the API shows it, with its `links`."""
        return job | {"links": job_links(self._public_url, str(job["id"]))}

    async def get(self, job_id: JobId) -> Job:
        """The job with its links.

        Raises:
            JobNotFoundError: no such job.
        """
        job = await self._store.get(job_id)
        if job is None:
            raise JobNotFoundError(job_id)
        return self.with_links(job)

    async def get_json(self, job_id: JobId) -> bytes:
        """The job's JSON, serialised once with no model in between (the hot read path)."""
        return orjson.dumps(await self.get(job_id))

    async def list(self, flt: JobFilter, cursor: str | None, limit: int) -> JobPage:
        """One page of jobs matching ``flt``, newest first.

        Raises:
            InvalidCursorError: ``cursor`` was not issued for this filter by this deployment.
        """
        fingerprint = flt.fingerprint()
        after = self._cursors.decode(cursor, fingerprint) if cursor else None
        total, rows = await self._store.list_page(flt, after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = None
        if more and rows:
            last_job, last_score = rows[-1]
            next_cursor = self._cursors.encode(last_score, str(last_job["id"]), fingerprint)
        return JobPage([self.with_links(job) for job, _ in rows], next_cursor, total)

    def _check_clone_url(self, url: str) -> None:
        try:
            scheme = urlsplit(url).scheme
        except ValueError:
            raise InvalidInputError("clone_url is not a URL") from None
        scp_like = re.match(r"^[\w.-]+@[\w.-]+:", url) is not None  # git@host:owner/repo.git
        if not (scheme in self._schemes or (scp_like and "ssh" in self._schemes)):
            allowed = ", ".join(sorted(self._schemes))
            raise InvalidInputError(f"clone_url must use one of these schemes: {allowed}")

    async def trigger(self, request: ManualTrigger) -> Job:
        """Create a job by hand; it always makes a new job.

        Raises:
            InvalidInputError: a malformed repo, clone URL, branch or commit.
        """
        if not REPO_PATTERN.match(request.repo):
            raise InvalidInputError("repo must be owner/name")
        self._check_clone_url(request.clone_url)
        if request.branch is None and request.commit is None:
            raise InvalidInputError("give a branch, a commit, or both")
        if request.commit is not None and not COMMIT_PATTERN.match(request.commit):
            raise InvalidInputError("commit must be a full lowercase sha (40 or 64 hex digits)")
        job = self.new_job(
            repo=request.repo,
            clone_url=request.clone_url,
            ref=f"refs/heads/{request.branch}" if request.branch else None,
            branch=request.branch,
            commit=request.commit,
            event=JobEvent.MANUAL,
            pusher=request.requested_by,
        )
        return (await self.create(job)).job

    def new_job(self, **fields: object) -> Job:
        """A pending job with a fresh id, stamped now; ``fields`` fill in the rest."""
        job: Job = dict.fromkeys(JOB_FIELDS)  # every field, in the order the API shows them
        job |= {
            "id": new_job_id(),
            "status": JobStatus.PENDING.value,
            "created_at": format_time(self._clock.now_ms()),
            "attempt": 1,
        }
        job |= fields
        return job

    async def create(self, job: Job, **step: Unpack[CreateStep]) -> Created:
        """Store ``job`` with its indexes and queue entry, in one step (see `JobStore.create`).

        A known ``delivery`` returns its job; with ``coalesce``, a pending or running job
        building the same (repo, event, ref, commit) is returned instead of a new one; ``limit``
        may refuse it; with ``supersede`` the pending job it supersedes is cancelled. The
        listeners hear of the new job and of the job it cancelled.

        Raises:
            RateLimitedError: ``limit`` refused the request; nothing was written.
        """
        outcome = await self._store.create(job, parse_time_ms(str(job["created_at"])), **step)
        if outcome.duplicate is not None:
            return Created(await self.get(JobId(outcome.job_id)), outcome.duplicate)
        created = await self.announce(job)
        superseded = outcome.superseded
        if superseded is not None and superseded.fields is not None:
            await self.announce(decode_job(superseded.fields))
        if superseded is None or superseded.cancelled_here:
            return Created(created)
        return Created(created, superseded=JobId(superseded.job_id))

    async def preview(self, job: Job, **step: Unpack[CreateStep]) -> CreateOutcome:
        """What `create` would do with the same arguments: a dry run of the same step.

        Nothing is written, nor counted against ``limit``.

        Raises:
            RateLimitedError: ``limit`` would refuse the request.
        """
        created_ms = parse_time_ms(str(job["created_at"]))
        return await self._store.create(job, created_ms, dry_run=True, **step)

    async def badge(self, repo: str, branch: str | None) -> Badge:
        """What the status badge of ``repo``'s ``branch`` (default: its default branch) shows."""
        return await self._store.badge(repo, branch)

    async def cancel(self, job_id: JobId, reason: str = "cancelled") -> Job:
        """Cancel a pending or running job (a running job's agent learns it on its heartbeat).

        Raises:
            JobNotFoundError: no such job.
            TransitionConflictError: the job has already ended (``current`` is the job).
        """
        return await self.finish(job_id, JobStatus.CANCELLED, reason=reason)

    async def finish(
        self,
        job_id: JobId,
        target: JobStatus,
        *,
        reason: str | None = None,
        exit_code: int | None = None,
        expect: Sequence[JobStatus] = (JobStatus.PENDING, JobStatus.RUNNING),
        guard: AttemptGuard | None = None,
        note: tuple[str, str] | None = None,
    ) -> Job:
        """End a job in ``target``, from whichever of ``expect`` it is in, despite races.

        With a ``guard``, only the attempt it names is ended: a conflict is final. A ``note``
        (stream, line) tells the job's log why, in the same step.
        """
        for _ in range(_CONFLICT_RETRIES):
            job = await self.get(job_id)
            status = JobStatus(job["status"])
            if status not in expect:
                raise TransitionConflictError(
                    f"job {job_id} is {status}; it cannot become {target}", current=job
                )
            now = self._clock.now_ms()
            fields: dict[str, object] = {
                "finished_at": format_time(now),
                "reason": reason,
                "exit_code": exit_code,
            }
            if job["started_at"]:
                fields["duration"] = round((now - parse_time_ms(job["started_at"])) / 1000, 3)
            try:
                after = await self._store.transition(
                    job, target, now, fields, guard=guard, note=note
                )
            except TransitionConflictError:
                if guard is not None:
                    raise
                continue
            return await self.announce(after)
        raise TransitionConflictError(f"job {job_id} keeps changing; try again")

    async def retry(self, job_id: JobId, requested_by: str | None = None) -> Job:
        """A new job that builds what an ended job built, with ``retry_of`` naming it.

        Raises:
            JobNotFoundError: no such job.
            TransitionConflictError: the job has not ended yet.
        """
        old = await self.get(job_id)
        if not JobStatus(old["status"]).is_terminal:
            raise TransitionConflictError(
                f"job {job_id} is {old['status']}; only an ended job can be retried", current=old
            )
        copied = ("repo", "clone_url", "ref", "branch", "tag", "commit", "forge", "pull_request",
                  "author", "message")  # fmt: skip
        job = self.new_job(
            **{key: old[key] for key in copied},
            event=JobEvent.RETRY,
            retry_of=job_id,
            pusher=requested_by or old["pusher"],
        )
        return (await self.create(job)).job

    async def announce(self, job: Job) -> Job:
        """Tell the listeners a job changed status; return it as the API shows it."""
        shown = self.with_links(job)
        for listener in self._listeners:
            await listener(shown)
        return shown
