"""The reference agent as a process of its own, writing down each job token it is handed.

``python -m tests.support.recording_agent SERVER TOKEN AGENT_ID WORKSPACE RECORD`` runs
`run_agent` exactly as ``raibid-api agent`` does, through an HTTP transport that appends
``{"job_id", "token"}`` of every claimed job to RECORD: a test that kills the agent can then make
the calls a late agent would make, with the token that agent held.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import httpx

from raibid_api.agent.worker import run_agent


class RecordingTransport(httpx.AsyncHTTPTransport):
    """The default transport, plus a note of every job token a claim answer carries."""

    def __init__(self, record: Path) -> None:
        super().__init__()
        self._record = record

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; note the token when it was a claim that got a job."""
        response = await super().handle_async_request(request)
        if request.url.path != "/agent/claim" or response.status_code != 200:
            return response
        body = await response.aread()
        claimed = json.loads(body)
        note = {"job_id": claimed["job"]["id"], "token": claimed["token"]}
        with self._record.open("a") as record:
            record.write(json.dumps(note) + "\n")
        return httpx.Response(200, headers=response.headers, content=body)


def main(argv: list[str]) -> None:
    """Run the agent until it is killed."""
    server, token, agent_id, workspace, record = argv
    asyncio.run(
        run_agent(
            server, token, agent_id, workspace_root=Path(workspace), handle_signals=True,
            transport=RecordingTransport(Path(record)),
        )
    )  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
