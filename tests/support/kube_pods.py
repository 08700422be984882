"""The kubelet and container runtime the API double lacks: an agent Job's pod as a real process.

`PodHost.start` reads a Job the dispatcher (or KEDA) created in the `KubeDouble`, fills its Secret
and projected ServiceAccount-token volumes, plays its init container (which copies the token into
the agent's volume) and runs its agent
container's arguments as the real `raibid-api` process, with each volume a folder of the pod and
nothing in its environment but ``PATH`` and ``HOME``. The one change to the arguments is
``--server``: the pod would reach the server through its Service name, which does not resolve
here, so it gets the test server's loopback URL. As root, the process runs as ``nobody``
(`as_unprivileged`), like the image's non-root user. When it exits, or is killed as the OOM
killer would, `RunningPod.report` writes the pod's and the Job's ends as the kubelet and the Job
controller do.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.kube_double import KubeDouble
from tests.support.processes import NOBODY, as_unprivileged

STARTED = "2026-03-01T12:00:00Z"


def world_readable_folder(path: Path) -> Path:
    """``path``, created, readable by every user, and owned by `NOBODY` when we are root."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o755)
    return path


def give_to_pods(path: Path) -> None:
    """Hand ``path`` (recursively) to the user the pods run as."""
    if os.geteuid() != 0:
        return
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.chown(Path(root) / name, NOBODY, NOBODY, follow_symlinks=False)
    os.chown(path, NOBODY, NOBODY)


@dataclass
class RunningPod:
    """One agent pod: its Job, its object in the double, its process and its folders."""

    kube: KubeDouble
    job_name: str
    pod: dict[str, Any]
    process: subprocess.Popen[bytes]
    root: Path
    log: Path

    def output(self) -> str:
        """What the agent wrote so far."""
        return self.log.read_text(errors="replace")

    def oom_kill(self) -> None:
        """SIGKILL the pod's processes, as the kernel's OOM killer does at the memory limit."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM the pod's processes (a deleted pod), SIGKILL after the grace period."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def report(self, reason: str | None = None) -> int:
        """Write the ended pod and Job into the double; the agent's exit code."""
        code = self.process.wait(timeout=0)
        code = 137 if code == -signal.SIGKILL else code
        terminated = {"exitCode": code, "reason": reason or ("Completed" if code == 0 else "Error"),
                      "startedAt": STARTED, "finishedAt": STARTED}  # fmt: skip
        status = self.pod["status"]
        status["phase"] = "Succeeded" if code == 0 else "Failed"
        status["containerStatuses"][0]["state"] = {"terminated": terminated}
        if ("ci", self.job_name) in self.kube.jobs:
            message = None if code == 0 else "Job has reached the specified backoff limit"
            reason_of_job = None if code == 0 else "BackoffLimitExceeded"
            self.kube.finish_job(
                self.job_name, succeeded=code == 0, reason=reason_of_job, message=message
            )
        return code


class PodHost:
    """Runs the pods of agent Jobs as processes on this machine, in folders under ``base``."""

    def __init__(self, kube: KubeDouble, server_url: str, base: Path) -> None:
        self.kube = kube
        self.server_url = server_url
        self.base = world_readable_folder(base)
        self.pods: list[RunningPod] = []

    def start(self, job_name: str) -> RunningPod:
        """Start the pod of Job ``job_name``: its init container, then its agent process."""
        job = self.kube.job(job_name)
        spec = job["spec"]["template"]["spec"]
        root = world_readable_folder(self.base / job_name)
        folders = {volume["name"]: root / volume["name"] for volume in spec["volumes"]}
        for folder in folders.values():
            folder.mkdir()
        pod = self.kube.run_pod(job_name, {"waiting": {"reason": "PodInitializing"}})
        self._fill_volumes(spec, folders, pod)
        for init in spec.get("initContainers", []):
            self._run_init(init, folders)
        (container,) = spec["containers"]
        mounted = {m["name"] for m in container["volumeMounts"]}
        for name in set(folders) - mounted:  # the Secret's volume: the init container's alone
            shutil.rmtree(folders.pop(name))
        give_to_pods(root)
        mounts = {m["mountPath"]: folders[m["name"]] for m in container["volumeMounts"]}
        args = [self._local(arg, mounts) for arg in container["args"]]
        args[args.index("--server") + 1] = self.server_url
        env = {"PATH": os.environ["PATH"], "HOME": str(mounts["/home/raibid"])}
        env |= {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
        log = self.base / f"{job_name}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                as_unprivileged([sys.executable, "-m", "raibid_api", *args]),
                stdout=sink, stderr=subprocess.STDOUT, env=env,
                cwd=mounts[container["workingDir"]], start_new_session=True,
            )  # fmt: skip
        pod["status"]["phase"] = "Running"
        pod["status"]["containerStatuses"][0]["state"] = {"running": {"startedAt": STARTED}}
        running = RunningPod(self.kube, job_name, pod, process, root, log)
        self.pods.append(running)
        return running

    def _fill_volumes(
        self, spec: dict[str, Any], folders: dict[str, Path], pod: dict[str, Any]
    ) -> None:
        """What the kubelet puts in Secret and projected ServiceAccount-token volumes."""
        for volume in spec["volumes"]:
            folder = folders[volume["name"]]
            if "secret" in volume:
                name = volume["secret"]["secretName"]
                (folder / "token").write_text(self.kube.secret_value(name))
            for source in volume.get("projected", {}).get("sources", []):
                if "serviceAccountToken" in source:
                    request = source["serviceAccountToken"]
                    token = self.kube.issue_pod_token(pod, request["audience"])
                    (folder / request["path"]).write_text(token)

    def _run_init(self, init: dict[str, Any], folders: dict[str, Path]) -> None:
        """The token copier: ``cp <token volume>/token <agent's volume>/token``, as in the pod."""
        mounts = {m["mountPath"]: folders[m["name"]] for m in init["volumeMounts"]}
        command, source, target = init["command"]
        assert command == "cp"
        shutil.copyfile(self._local(source, mounts), self._local(target, mounts))

    @staticmethod
    def _local(arg: str, mounts: dict[str, Path]) -> str:
        for mount, folder in mounts.items():
            if arg == mount or arg.startswith(mount + "/"):
                return str(folder) + arg[len(mount) :]
        return arg

    def stop_all(self) -> None:
        """Stop every pod still running."""
        for pod in self.pods:
            pod.stop()

    def diagnostics(self) -> str:
        """The pods' output, for a failure message."""
        return "\n".join(f"--- pod {pod.job_name}\n{pod.output()}" for pod in self.pods)
