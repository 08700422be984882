"""An agent tells the server which commit a job made without one built; the job shows it."""

from __future__ import annotations

from tests.support.agent_protocol import (
    CLONE_URL,
    WRITE,
    ProtocolApp,
    assert_error,
)

SHA = "a" * 40
OTHER_SHA = "b" * 40


async def test_the_commit_of_a_branch_job_is_recorded_once_and_shown_while_it_runs(
    api: ProtocolApp,
) -> None:
    held = await api.trigger_and_claim()
    assert held.job["commit"] is None

    first = await api.call(held.id, "commit", held.token, {"commit": SHA.upper()})
    second = await api.call(held.id, "commit", held.token, {"commit": OTHER_SHA})

    assert first.status_code == 200, first.text
    assert first.json() == {"commit": SHA}
    assert second.json() == {"commit": SHA}
    job = await api.job(held.id)
    assert (job["status"], job["commit"]) == ("running", SHA)


async def test_a_job_made_with_a_commit_keeps_it(api: ProtocolApp) -> None:
    body = {"repo": "acme/widgets", "clone_url": CLONE_URL, "branch": "main", "commit": SHA}
    created = await api.http.post("/jobs", json=body, headers=WRITE)
    assert created.status_code == 201, created.text
    held = await api.claim()

    answer = await api.call(held.id, "commit", held.token, {"commit": OTHER_SHA})

    assert answer.json() == {"commit": SHA}
    assert (await api.job(held.id))["commit"] == SHA


async def test_only_the_current_attempt_may_record_it(api: ProtocolApp) -> None:
    old = await api.trigger_and_claim("agent-1")
    api.expire_lease()
    await api.reaper.reap_once()
    new = await api.claim("agent-2")

    refused = await api.call(old.id, "commit", old.token, {"commit": OTHER_SHA})
    taken = await api.call(new.id, "commit", new.token, {"commit": SHA})

    assert_error(refused, 401, "invalid_job_token")
    assert taken.json() == {"commit": SHA}


async def test_an_ended_job_gets_no_commit(api: ProtocolApp) -> None:
    held = await api.trigger_and_claim()
    await api.cancel(held.id)

    answer = await api.call(held.id, "commit", held.token, {"commit": SHA})

    assert answer.json() == {"commit": None}
    assert (await api.job(held.id))["commit"] is None


async def test_what_is_not_a_full_sha_is_refused(api: ProtocolApp) -> None:
    held = await api.trigger_and_claim()

    for commit in ("abc123", "g" * 40, SHA + "\n", "", 40):
        response = await api.call(held.id, "commit", held.token, {"commit": commit})
        assert_error(response, 422, "validation_error")
    assert (await api.job(held.id))["commit"] is None
