"""A TCP proxy between a client and Redis that can lose replies: the command arrives, runs, and
its answer never comes back, as when a connection breaks right after the server wrote it.

It runs in the test's event loop. With `drop_replies` set, every byte Redis sends is discarded,
so the client's read times out although the command was carried out.
"""

from __future__ import annotations

import asyncio
import contextlib


class LossyProxy:
    """Forwards loopback connections on `port` to ``127.0.0.1:target``."""

    def __init__(self, target: int) -> None:
        self._target = target
        self._server: asyncio.Server | None = None
        self._pumps: set[asyncio.Task[None]] = set()
        self.drop_replies = False
        self.dropped_bytes = 0

    @property
    def port(self) -> int:
        """The port clients connect to."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        """A Redis URL through the proxy."""
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> LossyProxy:
        """Listen on a free loopback port."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def _accept(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        server_in, server_out = await asyncio.open_connection("127.0.0.1", self._target)
        for pump in (self._pump(client_in, server_out, replies=False),
                     self._pump(server_in, client_out, replies=True)):  # fmt: skip
            task = asyncio.create_task(pump)
            self._pumps.add(task)
            task.add_done_callback(self._pumps.discard)

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, replies: bool
    ) -> None:
        try:
            while data := await source.read(65536):
                if replies and self.drop_replies:
                    self.dropped_bytes += len(data)
                    continue
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            sink.close()

    async def aclose(self) -> None:
        """Stop listening and end every forwarded connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._pumps):
            task.cancel()
        for task in list(self._pumps):
            with contextlib.suppress(asyncio.CancelledError):
                await task
