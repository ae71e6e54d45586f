"""Which NACKed packets a subscriber is sent again (passthrough.resend): at most `tries` times
each, never twice within `gap_s`, paid from a budget earned by the media sent and saved up to
`burst`, forgotten after FORGET_S; and the hook that applies it (passthrough.hooks.
limit_resends) on a real aiortc sender, whose own NACK handling then resends only the packets
chosen from its RTP history."""

from __future__ import annotations

import itertools
from collections import Counter

from aiortc import RTCRtpSender
from aiortc.rtp import (
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RTP_HISTORY_SIZE,
    AnyRtcpPacket,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtpPacket,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from passthrough.hooks import SenderLink, limit_resends
from passthrough.resend import FORGET_S, ResendBudget
from tests.support.rtc_peers import PeerFactory

# --- the rule --------------------------------------------------------------------------------


def test_a_packet_is_resent_at_most_tries_times() -> None:
    budget = ResendBudget(gap_s=0.05, tries=3)
    assert budget.choose([5], 0.0, 10) == [5]
    assert budget.choose([5], 0.1, 10) == [5]
    assert budget.choose([5, 6], 0.2, 10) == [5, 6]
    assert budget.choose([5, 6], 0.3, 10) == [6]  # 5 was resent three times
    assert budget.choose([5], 2.0, 10) == []
    assert budget.refused == 2


def test_a_packet_is_not_resent_again_within_the_gap() -> None:
    budget = ResendBudget(gap_s=0.05)
    assert budget.choose([5, 6], 0.0, 10) == [5, 6]
    assert budget.choose([5, 6, 7], 0.04, 10) == [7]  # 5 and 6 may still be on their way
    assert budget.choose([5], 0.05, 10) == [5]  # a whole gap later
    assert budget.choose([8, 8], 0.06, 10) == [8]  # named twice in one NACK: sent once
    assert budget.refused == 2  # 5 and 6 at 0.04 (a repeat within one NACK is no request)


def test_resends_are_paid_from_the_packets_sent() -> None:
    budget = ResendBudget(gap_s=0.0, share=0.5, burst=10.0, tokens=2.0)
    assert budget.choose(range(5), 0.0, 100) == [0, 1]
    assert budget.refused == 3
    assert budget.choose([10, 11, 12], 0.1, 104) == [10, 11]  # 4 sent earn 2 resends
    assert budget.choose([20], 0.2, 104) == []  # nothing sent since
    assert budget.refused == 5
    assert budget.choose([20], 0.3, 105) == []  # half a resend is no resend...
    assert budget.choose([20], 0.4, 106) == [20]  # ...but it is kept
    assert budget.tokens == 0.0


def test_the_first_call_only_learns_the_count_and_the_savings_stop_at_the_burst() -> None:
    budget = ResendBudget(gap_s=0.0, burst=3.0, tokens=0.0)
    assert budget.choose([1], 0.0, 5000) == []  # what was sent before is no credit
    assert budget.sent_seen == 5000
    assert budget.choose([], 1.0, 5100) == []  # a quiet link sends 100 packets...
    assert budget.tokens == 3.0  # ...but saves only the burst
    assert budget.choose(range(10), 2.0, 5100) == [0, 1, 2]
    assert budget.refused == 8


def test_a_packet_is_forgotten_forget_s_after_it_was_last_named() -> None:
    budget = ResendBudget(gap_s=0.0, tries=1)
    assert budget.choose([7, 8], 0.0, 10) == [7, 8]
    assert budget.choose([7], 1.0, 20) == []  # used up, and named again at 1.0
    assert budget.choose([7], 1.0 + FORGET_S, 30) == []  # not yet: FORGET_S after its naming
    assert budget.choose([8], 1.0 + FORGET_S, 40) == [8]  # not named since 0.0: forgotten
    assert budget.choose([7], 2.0 + 2 * FORGET_S, 50) == [7]  # a new packet of that number
    assert budget.refused == 2


NACKS = st.lists(
    st.tuples(
        st.lists(st.integers(0, 15), max_size=12),  # the sequence numbers named
        st.floats(0.0, 0.07, allow_nan=False),  # the time since the NACK before
        st.integers(0, 6),  # media packets sent since
    ),
    max_size=40,  # 40 × 0.07 s stays under FORGET_S: nothing is forgotten
)


@settings(max_examples=200, deadline=None)
@given(
    nacks=NACKS,
    gap_s=st.sampled_from([0.0, 0.02, 0.05]),
    tries=st.integers(1, 5),
    share=st.sampled_from([0.25, 1.0, 2.0]),
    tokens=st.integers(0, 8),
)
def test_whatever_is_named_the_limits_hold(
    nacks: list[tuple[list[int], float, int]],
    gap_s: float,
    tries: int,
    share: float,
    tokens: int,
) -> None:
    budget = ResendBudget(gap_s=gap_s, tries=tries, share=share, burst=8.0, tokens=tokens)
    now, sent = 0.0, 0
    resent_at: dict[int, list[float]] = {}
    named = chosen = 0
    for lost, after, more in nacks:
        now, sent = now + after, sent + more
        picked = budget.choose(lost, now, sent)
        assert not Counter(picked) - Counter(lost)  # only what was named, each once
        for sequence in picked:
            resent_at.setdefault(sequence, []).append(now)
        named, chosen = named + len(set(lost)), chosen + len(picked)
        assert 0.0 <= budget.tokens <= 8.0
    assert budget.refused == named - chosen
    assert chosen <= tokens + share * sent
    for times in resent_at.values():
        assert len(times) <= tries
        assert all(b - a >= gap_s for a, b in itertools.pairwise(times))


# --- the hook on a real aiortc sender --------------------------------------------------------


def nack(sender: RTCRtpSender, lost: list[int]) -> RtcpRtpfbPacket:
    return RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=sender._ssrc, lost=lost)


