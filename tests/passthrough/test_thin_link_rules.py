"""The rules that keep a thin link usable, each on its own: which NACKed packets are resent
(passthrough.resend) and the hook that applies it on a real aiortc sender; the jitter-buffer
hooks that find a keyframe waiting behind a hole and the packets still missing, on a real aiortc
JitterBuffer fed real VP8 RTP packets; the stall watch's quicker path when a keyframe waits; the
quality rule's probation and a venue's return (passthrough.quality)."""

from __future__ import annotations

from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import (
    RTCP_RTPFB_NACK,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtpPacket,
)

from passthrough.hooks import (
    jitter_missing,
    keyframe_behind_hole,
    limit_resends,
    vp8_keyframe_start,
)
from passthrough.quality import HIGH, LOW, QualityRule, QualityState
from passthrough.resend import FORGET_S, ResendBudget
from passthrough.stall import StallWatch
from tests.support.rtc_peers import PeerFactory

SSRC = 1234
FRAME = 3000


# --- resends -------------------------------------------------------------------------------


def test_a_packet_is_resent_at_most_tries_times_and_never_twice_within_the_gap() -> None:
    budget = ResendBudget(gap_s=0.05, tries=3)
    assert budget.choose([10, 11], 0.0, 100) == [10, 11]
    assert budget.choose([10, 11, 12], 0.01, 100) == [12]  # 10 and 11 are on their way
    assert budget.choose([10], 0.06, 100) == [10]
    assert budget.choose([10], 0.12, 100) == [10]
    assert budget.choose([10], 0.30, 100) == []  # three times is enough
    assert budget.refused == 3


def test_resends_are_paid_from_what_was_sent_and_saved_up_to_the_burst() -> None:
    budget = ResendBudget(gap_s=0.0, share=0.5, burst=4.0, tokens=4.0)
    assert budget.choose(range(10), 0.0, 0) == [0, 1, 2, 3]
    assert budget.refused == 6
    assert budget.choose(range(10, 20), 0.1, 4) == [10, 11]  # 4 sent earn 2
    assert budget.choose([20], 0.2, 4) == []  # nothing sent since
    budget.choose([], 0.3, 1000)  # a long quiet run saves at most the burst
    assert budget.tokens == 4.0
    assert budget.choose(range(30, 40), 0.4, 1000) == [30, 31, 32, 33]


def test_packets_are_forgotten_after_a_while_so_wrapped_numbers_start_afresh() -> None:
    budget = ResendBudget(gap_s=0.0, tries=1)
    assert budget.choose([7], 0.0, 10) == [7]
    assert budget.choose([7], 1.0, 20) == []
    assert budget.choose([7], FORGET_S + 0.1, 30) == [7]


def rr(ssrc: int) -> RtcpRrPacket:
    info = RtcpReceiverInfo(
        ssrc=ssrc, fraction_lost=0, packets_lost=0, highest_sequence=1, jitter=0, lsr=0, dlsr=0
    )
    return RtcpRrPacket(ssrc=1, reports=[info])


async def test_the_hook_passes_on_only_the_chosen_packets_of_a_nack(peers: PeerFactory) -> None:
    sender = peers().addTransceiver("video", direction="sendonly").sender
    reached: list[object] = []

    async def aiortc_handles(packet: object) -> None:
        reached.append(packet)

    sender._handle_rtcp_packet = aiortc_handles  # type: ignore[method-assign]
    named: list[list[int]] = []

    def choose(lost: list[int]) -> list[int]:
        named.append(lost)
        return [seq for seq in lost if seq % 2 == 0]

    limit_resends(sender, choose)
    ssrc = sender._ssrc
    await sender._handle_rtcp_packet(
        RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=ssrc, lost=[4, 5, 6])
    )
    await sender._handle_rtcp_packet(
        RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=ssrc, lost=[7, 9])
    )
    report = rr(ssrc)
    await sender._handle_rtcp_packet(report)
    assert named == [[4, 5, 6], [7, 9]]
    [nack, other] = reached
    assert isinstance(nack, RtcpRtpfbPacket) and nack.lost == [4, 6]
    assert other is report  # everything else untouched; an all-refused NACK never arrives


# --- the jitter buffer -----------------------------------------------------------------------


def vp8_packet(seq: int, frame: int, *, key: bool, first: bool) -> RtpPacket:
    """A VP8 RTP packet as aiortc's receiver stores it (`_data`: the payload after the
    descriptor); a frame's first packet starts partition 0, a keyframe's tag has bit 0 clear."""
    descriptor = bytes(VpxPayloadDescriptor(partition_start=1 if first else 0, partition_id=0))
    body = bytes([0x00 if key else 0x01]) + b"\x00" * 20
    packet = RtpPacket(
        payload_type=96,
        sequence_number=seq,
        timestamp=frame * FRAME,
        ssrc=SSRC,
        payload=descriptor + body,
    )
    packet._data = body  # type: ignore[attr-defined]
    return packet


def fill(buffer: JitterBuffer, packets: list[RtpPacket]) -> None:
    for packet in packets:
        buffer.add(packet)


def test_vp8_keyframe_start_is_the_first_packet_of_a_key_frame_only() -> None:
    assert vp8_keyframe_start(vp8_packet(1, 0, key=True, first=True))
    assert not vp8_keyframe_start(vp8_packet(2, 0, key=True, first=False))
    assert not vp8_keyframe_start(vp8_packet(3, 1, key=False, first=True))
    empty = RtpPacket(payload_type=96, sequence_number=4, ssrc=SSRC, payload=b"")
    assert not vp8_keyframe_start(empty)


