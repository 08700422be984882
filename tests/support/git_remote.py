"""Real git repositories for the agent tests: a bare "forge" repository and a work tree."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
}


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` with a fixed identity; its stdout, stripped."""
    env = {**os.environ, **GIT_IDENTITY}
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


@dataclass
class GitRemote:
    """A bare repository (the "forge") and a work tree pushing to it."""

    bare: Path
    work: Path
    commits: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """A ``file://`` URL, so git uses its transport (and honours ``--depth``)."""
        return self.bare.as_uri()

    def commit(self, files: dict[str, str], message: str = "change") -> str:
        """Write ``files``, commit, push to ``main``; the new commit's sha."""
        for name, text in files.items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git(self.work, "add", "--all")
        git(self.work, "commit", "--quiet", "--allow-empty", "-m", message)
        git(self.work, "push", "--quiet", "origin", "HEAD:refs/heads/main")
        sha = git(self.work, "rev-parse", "HEAD")
        self.commits.append(sha)
        return sha


def make_remote(root: Path) -> GitRemote:
    """An empty bare repository under ``root`` with a work tree wired to it."""
    bare, work = root / "remote.git", root / "work"
    bare.mkdir(parents=True)
    work.mkdir()
    git(bare, "init", "--quiet", "--bare")
    git(work, "init", "--quiet")
    git(work, "remote", "add", "origin", str(bare))
    return GitRemote(bare, work)


def job_for(remote: GitRemote, commit: str | None, job_id: str = "job-1") -> dict[str, Any]:
    """A Job JSON (docs/architecture.md) with the fields the agent reads, building ``commit``."""
    return {"id": job_id, "status": "running", "repo": "acme/app", "clone_url": remote.url,
            "ref": "refs/heads/main", "branch": "main", "tag": None, "commit": commit,
            "event": "push", "attempt": 1}  # fmt: skip
