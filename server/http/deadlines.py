"""A deadline for request bodies: a client that trickles its body is answered 408 and cut off.

(The request head has its deadline in aiohttp itself: a connection is closed when no complete
head arrives within its keep-alive timeout, which create_app sets from the settings.)"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.typedefs import Handler

from server.errors import RequestTimeout
from server.keys import SETTINGS_KEY


class BodyTimeout(TimeoutError):
    """Raised inside every read of a body that did not arrive in time.

    A TimeoutError on purpose: when the handler is done and the body is still unread, aiohttp
    reads on for up to `lingering_time`; meeting a timeout there, it closes the connection."""


@web.middleware
async def body_deadline_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Fail the body's reads when the whole body has not come within `body_timeout_s`."""
    if not request.body_exists:
        return await handler(request)
    seconds = request.app[SETTINGS_KEY].body_timeout_s
    payload = request.content

    def expire() -> None:
        if not payload.is_eof():
            payload.set_exception(BodyTimeout())

    timer = asyncio.get_running_loop().call_later(seconds, expire)
    try:
        return await handler(request)
    except BodyTimeout:
        raise RequestTimeout(
            "The request body did not arrive within {seconds} seconds.",
            seconds=f"{seconds:g}",
            headers={"Connection": "close"},
        ) from None
    finally:
        timer.cancel()
