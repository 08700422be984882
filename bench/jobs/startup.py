"""`make run` to the first 200 from `GET /jobs`, after install.

The README's command is run as a user runs it, with the development config, but in a virtualenv
of the benchmark's own (so the shared `.venv` is never reinstalled under anyone's feet), on a free
port, with its Redis data, workspaces and spool in a fresh temporary folder: each run is the first
start of a new installation. The install itself (the first `make run` on a fresh machine) is done
and timed once beforehand; it is reported but is not part of the figure.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bench.common import REPO_ROOT, ChildProcess, wait_for_http
from raibid_api.embedded import free_port

DEV_CONFIG = REPO_ROOT / "examples" / "development.yaml"
DEFAULT_VENV = Path(tempfile.gettempdir()) / "raibid-bench-venv"
TIMEOUT = 60.0


@dataclass
class StartupResult:
    """Seconds from `make run` to the first 200 per run (wall and CPU), and the install time."""

    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    install_seconds: float | None = None

    @property
    def median(self) -> float:
        """The median over the runs."""
        return statistics.median(self.seconds)


def _make(venv: Path, *args: str) -> list[str]:
    return ["make", "-C", str(REPO_ROOT), f"VENV={venv}", *args]


def ensure_installed(venv: Path) -> float | None:
    """Install into ``venv`` as `make run` would, if it is not up to date; the seconds it took."""
    marker = str(venv / ".installed-run")
    if subprocess.run(_make(venv, "-q", marker), check=False).returncode == 0:
        return None
    started = time.perf_counter()
    subprocess.run(_make(venv, marker), check=True)
    return time.perf_counter() - started


def _config(folder: Path, port: int) -> Path:
    data = yaml.safe_load(DEV_CONFIG.read_text())
    data["server"] |= {"port": port, "public_url": f"http://127.0.0.1:{port}"}
    data["redis"]["data_dir"] = str(folder / "redis")
    data.setdefault("dispatch", {})["local_workspace"] = str(folder / "workspaces")
    data.setdefault("webhooks", {})["spool_dir"] = str(folder / "spool")
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def group_cpu_seconds(pgid: int) -> float:
    """CPU time used so far by every live process of a process group, and the children it reaped.

    On a machine other work shares, wall time depends on the neighbours; CPU time much less.
    """
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / tick


def one_start(venv: Path, folder: Path) -> tuple[float, float]:
    """Wall and CPU seconds from starting `make run` to a 200 from `GET /jobs`; then stop it."""
    port = free_port()
    config = _config(folder, port)
    child = ChildProcess(
        _make(venv, "run", f"CONFIG={config}"), folder / "make-run.log", new_session=True
    )
    started = time.perf_counter()
    child.start()
    try:
        wait_for_http(f"http://127.0.0.1:{port}/jobs", TIMEOUT, interval=0.01)
        wall = time.perf_counter() - started
        return wall, group_cpu_seconds(child.pid)
    except TimeoutError:
        raise RuntimeError(f"make run did not serve /jobs:\n{child.output_tail()}") from None
    finally:
        child.stop()


def measure_startup(runs: int, venv: Path = DEFAULT_VENV) -> StartupResult:
    """Install once if needed, then time ``runs`` starts."""
    result = StartupResult(install_seconds=ensure_installed(venv))
    for index in range(runs):
        if ensure_installed(venv) is not None:
            print("  (pyproject.toml or the lock changed: reinstalled before this run)")
        with tempfile.TemporaryDirectory(prefix=f"raibid-startup-{index}-") as folder:
            wall, cpu = one_start(venv, Path(folder))
            result.seconds.append(wall)
            result.cpu_seconds.append(cpu)
    return result
