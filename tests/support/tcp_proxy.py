"""A TCP proxy a test can sever: every open connection through it is cut at once, on demand.

It stands between a client and the real server to drop connections the way a flaky network or
a restarted load balancer does; new connections after a cut are forwarded again.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target``; `sever` cuts what is open."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        """The proxy's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # the listener was closed
            upstream = socket.create_connection(self._target)
            with self._lock:
                self.accepted += 1
                self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()

    def sever(self) -> int:
        """Cut every connection open now (both sides); return how many client connections."""
        with self._lock:
            cut, self._open = self._open, []
        for sock in cut:
            _close(sock)
        return len(cut) // 2

    def close(self) -> None:
        """Stop accepting and cut everything."""
        self._listener.close()
        self.sever()


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already shut by its peer
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    while True:
        try:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
        except OSError:
            break
    for sock in (source, sink):
        _close(sock)


@contextmanager
def tcp_proxy(port: int) -> Iterator[TcpProxy]:
    """A proxy to ``127.0.0.1:<port>``, closed at the end."""
    proxy = TcpProxy(("127.0.0.1", port))
    try:
        yield proxy
    finally:
        proxy.close()
