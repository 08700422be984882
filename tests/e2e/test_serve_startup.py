"""`raibid-api serve` starting up as a newcomer meets it: the address it binds (``--host``,
``--port 0``), the links that follow it, the ready banner, and the refusals that are one line:
a port in use, an embedded Redis data folder in use by another server.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import httpx
import pytest

from tests.support.polling import eventually_sync
from tests.support.processes import clean_env, is_running
from tests.support.server_process import (
    READ,
    START_TIMEOUT,
    TRIGGER,
    WRITE,
    Server,
    raibid_api,
    stop_cleanly,
    write_config,
)

pytestmark = pytest.mark.e2e

READY = re.compile(r"^raibid-api ready, listening on http://(\S+):(\d+)$", re.MULTILINE)
IN_USE = "address already in use (is another raibid-api running? use --port)"


def ready_port(server: Server) -> int | None:
    """The port the banner names; fails the test at once if the server has exited."""
    if server.process.poll() is not None:
        pytest.fail(f"server exited with {server.process.returncode}:\n{server.output()}")
    found = READY.search(server.output())
    return int(found[2]) if found else None


class Launch(Protocol):
    def __call__(self, config: Path, *args: str) -> Server: ...


@pytest.fixture
def serve_free_port(tmp_path: Path) -> Iterator[Launch]:
    """Start `serve --config <config> --port 0 <args>` and wait for its banner; the server's
    ``base_url`` is loopback on the port the banner names. All are stopped at the end."""
    started: list[Server] = []

    def launch(config: Path, *args: str) -> Server:
        log = tmp_path / f"server-{len(started)}.log"
        argv = [sys.executable, "-m", "raibid_api", "serve", "--config", str(config)]
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [*argv, "--port", "0", *args],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=clean_env(),
                cwd=tmp_path,
            )
        server = Server(process, "", log)
        started.append(server)
        eventually_sync(lambda: ready_port(server) is not None, START_TIMEOUT, "the ready banner")
        server.base_url = f"http://127.0.0.1:{ready_port(server)}"
        return server

    yield launch
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


def test_port_zero_serves_a_free_port_the_banner_and_the_links_name(
    serve_free_port: Launch, tmp_path: Path
) -> None:
    # a configured host nothing can bind: --host must be what is used
    config = write_config(tmp_path, tmp_path / "redis", host="192.0.2.1")
    server = serve_free_port(config, "--host", "127.0.0.1")
    output = server.output()
    assert output.index("Application startup complete") < output.index("raibid-api ready")
    assert f"  web:      {server.base_url}/\n" in output
    assert f"  jobs:     {server.base_url}/jobs\n" in output
    assert f"  api docs: {server.base_url}/docs\n" in output
    with httpx.Client(base_url=server.base_url, timeout=5.0) as http:
        assert http.get("/ready").json()["checks"] == {"redis": "ok"}
        created = http.post("/jobs", headers=WRITE, json=TRIGGER)
        assert created.status_code == 201, created.text
        job = created.json()
        assert job["links"]["self"] == f"{server.base_url}/jobs/{job['id']}"
        assert job["links"]["logs"] == f"{server.base_url}/jobs/{job['id']}/logs"
    stop_cleanly(server, server.redis_pid())


def test_a_wildcard_host_is_linked_by_its_loopback(serve_free_port: Launch, tmp_path: Path) -> None:
    # the IPv6 spelling (:: as [::1]) is in the unit tests: not every CI machine has IPv6
    config = write_config(tmp_path, tmp_path / "redis")
    server = serve_free_port(config, "--host", "0.0.0.0")  # noqa: S104
    port = server.base_url.rpartition(":")[2]
    assert f"raibid-api ready, listening on http://0.0.0.0:{port}\n" in server.output()
    assert f"  jobs:     http://127.0.0.1:{port}/jobs\n" in server.output()
    created = httpx.post(f"{server.base_url}/jobs", headers=WRITE, json=TRIGGER, timeout=5.0)
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    assert created.json()["links"]["self"] == f"http://127.0.0.1:{port}/jobs/{job_id}"


def test_a_configured_public_url_names_the_links_whatever_the_port(
    serve_free_port: Launch, tmp_path: Path
) -> None:
    public = "https://ci.example.test"
    server = serve_free_port(write_config(tmp_path, tmp_path / "redis", public_url=f"{public}/"))
    assert f"  jobs:     {public}/jobs\n" in server.output()
    created = httpx.post(f"{server.base_url}/jobs", headers=WRITE, json=TRIGGER, timeout=5.0)
    assert created.status_code == 201, created.text
    assert created.json()["links"]["self"] == f"{public}/jobs/{created.json()['id']}"


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port another process is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_port_in_use_is_one_line_and_exit_2(busy_port: int, tmp_path: Path) -> None:
    data_dir = tmp_path / "redis"
    result = raibid_api("serve", "--config", str(write_config(tmp_path, data_dir)),
                        "--port", str(busy_port))  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == f"error: cannot listen on 127.0.0.1:{busy_port}: {IN_USE}\n"
    assert result.stdout == ""
    assert not data_dir.exists()  # refused before anything was started or written


def test_an_address_of_another_machine_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = write_config(tmp_path, tmp_path / "redis", host="192.0.2.1", port=8080)
    result = raibid_api("serve", "--config", str(config))
    assert result.returncode == 2
    assert (
        result.stderr == "error: cannot listen on 192.0.2.1:8080: cannot assign requested address\n"
    )
    assert result.stdout == ""


def test_no_ready_banner_when_the_app_cannot_start(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: a connection is refused
        env = clean_env() | {"RAIBID_REDIS__URL": f"redis://127.0.0.1:{closed.getsockname()[1]}/0"}
        config = write_config(tmp_path, tmp_path / "redis")
        result = raibid_api("serve", "--config", str(config), "--port", "0", env=env)
    assert result.returncode == 3
    assert "Application startup failed" in result.stderr
    assert "raibid-api ready" not in result.stdout + result.stderr


def test_the_embedded_redis_comes_from_the_configured_binary(tmp_path: Path) -> None:
    env = clean_env() | {"RAIBID_REDIS__BINARY": str(tmp_path / "no-such-redis-server")}
    config = write_config(tmp_path, tmp_path / "redis")
    result = raibid_api("serve", "--config", str(config), "--port", "0", env=env)
    assert result.returncode == 3
    assert f"redis.binary: {tmp_path / 'no-such-redis-server'} does not exist" in result.stderr
    assert "raibid-api ready" not in result.stdout + result.stderr


def test_a_second_server_on_the_same_data_folder_is_refused(
    serve_free_port: Launch, tmp_path: Path
) -> None:
    data_dir = tmp_path / "redis"
    first = serve_free_port(write_config(tmp_path, data_dir))
    redis_pid = first.redis_pid()
    job = httpx.post(f"{first.base_url}/jobs", headers=WRITE, json=TRIGGER, timeout=5.0).json()
    files = sorted(path.name for path in data_dir.rglob("*"))

    second = raibid_api("serve", "--config", str(write_config(tmp_path, data_dir)), "--port", "0")
    assert second.returncode == 2
    assert second.stderr == (
        f"error: the embedded Redis data folder {data_dir} is in use by another raibid-api "
        f"(pid {first.process.pid})\n"
    )
    assert second.stdout == ""
    assert sorted(path.name for path in data_dir.rglob("*")) == files
    assert (data_dir / "raibid.lock").read_text() == f"{first.process.pid}\n"

    # the first server still runs on its one redis-server, with its data
    assert first.redis_pid() == redis_pid
    read = httpx.get(f"{first.base_url}/jobs/{job['id']}", headers=READ, timeout=5.0)
    assert read.json() == job
    again = httpx.post(f"{first.base_url}/jobs", headers=WRITE, json=TRIGGER, timeout=5.0)
    assert again.status_code == 201
    stop_cleanly(first, redis_pid)


def test_the_data_folder_is_free_again_once_its_server_is_killed(
    serve_free_port: Launch, tmp_path: Path
) -> None:
    data_dir = tmp_path / "redis"
    first = serve_free_port(write_config(tmp_path, data_dir))
    redis_pid = first.redis_pid()
    first.process.kill()  # no shutdown, no clean-up: the kernel drops the lock
    first.process.wait()
    eventually_sync(lambda: not is_running(redis_pid), 5.0, "the orphaned redis-server to exit")

    second = serve_free_port(write_config(tmp_path, data_dir))
    assert (data_dir / "raibid.lock").read_text() == f"{second.process.pid}\n"
    assert httpx.get(f"{second.base_url}/ready", timeout=5.0).status_code == 200
    stop_cleanly(second, second.redis_pid())
