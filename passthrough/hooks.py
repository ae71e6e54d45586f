"""Every private aiortc/aioice hook the relay relies on, in one place. aiortc is pinned; each hook
checks what it touches and raises HookMissing, and tests/test_rtc_hooks.py exercises each one, so an
incompatible upgrade fails loudly instead of silently relaying nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import queue
from collections.abc import Callable, Iterable
from typing import Any

from aioice import Connection
from aioice.ice import StunProtocol
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_RTPFB_NACK,
    HeaderExtensionsMap,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    RtpPacket,
    unpack_remb_fci,
)

log = logging.getLogger(__name__)

FrameSink = Callable[[RTCRtpCodecParameters, JitterFrame], None]


_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"
_JITTER_BUFFER = "_RTCRtpReceiver__jitter_buffer"
_JITTER_STATE = ("_origin", "_packets", "_capacity", "remove")
_DECODER_THREAD = "_RTCRtpReceiver__decoder_thread"
_RTX_SSRC = "_RTCRtpReceiver__rtx_ssrc"
_ESTIMATOR = "_RTCRtpReceiver__remote_bitrate_estimator"
_CODECS = "_RTCRtpReceiver__codecs"
_HISTORY = "_RTCRtpSender__rtp_history"
_EXTENSIONS = "_RTCRtpSender__rtp_header_extensions_map"
_PACKETS = "_RTCRtpSender__packet_count"
_OCTETS = "_RTCRtpSender__octet_count"
_NTP = "_RTCRtpSender__ntp_timestamp"
_RTP_TIME = "_RTCRtpSender__rtp_timestamp"
_RTP_STARTED = "_RTCRtpSender__rtp_started"
_RTP_EXITED = "_RTCRtpSender__rtp_exited"
_MID = "_RTCRtpSender__mid"
_SENDER_STATE = (
    _HISTORY,
    _EXTENSIONS,
    _PACKETS,
    _OCTETS,
    _NTP,
    _RTP_TIME,
    _RTP_STARTED,
    _RTP_EXITED,
    _MID,
)


class HookMissing(RuntimeError):
    """aiortc changed: a private hook of the pass-through relay is gone or has a new shape."""


class _TapQueue(queue.Queue[Any]):
    """Stands in for a receiver's decoder queue: every whole encoded frame the jitter buffer
    completes goes to the sink (on the event loop's thread), and to the decoder only if asked."""

    def __init__(self, sink: FrameSink, decode: bool) -> None:
        super().__init__()
        self._sink = sink
        self._decode = decode

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is not None:
            codec, frame = item
            try:
                self._sink(codec, frame)
            except Exception:
                log.exception("the relay failed to take a %s frame", codec.name)
            if not self._decode:
                return
        super().put(item, block, timeout)


def tap_receiver(receiver: RTCRtpReceiver, sink: FrameSink, *, decode: bool) -> None:
    """Hand the receiver's encoded frames to `sink`; with decode=False nothing is decoded and the
    receiver's track never yields a frame. Call before the receiver starts (before ICE connects)."""
    current = getattr(receiver, _DECODER_QUEUE, None)
    if not isinstance(current, queue.Queue) or not hasattr(receiver, _DECODER_THREAD):
        raise HookMissing("RTCRtpReceiver has no decoder queue to tap")
    if getattr(receiver, _DECODER_THREAD) is not None:
        raise HookMissing("the receiver started before it was tapped")
    setattr(receiver, _DECODER_QUEUE, _TapQueue(sink, decode))


def forward_keyframe_requests(sender: RTCRtpSender, request: Callable[[], None]) -> None:
    """A subscriber's PLI/FIR only sets an encoder flag, useless when sending packets: call
    `request` instead so it reaches the publisher."""
    if not callable(getattr(sender, "_send_keyframe", None)):
        raise HookMissing("RTCRtpSender._send_keyframe is gone")
    sender._send_keyframe = request  # type: ignore[method-assign]


def watch_feedback(
    sender: RTCRtpSender,
    on_loss: Callable[[float], None],
    on_remb: Callable[[int], None],
) -> None:
    """Tell `on_loss` the fraction lost (0–1) of every receiver report the subscriber sends about
    this sender's media, and `on_remb` every REMB (bit/s) naming it; aiortc handles them as
    before. The callbacks run on the event loop, before aiortc's own handling."""
    handle = getattr(sender, "_handle_rtcp_packet", None)
    ssrc = getattr(sender, "_ssrc", None)
    if not callable(handle) or not isinstance(ssrc, int):
        raise HookMissing("RTCRtpSender._handle_rtcp_packet or _ssrc is gone")

    async def handle_and_watch(packet: Any) -> None:
        try:
            if isinstance(packet, RtcpRrPacket | RtcpSrPacket):
                for report in packet.reports:
                    if report.ssrc == ssrc:
                        on_loss(report.fraction_lost / 256)
            elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
                try:
                    bitrate, ssrcs = unpack_remb_fci(packet.fci)
                except ValueError:  # an application packet that is no REMB
                    ssrcs = []
                if ssrc in ssrcs:
                    on_remb(bitrate)
        except Exception:
            log.exception("a subscriber's feedback could not be read")
        await handle(packet)

    sender._handle_rtcp_packet = handle_and_watch  # type: ignore[method-assign]


def limit_resends(sender: RTCRtpSender, choose: Callable[[list[int]], list[int]]) -> None:
    """Let `choose` say which packets of each NACK the subscriber sends about this sender's media
    are resent (aiortc resends every one named, every time); the rest of RTCP is untouched."""
    handle = getattr(sender, "_handle_rtcp_packet", None)
    if not callable(handle):
        raise HookMissing("RTCRtpSender._handle_rtcp_packet is gone")

    async def handle_chosen(packet: Any) -> None:
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            lost = choose(list(packet.lost))
            if not lost:
                return
            packet = dataclasses.replace(packet, lost=lost)
        await handle(packet)

    sender._handle_rtcp_packet = handle_chosen  # type: ignore[method-assign]


def share_bitrate_estimate(receivers: Iterable[RTCRtpReceiver]) -> None:
    """Give these video receivers of one peer one receive-side bandwidth estimator, as a browser
    has one per connection. Each aiortc receiver estimates alone and sends its own REMB, and a
    browser takes every REMB as the estimate for the whole connection: the lighter track's small
    one would cap the full one too. Shared, every REMB counts both tracks."""
    shared: RemoteBitrateEstimator | None = None
    for receiver in receivers:
        estimator = getattr(receiver, _ESTIMATOR, None)
        if not isinstance(estimator, RemoteBitrateEstimator):
            raise HookMissing("RTCRtpReceiver has no remote bitrate estimator to share")
        if shared is None:
            shared = estimator
        else:
            setattr(receiver, _ESTIMATOR, shared)


def media_ssrc(receiver: RTCRtpReceiver) -> int | None:
    """The SSRC the publisher sends media on, newest first, never its RTX SSRC (a PLI aimed at
    the RTX stream is ignored by Chrome)."""
    rtx = getattr(receiver, _RTX_SSRC, None)
    if not isinstance(rtx, dict):
        raise HookMissing("RTCRtpReceiver has no RTX SSRC map")
    sources = sorted(receiver.getSynchronizationSources(), key=lambda s: s.timestamp, reverse=True)
    for source in sources:
        if source.source not in rtx:
            return source.source
    return None


async def send_pli(receiver: RTCRtpReceiver, ssrc: int) -> None:
    """Ask the publisher for a keyframe of the stream with this SSRC."""
    send = getattr(receiver, "_send_rtcp_pli", None)
    if not callable(send):
        raise HookMissing("RTCRtpReceiver._send_rtcp_pli is gone")
    await send(ssrc)


async def send_nack(receiver: RTCRtpReceiver, ssrc: int, lost: list[int]) -> None:
    """Ask the sender again for these packets of the stream with this SSRC."""
    send = getattr(receiver, "_send_rtcp_nack", None)
    if not callable(send):
        raise HookMissing("RTCRtpReceiver._send_rtcp_nack is gone")
    await send(ssrc, lost)


def jitter_missing(buffer: JitterBuffer) -> list[int]:
    """The sequence numbers missing between the origin and the newest packet waiting: aiortc
    asks for a lost packet only when it notices a new gap, so one whose resend was lost too is
    never asked for again once the link is clean."""
    slots, hole = _slots_and_hole(buffer)
    origin = buffer._origin
    if hole is None or origin is None:
        return []
    last = max((count for count, packet in enumerate(slots) if packet is not None), default=-1)
    return [(origin + count) & 0xFFFF for count in range(hole, last) if slots[count] is None]


def jitter_buffer(receiver: RTCRtpReceiver) -> JitterBuffer:
    """The receiver's jitter buffer, where RTP packets wait until they make whole frames."""
    buffer = getattr(receiver, _JITTER_BUFFER, None)
    if not isinstance(buffer, JitterBuffer) or not all(hasattr(buffer, n) for n in _JITTER_STATE):
        raise HookMissing("RTCRtpReceiver has no jitter buffer of the known shape")
    if not isinstance(buffer._packets, list):
        raise HookMissing("JitterBuffer._packets is not a list")
    return buffer


def jitter_origin(buffer: JitterBuffer) -> int | None:
    """The sequence number frames are assembled from; it moves as each frame leaves."""
    return buffer._origin


def jitter_blocked(buffer: JitterBuffer) -> int | None:
    """The media SSRC of the packets waiting behind a hole (a missing packet between the origin
    and packets that arrived later), or None when nothing waits behind one."""
    origin = buffer._origin
    if origin is None:
        return None
    capacity = buffer._capacity
    packets = buffer._packets
    hole = False
    for count in range(capacity):
        packet = packets[(origin + count) % capacity]
        if packet is None:
            hole = True
        elif hole:
            return packet.ssrc
    return None


def skip_jitter_hole(buffer: JitterBuffer) -> int:
    """Unblock a jitter buffer stuck on a packet lost for good: aiortc assembles frames only
    contiguously from the origin and gives up only once the buffer is full (512 packets of
    video, many seconds). Drop everything from the origin up to the first packet after the
    first hole that surely begins a frame (its predecessor is present and has another
    timestamp), so no partial frame ever reaches the decoder; the frames from there leave with
    the next packets added. Answers how many slots were dropped (0: nothing to skip to)."""
    slots, hole = _slots_and_hole(buffer)
    if hole is None:
        return 0
    for count in range(hole + 2, len(slots)):
        before, packet = slots[count - 1], slots[count]
        if before is not None and packet is not None and before.timestamp != packet.timestamp:
            buffer.remove(count)
            return count
    return 0


def keyframe_behind_hole(buffer: JitterBuffer, starts_key: Callable[[RtpPacket], bool]) -> int:
    """How many slots from the origin the newest keyframe waiting behind a hole begins (0: none
    waits). Frames after a lost one cannot be decoded until a keyframe anyway, so once one is
    there the frames before it are worth nothing."""
    slots, hole = _slots_and_hole(buffer)
    if hole is None:
        return 0
    for count in range(len(slots) - 1, hole, -1):
        packet = slots[count]
        if packet is not None and starts_key(packet):
            return count
    return 0


def _slots_and_hole(buffer: JitterBuffer) -> tuple[list[RtpPacket | None], int | None]:
    """The buffer's slots in order from the origin, and the first empty one's place (None: no
    origin yet, or no hole)."""
    origin = buffer._origin
    if origin is None:
        return [], None
    capacity = buffer._capacity
    packets = buffer._packets
    slots = [packets[(origin + count) % capacity] for count in range(capacity)]
    return slots, next((count for count, packet in enumerate(slots) if packet is None), None)


def vp8_keyframe_start(packet: RtpPacket) -> bool:
    """True for the first packet of a VP8 keyframe: its payload descriptor starts partition 0
    (RFC 7741) and the frame tag's bit 0 is 0 (RFC 6386 §9.1)."""
    try:
        descriptor, data = VpxPayloadDescriptor.parse(packet.payload)
    except ValueError:
        return False
    return bool(
        descriptor.partition_start and descriptor.partition_id == 0 and data and not data[0] & 1
    )


def payload_codecs(receiver: RTCRtpReceiver) -> dict[int, str]:
    """The receiver's negotiated codecs' names (upper case) by payload type."""
    codecs = getattr(receiver, _CODECS, None)
    if not isinstance(codecs, dict):
        raise HookMissing("RTCRtpReceiver's codecs are not a dict")
    return {payload_type: codec.name.upper() for payload_type, codec in codecs.items()}


def restrict_host_addresses(pc: RTCPeerConnection, hosts: Iterable[str]) -> None:
    """Offer host candidates on exactly these addresses (aioice leaves 127.0.0.1 out, so a
    loopback-only demo would otherwise offer nothing). Call after the transceivers exist and
    before setLocalDescription."""
    addresses = list(hosts)
    for transceiver in pc.getTransceivers():
        gatherer = transceiver.receiver.transport.transport.iceGatherer
        connection = getattr(gatherer, "_connection", None)
        if not isinstance(connection, Connection) or not hasattr(
            connection, "_local_candidates_start"
        ):
            raise HookMissing("RTCIceGatherer has no aioice connection to configure")
        connection.gather_candidates = functools.partial(  # type: ignore[method-assign]
            _gather_on, connection, addresses
        )


def nominated_pair_types(pc: RTCPeerConnection) -> tuple[str, str] | None:
    """(local, remote) candidate types (host, srflx, prflx, relay) of the pair ICE nominated for
    the connection's media, or None before one is."""
    for transceiver in pc.getTransceivers():
        ice = transceiver.receiver.transport.transport
        nominated = getattr(getattr(ice, "_connection", None), "_nominated", None)
        if not isinstance(nominated, dict):
            raise HookMissing("aioice Connection._nominated is gone")
        pair = nominated.get(1)
        if pair is not None:
            return str(pair.local_candidate.type), str(pair.remote_candidate.type)
    return None


async def _gather_on(connection: Connection, addresses: list[str]) -> None:
    """aioice's gather_candidates with the host addresses given instead of discovered."""
    if connection._local_candidates_start:
        return
    connection._local_candidates_start = True
    for component in sorted(connection._components):
        connection._local_candidates += await connection.get_component_candidates(
            component=component, addresses=addresses
        )
    connection._local_candidates_end = True


class SenderLink:
    """The parts of an aiortc sender and its transports that sending packets directly needs
    (RTCP — reports, NACK retransmissions, PLIs — stays with aiortc). `take_over_rtp` must run
    before the sender starts."""

    def __init__(self, sender: RTCRtpSender) -> None:
        for name in (*_SENDER_STATE, "_ssrc", "_run_rtp"):
            if not hasattr(sender, name):
                raise HookMissing(f"RTCRtpSender.{name} is gone")
        if not isinstance(getattr(sender, _HISTORY), dict):
            raise HookMissing("RTCRtpSender's RTP history is not a dict")
        if not hasattr(sender.transport, "_tx_srtp"):
            raise HookMissing("RTCDtlsTransport._tx_srtp is gone")
        self.sender = sender
        self.ssrc: int = sender._ssrc
        self.payload_type: int | None = None  # known once the sender starts
        self.history: dict[int, RtpPacket] = getattr(sender, _HISTORY)
        self.extensions: HeaderExtensionsMap = getattr(sender, _EXTENSIONS)

    @property
    def mid(self) -> str | None:
        """The transceiver's mid, sent in every packet's header extension."""
        mid: str | None = getattr(self.sender, _MID)
        return mid

    def take_over_rtp(self) -> None:
        """Replace the sender's RTP loop (which would read a track) by one that only learns the
        negotiated payload type and waits: packets are sent by `send`, RTCP runs as before."""
        sender = self.sender

        async def run_rtp(codec: RTCRtpCodecParameters) -> None:
            self.payload_type = codec.payloadType
            getattr(sender, _RTP_STARTED).set()
            try:
                await asyncio.Event().wait()  # until sender.stop() cancels it
            finally:
                getattr(sender, _RTP_EXITED).set()

        sender._run_rtp = run_rtp  # type: ignore[method-assign]

    def route(self) -> tuple[Any, Any, tuple[str, int]] | None:
        """(SRTP session, ICE protocol, remote address) once DTLS is connected, else None."""
        dtls = self.sender.transport
        srtp = dtls._tx_srtp
        if srtp is None or dtls.state != "connected" or self.payload_type is None:
            return None
        connection = getattr(dtls.transport, "_connection", None)
        nominated = getattr(connection, "_nominated", None)
        if not isinstance(nominated, dict):
            raise HookMissing("aioice Connection._nominated is gone")
        pair = nominated.get(1)
        if pair is None:
            return None
        return srtp, pair.protocol, pair.remote_addr

    @property
    def packets_sent(self) -> int:
        """Media packets sent so far (what the sender reports say)."""
        count: int = getattr(self.sender, _PACKETS)
        return count

    def sent(self, ntp_timestamp: int, rtp_timestamp: int, packets: int, octets: int) -> None:
        """Keep the sender's figures for its RTCP sender reports (and getStats) true."""
        state = vars(self.sender)
        state[_NTP] = ntp_timestamp
        state[_RTP_TIME] = rtp_timestamp
        state[_PACKETS] += packets
        state[_OCTETS] += octets


def send_datagram(protocol: Any, data: bytes, address: tuple[str, int]) -> None:
    """Send on an ICE candidate pair's protocol without a coroutine per packet (a TURN relay's
    protocol wraps data, so it keeps its own send_data)."""
    if type(protocol) is StunProtocol:
        protocol.transport.sendto(data, address)
    else:
        task = asyncio.ensure_future(protocol.send_data(data, address))
        task.add_done_callback(_ignore_result)


def _ignore_result(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("a relayed datagram was not sent: %s", task.exception())
