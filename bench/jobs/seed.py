"""A realistic job history written straight into Redis, in the layout of `raibid_api.storage`.

Writing 100,000 jobs through the create script one by one takes minutes; pipelined HSET / ZADD /
XADD with the same keys and fields (`Keys`, `encode_fields`) takes seconds and leaves what the
server would have left: the hash with its private fields, every index, the queue stream with its
group (running jobs claimed, pending ones waiting), and for ended jobs the retention TTL and the
expiry index entry.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import orjson
from redis import Redis

from raibid_api.domain.jobs import Job, format_time
from raibid_api.storage.codec import CREATED_MS, QUEUE_ENTRY, encode_fields
from raibid_api.storage.job_store import index_keys
from raibid_api.storage.keys import GROUP, Keys

STATUS_WEIGHTS = {"success": 75.0, "failed": 18.0, "cancelled": 5.0, "pending": 1.5, "running": 0.5}
EVENT_WEIGHTS = {"push": 70.0, "pull_request": 20.0, "manual": 5.0, "tag": 3.0, "retry": 2.0}
TERMINAL = frozenset({"success", "failed", "cancelled"})
HOUR_MS = 3_600_000
MAIN_SHARE = 0.6
FEATURE_BRANCHES = 200
BATCH = 2_000
SEP = "\x1f"


@dataclass(frozen=True)
class Shape:
    """How the history looks: how many jobs, how many repos, and how time is spread."""

    jobs: int = 100_000
    repos: int = 20
    history_ms: int = 20 * HOUR_MS  # ended jobs: created within this window, none expired yet
    active_ms: int = HOUR_MS // 2  # pending and running jobs: created this recently
    retention_s: int = 86_400
    seed: int = 7

    def repo_names(self) -> list[str]:
        """``org/service-NN``; repo k gets weight 1/k (Zipf), so a few repos carry most builds."""
        return [f"org/service-{k:02d}" for k in range(1, self.repos + 1)]

    def repo_weights(self) -> list[float]:
        """The Zipf weights of `repo_names`."""
        return [1 / k for k in range(1, self.repos + 1)]


@dataclass(frozen=True)
class Made:
    """One drawn job: its Job JSON, its private hash fields, and when it ended (ms) if it did."""

    job: Job
    private: dict[str, str]
    finished_ms: int | None


@dataclass
class Seeded:
    """What was written, for the load generators and the report."""

    shape: Shape
    job_ids: list[str] = field(default_factory=list)
    by_status: Counter[str] = field(default_factory=Counter)
    by_repo: Counter[str] = field(default_factory=Counter)
    by_event: Counter[str] = field(default_factory=Counter)
    by_status_repo: Counter[tuple[str, str]] = field(default_factory=Counter)


class _Maker:
    """Draws jobs from the distributions of a `Shape`."""

    def __init__(self, shape: Shape, now_ms: int) -> None:
        self.shape = shape
        self.now_ms = now_ms
        self.rng = random.Random(shape.seed)
        self.repos = shape.repo_names()
        self.repo_weights = shape.repo_weights()

    def _pick(self, weights: dict[str, float]) -> str:
        return self.rng.choices(list(weights), list(weights.values()))[0]

    def _where(self, event: str) -> dict[str, object]:
        rng = self.rng
        if event == "tag":
            tag = f"v1.{rng.randrange(100)}.{rng.randrange(10)}"
            return {"ref": f"refs/tags/{tag}", "tag": tag, "branch": None}
        branch = "main"
        if event == "pull_request" or rng.random() > MAIN_SHARE:
            branch = f"feature/change-{rng.randrange(FEATURE_BRANCHES)}"
        number = rng.randrange(1, 5000) if event == "pull_request" else None
        return {"ref": f"refs/heads/{branch}", "branch": branch, "pull_request": number}

    def job(self) -> Made:
        """A job drawn from the distributions."""
        rng = self.rng
        status = self._pick(STATUS_WEIGHTS)
        event = self._pick(EVENT_WEIGHTS)
        repo = rng.choices(self.repos, self.repo_weights)[0]
        window = self.shape.history_ms if status in TERMINAL else self.shape.active_ms
        created = self.now_ms - rng.randrange(60_000, window)
        job: Job = dict.fromkeys(
            ("tag", "forge", "delivery_id", "pull_request", "started_at", "finished_at",
             "duration", "exit_code", "agent_id", "retry_of", "reason"),
        )  # fmt: skip
        job |= {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "status": status,
            "repo": repo,
            "clone_url": f"https://git.example.com/{repo}.git",
            "commit": f"{rng.getrandbits(160):040x}",
            "event": event,
            "author": f"Developer {rng.randrange(50)}",
            "pusher": f"dev{rng.randrange(50)}",
            "message": "Fix the flaky retry in the deployment pipeline",
            "created_at": format_time(created),
            "attempt": 1,
        }
        job |= self._where(event)
        if event in {"push", "tag", "pull_request"}:
            job |= {"forge": "gitea", "delivery_id": str(uuid.UUID(int=rng.getrandbits(128)))}
        private = {CREATED_MS: str(created)}
        finished = self._started(job, private, created) if status != "pending" else None
        return Made(job, private, finished)

    def _started(self, job: Job, private: dict[str, str], created: int) -> int | None:
        rng = self.rng
        started = created + rng.randrange(200, 30_000)
        job |= {"started_at": format_time(started), "agent_id": f"agent-{rng.randrange(8)}"}
        private["_started_ms"] = str(started)
        if job["status"] == "running":
            private |= {"_lease_until": str(self.now_ms + 6 * HOUR_MS), "_token": "0" * 64}
            return None
        finished = min(started + rng.randrange(5_000, 900_000), self.now_ms - 1_000)
        exit_code = {"success": 0, "failed": 1}.get(str(job["status"]))
        job |= {
            "finished_at": format_time(finished),
            "duration": round((finished - started) / 1000, 3),
            "exit_code": exit_code,
            "reason": {"failed": "exit_code", "cancelled": "superseded"}.get(str(job["status"])),
        }
        return finished


def _batches(items: Sequence[Made]) -> Iterator[Sequence[Made]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


def _write_records(
    redis: Redis, keys: Keys, shape: Shape, made: Sequence[Made], now_ms: int
) -> None:
    for batch in _batches(made):
        pipe = redis.pipeline(transaction=False)
        for job, private, finished in ((m.job, m.private, m.finished_ms) for m in batch):
            job_id = str(job["id"])
            hash_key = keys.job(job_id)
            fields = encode_fields(job) | private
            pipe.hset(hash_key, items=[part for pair in fields.items() for part in pair])
            score = int(private[CREATED_MS])
            for index in index_keys(keys, job):
                pipe.zadd(index, {job_id: score})
            if finished is not None:
                expires = finished + shape.retention_s * 1000
                pipe.pexpire(hash_key, expires - now_ms)
                member = SEP.join([job_id, str(job["status"]), str(job["repo"]),
                                   str(job.get("branch") or ""), str(job["event"])])  # fmt: skip
                pipe.zadd(keys.index_expiry, {member: expires})
        pipe.execute()


def _write_queue(redis: Redis, keys: Keys, made: Sequence[Made]) -> None:
    """Running jobs' entries claimed by the group (pending list), then pending jobs' waiting."""
    if not redis.exists(keys.queue):
        redis.xgroup_create(keys.queue, GROUP, id="0", mkstream=True)
    active = sorted(
        (m.job for m in made if m.finished_ms is None),
        key=lambda job: (job["status"] != "running", str(job["created_at"])),
    )
    running = sum(1 for job in active if job["status"] == "running")
    pipe = redis.pipeline(transaction=False)
    for job in active:
        pipe.xadd(keys.queue, {"job_id": str(job["id"]), "job": orjson.dumps(job).decode()})
    entries = pipe.execute()
    if running:
        redis.xreadgroup(GROUP, "bench-agent", {keys.queue: ">"}, count=running)
    pipe = redis.pipeline(transaction=False)
    for job, entry in zip(active, entries, strict=True):
        pipe.hset(keys.job(str(job["id"])), QUEUE_ENTRY, str(entry))
    pipe.execute()


def seed(redis: Redis, keys: Keys, shape: Shape, now_ms: int) -> Seeded:
    """Write ``shape.jobs`` jobs into an empty keyspace; return what was written."""
    maker = _Maker(shape, now_ms)
    made = [maker.job() for _ in range(shape.jobs)]
    _write_records(redis, keys, shape, made, now_ms)
    _write_queue(redis, keys, made)
    seeded = Seeded(shape)
    for job in (m.job for m in made):
        status, repo = str(job["status"]), str(job["repo"])
        seeded.job_ids.append(str(job["id"]))
        seeded.by_status[status] += 1
        seeded.by_repo[repo] += 1
        seeded.by_event[str(job["event"])] += 1
        seeded.by_status_repo[status, repo] += 1
    return seeded
