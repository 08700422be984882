"""Slow and oversized clients against the real server process: cut, refused, and never acted on.

Each client here speaks raw HTTP over a socket, so it can stop half-way through a request the
way a slow-loris client does. The server under test cuts a request whose head or body is not in
within one second (``server.header_timeout``, ``server.body_timeout``), so the tests wait for
the server's own deadline, not for a sleep of theirs.
"""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from raibid_api.embedded import free_port
from tests.support.polling import eventually_sync
from tests.support.processes import open_files
from tests.support.server_process import READ, Server, launch_server, write_config
from tests.support.webhook_deliveries import push_body, sha
from tests.support.webhook_samples import SECRET, gitea_headers

pytestmark = pytest.mark.e2e

DEADLINE = 1  # seconds: server.header_timeout and server.body_timeout of the server under test
MAX_CONNECTIONS = 20
# how long a test waits for the server to cut a client: the deadline, with room for a busy machine
CUT_WITHIN = 15.0


def start_server(folder: Path, **server_settings: object) -> Server:
    """A server process with these ``server`` settings and a Gitea webhook secret."""
    port = free_port()
    config = write_config(folder, folder / "redis", host="127.0.0.1", port=port, **server_settings)
    settings = yaml.safe_load(config.read_text())
    settings["webhooks"]["gitea"] = {"secret": SECRET}
    config.write_text(yaml.safe_dump(settings))
    return launch_server(folder, config, port)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    started = start_server(
        tmp_path_factory.mktemp("slow-clients"),
        header_timeout=f"{DEADLINE}s", body_timeout=f"{DEADLINE}s",
    )  # fmt: skip
    yield started
    started.terminate()


def connect(server: Server) -> socket.socket:
    """A raw connection to ``server``; reads wait at most `CUT_WITHIN`."""
    port = int(server.base_url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=CUT_WITHIN)
    sock.settimeout(CUT_WITHIN)
    return sock


def read_to_close(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def parse(answer: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    """Status, headers (lower-cased names) and JSON body of one raw HTTP answer."""
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *fields = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (f.partition(":") for f in fields)}
    return int(status_line.split()[1]), headers, json.loads(body)


def total_jobs(server: Server) -> int:
    answer = httpx.get(f"{server.base_url}/jobs", headers=READ, timeout=5.0)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["total"])


def test_a_request_whose_headers_never_end_is_cut_with_408(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: ci\r\nX-Slow: ")
        status, headers, body = parse(read_to_close(sock))
    assert (status, body["error"]) == (408, "request_timeout")
    assert headers["connection"] == "close"


def test_a_connection_that_sends_nothing_is_cut(server: Server) -> None:
    with connect(server) as sock:
        status, _, body = parse(read_to_close(sock))
    assert (status, body["error"]) == (408, "request_timeout")


def test_a_trickled_webhook_is_cut_and_never_acknowledged(server: Server) -> None:
    before = total_jobs(server)
    payload = push_body(sha(1), branch="slow-loris")
    head = "".join(f"{k}: {v}\r\n" for k, v in gitea_headers("push", "push", payload).items())
    with connect(server) as sock:
        sock.sendall(
            f"POST /webhook/gitea HTTP/1.1\r\nHost: ci\r\nContent-Length: {len(payload)}\r\n"
            f"{head}\r\n".encode()
            + payload[: len(payload) // 2]
        )
        status, _, body = parse(read_to_close(sock))
    assert (status, body["error"]) == (408, "request_timeout")
    # the same delivery sent whole makes a job: only the cut one made none
    assert total_jobs(server) == before
    whole = httpx.post(
        f"{server.base_url}/webhook/gitea",
        content=payload, headers=gitea_headers("push", "push", payload), timeout=5.0,
    )  # fmt: skip
    assert whole.status_code == 202, whole.text
    assert total_jobs(server) == before + 1
    assert "Traceback" not in server.output()


def test_a_one_mib_header_is_refused_with_431(server: Server) -> None:
    answer = httpx.get(
        f"{server.base_url}/health", headers={"X-Big": "b" * 1_048_576}, timeout=10.0
    )
    assert answer.status_code == 431
    assert answer.json()["error"] == "headers_too_large"


def test_more_than_a_hundred_headers_are_refused_with_431(server: Server) -> None:
    many = {f"X-Field-{n}": "v" for n in range(120)}
    answer = httpx.get(f"{server.base_url}/health", headers=many, timeout=10.0)
    assert answer.status_code == 431
    assert answer.json()["error"] == "too_many_headers"


def test_a_url_longer_than_the_header_limit_is_refused_with_414(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /jobs?branch=" + b"x" * 70_000 + b" HTTP/1.1\r\nHost: ci\r\n\r\n")
        status, _, body = parse(read_to_close(sock))
    assert (status, body["error"]) == (414, "uri_too_long")


def test_bytes_that_are_not_http_get_a_json_400(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n")
        status, _, body = parse(read_to_close(sock))
    assert (status, body["error"]) == (400, "invalid_http")


def test_slow_clients_do_not_stop_others_and_return_their_files(server: Server) -> None:
    baseline = open_files(server.process.pid)
    slow = [connect(server) for _ in range(MAX_CONNECTIONS // 2)]
    try:
        for sock in slow:
            sock.sendall(b"POST /jobs HTTP/1.1\r\nHost: ci\r\n")
        # meanwhile, other clients are served
        assert httpx.get(f"{server.base_url}/health", timeout=5.0).status_code == 200
        assert total_jobs(server) >= 0
        answers = [parse(read_to_close(sock))[0] for sock in slow]
    finally:
        for sock in slow:
            sock.close()
    assert answers == [408] * len(slow)
    eventually_sync(
        lambda: open_files(server.process.pid) <= baseline, CUT_WITHIN,
        "the server to close the slow clients' files",
    )  # fmt: skip


@pytest.fixture
def limited_server(tmp_path: Path) -> Iterator[Server]:
    """A server taking at most `MAX_CONNECTIONS` connections, with the default deadlines."""
    started = start_server(tmp_path, max_connections=MAX_CONNECTIONS)
    yield started
    started.terminate()


def test_connections_past_the_limit_are_refused_with_503_then_served_again(
    limited_server: Server,
) -> None:
    server = limited_server
    extra = 10
    held = [connect(server) for _ in range(MAX_CONNECTIONS + extra)]
    try:
        # a refused connection is answered at once; a taken one waits for its request
        eventually_sync(lambda: len(answered(held)) >= extra, CUT_WITHIN, "the refusals to arrive")
        refused = answered(held)
        assert len(refused) == extra
        for sock in refused:
            status, headers, body = parse(read_to_close(sock))
            assert (status, body["error"], headers["retry-after"]) == (
                503, "too_many_connections", "1")  # fmt: skip
        taken = [sock for sock in held if sock not in refused]
        for sock in taken:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: ci\r\nConnection: close\r\n\r\n")
        assert [parse(read_to_close(sock))[0] for sock in taken] == [200] * MAX_CONNECTIONS
    finally:
        for sock in held:
            sock.close()
    eventually_sync(
        lambda: httpx.get(f"{server.base_url}/health", timeout=5.0).status_code == 200,
        CUT_WITHIN, "the server to take connections again",
    )  # fmt: skip


def answered(socks: list[socket.socket]) -> list[socket.socket]:
    """The sockets the server has written to (or closed) so far."""
    return select.select(socks, [], [], 0)[0]
