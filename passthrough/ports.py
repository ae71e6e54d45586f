"""Fixed media ports: the host candidates' UDP sockets of a peer connection bound only to ports of
a range (a firewall opens that range and nothing else). aioice binds to port 0 and has no option
for it, so this is a private hook, checked like those in hooks.py: an aioice whose shape changed
raises HookMissing instead of silently binding anywhere."""

from __future__ import annotations

import asyncio
import errno
import functools
import inspect
import ipaddress
import logging
import random
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aioice import Candidate, Connection
from aioice import ice as aioice_ice
from aioice.candidate import candidate_foundation, candidate_priority
from aiortc import RTCPeerConnection

from passthrough.hooks import HookMissing

log = logging.getLogger(__name__)

RECEIVE_BUFFER = 262144  # what aioice gives its own sockets (turn.UDP_SOCKET_BUFFER_SIZE)
# What binding a port may answer when another socket holds it: try the next port.
_BUSY = frozenset({errno.EADDRINUSE, errno.EACCES})
_ORIGINAL = "_hetang_original_get_component_candidates"

Gatherer = Callable[..., Awaitable[list[Candidate]]]


class PortsExhausted(OSError):
    """Every port of the media port range is taken: no connection can be set up now."""

    def __init__(self, ports: PortRange) -> None:
        super().__init__(
            errno.EADDRINUSE,
            f"no free UDP port for WebRTC media in {ports} (HETANG_RTC_PORTS): "
            "every port of the range is in use",
        )
        self.ports = ports


@dataclass(frozen=True)
class PortRange:
    """UDP ports first..last, both included."""

    first: int
    last: int

    def __post_init__(self) -> None:
        if not 1 <= self.first <= self.last <= 65535:
            raise ValueError(f"{self} is not a range of ports between 1 and 65535")

    def __str__(self) -> str:
        return f"{self.first}-{self.last}"

    def __len__(self) -> int:
        return self.last - self.first + 1

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.first <= port <= self.last

    def in_trying_order(self) -> list[int]:
        """Every port once, from a random start onwards (round the range): concurrent
        connections rarely race for the same port, and a busy one is simply skipped."""
        start = random.randrange(len(self))
        ports = range(self.first, self.last + 1)
        return [*ports[start:], *ports[:start]]


def parse_port_range(raw: str) -> PortRange | None:
    """`40000-40199` (or a single port); '' means any port. ValueError says what is wrong."""
    text = raw.strip()
    if not text:
        return None
    first_text, dash, last_text = text.partition("-")
    try:
        first = int(first_text.strip())
        last = int(last_text.strip()) if dash else first
    except ValueError:
        raise ValueError(f"{text!r} is not a port range like 40000-40199") from None
    if first > last:
        raise ValueError(f"{text!r} starts after it ends")
    return PortRange(first, last)


def bind_host_ports(pc: RTCPeerConnection, ports: PortRange) -> None:
    """Bind every host candidate of the peer's ICE connections to a port of the range. Call
    after the transceivers exist and before setLocalDescription (with restrict_host_addresses
    in either order: that hook gathers through the method replaced here)."""
    for transceiver in pc.getTransceivers():
        gatherer = transceiver.receiver.transport.transport.iceGatherer
        _hook(getattr(gatherer, "_connection", None), ports)
    sctp = pc.sctp
    if sctp is not None:
        _hook(getattr(sctp.transport.transport.iceGatherer, "_connection", None), ports)


def _hook(connection: object, ports: PortRange) -> None:
    if not isinstance(connection, Connection):
        raise HookMissing("RTCIceGatherer has no aioice connection to bind ports for")
    for name in ("_protocols", "stun_server"):
        if not hasattr(connection, name):
            raise HookMissing(f"aioice Connection.{name} is gone")
    original = getattr(connection, _ORIGINAL, None)
    if original is None:
        original = connection.get_component_candidates
        parameters = list(inspect.signature(original).parameters)
        if parameters[:2] != ["component", "addresses"]:
            raise HookMissing("aioice Connection.get_component_candidates has a new signature")
        setattr(connection, _ORIGINAL, original)
    connection.get_component_candidates = functools.partial(  # type: ignore[method-assign]
        _component_candidates, connection, original, ports
    )


async def _component_candidates(
    connection: Connection,
    original: Gatherer,
    ports: PortRange,
    component: int,
    addresses: list[str],
    timeout: int = 5,  # noqa: ASYNC109  (aioice's own signature)
) -> list[Candidate]:
    """aioice's get_component_candidates with the host sockets bound inside the range; the
    server-reflexive and relayed candidates are gathered as aioice does."""
    loop = asyncio.get_running_loop()
    protocols: list[aioice_ice.StunProtocol] = []
    try:
        for address in addresses:
            try:
                sock = _bind(address, ports)
            except PortsExhausted:
                log.error(
                    "no free UDP port in HETANG_RTC_PORTS=%s for a WebRTC connection on %s: "
                    "widen the range or serve fewer connections",
                    ports,
                    address,
                )
                raise
            except OSError as error:  # an address that cannot be bound at all: as aioice does
                log.info("could not bind to %s: %s", address, error)
                continue
            _, protocol = await loop.create_datagram_endpoint(
                lambda: aioice_ice.StunProtocol(connection), sock=sock
            )
            host, port = protocol.transport.get_extra_info("sockname")[:2]
            protocol.local_candidate = Candidate(
                foundation=candidate_foundation("host", "udp", host),
                component=component,
                transport="udp",
                priority=candidate_priority(component, "host"),
                host=host,
                port=port,
                type="host",
            )
            protocols.append(protocol)
    except BaseException:
        for protocol in protocols:  # nothing half-open: the sockets of this call go
            protocol.transport.close()
        raise
    connection._protocols += protocols
    candidates = [protocol.local_candidate for protocol in protocols]
    # Server-reflexive candidates of our sockets (IPv4 only, as aioice), then a relayed one.
    reflexive = []
    if connection.stun_server:
        reflexive = [
            asyncio.ensure_future(
                aioice_ice.server_reflexive_candidate(protocol, connection.stun_server)
            )
            for protocol in protocols
            if ipaddress.ip_address(protocol.local_candidate.host).version == 4
        ]
    relayed = await original(component=component, addresses=[], timeout=timeout)
    if reflexive:
        done, pending = await asyncio.wait(reflexive, timeout=timeout)
        for task in pending:
            task.cancel()
        candidates += [task.result()[0] for task in done if task.exception() is None]
    return candidates + relayed


def _bind(address: str, ports: PortRange) -> socket.socket:
    """A non-blocking UDP socket on the address and the first free port of the range."""
    family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    for port in ports.in_trying_order():
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            sock.bind((address, port))
        except OSError as error:
            sock.close()
            if error.errno in _BUSY:
                continue
            raise
        sock.setblocking(False)
        return sock
    raise PortsExhausted(ports)
