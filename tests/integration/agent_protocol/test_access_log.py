"""An agent's routine calls are logged at debug; its other calls and every failure at info."""

from __future__ import annotations

from tests.support.agent_protocol import ProtocolApp
from tests.support.logs import LogEvents


def levels(events: LogEvents) -> list[tuple[str, str, int]]:
    """(level, path, status) of each access log line, the job id left out of the path."""
    return [
        (e["log_level"], e["path"].rsplit("/", 1)[-1], e["status"])
        for e in events
        if e.get("event") == "request" and e["path"].startswith("/agent/")
    ]


async def test_routine_agent_calls_are_debug_and_failures_stay_info(
    api: ProtocolApp, captured_logs: LogEvents
) -> None:
    nothing = await api.claim_response()
    held = await api.trigger_and_claim()
    await api.heartbeat(held)
    await api.send_logs(held, ["one"], offset=0)
    refused = await api.call(held.id, "heartbeat", "not-the-token")
    await api.complete(held)

    assert (nothing.status_code, refused.status_code) == (204, 401)
    assert levels(captured_logs) == [
        ("debug", "claim", 204),
        ("info", "claim", 200),
        ("debug", "heartbeat", 200),
        ("debug", "logs", 200),
        ("info", "heartbeat", 401),
        ("info", "complete", 200),
    ]
