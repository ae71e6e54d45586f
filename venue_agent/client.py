"""ServerClient: the agent API of PROTOCOL.md over one aiohttp.ClientSession, with typed errors."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import aiohttp

from venue_agent import clock
from venue_agent.clock_sync import ClockEstimate, sample_of

log = logging.getLogger(__name__)

API = "/api/v1/agent"
# Small requests (hello, heartbeat, schedule, subscribe, ice-servers) must fail fast on a bad
# link so that one unanswered request never holds the others back for long.
SHORT_TIMEOUT = aiohttp.ClientTimeout(total=8, connect=3, sock_connect=3)
# Batch uploads get a bounded timeout that grows with the body: UPLOAD_BASE_S plus
# UPLOAD_S_PER_MB per megabyte, never above UPLOAD_MAX_S.
UPLOAD_BASE_S = 15.0
UPLOAD_S_PER_MB = 10.0
UPLOAD_MAX_S = 60.0
MAX_RETRY_AFTER_S = 3600.0
MAX_CLOCK_OFFSET_MS = 86_400_000  # what the server accepts; beyond it, let it judge by sent_at


class ServerError(Exception):
    """The server could not be used for this call."""


class Unavailable(ServerError):
    """No usable answer (network down, timeout, 5xx, garbage): try again later."""


class RateLimited(ServerError):
    """429: wait retry_after seconds before the next try."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited; retry after {retry_after:g} s")
        self.retry_after = retry_after


class Refused(ServerError):
    """A 4xx other than 429: this request, as it is, will never succeed."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status, self.code, self.message = status, code, message

    @property
    def about_us(self) -> bool:
        """True when the refusal concerns the agent (token, address), not the request's content."""
        return self.status in (401, 403, 404, 405)


@dataclass(frozen=True)
class Hello:
    """The server's answer to hello."""

    venue_code: str
    venue_name: str
    server_time: str
    heartbeat_s: float
    stats_s: float


@dataclass(frozen=True)
class ScheduleAnswer:
    """A schedule, or None for data when it did not change (304)."""

    data: object | None
    etag: str | None


@dataclass(frozen=True)
class CheckinResult:
    """The server's verdict on one check-in event."""

    event_id: str
    status: str  # accepted | duplicate | rejected
    reason: str | None


