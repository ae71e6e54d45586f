"""A small typed client of Janus's HTTP API (1.1.x), for the Janus media backend (issue 17).

One JanusSession per Janus instance: it creates the server-side session and keeps one long poll
running, which is also Janus's keepalive (an HTTP long poll counts as one). Requests are
matched to their answers by transaction: a synchronous plugin request answers in the POST, an
asynchronous one (join, publish, start, configure) acks and answers on the poll. Events with no
transaction of ours (webrtcup, media, hangup, slowlink, publishers) go to their handle's queue.
Janus's errors come back in two shapes, `janus: "error"` and a plugin's `error_code`; both
raise JanusError. deploy/janus/NOTES.md holds the measured facts behind this module."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

VIDEOROOM = "janus.plugin.videoroom"
REQUEST_TIMEOUT_S = 10.0
POLL_EVENTS = 10


class JanusError(Exception):
    """Janus refused a request: its code (e.g. 427 room exists, 428 no such feed, 458 no such
    session) and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"Janus error {code}: {reason}")
        self.code, self.reason = code, reason


@dataclass(frozen=True)
class Jsep:
    """A session description as Janus carries it."""

    type: str
    sdp: str

    def as_json(self) -> dict[str, Any]:
        # aiortc (and the agent) gather every candidate first: nothing will trickle.
        return {"type": self.type, "sdp": self.sdp, "trickle": False}


@dataclass(frozen=True)
class Reply:
    """A plugin's answer: its data, and the description it carries (an answer or an offer)."""

    data: dict[str, Any]
    jsep: Jsep | None


def _checked(body: dict[str, Any]) -> dict[str, Any]:
    if body.get("janus") == "error":
        error = body.get("error", {})
        raise JanusError(int(error.get("code", 0)), str(error.get("reason", "")))
    data = body.get("plugindata", {}).get("data", {})
    if "error_code" in data:
        raise JanusError(int(data["error_code"]), str(data.get("error", "")))
    return body


def _reply(body: dict[str, Any]) -> Reply:
    _checked(body)
    raw = body.get("jsep")
    jsep = None if raw is None else Jsep(str(raw["type"]), str(raw["sdp"]))
    return Reply(dict(body.get("plugindata", {}).get("data", {})), jsep)


