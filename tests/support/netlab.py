"""A network lab on this machine: the host (server, relay, Chromium, coturn) on a bridge with a
lab address, and venues each behind a router namespace that masquerades (NAT) its private LAN:

    host bridge 10.231.N.1/24 ⟷ veth ⟷ router-ns 10.231.N.1x ⟷ veth ⟷ venue-ns 192.168.1x.2/24

Routers route only to the host's lab address (no way out of the machine). Conditions are applied
in a router namespace and may change during a test: UDP blocked, random loss of forwarded UDP
(nftables `numgen random`), a TBF rate cap on the venue's downlink. Everything the lab made — its
processes inside the namespaces, namespaces, veths, bridge, nft tables — goes on exit, also on a
failure or Ctrl-C. Names carry a random per-lab tag, so parallel runs and leftovers never clash.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

TABLE = "hetang_lab"
WAN_PREFIX = "10.231"  # 10.231.N.0/24, N picked per lab among the free ones
TOOLS = ("ip", "nft", "tc")


def ip_run(*argv: str, check: bool = True, stdin: str | None = None) -> str:
    """Run an ip/nft/tc command (failing loudly unless check is off); its stdout."""
    result = subprocess.run(
        list(argv), input=stdin, capture_output=True, text=True, timeout=30, check=False
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr}")
    return result.stdout


@functools.cache
def lab_unavailable() -> str | None:
    """Why no lab can be built here (None: it can): not root, a tool missing, namespaces refused."""
    if os.geteuid() != 0:
        return "the network lab needs root (ip netns, nftables, tc)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        needed = ", ".join(missing)
        return f"the network lab needs {needed} on PATH (apt-get install iproute2 nftables)"
    probe = "hlprobe" + secrets.token_hex(2)
    try:
        ip_run("ip", "netns", "add", probe)
        ip_run("ip", "netns", "exec", probe, "nft", "list", "tables")
    except (RuntimeError, OSError) as error:
        return f"network namespaces cannot be made here: {error}"
    finally:
        ip_run("ip", "netns", "delete", probe, check=False)
    return None


def lab_available() -> bool:
    """Whether namespaces, veths, nftables and tc can be used here."""
    return lab_unavailable() is None


needs_lab = pytest.mark.skipif(
    not lab_available(), reason=str(lab_unavailable() or "the network lab is available")
)


@dataclass
class Conditions:
    """What a venue's router does to its traffic now."""

    udp_blocked: bool = False
    tcp_blocked_ports: tuple[int, ...] = ()  # TCP towards the host on these ports dropped
    loss_pct: int = 0
    loss_downlink_only: bool = False
    downlink_kbit: int | None = None


@dataclass
class Venue:
    """One venue: its namespace behind its own NAT router."""

    name: str
    index: int
    ns: str  # the venue's namespace: agents run here
    router_ns: str
    address: str  # the venue PC's private address
    router_wan: str  # the router's address on the lab bridge (the venue's public face)
    wan_dev: str  # the router's host-side interface
    lan_dev: str  # the router's venue-side interface (the downlink leaves through it)
    conditions: Conditions = field(default_factory=Conditions)


