"""Worker 0's relay, served to the other workers of `hetang serve --workers N` over a private
Unix socket (a directory only the server's user can enter): one POST per operation, JSON in and
out, the relay's expected exceptions named in the answer (server.rtc.relay_link.ERRORS)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from aiohttp import web

from server.domain.janus_events import MediaReport
from server.rtc.relay_link import (
    Relay,
    description_data,
    ended_data,
    error_name,
    session_description,
    status_data,
)

log = logging.getLogger(__name__)

Operation = Callable[[Relay, Any], Awaitable[Any]]


async def _status(relay: Relay, data: Any) -> Any:
    return status_data(await relay.status(str(data["public_id"])))


async def _on_air_for(relay: Relay, data: Any) -> Any:
    return await relay.on_air_for(str(data["venue"]))


async def _publish(relay: Relay, data: Any) -> Any:
    published = await relay.publish(
        str(data["public_id"]),
        tuple(str(code) for code in data["venues"]),
        session_description(data["offer"]),
        datetime.fromisoformat(data["now"]),
    )
    return {"answer": description_data(published.answer), "recording": published.recording}


async def _replay(relay: Relay, data: Any) -> Any:
    await relay.replay(
        str(data["public_id"]),
        tuple(str(code) for code in data["venues"]),
        Path(data["recording"]),
        datetime.fromisoformat(data["now"]),
    )


async def _subscribe(relay: Relay, data: Any) -> Any:
    answer = await relay.subscribe(
        str(data["public_id"]), str(data["venue"]), session_description(data["offer"])
    )
    return description_data(answer)


async def _offer(relay: Relay, data: Any) -> Any:
    regions = tuple(str(code) for code in data.get("regions", ()))
    offered = await relay.offer(str(data["public_id"]), str(data["venue"]), regions)
    return {"token": offered.token, "offer": description_data(offered.offer)}


async def _answer(relay: Relay, data: Any) -> Any:
    await relay.answer(
        str(data["public_id"]),
        str(data["venue"]),
        str(data["token"]),
        session_description(data["answer"]),
    )


async def _media_reports(relay: Relay, data: Any) -> Any:
    await relay.media_reports([MediaReport(**report) for report in data["reports"]])


async def _end(relay: Relay, data: Any) -> Any:
    return ended_data(await relay.end(str(data["public_id"])))


OPERATIONS: MappingProxyType[str, Operation] = MappingProxyType(
    {
        "status": _status,
        "on_air_for": _on_air_for,
        "publish": _publish,
        "replay": _replay,
        "subscribe": _subscribe,
        "offer": _offer,
        "answer": _answer,
        "media_reports": _media_reports,
        "end": _end,
    }
)


def relay_service(relay: Relay) -> web.Application:
    """The internal application: POST /{operation} with the operation's arguments."""

    async def handle(request: web.Request) -> web.Response:
        operation = OPERATIONS.get(request.match_info["operation"])
        if operation is None:
            raise web.HTTPNotFound()
        try:
            result = await operation(relay, await request.json())
        except Exception as error:
            name = error_name(error)
            if name is None:
                log.exception("the relay failed an operation for another worker")
                raise
            return web.json_response({"error": name, "problem": str(error)})
        return web.json_response({"result": result})

    app = web.Application()
    app.router.add_post("/{operation}", handle)
    return app
