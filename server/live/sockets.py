"""The open websockets of this process, so shutdown can close them."""

from __future__ import annotations

from aiohttp import WSCloseCode, web


class OpenSockets:
    """Websockets are added after prepare() and discarded in `finally`."""

    def __init__(self) -> None:
        self._open: set[web.WebSocketResponse] = set()

    def add(self, socket: web.WebSocketResponse) -> None:
        """Remember an open socket."""
        self._open.add(socket)

    def discard(self, socket: web.WebSocketResponse) -> None:
        """Forget a socket that closed."""
        self._open.discard(socket)

    async def close_all(self) -> None:
        """Close every socket still open (server shutdown)."""
        for socket in list(self._open):
            await socket.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
