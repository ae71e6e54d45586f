"""How a server process reaches the relay. With one process the relay is in it (LocalRelay);
under `hetang serve --workers N` worker 0 holds every broadcast and the other workers ask it over
a private Unix socket (RemoteRelay, served by server.rtc.relay_service). Handlers see one
interface either way, with the relay's own exceptions."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import aiohttp
from aiortc import RTCSessionDescription
from aiortc.exceptions import InvalidAccessError, InvalidStateError, OperationError

from passthrough.ports import PortsExhausted
from passthrough.wiring import NoCommonCodec
from server.domain.janus_events import MediaReport
from server.domain.recordings import RecordedFacts
from server.errors import Unavailable
from server.rtc.broadcasts import AlreadyOnAir, Broadcasts, BroadcastStatus, Ended, NotOnAir

# How aiortc refuses a well-formed offer it cannot negotiate; anything else raised while
# answering is a failure of ours (a logged 500), not the offer's.
NEGOTIATION_ERRORS = (ValueError, InvalidAccessError, InvalidStateError, OperationError)
log = logging.getLogger(__name__)

REMOTE_TIMEOUT_S = 30.0  # an answer needs ICE gathering on the relay's side: seconds at most


@dataclass(frozen=True)
class RelayPlace:
    """Where the relay of this process is: here and nowhere else (one process), here and served
    on `socket` to the other workers (worker 0), or asked over `socket` (the other workers)."""

    owner: bool = True
    socket: Path | None = None


def unreachable() -> Unavailable:
    return Unavailable("The media relay is restarting; try again in a few seconds.")


@dataclass(frozen=True)
class Published:
    """The publisher's answer, and the file the broadcast is recorded into (None: not)."""

    answer: RTCSessionDescription
    recording: str | None


@dataclass(frozen=True)
class Offered:
    """The media engine's offer to a venue, and the token its answer names."""

    token: str
    offer: RTCSessionDescription


class ServerOffers(Exception):
    """This broadcast's engine (Janus) makes the offer: the agent asks for it and answers."""


class AgentOffers(Exception):
    """This broadcast's engine (the built-in relay) answers the agent's own offer."""


class NoSuchOffer(Exception):
    """An answer names no offer made to this venue (an old one, or another venue's)."""


class EngineUnavailable(Exception):
    """The media engine (a Janus instance) did not answer, or failed the request."""


class Relay(Protocol):
    """What the handlers ask of the relay, wherever it runs."""

    async def status(self, public_id: str) -> BroadcastStatus: ...

    async def on_air_for(self, venue_code: str) -> list[str]: ...

    async def publish(
        self,
        public_id: str,
        venue_codes: tuple[str, ...],
        offer: RTCSessionDescription,
        now: datetime,
    ) -> Published: ...

    async def replay(
        self, public_id: str, venue_codes: tuple[str, ...], recording: Path, now: datetime
    ) -> None: ...

    async def subscribe(
        self, public_id: str, venue_code: str, offer: RTCSessionDescription
    ) -> RTCSessionDescription: ...

    async def offer(
        self, public_id: str, venue_code: str, regions: tuple[str, ...] = ()
    ) -> Offered: ...

    async def answer(
        self, public_id: str, venue_code: str, token: str, answer: RTCSessionDescription
    ) -> None: ...

    async def media_reports(self, reports: list[MediaReport]) -> None: ...

    async def end(self, public_id: str) -> Ended | None: ...


class LocalRelay:
    """The relay of this process."""

    def __init__(self, broadcasts: Broadcasts) -> None:
        self.broadcasts = broadcasts

    async def status(self, public_id: str) -> BroadcastStatus:
        return self.broadcasts.status(public_id)

    async def on_air_for(self, venue_code: str) -> list[str]:
        return self.broadcasts.on_air_for(venue_code)

    async def publish(
        self,
        public_id: str,
        venue_codes: tuple[str, ...],
        offer: RTCSessionDescription,
        now: datetime,
    ) -> Published:
        answer = await self.broadcasts.publish(public_id, venue_codes, offer, now)
        recorder = self.broadcasts.recording(public_id)
        return Published(answer, None if recorder is None else recorder.path.name)

    async def replay(
        self, public_id: str, venue_codes: tuple[str, ...], recording: Path, now: datetime
    ) -> None:
        await self.broadcasts.replay(public_id, venue_codes, recording, now)

    async def subscribe(
        self, public_id: str, venue_code: str, offer: RTCSessionDescription
    ) -> RTCSessionDescription:
        return await self.broadcasts.subscribe(public_id, venue_code, offer)

    async def offer(
        self, public_id: str, venue_code: str, regions: tuple[str, ...] = ()
    ) -> Offered:
        if self.broadcasts.status(public_id).on:
            raise AgentOffers(public_id)
        raise NotOnAir(public_id)

    async def answer(
        self, public_id: str, venue_code: str, token: str, answer: RTCSessionDescription
    ) -> None:
        raise NoSuchOffer(token)

    async def media_reports(self, reports: list[MediaReport]) -> None:
        """Janus's reports of venues' handles: the built-in relay reads its own feedback."""

    async def end(self, public_id: str) -> Ended | None:
        return await self.broadcasts.end(public_id)


