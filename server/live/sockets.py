"""The open websockets of this process, so shutdown can close them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiohttp import WSCloseCode, web

from server.keys import BROKER_KEY, WEBSOCKETS_KEY


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


async def serve_channel(
    request: web.Request, channel: str, greeting: Sequence[dict[str, Any]] = ()
) -> web.WebSocketResponse:
    """Upgrade the request, send the greeting, then push the channel's messages until either
    side closes; the client sends nothing (a lost message is harmless: clients re-read on every
    message)."""
    socket = web.WebSocketResponse(heartbeat=30)
    await socket.prepare(request)
    request.app[WEBSOCKETS_KEY].add(socket)
    try:
        async with request.app[BROKER_KEY].subscribe(channel) as messages:
            for message in greeting:
                await socket.send_json(message)
            forward = asyncio.create_task(_forward(messages, socket))
            try:
                async for _ in socket:
                    pass
            finally:
                forward.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await forward
    finally:
        request.app[WEBSOCKETS_KEY].discard(socket)
    return socket


async def _forward(messages: AsyncIterator[dict[str, Any]], socket: web.WebSocketResponse) -> None:
    async for message in messages:
        if socket.closed:
            return
        await socket.send_json(message)
