"""Who is asking: the client's address (read through trusted reverse proxies) and whether an
address or a Host header is this machine's own."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import web

from server.keys import SETTINGS_KEY
from server.settings import Network

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse(text: str) -> IpAddress | None:
    try:
        address = ipaddress.ip_address(text.strip().removeprefix("[").removesuffix("]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack socket's view of an IPv4 peer
    return address


def _trusted(address: IpAddress, proxies: Iterable[Network]) -> bool:
    return any(address in network for network in proxies)


def client_address(request: web.Request) -> str:
    """The peer's address. When the peer is a trusted proxy (HETANG_TRUSTED_PROXIES), the
    nearest address in X-Forwarded-For that is not itself a trusted proxy: each proxy appends the
    address it was connected from, so reading from the right, the first untrusted entry is the
    last one a trusted proxy wrote; entries further left are the client's own word."""
    peer = request.remote or "unknown"
    proxies = request.app[SETTINGS_KEY].trusted_proxies
    current = _parse(peer)
    if current is None or not proxies or not _trusted(current, proxies):
        return peer
    hops = [
        hop for header in request.headers.getall("X-Forwarded-For", []) for hop in header.split(",")
    ]
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            break  # not written by a proxy of ours: the last trusted hop is all we know
        current = address
        if not _trusted(address, proxies):
            break
    return str(current)


def is_loopback_address(text: str) -> bool:
    """True for 127.0.0.0/8 and ::1 (also as IPv4-mapped IPv6)."""
    address = _parse(text)
    return address is not None and address.is_loopback


def is_loopback_host(host: str) -> bool:
    """True when a Host header names this machine: localhost, 127.x.x.x or [::1], any port."""
    name = host.strip().lower()
    if name.startswith("["):
        name, closed, port = name[1:].partition("]")
        if not closed or (port and not (port.startswith(":") and port[1:].isdigit())):
            return False
    elif name.count(":") == 1:
        name, _, port = name.partition(":")
        if not port.isdigit():
            return False
    if name == "localhost":
        return True
    address = _parse(name)
    return address is not None and address.is_loopback