class ServerClient:
    """Typed calls of the agent API; every failure is a ServerError subclass."""

    def __init__(
        self, http: aiohttp.ClientSession, base_url: str, token: str, agent_version: str
    ) -> None:
        self._http = http
        self._base = base_url.rstrip("/") + API
        self._headers = {
            "Authorization": f"Bearer {token}",
            "User-Agent": f"hetang-agent/{agent_version}",
        }
        self.agent_version = agent_version
        self.clock = ClockEstimate()  # fed by every answer that tells the server's time

    def clock_offset_ms(self) -> int | None:
        """The server's clock minus ours as measured so far, when we have a fresh measure."""
        offset = self.clock.offset_ms(time.monotonic())
        if offset is None or abs(offset) > MAX_CLOCK_OFFSET_MS:
            return None
        return offset

    async def hello(self, hostname: str) -> Hello:
        """POST hello: who we are; answers the venue and the intervals to use."""
        body = await self._timed_call(
            "POST", "/hello", {"agent_version": self.agent_version, "hostname": hostname}
        )
        try:
            venue = body["venue"]
            return Hello(
                venue_code=str(venue["code"]),
                venue_name=str(venue["name"]),
                server_time=str(body["server_time"]),
                heartbeat_s=max(1.0, float(body["heartbeat_s"])),
                stats_s=max(1.0, float(body["stats_s"])),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise Unavailable(f"hello answered an unexpected body ({error!r})") from None

    @asynccontextmanager
    async def events(self) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
        """The events WebSocket of this venue (the server pushes, we only listen); the
        handshake has the short timeout, the open connection its ping every 30 s."""
        async with asyncio.timeout(SHORT_TIMEOUT.total):
            socket = await self._http.ws_connect(
                self._base + "/events", headers=self._headers, heartbeat=30
            )
        try:
            yield socket
        finally:
            await socket.close()

    async def schedule(self, etag: str | None) -> ScheduleAnswer:
        """GET schedule, conditional on the ETag we hold."""
        headers = {"If-None-Match": etag} if etag else {}
        async with self._request("GET", "/schedule", None, headers) as response:
            if response.status == 304:
                return ScheduleAnswer(None, etag)
            body = await self._body(response)
            return ScheduleAnswer(body, response.headers.get("ETag"))

    async def heartbeat(
        self,
        state: str,
        session_public_id: str | None,
        queue_depth: int,
        ice_path: str | None = None,
    ) -> list[object]:
        """POST heartbeat; answers the server's commands (none are defined yet)."""
        beat: dict[str, object] = {
            "state": state,
            "session_id": session_public_id,
            "queue_depth": queue_depth,
            "agent_version": self.agent_version,
        }
        if ice_path is not None:
            beat["ice_path"] = ice_path
        body = await self._timed_call("POST", "/heartbeat", beat)
        commands = body.get("commands", [])
        return list(commands) if isinstance(commands, list) else []

    async def checkins(
        self, sent_at: str, events: Sequence[Mapping[str, Any]]
    ) -> list[CheckinResult]:
        """POST checkins; one result per event, in the events' order."""
        payload: dict[str, object] = {"sent_at": sent_at, "events": list(events)}
        body = await self._call("POST", "/checkins", self._with_offset(payload), upload=True)
        raw = body.get("results")
        if not isinstance(raw, list) or len(raw) != len(events):
            raise Unavailable("checkins answered without one result per event")
        results = []
        for event, item in zip(events, raw, strict=True):
            if (
                not isinstance(item, dict)
                or item.get("event_id") != event["event_id"]
                or item.get("status") not in ("accepted", "duplicate", "rejected")
            ):
                raise Unavailable("checkins answered results that do not match the events")
            reason = item.get("reason")
            results.append(
                CheckinResult(
                    event["event_id"], item["status"], None if reason is None else str(reason)
                )
            )
        return results

    async def stream_stats(
        self, sent_at: str, session_public_id: str, samples: Sequence[Mapping[str, Any]]
    ) -> int:
        """POST stream-stats: one session's samples; answers how many the server stored."""
        payload: dict[str, object] = {
            "sent_at": sent_at,
            "session_id": session_public_id,
            "samples": list(samples),
        }
        body = await self._call("POST", "/stream-stats", self._with_offset(payload), upload=True)
        accepted = body.get("accepted")
        if isinstance(accepted, bool) or not isinstance(accepted, int):
            raise Unavailable("stream-stats answered without a count")
        return accepted

    async def subscribe(self, session_public_id: str, offer_sdp: str) -> str:
        """POST sessions/{id}/subscribe: our receive-only offer for the broadcast; answers the
        server's answer SDP (409 Refused when no broadcast is on)."""
        body = await self._call(
            "POST",
            f"/sessions/{quote(session_public_id, safe='')}/subscribe",
            {"sdp": offer_sdp, "type": "offer"},
        )
        sdp = body.get("sdp")
        if body.get("type") != "answer" or not isinstance(sdp, str) or not sdp:
            raise Unavailable("subscribe answered without an SDP answer")
        return sdp

    async def subscription_offer(self, session_public_id: str) -> tuple[str, str]:
        """POST sessions/{id}/subscribe/offer: the media server's offer (Janus), and the token
        our answer names (409 Refused `offer_from_agent` when the server answers offers)."""
        body = await self._call(
            "POST", f"/sessions/{quote(session_public_id, safe='')}/subscribe/offer", None
        )
        sdp, token = body.get("sdp"), body.get("token")
        if body.get("type") != "offer" or not isinstance(sdp, str) or not isinstance(token, str):
            raise Unavailable("subscribe/offer answered without an SDP offer")
        return token, sdp

    async def subscription_answer(self, session_public_id: str, token: str, sdp: str) -> None:
        """POST sessions/{id}/subscribe/answer: our answer to that offer; the media starts."""
        await self._call(
            "POST",
            f"/sessions/{quote(session_public_id, safe='')}/subscribe/answer",
            {"sdp": sdp, "type": "answer", "token": token},
        )

    async def ice_servers(self) -> dict[str, Any]:
        """GET ice-servers: the STUN/TURN servers this venue should use, as the server sent them."""
        async with self._request("GET", "/ice-servers", None, {}) as response:
            return await self._body(response)

    def _with_offset(self, payload: dict[str, object]) -> dict[str, object]:
        """A batch carries our measured clock offset when we have one (PROTOCOL.md)."""
        offset = self.clock_offset_ms()
        return payload if offset is None else {**payload, "clock_offset_ms": offset}

    async def _timed_call(self, method: str, path: str, payload: object) -> dict[str, Any]:
        """A small call whose answer carries `server_time`: one sample of the clock offset."""
        sent_wall, sent_mono = clock.now().timestamp(), time.monotonic()
        body = await self._call(method, path, payload)
        received_mono, received_wall = time.monotonic(), clock.now().timestamp()
        server_time = body.get("server_time")
        try:
            server_wall = datetime.fromisoformat(str(server_time).replace("Z", "+00:00"))
        except ValueError:
            return body
        if server_wall.tzinfo is None:
            return body
        sample = sample_of(
            sent_wall,
            received_wall,
            server_wall.timestamp(),
            received_mono - sent_mono,
            received_mono,
        )
        if sample is not None:
            self.clock.add(sample)
        return body

    async def _call(
        self, method: str, path: str, payload: object, *, upload: bool = False
    ) -> dict[str, Any]:
        async with self._request(method, path, payload, {}, upload=upload) as response:
            return await self._body(response)

    @asynccontextmanager
    async def _request(
        self,
        method: str,
        path: str,
        payload: object,
        headers: Mapping[str, str],
        *,
        upload: bool = False,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        url = self._base + path
        data = None
        all_headers = {**self._headers, **headers}
        if payload is not None:
            data = json.dumps(payload, ensure_ascii=False).encode()
            all_headers["Content-Type"] = "application/json"
        timeout = upload_timeout(len(data or b"")) if upload else SHORT_TIMEOUT
        try:
            response = await self._http.request(
                method, url, data=data, headers=all_headers, timeout=timeout
            )
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise Unavailable(f"{method} {url}: {error!r}") from None
        try:
            await _check_status(response)
            yield response
        finally:
            response.release()

    @staticmethod
    async def _body(response: aiohttp.ClientResponse) -> dict[str, Any]:
        try:
            body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise Unavailable(f"unreadable answer ({error!r})") from None
        if not isinstance(body, dict):
            raise Unavailable("the answer is not a JSON object")
        return body


async def _check_status(response: aiohttp.ClientResponse) -> None:
    status = response.status
    if status < 400 or status == 304:
        return
    if status == 429:
        raise RateLimited(retry_after(response.headers.get("Retry-After")))
    if status >= 500:
        raise Unavailable(f"HTTP {status}")
    code, message = "", ""
    try:
        error = (await response.json(content_type=None)).get("error", {})
        code, message = str(error.get("code", "")), str(error.get("message", ""))
    except (aiohttp.ClientError, TimeoutError, ValueError, AttributeError):
        pass  # a 4xx without our error shape still refuses the request
    raise Refused(status, code, message)


def upload_timeout(body_bytes: int) -> aiohttp.ClientTimeout:
    """The timeout of a batch upload: bounded, and longer for a bigger body."""
    total = min(UPLOAD_MAX_S, UPLOAD_BASE_S + UPLOAD_S_PER_MB * body_bytes / 1_000_000)
    return aiohttp.ClientTimeout(total=total, connect=3, sock_connect=3)


def retry_after(raw: str | None, now: datetime | None = None) -> float:
    """Seconds from a Retry-After header (seconds or an HTTP date); 1 s when absent or odd."""
    if not raw:
        return 1.0
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return 1.0
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return 1.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)
