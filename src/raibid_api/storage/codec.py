"""How a job is laid out in its Redis hash: Job JSON fields as text, plus private ``_`` fields."""

from __future__ import annotations

from collections.abc import Mapping

from raibid_api.domain.jobs import FLOAT_FIELDS, INT_FIELDS, JOB_FIELDS, Job

CREATED_MS = "_created_ms"  # the creation score of the job in every index
DEFAULT_BRANCH = "_default_branch"  # the repo's default branch, as the webhook named it
QUEUE_ENTRY = "_entry"  # id of the job's entry in the queue stream while it is queued or held


def encode_fields(job: Mapping[str, object]) -> dict[str, str]:
    """Hash fields for the set values of a job; ``None`` values are left out."""
    return {key: _text(value) for key, value in job.items() if value is not None}


def encode_update(fields: Mapping[str, object]) -> dict[str, str]:
    """Hash fields for a transition; ``None`` becomes '', which the script deletes."""
    return {key: "" if value is None else _text(value) for key, value in fields.items()}


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def decode_job(fields: Mapping[str, str]) -> Job:
    """The Job JSON of a job hash (or of a `status` entry of its event stream)."""
    job: Job = {}
    for key in JOB_FIELDS:
        value = fields.get(key)
        if value is None or value == "":
            job[key] = None
        elif key in INT_FIELDS:
            job[key] = int(value)
        elif key in FLOAT_FIELDS:
            job[key] = float(value)
        else:
            job[key] = value
    return job