class JanusSession:
    """A session on one Janus instance (its HTTP API at `url`, e.g. http://10.0.0.5:8088/janus)."""

    def __init__(self, http: aiohttp.ClientSession, url: str, session_id: int) -> None:
        self.http, self.url, self.id = http, url.rstrip("/"), session_id
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._handles: dict[int, JanusHandle] = {}
        self._poller: asyncio.Task[None] | None = None

    @classmethod
    async def create(cls, http: aiohttp.ClientSession, url: str) -> JanusSession:
        """Create the session on the instance and start its long poll."""
        body = await _post(http, url.rstrip("/"), {"janus": "create"})
        session = cls(http, url, int(body["data"]["id"]))
        session._poller = asyncio.create_task(session._poll(), name=f"janus-poll-{session.id}")
        return session

    @property
    def gone(self) -> bool:
        """True once the long poll stopped (Janus said the session no longer exists)."""
        return self._poller is not None and self._poller.done()

    async def attach(self, plugin: str = VIDEOROOM, opaque_id: str | None = None) -> JanusHandle:
        """A handle on a plugin; `opaque_id` tags its events for the event handler."""
        message: dict[str, Any] = {"janus": "attach", "plugin": plugin}
        if opaque_id is not None:
            message["opaque_id"] = opaque_id
        body = await _post(self.http, f"{self.url}/{self.id}", message)
        handle = JanusHandle(self, int(body["data"]["id"]))
        self._handles[handle.id] = handle
        return handle

    async def destroy(self) -> None:
        """Destroy the session (its handles with it) and stop polling."""
        try:
            await _post(self.http, f"{self.url}/{self.id}", {"janus": "destroy"})
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop polling, without telling Janus (which ends the session after its timeout)."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        self._fail_waiting()

    def _fail_waiting(self) -> None:
        for waiting in self._waiting.values():
            if not waiting.done():
                waiting.set_exception(JanusError(458, "the session was closed"))

    async def _ask(
        self, handle_id: int, message: dict[str, Any], within_s: float
    ) -> dict[str, Any]:
        """POST a plugin message; its answer (from the POST, or from the poll after an ack)."""
        transaction = secrets.token_hex(8)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[transaction] = future
        try:
            body = await _post(
                self.http, f"{self.url}/{self.id}/{handle_id}", message, transaction=transaction
            )
            if body.get("janus") != "ack":
                return body
            return _checked(await asyncio.wait_for(future, within_s))
        finally:
            self._waiting.pop(transaction, None)

    async def _poll(self) -> None:
        while True:
            try:
                async with self.http.get(
                    f"{self.url}/{self.id}",
                    params={"maxev": str(POLL_EVENTS), "rid": secrets.token_hex(4)},
                    timeout=aiohttp.ClientTimeout(total=60),
                ) as answer:
                    events = await answer.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, ValueError) as error:
                log.warning("the long poll of Janus session %s failed: %s", self.id, error)
                await asyncio.sleep(1.0)
                continue
            for event in events if isinstance(events, list) else [events]:
                if not isinstance(event, dict):
                    continue  # a poll cut short answers null
                if event.get("janus") == "error" and not event.get("transaction"):
                    # 458: the session is gone (destroyed, or timed out on a restarted Janus).
                    log.warning("Janus session %s is gone: %s", self.id, event.get("error"))
                    self._fail_waiting()
                    return
                self._deliver(event)

    def _deliver(self, event: dict[str, Any]) -> None:
        waiting = self._waiting.get(str(event.get("transaction", "")))
        if waiting is not None and not waiting.done() and event.get("janus") != "ack":
            waiting.set_result(event)
            return
        handle = self._handles.get(int(event.get("sender", 0) or 0))
        if handle is not None:
            handle.events.put_nowait(event)
        elif event.get("janus") not in ("keepalive", "ack"):
            log.debug("a Janus event for no handle of ours: %s", event)


class JanusHandle:
    """A handle on a plugin; unsolicited events (webrtcup, media, hangup…) wait in `events`."""

    def __init__(self, session: JanusSession, handle_id: int) -> None:
        self.session, self.id = session, handle_id
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """A synchronous plugin request (create, destroy, exists, listparticipants…): its data."""
        return (await self.message(body)).data

    async def message(
        self, body: dict[str, Any], jsep: Jsep | None = None, within_s: float = REQUEST_TIMEOUT_S
    ) -> Reply:
        """Any plugin request, with a session description or not; its answer."""
        message: dict[str, Any] = {"janus": "message", "body": body}
        if jsep is not None:
            message["jsep"] = jsep.as_json()
        return _reply(await self.session._ask(self.id, message, within_s))

    async def wait_for(self, kind: str, within_s: float = REQUEST_TIMEOUT_S) -> dict[str, Any]:
        """The next unsolicited event of this kind (e.g. "webrtcup"); others are dropped."""
        async with asyncio.timeout(within_s):
            while True:
                event = await self.events.get()
                if event.get("janus") == kind:
                    return event

    async def detach(self) -> None:
        await _post(
            self.session.http,
            f"{self.session.url}/{self.session.id}/{self.id}",
            {"janus": "detach"},
        )
        self.session._handles.pop(self.id, None)


async def _post(
    http: aiohttp.ClientSession, url: str, message: dict[str, Any], transaction: str | None = None
) -> dict[str, Any]:
    payload = {**message, "transaction": transaction or secrets.token_hex(8)}
    async with http.post(
        url, json=payload, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    ) as answer:
        body: dict[str, Any] = await answer.json(content_type=None)
    return _checked(body)


async def detach_quietly(handle: JanusHandle) -> None:
    """Detach a handle we are done with; a Janus gone or refusing changes nothing then."""
    with contextlib.suppress(JanusError, aiohttp.ClientError, TimeoutError, OSError):
        await handle.detach()
