"""Peer connections with the operator's ICE settings: only the host addresses and ICE servers
configured (never aiortc's default public STUN server), and codec choices for pass-through."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpSender,
)
from aiortc.sdp import SessionDescription

from passthrough.hooks import restrict_host_addresses
from passthrough.ports import PortRange, bind_host_ports


@dataclass(frozen=True)
class IceSettings:
    """Host addresses to offer (empty: every address aioice finds), STUN/TURN servers, and the
    UDP ports host candidates may bind to (None: any port the system gives)."""

    hosts: tuple[str, ...] = ()
    servers: tuple[str, ...] = ()
    username: str | None = None
    credential: str | None = None
    ports: PortRange | None = None


def new_peer(
    ice: IceSettings, bundle: RTCBundlePolicy = RTCBundlePolicy.BALANCED
) -> RTCPeerConnection:
    """A peer connection that asks only the configured ICE servers, if any."""
    servers = (
        [RTCIceServer(urls=list(ice.servers), username=ice.username, credential=ice.credential)]
        if ice.servers
        else []
    )
    return RTCPeerConnection(RTCConfiguration(iceServers=servers, bundlePolicy=bundle))


def before_gathering(pc: RTCPeerConnection, ice: IceSettings) -> None:
    """Apply the host addresses and the port range; call once the transceivers exist, before
    setLocalDescription."""
    if ice.hosts:
        restrict_host_addresses(pc, ice.hosts)
    if ice.ports is not None:
        bind_host_ports(pc, ice.ports)


def negotiated_codecs(sdp: str) -> dict[str, RTCRtpCodecCapability]:
    """The codec chosen for each media kind in a local description (its first codec)."""
    chosen: dict[str, RTCRtpCodecCapability] = {}
    for media in SessionDescription.parse(sdp).media:
        if media.kind in ("audio", "video") and media.rtp.codecs and media.kind not in chosen:
            codec = media.rtp.codecs[0]
            chosen[media.kind] = RTCRtpCodecCapability(
                mimeType=codec.mimeType,
                clockRate=codec.clockRate,
                channels=codec.channels,
                parameters=dict(codec.parameters),
            )
    return chosen


def codec_preferences(kind: str, codec: RTCRtpCodecCapability) -> list[RTCRtpCodecCapability]:
    """What a subscriber's sender may negotiate: the publisher's codec (and RTX for video), so
    the packets passed through are ones the subscriber agreed to decode."""
    capabilities = RTCRtpSender.getCapabilities(kind).codecs
    same = [c for c in capabilities if c.mimeType.lower() == codec.mimeType.lower()]
    if codec.mimeType.lower() == "video/h264":
        profile = str(codec.parameters.get("profile-level-id", "")).lower()
        exact = [
            c for c in same if str(c.parameters.get("profile-level-id", "")).lower() == profile
        ]
        same = exact or same
    rtx = [c for c in capabilities if c.mimeType.lower() == "video/rtx"]
    return same + rtx if same else []


# How a venue's picture reaches it: the nominated ICE pair's local candidate type and, for a
# relayed one, the transport to the TURN server (what agents report and the wall shows).
ICE_PATHS = ("host/udp", "srflx/udp", "prflx/udp", "relay/udp", "relay/tcp", "relay/tls")


def parse_hosts(raw: str) -> tuple[str, ...]:
    """A comma-separated list of IP addresses ('' means automatic); ValueError names the bad one."""
    hosts = tuple(part.strip() for part in raw.split(",") if part.strip())
    for host in hosts:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not an IP address") from None
    return hosts


def parse_servers(raw: str) -> tuple[str, ...]:
    """A comma-separated list of stun:/turn:/turns: URLs ('' means none)."""
    servers = tuple(part.strip() for part in raw.split(",") if part.strip())
    for server in servers:
        if not server.startswith(("stun:", "turn:", "turns:")):
            raise ValueError(f"{server!r} is not a stun:, turn: or turns: URL")
    return servers


# The publisher's browser starts its bandwidth estimate at ~300 kbit/s and, behind aiortc's REMB
# (no transport-wide congestion control), climbs about 8 % a second: the full picture would take
# a minute to reach its rate. Chrome reads this codec parameter from the relay's answer.
START_BITRATE_KBPS = 1200
VIDEO_CODECS = ("vp8", "vp9", "h264", "av1")


def with_start_bitrate(sdp: str, kbps: int = START_BITRATE_KBPS) -> str:
    """An answer whose video codecs (not RTX) carry `x-google-start-bitrate=kbps`, so the
    publishing browser starts sending at about that rate."""
    lines = sdp.split("\r\n")
    payloads: set[str] = set()
    has_fmtp: set[str] = set()
    video = False
    for line in lines:
        if line.startswith("m="):
            video = line.startswith("m=video")
        elif video and line.startswith("a=rtpmap:"):
            payload, _, codec = line.removeprefix("a=rtpmap:").partition(" ")
            if codec.split("/")[0].lower() in VIDEO_CODECS:
                payloads.add(payload)
        elif video and line.startswith("a=fmtp:"):
            has_fmtp.add(line.removeprefix("a=fmtp:").partition(" ")[0])
    parameter = f"x-google-start-bitrate={kbps}"
    video = False
    out: list[str] = []
    for line in lines:
        if line.startswith("m="):
            video = line.startswith("m=video")
        payload = line.partition(":")[2].partition(" ")[0] if video else ""
        if line.startswith("a=fmtp:") and payload in payloads and parameter not in line:
            line = f"{line};{parameter}"
        out.append(line)
        if line.startswith("a=rtpmap:") and payload in payloads and payload not in has_fmtp:
            out.append(f"a=fmtp:{payload} {parameter}")
    return "\r\n".join(out)