def receiver_report(sender: RTCRtpSender) -> RtcpRrPacket:
    info = RtcpReceiverInfo(
        ssrc=sender._ssrc,
        fraction_lost=32,
        packets_lost=2,
        highest_sequence=110,
        jitter=0,
        lsr=0,
        dlsr=0,
    )
    return RtcpRrPacket(ssrc=1, reports=[info])


class Resends:
    """A sender whose RTP history holds packets 100–109, as the relay stores what it sent;
    `reached` is every RTCP packet that reached aiortc's own handling, `resent` the sequence
    numbers aiortc then sent again (taken where it hands them to the unconnected transport)."""

    def __init__(self, sender: RTCRtpSender) -> None:
        self.sender = sender
        self.link = SenderLink(sender)
        for sequence in range(100, 110):
            self.link.history[sequence % RTP_HISTORY_SIZE] = RtpPacket(
                payload_type=96, sequence_number=sequence, ssrc=self.link.ssrc, payload=b"v"
            )
        self.reached: list[AnyRtcpPacket] = []
        self.resent: list[int] = []
        aiortc_handles = sender._handle_rtcp_packet

        async def record_and_handle(packet: AnyRtcpPacket) -> None:
            self.reached.append(packet)
            await aiortc_handles(packet)

        async def send_rtp(data: bytes) -> None:
            self.resent.append(RtpPacket.parse(data).sequence_number)

        sender._handle_rtcp_packet = record_and_handle  # type: ignore[method-assign]
        sender.transport._send_rtp = send_rtp  # type: ignore[method-assign]


async def test_only_the_chosen_packets_of_a_nack_reach_aiortc(peers: PeerFactory) -> None:
    sender = peers().addTransceiver("video", direction="sendonly").sender
    resends = Resends(sender)
    named: list[list[int]] = []

    def choose(lost: list[int]) -> list[int]:
        named.append(lost)
        return [sequence for sequence in lost if sequence % 2 == 0]

    limit_resends(sender, choose)
    first = nack(sender, [101, 102, 103, 104])
    await sender._handle_rtcp_packet(first)
    assert resends.resent == [102, 104]
    assert first.lost == [101, 102, 103, 104]  # the subscriber's packet is left as it was

    await sender._handle_rtcp_packet(nack(sender, [105, 107]))  # all refused
    report = receiver_report(sender)
    await sender._handle_rtcp_packet(report)
    pli = RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=sender._ssrc, fci=b"")
    await sender._handle_rtcp_packet(pli)

    assert named == [[101, 102, 103, 104], [105, 107]]
    assert resends.resent == [102, 104]
    [chosen, *others] = resends.reached
    assert isinstance(chosen, RtcpRtpfbPacket)
    assert (chosen.fmt, chosen.media_ssrc) == (RTCP_RTPFB_NACK, sender._ssrc)
    assert chosen.lost == [102, 104]
    assert others[0] is report and others[1] is pli  # the all-refused NACK never got there
    # aiortc handled the report as before: its remote-inbound-rtp statistics come from it.
    stats = [s for s in (await sender.getStats()).values() if s.type == "remote-inbound-rtp"]
    assert [(s.packetsLost, s.fractionLost) for s in stats] == [(2, 32)]


async def test_a_budget_fed_by_the_senders_packet_count_rations_aiortcs_resends(
    peers: PeerFactory,
) -> None:
    sender = peers().addTransceiver("video", direction="sendonly").sender
    resends = Resends(sender)
    link = resends.link
    budget = ResendBudget(gap_s=0.05, tries=2, burst=2.0, tokens=2.0)
    clock = [0.0]
    limit_resends(sender, lambda lost: budget.choose(lost, clock[0], link.packets_sent))

    await sender._handle_rtcp_packet(nack(sender, [100, 101, 102]))
    assert resends.resent == [100, 101]  # the budget held two
    link.sent(0, 0, packets=1, octets=1200)  # one packet sent earns one resend
    clock[0] = 0.01
    await sender._handle_rtcp_packet(nack(sender, [100, 101, 102]))
    assert resends.resent == [100, 101, 102]  # 100 and 101 are still on their way
    link.sent(0, 0, packets=5, octets=6000)
    clock[0] = 0.1
    await sender._handle_rtcp_packet(nack(sender, [100, 101, 102]))
    assert resends.resent == [100, 101, 102, 100, 101]  # the burst caps the savings at two
    assert budget.refused == 1 + 2 + 1


def test_a_packet_named_again_and_again_is_never_resent_more_than_tries_times() -> None:
    # The stall guard names a missing packet every 0.25 s: it must not be forgotten (and resent
    # afresh) while it is still being asked for.
    budget = ResendBudget()
    resent = sum(len(budget.choose([7], step * 0.25, step * 25)) for step in range(60))
    assert resent == budget.tries
