"""A TCP proxy between a client and a server that a test can sever: every open connection is cut
at once (as a dropped Wi-Fi or a restarted load balancer would), while new ones are still accepted.

It also keeps what the client sent, so a test can read the request lines that went over the wire.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

CHUNK = 65536
REQUEST_LINE = re.compile(rb"(?:GET|POST|HEAD|PUT|DELETE|PATCH|OPTIONS) (\S+) HTTP/1\.[01]\r\n")


class SeverableProxy:
    """Forwards ``127.0.0.1:<port>`` to ``upstream``; `sever` cuts every open connection."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._sent = bytearray()
        self.accepted = 0
        self.severed = 0
        self._closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        """The URL a client uses instead of the server's."""
        return f"http://127.0.0.1:{self.port}"

    def request_targets(self) -> list[str]:
        """The target (path and query) of every request a client sent through the proxy."""
        with self._lock:
            sent = bytes(self._sent)
        return [target.decode() for target in REQUEST_LINE.findall(sent)]

    def sever(self) -> int:
        """Cut every open connection (both ways); return how many were cut."""
        with self._lock:
            cut = list(self._open)
            self._open.clear()
        for sock in cut:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.severed += len(cut)
        return len(cut)

    def close(self) -> None:
        """Stop accepting and cut everything."""
        self._closed = True
        self._listener.close()
        self.sever()
        self._thread.join(5)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self.accepted += 1
                self._open.update((client, server))
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        try:
            while data := source.recv(CHUNK):
                if from_client:
                    with self._lock:
                        self._sent += data
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._open.discard(source)
                self._open.discard(sink)
            source.close()  # each socket is the source of one pump: closed once, by it


@contextmanager
def severable_proxy(upstream: tuple[str, int]) -> Iterator[SeverableProxy]:
    """A `SeverableProxy` to ``upstream``, closed afterwards."""
    proxy = SeverableProxy(upstream)
    try:
        yield proxy
    finally:
        proxy.close()