# What crosses the socket: plain JSON, with the relay's exceptions named.
ERRORS: MappingProxyType[str, type[Exception]] = MappingProxyType(
    {
        "not_on_air": NotOnAir,
        "already_on_air": AlreadyOnAir,
        "no_common_codec": NoCommonCodec,
        "ports_exhausted": PortsExhausted,
        "server_offers": ServerOffers,
        "agent_offers": AgentOffers,
        "no_such_offer": NoSuchOffer,
        "engine_unavailable": EngineUnavailable,
        "unusable": ValueError,
    }
)


def error_name(error: Exception) -> str | None:
    """The wire name of a relay exception (None: not one the handlers expect)."""
    for name, kind in ERRORS.items():
        if isinstance(error, kind):
            return name
    return "unusable" if isinstance(error, NEGOTIATION_ERRORS) else None


def session_description(data: Any) -> RTCSessionDescription:
    return RTCSessionDescription(sdp=str(data["sdp"]), type=str(data["type"]))


def description_data(description: RTCSessionDescription) -> dict[str, str]:
    return {"sdp": description.sdp, "type": description.type}


def status_data(status: BroadcastStatus) -> dict[str, Any]:
    return {
        "on": status.on,
        "publishing": status.publishing,
        "subscribers": status.subscribers,
        "since": None if status.since is None else status.since.isoformat(),
        "quality": dict(status.quality),
        "recording": status.recording,
        "recording_problem": status.recording_problem,
    }


def status_of(data: Any) -> BroadcastStatus:
    since = data["since"]
    return BroadcastStatus(
        bool(data["on"]),
        bool(data["publishing"]),
        int(data["subscribers"]),
        None if since is None else datetime.fromisoformat(since),
        {str(code): layer for code, layer in data["quality"].items()},
        str(data["recording"]),
        data["recording_problem"],
    )


def ended_data(ended: Ended | None) -> dict[str, Any] | None:
    if ended is None:
        return None
    facts = ended.recording
    return {
        "public_id": ended.public_id,
        "since": ended.since.isoformat(),
        "recording": None
        if facts is None
        else {
            "duration_ms": facts.duration_ms,
            "bytes": facts.bytes,
            "gaps": [list(gap) for gap in facts.gaps],
            "problem": facts.problem,
        },
    }


def ended_of(data: Any) -> Ended | None:
    if data is None:
        return None
    facts = data["recording"]
    return Ended(
        str(data["public_id"]),
        datetime.fromisoformat(data["since"]),
        None
        if facts is None
        else RecordedFacts(
            int(facts["duration_ms"]),
            int(facts["bytes"]),
            [(float(start), float(end)) for start, end in facts["gaps"]],
            facts["problem"],
        ),
    )


class RemoteRelay:
    """The relay of worker 0, asked over its Unix socket."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _ask(self, operation: str, **arguments: Any) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=str(self.socket_path)),
                timeout=aiohttp.ClientTimeout(total=REMOTE_TIMEOUT_S),
            )
        try:
            async with self._session.post(f"http://relay/{operation}", json=arguments) as reply:
                body = await reply.json()
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            log.warning("worker 0's relay did not answer: %s", error)
            raise unreachable() from error
        failure = body.get("error")
        if failure is not None:
            raise ERRORS[failure](body.get("problem") or failure)
        return body["result"]

    async def status(self, public_id: str) -> BroadcastStatus:
        return status_of(await self._ask("status", public_id=public_id))

    async def on_air_for(self, venue_code: str) -> list[str]:
        return [str(public_id) for public_id in await self._ask("on_air_for", venue=venue_code)]

    async def publish(
        self,
        public_id: str,
        venue_codes: tuple[str, ...],
        offer: RTCSessionDescription,
        now: datetime,
    ) -> Published:
        result = await self._ask(
            "publish",
            public_id=public_id,
            venues=list(venue_codes),
            offer=description_data(offer),
            now=now.isoformat(),
        )
        return Published(session_description(result["answer"]), result["recording"])

    async def replay(
        self, public_id: str, venue_codes: tuple[str, ...], recording: Path, now: datetime
    ) -> None:
        await self._ask(
            "replay",
            public_id=public_id,
            venues=list(venue_codes),
            recording=str(recording),
            now=now.isoformat(),
        )

    async def subscribe(
        self, public_id: str, venue_code: str, offer: RTCSessionDescription
    ) -> RTCSessionDescription:
        result = await self._ask(
            "subscribe", public_id=public_id, venue=venue_code, offer=description_data(offer)
        )
        return session_description(result)

    async def offer(
        self, public_id: str, venue_code: str, regions: tuple[str, ...] = ()
    ) -> Offered:
        result = await self._ask(
            "offer", public_id=public_id, venue=venue_code, regions=list(regions)
        )
        return Offered(str(result["token"]), session_description(result["offer"]))

    async def answer(
        self, public_id: str, venue_code: str, token: str, answer: RTCSessionDescription
    ) -> None:
        await self._ask(
            "answer",
            public_id=public_id,
            venue=venue_code,
            token=token,
            answer=description_data(answer),
        )

    async def media_reports(self, reports: list[MediaReport]) -> None:
        await self._ask("media_reports", reports=[dataclasses.asdict(r) for r in reports])

    async def end(self, public_id: str) -> Ended | None:
        return ended_of(await self._ask("end", public_id=public_id))
