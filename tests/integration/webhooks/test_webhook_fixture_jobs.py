"""Every recorded payload, signed and POSTed as its forge sends it: its job, field by field."""

from __future__ import annotations

import httpx
import pytest

from raibid_api.webhooks.events import Ignored, WebhookEvent
from tests.support.api import PUBLIC_URL, READ
from tests.support.webhook_deliveries import deliver_fixture
from tests.support.webhook_expectations import CASES, EXPECTED
from tests.support.webhook_samples import Forge

# Job JSON field <- WebhookEvent attribute
JOB_FROM_EVENT = {
    "repo": "repo",
    "clone_url": "clone_url",
    "ref": "ref",
    "branch": "branch",
    "tag": "tag",
    "commit": "commit",
    "author": "author",
    "message": "message",
    "event": "kind",
    "pull_request": "pull_request",
    "pusher": "pusher",
}


@pytest.mark.parametrize(("forge", "name"), CASES, ids=[f"{f}:{n}" for f, n in CASES])
async def test_signed_fixture_over_http_makes_the_recorded_job(
    client: httpx.AsyncClient, forge: Forge, name: str
) -> None:
    headers, answer = await deliver_fixture(client, forge, name)

    expected = EXPECTED[name]
    if isinstance(expected, Ignored):
        assert answer.status_code == 200, answer.text
        assert answer.json()["ignored"] == expected.reason.value
        return
    assert isinstance(expected, WebhookEvent)
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert set(body) == {"job_id", "status_url"}
    assert body["status_url"] == f"{PUBLIC_URL}/jobs/{body['job_id']}"
    job = (await client.get(f"/jobs/{body['job_id']}", headers=READ)).json()
    for field, attribute in JOB_FROM_EVENT.items():
        assert job[field] == getattr(expected, attribute), field
    assert job["forge"] == forge
    assert job["delivery_id"] == headers[f"x-{forge}-delivery"]
    assert job["status"] == "pending"
    assert job["attempt"] == 1
