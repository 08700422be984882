"""Every Redis key raibid-api reads or writes, built from the configured prefix ``P``.

The prefix may itself carry a Redis Cluster hash tag (``{raibid}``); no key adds braces of its own,
so every key lands in the prefix's slot and the Lua scripts stay legal on a cluster.
"""

from __future__ import annotations

GROUP = "raibid-agents"  # the agents' consumer group on the queue stream


class Keys:
    """Every key name; docs/architecture.md lists them with their types and lifetimes."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    @property
    def queue(self) -> str:
        """Stream; one entry per queued or held job (XLEN = queued + running)."""
        return f"{self.prefix}:jobs"

    def job(self, job_id: str) -> str:
        """Hash; expires jobs.retention after a terminal state."""
        return f"{self.prefix}:job:{job_id}"

    def events(self, job_id: str) -> str:
        """Stream of log lines and status changes; expires with job."""
        return f"{self.prefix}:job:{job_id}:events"

    @property
    def index_all(self) -> str:
        """Sorted set of job ids scored by creation time (ms)."""
        return f"{self.prefix}:index:all"

    def index_status(self, status: str) -> str:
        """Sorted set; a job is in exactly one of these."""
        return f"{self.prefix}:index:status:{status}"

    def index_status_repo(self, status: str, repo: str) -> str:
        """Sorted set; the jobs of one repo in one status (the common `GET /jobs` filter)."""
        return f"{self.prefix}:index:status-repo:{status}:{repo}"

    def index_repo(self, repo: str) -> str:
        """Sorted set, per owner/name."""
        return f"{self.prefix}:index:repo:{repo}"

    def index_branch(self, branch: str) -> str:
        """Sorted set, per short branch name."""
        return f"{self.prefix}:index:branch:{branch}"

    def index_event(self, event: str) -> str:
        """Sorted set, per event kind."""
        return f"{self.prefix}:index:event:{event}"

    def job_templates(self) -> list[str]:
        """Key templates for a script that learns a job's id itself.

        Byte 1 stands for the job id (or the status), byte 2 for the repo: the job hash, its
        events, a status index, a status index of a repo.
        """
        return [self.job("\x01"), self.events("\x01"), self.index_status("\x01"),
                self.index_status_repo("\x01", "\x02")]  # fmt: skip

    @property
    def index_expiry(self) -> str:
        """Sorted set of ended jobs scored by when they expire (ms)."""
        return f"{self.prefix}:index:expiry"

    def list_scratch(self, token: str) -> str:
        """Sorted set living inside one job_list.lua call."""
        return f"{self.prefix}:scratch:list:{token}"

    def delivery(self, forge: str, delivery_id: str) -> str:
        """String job id; expires after 7 days."""
        return f"{self.prefix}:delivery:{forge}:{delivery_id}"

    def content(self, fingerprint: str) -> str:
        """String job id of an active job with this content."""
        return f"{self.prefix}:content:{fingerprint}"

    @property
    def agents(self) -> str:
        """Hash agent id -> JSON of its last heartbeat and current job."""
        return f"{self.prefix}:agents"

    @property
    def claim_key(self) -> str:
        """String; the key claim tokens are signed with (``dispatch.mode: kubernetes``)."""
        return f"{self.prefix}:dispatch:claim-key"

    def pod_claim(self, pod_uid: str) -> str:
        """String; what the agent pod ``pod_uid`` claimed (``dispatch.mode: keda``); expires."""
        return f"{self.prefix}:pod-claim:{pod_uid}"

    @property
    def outbox_status(self) -> str:
        """Stream of commit statuses still to report to the forge."""
        return f"{self.prefix}:outbox:status"

    @property
    def outbox_status_delayed(self) -> str:
        """Sorted set of status reports waiting for a retry, scored by not_before (ms)."""
        return f"{self.prefix}:outbox:status:delayed"

    @property
    def outbox_status_unreported(self) -> str:
        """Sorted set of job ids whose final status no forge acknowledged yet; score: next look."""
        return f"{self.prefix}:outbox:status:unreported"

    def status_record(self, job_id: str) -> str:
        """Hash of a job's status reporting (ranks queued/reported, send lease); expires with it."""
        return f"{self.prefix}:outbox:status:job:{job_id}"

    @property
    def cursor_secret(self) -> str:
        """String; HMAC key that signs pagination cursors."""
        return f"{self.prefix}:secret:cursor"

    @property
    def webhook_deliveries(self) -> str:
        """Stream of every webhook delivery and its decision; trimmed to jobs.retention."""
        return f"{self.prefix}:webhook:deliveries"

    def rate_limit(self, scope: str, subject: str) -> str:
        """Sorted set of one subject's request times in the window; expires after it."""
        return f"{self.prefix}:ratelimit:{scope}:{subject}"

    def latest_job(self, repo: str, line: str) -> str:
        """String '<created ms> <job id>', newest webhook job of a branch or PR; expires in 7 d."""
        return f"{self.prefix}:latest:{repo}:{line}"
