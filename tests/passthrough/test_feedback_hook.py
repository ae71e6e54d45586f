"""The hook that reads a subscriber's feedback on the relay's sender (passthrough.hooks.
watch_feedback): receiver reports and REMB about the sender's own SSRC reach the callbacks, the
rest is left alone, aiortc still handles every packet, and a changed aiortc fails loudly. (That
a real aiortc viewer's reports and REMB arrive through it is shown in test_relay_layers.py.)"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import pytest
from aiortc import RTCPeerConnection, RTCRtpSender
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    pack_remb_fci,
)

from passthrough.hooks import HookMissing, watch_feedback
from tests.support.rtc_peers import PeerFactory


def report(ssrc: int, fraction_lost: int) -> RtcpReceiverInfo:
    return RtcpReceiverInfo(
        ssrc=ssrc,
        fraction_lost=fraction_lost,
        packets_lost=3,
        highest_sequence=1000,
        jitter=10,
        lsr=0,
        dlsr=0,
    )


async def test_reports_and_remb_about_this_sender_reach_the_callbacks(
    peers: PeerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    sender = peers().addTransceiver("video", direction="sendonly").sender
    losses: list[float] = []
    rembs: list[int] = []
    keyframes: list[bool] = []
    sender._send_keyframe = lambda: keyframes.append(True)  # type: ignore[method-assign]
    watch_feedback(sender, losses.append, rembs.append)
    ssrc = sender._ssrc

    await sender._handle_rtcp_packet(
        RtcpRrPacket(ssrc=1, reports=[report(ssrc + 1, 200), report(ssrc, 64)])
    )
    assert losses == [0.25]  # 64/256, only the report about our SSRC
    # aiortc handled it too: its remote-inbound-rtp statistics come from this report.
    stats = [s for s in (await sender.getStats()).values() if s.type == "remote-inbound-rtp"]
    assert [(s.packetsLost, s.fractionLost) for s in stats] == [(3, 64)]

    remb = RtcpPsfbPacket(
        fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(750_000, [ssrc])
    )
    other = RtcpPsfbPacket(
        fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(1, [ssrc + 1])
    )
    not_remb = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=b"ABCD\x00\x00\x00\x00")
    with caplog.at_level(logging.DEBUG, logger="passthrough.hooks"):
        for packet in (remb, other, not_remb):
            await sender._handle_rtcp_packet(packet)
    assert rembs == [750_000]
    assert caplog.records == []  # an application packet that is no REMB is no error

    # Other feedback goes to aiortc as before (a PLI reaches the keyframe hook).
    await sender._handle_rtcp_packet(
        RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=ssrc, fci=b"")
    )
    assert keyframes == [True]
    assert losses == [0.25]


async def test_a_failing_callback_is_logged_and_aiortc_still_handles_the_packet(
    peers: PeerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    sender = peers().addTransceiver("video", direction="sendonly").sender

    def broken(fraction: float) -> None:
        raise RuntimeError("rule broke")

    watch_feedback(sender, broken, lambda bitrate: None)
    with caplog.at_level(logging.ERROR, logger="passthrough.hooks"):
        await sender._handle_rtcp_packet(RtcpRrPacket(ssrc=1, reports=[report(sender._ssrc, 0)]))
    assert "a subscriber's feedback could not be read" in caplog.text
    stats = [s for s in (await sender.getStats()).values() if s.type == "remote-inbound-rtp"]
    assert len(stats) == 1


async def _no_handler(pc: RTCPeerConnection) -> None:
    sender = pc.addTransceiver("video").sender
    sender._handle_rtcp_packet = None  # type: ignore[assignment,method-assign]
    watch_feedback(sender, lambda f: None, lambda b: None)


async def _no_ssrc(pc: RTCPeerConnection) -> None:
    sender = pc.addTransceiver("video").sender
    del sender._ssrc
    watch_feedback(sender, lambda f: None, lambda b: None)


async def _plain_object(pc: RTCPeerConnection) -> None:
    watch_feedback(object(), lambda f: None, lambda b: None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "use_hook", [_no_handler, _no_ssrc, _plain_object], ids=lambda f: f.__name__.strip("_")
)
async def test_watch_feedback_raises_hook_missing_when_aiortc_changed(
    peers: PeerFactory, use_hook: Callable[[RTCPeerConnection], Awaitable[None]]
) -> None:
    with pytest.raises(HookMissing, match="_handle_rtcp_packet or _ssrc"):
        await use_hook(peers())


def test_the_hook_wraps_what_aiortc_calls() -> None:
    # aiortc's DTLS transport routes RTCP to `recipient._handle_rtcp_packet(packet)`: an
    # instance attribute of that name is what it calls.
    assert callable(RTCRtpSender._handle_rtcp_packet)
