"""The agent side of the protocol over real HTTP, for end-to-end tests: claim a job, send its log
lines in order, complete it."""

from __future__ import annotations

from typing import Any

import httpx


class HttpAgent:
    """One claimed job, spoken for with its job token."""

    def __init__(
        self, http: httpx.Client, agent_headers: dict[str, str], agent_id: str = "e2e-agent"
    ) -> None:
        claim = http.post(
            "/agent/claim", json={"agent_id": agent_id, "wait": 0}, headers=agent_headers
        )
        assert claim.status_code == 200, claim.text
        assert claim.json()["job"] is not None, claim.text
        self.job: dict[str, Any] = claim.json()["job"]
        self._http = http
        self._auth = {"Authorization": f"Bearer {claim.json()['token']}"}
        self._sent = 0

    @property
    def job_id(self) -> str:
        """The claimed job's id."""
        return str(self.job["id"])

    def log(self, *lines: str) -> None:
        """Send ``lines`` as the next lines of the job's log."""
        answer = self._http.post(
            f"/agent/jobs/{self.job_id}/logs",
            json={"offset": self._sent, "lines": list(lines)},
            headers=self._auth,
        )
        assert answer.status_code == 200, answer.text
        self._sent += len(lines)

    def complete(self, status: str = "success") -> None:
        """Report the job's outcome (exit code 0 for a success, else 1)."""
        answer = self._http.post(
            f"/agent/jobs/{self.job_id}/complete",
            json={"status": status, "exit_code": 0 if status == "success" else 1},
            headers=self._auth,
        )
        assert answer.status_code == 200, answer.text