def test_the_newest_keyframe_behind_a_hole_and_the_packets_still_missing_are_found() -> None:
    buffer = JitterBuffer(capacity=128, is_video=True)
    # frame 0: 0-1 (delta, leaves only with frame 1 complete), frame 1: 2-3 of which 3 is lost,
    # frame 2 (key): 4-5, frame 3: 6, 7 lost, frame 4 (key): 8-9, frame 5: 10
    fill(
        buffer,
        [
            vp8_packet(0, 0, key=False, first=True),
            vp8_packet(1, 0, key=False, first=False),
            vp8_packet(2, 1, key=False, first=True),
        ],
    )
    assert keyframe_behind_hole(buffer, vp8_keyframe_start) == 0  # no hole yet
    assert jitter_missing(buffer) == []
    fill(
        buffer,
        [
            vp8_packet(4, 2, key=True, first=True),
            vp8_packet(5, 2, key=True, first=False),
            vp8_packet(6, 3, key=False, first=True),
            vp8_packet(8, 4, key=True, first=True),
            vp8_packet(9, 4, key=True, first=False),
            vp8_packet(10, 5, key=False, first=True),
        ],
    )
    origin = buffer._origin
    assert origin == 2  # frame 0 left, frame 1 waits for packet 3
    assert jitter_missing(buffer) == [3, 7]
    # the newest keyframe: frame 4, six slots on from the origin
    assert keyframe_behind_hole(buffer, vp8_keyframe_start) == 6
    assert keyframe_behind_hole(buffer, lambda packet: False) == 0
    buffer.remove(6)
    assert jitter_missing(buffer) == []
    assert keyframe_behind_hole(buffer, vp8_keyframe_start) == 0


def test_missing_numbers_wrap_around_like_sequence_numbers() -> None:
    buffer = JitterBuffer(capacity=128, is_video=True)
    fill(
        buffer,
        [
            vp8_packet(65534, 0, key=True, first=True),
            vp8_packet(1, 1, key=False, first=True),
        ],
    )
    assert jitter_missing(buffer) == [65535, 0]


# --- the stall watch -------------------------------------------------------------------------


def test_with_a_keyframe_waiting_the_watch_acts_sooner_and_without_a_gap() -> None:
    watch = StallWatch(stall_s=0.7, key_stall_s=0.3, gap_s=1.0)
    assert not watch.stuck(0.0, 10, True, key_waits=True)
    assert not watch.stuck(0.2, 10, True, key_waits=True)
    assert watch.stuck(0.3, 10, True, key_waits=True)
    assert watch.stuck(0.4, 10, True, key_waits=True)  # no gap to keep
    assert not watch.stuck(0.5, 11, True, key_waits=False)  # moved on
    assert not watch.stuck(1.1, 11, True, key_waits=False)  # the old gap holds without one
    assert watch.stuck(1.5, 11, True, key_waits=False)


# --- the quality rule ------------------------------------------------------------------------

RULE = QualityRule(clean_s=10.0, clean_max_s=80.0, probation_s=20.0)


def low_and_clean_since(state: QualityState, now: float) -> None:
    state.on_loss(0.5, now)
    state.on_loss(0.5, now + 1)
    assert state.layer == LOW
    state.on_loss(0.0, now + 2)


def test_on_probation_one_lossy_report_is_enough_outside_it_two() -> None:
    state = QualityState(RULE)
    state.on_loss(0.5, 0.0)
    assert state.layer == HIGH  # one report is not enough at first
    state.on_loss(0.5, 1.0)
    assert state.layer == LOW
    state.on_loss(0.0, 2.0)
    assert state.check_up(250_000, 12.0) == HIGH
    assert state.on_loss(0.3, 13.0) == LOW  # the try failed at its first lossy report
    assert state.failures == 1 and state.wait_s == 20.0


def test_a_venue_that_comes_back_during_a_try_goes_low_and_waits_longer() -> None:
    state = QualityState(RULE)
    low_and_clean_since(state, 0.0)
    assert state.check_up(250_000, 12.0) == HIGH
    state.rejoin(14.0)  # its agent lost the picture and subscribed again
    assert state.layer == LOW
    assert state.failures == 1 and state.wait_s == 20.0
    assert state.history[-1].reason == "lost the picture while trying the full one"
    assert state.clean_since is None and state.last_remb is None


def test_a_venue_that_comes_back_on_low_stays_low_and_starts_counting_afresh() -> None:
    state = QualityState(RULE)
    low_and_clean_since(state, 0.0)
    state.on_remb(300_000, 1_000_000, 3.0)
    state.rejoin(5.0)
    assert state.layer == LOW
    assert state.clean_since is None and state.last_remb is None
    assert state.lossy_reports == state.low_rembs == 0
    assert state.check_up(250_000, 12.0) is None  # the clean time counts from the return
    state.on_loss(0.0, 6.0)
    assert state.check_up(250_000, 16.5) == HIGH


def test_a_venue_that_comes_back_on_high_after_its_probation_stays_high() -> None:
    state = QualityState(RULE)
    low_and_clean_since(state, 0.0)
    assert state.check_up(250_000, 12.0) == HIGH
    state.rejoin(40.0)
    assert state.layer == HIGH and state.failures == 0
    fresh = QualityState(RULE)
    fresh.rejoin(1.0)
    assert fresh.layer == HIGH and not fresh.history