@dataclass
class Lab:
    """A built lab (see the module's docstring)."""

    tag: str
    host_address: str
    bridge: str
    venues: dict[str, Venue] = field(default_factory=dict)
    host_links: list[str] = field(default_factory=list)

    def venue(self, name: str) -> Venue:
        """A venue by name."""
        return self.venues[name]

    def argv(self, venue: str, *argv: str) -> list[str]:
        """A command line that runs argv inside the venue's namespace."""
        return ["ip", "netns", "exec", self.venues[venue].ns, *argv]

    def run(self, venue: str, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run a command inside the venue's namespace to completion."""
        return subprocess.run(
            self.argv(venue, *argv), capture_output=True, text=True, timeout=timeout, check=False
        )

    def popen(self, venue: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """Start a process inside the venue's namespace (Popen's keyword arguments apply)."""
        return subprocess.Popen(self.argv(venue, *argv), **kwargs)

    # Conditions, applied in the venue's router namespace.

    def block_udp(self, venue: str, blocked: bool = True) -> None:
        """Drop (or let through again) every forwarded UDP packet, both directions."""
        self.venues[venue].conditions.udp_blocked = blocked
        self._apply_filter(self.venues[venue])

    def block_tcp(self, venue: str, *ports: int) -> None:
        """Drop forwarded TCP towards the host on these ports (none: let all through again), as
        a firewall that lets only some services out does."""
        self.venues[venue].conditions.tcp_blocked_ports = tuple(sorted(set(ports)))
        self._apply_filter(self.venues[venue])

    def set_loss(self, venue: str, percent: int, *, downlink_only: bool = False) -> None:
        """Drop this share (0–100 %) of forwarded UDP packets at random (both directions, or
        only those towards the venue)."""
        if not 0 <= percent <= 100:
            raise ValueError(f"loss of {percent} %")
        chosen = self.venues[venue].conditions
        chosen.loss_pct, chosen.loss_downlink_only = percent, downlink_only
        self._apply_filter(self.venues[venue])

    def cap_downlink(self, venue: str, kbit: int | None) -> None:
        """A TBF rate cap (kbit/s) on what reaches the venue; None removes it."""
        place = self.venues[venue]
        place.conditions.downlink_kbit = kbit
        router = ("ip", "netns", "exec", place.router_ns)
        if kbit is None:
            ip_run(*router, "tc", "qdisc", "del", "dev", place.lan_dev, "root", check=False)
            return
        # Burst: 50 ms at the rate, never under 10 full packets; a 200 ms queue before drops.
        burst = max(15_000, kbit * 1000 // 8 // 20)
        ip_run(
            *router,
            "tc",
            "qdisc",
            "replace",
            "dev",
            place.lan_dev,
            "root",
            "tbf",
            "rate",
            f"{kbit}kbit",
            "burst",
            str(burst),
            "latency",
            "200ms",
        )

    def downlink_counters(self, venue: str) -> tuple[int, int, int]:
        """(bytes passed, packets passed, packets dropped) by the venue's downlink rate cap so
        far ((0, 0, 0) without a cap)."""
        place = self.venues[venue]
        if place.conditions.downlink_kbit is None:
            return 0, 0, 0
        router = ("ip", "netns", "exec", place.router_ns)
        listing = ip_run(*router, "tc", "-s", "qdisc", "show", "dev", place.lan_dev)
        words = listing.replace(",", " ").replace("(", " ").split()
        sent = packets = dropped = 0
        for index, word in enumerate(words[:-1]):
            if word == "Sent":  # "Sent <bytes> bytes <packets> pkt"
                sent, packets = int(words[index + 1]), int(words[index + 3])
            elif word == "dropped":
                dropped = int(words[index + 1])
        return sent, packets, dropped

    def clear(self, venue: str) -> None:
        """A clean link again."""
        self.venues[venue].conditions = Conditions()
        self._apply_filter(self.venues[venue])
        self.cap_downlink(venue, None)

    def drops(self, venue: str, protocol: str = "") -> int:
        """Packets the router's conditions dropped so far (nft counters), of one protocol ("udp",
        "tcp") or of all."""
        place = self.venues[venue]
        listing = ip_run(
            "ip",
            "netns",
            "exec",
            place.router_ns,
            "nft",
            "list",
            "chain",
            "inet",
            TABLE,
            "conditions",
        )
        total = 0
        for line in listing.splitlines():
            words = line.split()
            if "drop" in words and "packets" in words and (not protocol or protocol in words):
                total += int(words[words.index("packets") + 1])
        return total

    def _apply_filter(self, place: Venue) -> None:
        chosen = place.conditions
        rules = [f"flush chain inet {TABLE} conditions"]
        if chosen.udp_blocked:
            rules.append(f"add rule inet {TABLE} conditions meta l4proto udp counter drop")
        if chosen.tcp_blocked_ports:
            ports = ", ".join(str(port) for port in chosen.tcp_blocked_ports)
            rules.append(
                f"add rule inet {TABLE} conditions ip daddr {self.host_address} "
                f"tcp dport {{ {ports} }} counter drop"
            )
        if chosen.loss_pct > 0:
            towards = f'iifname "{place.wan_dev}" ' if chosen.loss_downlink_only else ""
            rules.append(
                f"add rule inet {TABLE} conditions {towards}meta l4proto udp "
                f"numgen random mod 100 < {chosen.loss_pct} counter drop"
            )
        ip_run(
            "ip", "netns", "exec", place.router_ns, "nft", "-f", "-", stdin="\n".join(rules) + "\n"
        )


def _free_third_octet() -> int:
    """A third octet N whose 10.231.N.0/24 no interface of the host uses."""
    used = ip_run("ip", "-4", "-o", "addr", "show")
    for _ in range(200):
        third = 1 + secrets.randbelow(250)
        if f" {WAN_PREFIX}.{third}." not in used:
            return third
    raise RuntimeError(f"no free {WAN_PREFIX}.N.0/24 for the lab")


def _router_rules(wan_dev: str, host_address: str) -> str:
    # The fence: whatever a venue sends may reach the host's lab address and nothing else.
    return f"""
table inet {TABLE} {{
  chain nat_out {{
    type nat hook postrouting priority srcnat; policy accept;
    oifname "{wan_dev}" masquerade
  }}
  chain fence {{
    type filter hook forward priority filter - 10; policy accept;
    oifname "{wan_dev}" ip daddr != {host_address} drop
    oifname "{wan_dev}" meta nfproto ipv6 drop
  }}
  chain conditions {{
    type filter hook forward priority filter; policy accept;
  }}
}}
"""


def _add_venue(lab: Lab, name: str, index: int, third: int) -> Venue:
    tag = lab.tag
    venue = Venue(
        name=name,
        index=index,
        ns=f"{tag}v{index}",
        router_ns=f"{tag}r{index}",
        address=f"192.168.{10 + index}.2",
        router_wan=f"{WAN_PREFIX}.{third}.{10 + index}",
        wan_dev=f"{tag}w{index}",
        lan_dev=f"{tag}l{index}",
    )
    lab.venues[name] = venue
    host_dev, venue_dev = f"{tag}h{index}", f"{tag}c{index}"
    router = ("ip", "-n", venue.router_ns)
    inside = ("ip", "-n", venue.ns)
    ip_run("ip", "netns", "add", venue.router_ns)
    ip_run("ip", "netns", "add", venue.ns)
    # host ⟷ router
    ip_run("ip", "link", "add", host_dev, "type", "veth", "peer", "name", venue.wan_dev)
    lab.host_links.append(host_dev)
    ip_run("ip", "link", "set", venue.wan_dev, "netns", venue.router_ns)
    ip_run("ip", "link", "set", host_dev, "master", lab.bridge, "up")
    ip_run(*router, "addr", "add", f"{venue.router_wan}/24", "dev", venue.wan_dev)
    ip_run(*router, "link", "set", venue.wan_dev, "up")
    ip_run(*router, "link", "set", "lo", "up")
    # router ⟷ venue
    ip_run(*router, "link", "add", venue.lan_dev, "type", "veth", "peer", "name", venue_dev)
    ip_run(*router, "link", "set", venue_dev, "netns", venue.ns)
    ip_run(*router, "addr", "add", f"192.168.{10 + index}.1/24", "dev", venue.lan_dev)
    ip_run(*router, "link", "set", venue.lan_dev, "up")
    ip_run(*inside, "addr", "add", f"{venue.address}/24", "dev", venue_dev)
    ip_run(*inside, "link", "set", venue_dev, "up")
    ip_run(*inside, "link", "set", "lo", "up")
    ip_run(*inside, "route", "add", "default", "via", f"192.168.{10 + index}.1")
    # The router's only way out is the host's lab address; it forwards and masquerades.
    ip_run(*router, "route", "add", "default", "via", lab.host_address)
    ip_run("ip", "netns", "exec", venue.router_ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    ip_run(
        "ip",
        "netns",
        "exec",
        venue.router_ns,
        "nft",
        "-f",
        "-",
        stdin=_router_rules(venue.wan_dev, lab.host_address),
    )
    return venue


def _stop_namespace_processes(ns: str) -> None:
    """SIGTERM, then SIGKILL, whatever still runs inside one of the lab's own namespaces."""
    for sig, pause in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 1.0)):
        pids = [int(p) for p in ip_run("ip", "netns", "pids", ns, check=False).split()]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + pause
        while time.monotonic() < deadline and ip_run("ip", "netns", "pids", ns, check=False):
            time.sleep(0.1)


def _teardown(lab: Lab) -> None:
    for venue in lab.venues.values():
        for ns in (venue.ns, venue.router_ns):
            _stop_namespace_processes(ns)
    for venue in lab.venues.values():
        for ns in (venue.ns, venue.router_ns):
            # Deleting a namespace drops its nft tables, qdiscs and the veth ends inside it.
            ip_run("ip", "netns", "delete", ns, check=False)
    for link in lab.host_links:
        ip_run("ip", "link", "delete", link, check=False)
    ip_run("ip", "link", "delete", lab.bridge, check=False)


def leftovers(tag: str) -> list[str]:
    """Namespaces and links of this tag that still exist (a clean teardown leaves none)."""
    names = ip_run("ip", "netns", "list").split()
    links = [
        line.split()[0].split("@")[0] for line in ip_run("ip", "-br", "link").splitlines() if line
    ]
    return [name for name in (*names, *links) if name.startswith(tag)]


@contextlib.contextmanager
def network_lab(venues: Sequence[str] = ("v1",)) -> Iterator[Lab]:
    """Build the lab with these venues; tear everything down on exit, whatever happened."""
    if len(venues) > 9:
        raise ValueError("at most 9 venues in a lab")
    tag = "hl" + secrets.token_hex(2)  # "hlXXXX" + role + index: 8 characters, under IFNAMSIZ
    third = _free_third_octet()
    lab = Lab(tag=tag, host_address=f"{WAN_PREFIX}.{third}.1", bridge=f"{tag}br")
    try:
        ip_run("ip", "link", "add", lab.bridge, "type", "bridge")
        ip_run("ip", "addr", "add", f"{lab.host_address}/24", "dev", lab.bridge)
        ip_run("ip", "link", "set", lab.bridge, "up")
        for index, name in enumerate(venues, start=1):
            _add_venue(lab, name, index, third)
        yield lab
    finally:
        _teardown(lab)
