"""Every private aiortc/aioice hook the relay relies on, in one place. aiortc is pinned; each hook
checks what it touches and raises HookMissing, and tests/test_rtc_hooks.py exercises each one, so an
incompatible upgrade fails loudly instead of silently relaying nothing."""

from __future__ import annotations

import functools
import logging
import queue
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from aioice import Connection
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

log = logging.getLogger(__name__)

FrameSink = Callable[[RTCRtpCodecParameters, JitterFrame], None]


class Packetizer(Protocol):
    """What an RTCRtpSender asks of its encoder when it is handed packets: pack()."""

    def pack(self, packet: Any) -> tuple[list[bytes], int]:
        """RTP payloads of one encoded frame, and its RTP timestamp."""


_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"
_DECODER_THREAD = "_RTCRtpReceiver__decoder_thread"
_RTX_SSRC = "_RTCRtpReceiver__rtx_ssrc"
_SENDER_ENCODER = "_RTCRtpSender__encoder"


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


def share_packetizer(sender: RTCRtpSender, packetizer: Packetizer) -> None:
    """The sender packs each packet with `packetizer` instead of an encoder of its own, so a
    frame sent to many subscribers is split into RTP payloads once, not once per subscriber.
    Call before the sender starts."""
    if getattr(sender, _SENDER_ENCODER, False) is not None:
        raise HookMissing("RTCRtpSender has no encoder slot to share (or it already started)")
    setattr(sender, _SENDER_ENCODER, packetizer)


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
