"""Which STUN/TURN servers a subscription uses: the server's (our coturn, with credentials minted
for this venue) combined with the locally configured ones. aiortc uses one TURN server per
connection, so the agent picks it: TURN URLs ordered UDP → TCP → TLS, each probed quickly (a STUN
binding request over UDP, a TCP connect, a TLS handshake), the first that answers used; after a
connection that failed, the next subscription starts from the next transport. A venue whose
network lets no UDP out thus reaches the relay through coturn over TCP or TLS."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from aioice import stun
from aiortc import RTCPeerConnection
from aiortc.rtcicetransport import parse_stun_turn_uri

from passthrough.hooks import HookMissing, nominated_pair_types
from passthrough.peer import ICE_PATHS, IceSettings
from venue_agent.client import ServerClient, ServerError

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 1.0
TLS_PROBE_TIMEOUT_S = 1.5
TRANSPORTS = ("udp", "tcp", "tls")  # the order TURN is tried in


@dataclass(frozen=True)
class TurnOption:
    """One TURN URL with its credentials."""

    url: str
    username: str | None
    credential: str | None
    host: str
    port: int
    transport: str  # udp, tcp or tls


Probe = Callable[[TurnOption], Awaitable[bool]]


def turn_option(url: str, username: str | None, credential: str | None) -> TurnOption | None:
    """The option a turn:/turns: URL gives aiortc, or None for one aiortc would skip."""
    if not url.startswith(("turn:", "turns:")):
        return None
    try:
        parsed = parse_stun_turn_uri(url)
    except ValueError:
        log.warning("ignoring a TURN URL aiortc cannot read: %s", url)
        return None
    scheme, transport = parsed["scheme"], parsed["transport"]
    if scheme == "turns":
        if transport != "tcp":
            return None
        transport = "tls"
    elif transport not in ("udp", "tcp"):
        return None
    return TurnOption(url, username, credential, parsed["host"], int(parsed["port"]), transport)


def _urls(entry: Any) -> list[str]:
    urls = entry.get("urls") if isinstance(entry, dict) else None
    if isinstance(urls, str):
        return [urls]
    return [url for url in urls if isinstance(url, str)] if isinstance(urls, list) else []


def _text(entry: dict[str, Any], name: str) -> str | None:
    value = entry.get(name)
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class IceChoice:
    """Every TURN option, in the order to try them, and the STUN URLs."""

    turn: tuple[TurnOption, ...]
    stun: tuple[str, ...]


def combine(answer: dict[str, Any] | None, local: IceSettings) -> IceChoice:
    """The server's servers first (our coturn, then its static ones), then the local ones; TURN
    options ordered by transport, UDP → TCP → TLS (a stable order within each)."""
    options: list[TurnOption] = []
    stuns: list[str] = []
    entries = answer.get("ice_servers") if isinstance(answer, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        for url in _urls(entry):
            option = turn_option(url, _text(entry, "username"), _text(entry, "credential"))
            if option is not None:
                options.append(option)
            elif url.startswith("stun:"):
                stuns.append(url)
    for url in local.servers:
        option = turn_option(url, local.username, local.credential)
        if option is not None:
            options.append(option)
        elif url.startswith("stun:"):
            stuns.append(url)
    options.sort(key=lambda option: TRANSPORTS.index(option.transport))
    return IceChoice(tuple(dict.fromkeys(options)), tuple(dict.fromkeys(stuns)))


def settings_with(local: IceSettings, choice: IceChoice, turn: TurnOption | None) -> IceSettings:
    """The settings of one connection: the local host addresses, this TURN option (the only one
    aiortc would use anyway) and the STUN servers."""
    if turn is None:
        return replace(local, servers=choice.stun or local.servers)
    return replace(
        local,
        servers=(turn.url, *choice.stun),
        username=turn.username,
        credential=turn.credential,
    )


class _StunAnswer(asyncio.DatagramProtocol):
    def __init__(self, transaction_id: bytes) -> None:
        self.transaction_id = transaction_id
        self.answered: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        with contextlib.suppress(ValueError):
            message = stun.parse_message(data)
            if message.transaction_id == self.transaction_id and not self.answered.done():
                self.answered.set_result(True)


async def probe(option: TurnOption) -> bool:
    """Whether the TURN server answers over this transport: a STUN binding request over UDP, a
    TCP connect, or a TLS handshake (verified as aioice verifies it), within about a second."""
    loop = asyncio.get_running_loop()
    try:
        if option.transport == "udp":
            request = stun.Message(
                message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST
            )
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: _StunAnswer(request.transaction_id),
                remote_addr=(option.host, option.port),
            )
            try:
                for _ in range(3):  # a lost datagram is not a blocked network
                    transport.sendto(bytes(request))
                    with contextlib.suppress(TimeoutError):
                        return await asyncio.wait_for(
                            asyncio.shield(protocol.answered), PROBE_TIMEOUT_S / 3
                        )
                return False
            finally:
                transport.close()
        tls = ssl.create_default_context() if option.transport == "tls" else None
        timeout = TLS_PROBE_TIMEOUT_S if tls else PROBE_TIMEOUT_S
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(option.host, option.port, ssl=tls), timeout
        )
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
        return True
    except (OSError, TimeoutError, ssl.SSLError) as error:
        log.debug("TURN %s does not answer: %r", option.url, error)
        return False


def ice_path(pc: RTCPeerConnection, turn: TurnOption | None) -> str | None:
    """How the connection's media travels (one of ICE_PATHS): the nominated pair's local
    candidate type, and for a relayed one the transport to the TURN server chosen for it; None
    before ICE nominated a pair, or when aiortc no longer tells."""
    try:
        types = nominated_pair_types(pc)
    except HookMissing as error:
        log.debug("the ICE path is unknown: %s", error)
        return None
    if types is None:
        return None
    local = types[0]
    path = f"relay/{turn.transport}" if local == "relay" and turn is not None else f"{local}/udp"
    return path if path in ICE_PATHS else None


class IcePicker:
    """Chooses each subscription's ICE settings; told when a connection failed."""

    def __init__(self, client: ServerClient, local: IceSettings, probe: Probe = probe) -> None:
        self.client, self.local, self._probe = client, local, probe
        self.current: TurnOption | None = None
        self._options: tuple[TurnOption, ...] = ()
        self._start = 0  # the transport order rotates past options that failed

    async def fetch(self) -> dict[str, Any] | None:
        """The server's answer, or None (then the local settings alone serve)."""
        try:
            return await self.client.ice_servers()
        except (ServerError, OSError, ValueError) as error:
            log.info("ICE servers not fetched from the server (%s); using the local ones", error)
            return None

    async def settings(self) -> IceSettings:
        """The settings for the next subscription."""
        choice = combine(await self.fetch(), self.local)
        self.current = await self._pick(choice.turn)
        if self.current is not None:
            log.info("TURN for this subscription: %s", self.current.url)
        return settings_with(self.local, choice, self.current)

    async def _pick(self, options: tuple[TurnOption, ...]) -> TurnOption | None:
        self._options = options
        if not options:
            return None
        start = self._start % len(options)
        ordered = [*options[start:], *options[:start]]
        answers = await asyncio.gather(*(self._probe(option) for option in ordered))
        for option, answered in zip(ordered, answers, strict=True):
            if answered:
                return option
        log.warning("no TURN server answered a probe; trying %s anyway", ordered[0].url)
        return ordered[0]

    def failed(self) -> None:
        """The connection made with the current choice never carried media: next time, start
        from the transport after it."""
        if self.current is None:
            return
        log.info("TURN over %s did not carry the broadcast; moving on", self.current.url)
        if self.current in self._options:
            self._start = self._options.index(self.current) + 1
        else:
            self._start += 1
