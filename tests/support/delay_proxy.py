"""A slow uplink for tests: a TCP forwarder that holds every byte going to the server for a
fixed time before passing it on (answers come back at once). A test double for the network, not
for our code: HTTP, keep-alive and WebSockets go through it untouched, only late."""

from __future__ import annotations

import asyncio
import contextlib
import threading

DEADLINE_S = 30.0


class DelayProxy:
    """Listens on 127.0.0.1 (its own port) and forwards to upstream_port, every byte towards the
    server delayed by delay_s, in order."""

    def __init__(self, upstream_port: int, delay_s: float) -> None:
        self.upstream_port, self.delay_s = upstream_port, delay_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._connections: set[asyncio.Task[None]] = set()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop
        ).result(DEADLINE_S)
        self.port: int = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        """The base URL an agent uses instead of the server's."""
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        """Stop listening, drop every connection, stop the thread."""
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(DEADLINE_S)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=DEADLINE_S)
        self._loop.close()

    async def _shutdown(self) -> None:
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            try:
                up_reader, up_writer = await asyncio.open_connection(
                    "127.0.0.1", self.upstream_port
                )
            except OSError:
                return  # the server is down: the agent sees its connection closed
            try:
                await asyncio.gather(
                    _pump(reader, up_writer, self.delay_s), _pump(up_reader, writer, 0.0)
                )
            finally:
                up_writer.close()
        finally:
            writer.close()
            self._connections.discard(task)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float) -> None:
    """Copy reader to writer, each chunk delay_s after it arrived; close the writer at the end
    (after the chunks still on their way), which ends the other direction too."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, chunk = await queue.get()
            await asyncio.sleep(max(0.0, due - loop.time()))
            if not chunk:
                return
            writer.write(chunk)
            await writer.drain()

    delivery = asyncio.create_task(deliver())
    try:
        while True:
            try:
                chunk = await reader.read(65536)
            except OSError:
                chunk = b""
            queue.put_nowait((loop.time() + delay_s, chunk))
            if not chunk:
                break
        with contextlib.suppress(OSError):
            await delivery
    finally:
        delivery.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await delivery
        writer.close()
