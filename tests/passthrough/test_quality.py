"""The rule choosing a subscriber's video layer from its own feedback (passthrough.quality): down
quickly on loss or a REMB under what the high layer needs, up cautiously after a clean spell,
waiting twice as long after each failed try."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from passthrough.quality import HIGH, LOW, QualityRule, QualityState

RULE = QualityRule()
HIGH_BPS, LOW_BPS = 1_000_000.0, 250_000.0


def reports(state: QualityState, losses: list[float], start: float, every: float = 1.0) -> float:
    """Receiver reports one a second (each followed by the up check, as LayerChoice does);
    answers the time of the last one."""
    now = start
    for index, loss in enumerate(losses):
        now = start + index * every
        state.on_loss(loss, now)
        state.check_up(LOW_BPS, now)
    return now


def test_a_clean_link_stays_high() -> None:
    state = QualityState(RULE)
    reports(state, [0.0, 0.01, 0.05, 0.0] * 30, 0.0)
    for step in range(20):
        assert state.on_remb(1_500_000 + step * 1000, HIGH_BPS, step) is None
    assert state.layer == HIGH
    assert state.history == []


def test_one_lossy_report_is_not_enough_two_in_a_row_are() -> None:
    state = QualityState(RULE)
    assert state.on_loss(0.30, 1.0) is None
    assert state.on_loss(0.0, 2.0) is None  # the streak is broken
    assert state.on_loss(0.11, 3.0) is None
    assert state.on_loss(0.10, 4.0) is None  # 10 % exactly is not "above 10 %"
    assert state.on_loss(0.12, 5.0) is None
    assert state.on_loss(0.25, 6.0) == LOW
    assert state.layer == LOW
    [switch] = state.history
    assert (switch.at, switch.layer, switch.reason) == (6.0, LOW, "loss 25%")
    assert state.on_loss(0.5, 7.0) is None  # already low: nothing more to say


def test_a_remb_under_the_high_layers_need_goes_down_unless_it_is_rising() -> None:
    state = QualityState(RULE)
    need = RULE.remb_need * HIGH_BPS
    # Rising from below (aiortc's estimate ramping up after a join or an up-switch): no.
    for step, bitrate in enumerate(range(300_000, 900_000, 50_000)):
        assert state.on_remb(bitrate, HIGH_BPS, step) is None
    # Fallen below and holding there: after three REMBs in a row.
    assert state.on_remb(int(need) - 200_000, HIGH_BPS, 20.0) is None
    assert state.on_remb(int(need) - 200_000, HIGH_BPS, 20.5) is None
    assert state.on_remb(int(need) - 300_000, HIGH_BPS, 21.0) == LOW
    assert state.history[-1].reason.startswith("REMB ")
    # Without a measured high layer (no publisher yet), REMB decides nothing.
    fresh = QualityState(RULE)
    for step in range(10):
        assert fresh.on_remb(10_000, 0.0, step) is None


def test_up_only_after_a_clean_spell_and_with_remb_headroom() -> None:
    state = QualityState(RULE)
    reports(state, [0.3, 0.3], 0.0)
    assert state.layer == LOW
    # Clean from t=2; not yet up after 20 s, up once the spell reaches clean_s.
    last = reports(state, [0.0] * 20, 2.0)
    assert state.layer == LOW
    assert last - 2.0 < RULE.clean_s
    state.on_remb(int(LOW_BPS * RULE.remb_headroom) - 1, HIGH_BPS, last)  # pinned: no headroom
    last = reports(state, [0.0] * 10, last + 1)
    assert state.layer == LOW
    state.on_remb(int(LOW_BPS * 1.6), HIGH_BPS, last)
    assert state.on_loss(0.0, last + 1) is None
    assert state.check_up(LOW_BPS, last + 1) == HIGH
    assert [s.layer for s in state.history] == [LOW, HIGH]


def test_loss_during_the_spell_starts_it_again() -> None:
    state = QualityState(RULE)
    reports(state, [0.3, 0.3], 0.0)
    reports(state, [0.0] * 20 + [0.05] + [0.0] * 20, 2.0)  # a 5 % report at t=22
    assert state.layer == LOW
    reports(state, [0.0] * 6, 43.0)  # 25 s after the 5 % report's successor
    assert state.layer == HIGH


def test_a_falling_remb_starts_the_spell_again() -> None:
    state = QualityState(RULE)
    reports(state, [0.3, 0.3], 0.0)
    reports(state, [0.0] * 20, 2.0)
    state.on_remb(800_000, HIGH_BPS, 21.5)
    state.on_remb(600_000, HIGH_BPS, 22.0)  # a fall: the receiver saw congestion
    last = reports(state, [0.0] * 10, 22.5)
    assert state.layer == LOW
    assert state.clean_since == 22.5
    reports(state, [0.0] * 20, last + 1)
    assert state.layer == HIGH


def clean_until_high(state: QualityState, start: float) -> float:
    """Clean reports once a second from `start` until the rule goes up; answers that moment."""
    now = start
    while state.layer != HIGH:
        state.on_loss(0.0, now)
        state.check_up(LOW_BPS, now)
        now += 1
    return state.history[-1].at


def test_failed_up_switches_back_off_exponentially_and_a_held_one_resets() -> None:
    state = QualityState(RULE)
    down = reports(state, [0.3, 0.3], 0.0)
    waits = []
    for _ in range(6):
        up = clean_until_high(state, down + 1)
        waits.append(up - (down + 1))
        down = reports(state, [0.3, 0.3], up + 1)  # fails within probation
        assert state.layer == LOW
    assert waits == [25, 50, 100, 200, 240, 240]
    assert state.failures == 6

    # An up-switch that holds past probation resets the wait.
    up = clean_until_high(state, down + 1)
    reports(state, [0.0] * 25, up + 1)
    assert (state.layer, state.failures) == (HIGH, 0)
    down = reports(state, [0.3, 0.3], up + 40)
    assert (state.layer, state.failures) == (LOW, 0)  # a later fall is no failed try
    assert clean_until_high(state, down + 1) - (down + 1) == RULE.clean_s


LOSSES = st.lists(st.floats(0, 1, allow_nan=False), max_size=200)


@settings(max_examples=200, deadline=None)
@given(losses=LOSSES, rembs=st.lists(st.integers(0, 3_000_000), max_size=200))
def test_the_rule_never_flaps(losses: list[float], rembs: list[int]) -> None:
    """Whatever the feedback: every switch alternates, never two downs in a row, and an up-switch
    comes at least clean_s after the down-switch before it."""
    state = QualityState(RULE)
    for index, loss in enumerate(losses):
        now = float(index)
        state.on_loss(loss, now)
        if index < len(rembs):
            state.on_remb(rembs[index], HIGH_BPS, now + 0.5)
        state.check_up(LOW_BPS, now + 0.5)
    layers = [switch.layer for switch in state.history]
    assert all(a != b for a, b in itertools.pairwise(layers))
    assert not layers or layers[0] == LOW
    for down, up in zip(state.history[::2], state.history[1::2], strict=False):
        assert up.at - down.at >= RULE.clean_s


def up_after_a_fall(state: QualityState) -> float:
    """Down at t=1, then clean until the rule goes up; answers the moment of the up-switch."""
    reports(state, [0.3, 0.3], 0.0)
    assert state.layer == LOW
    return clean_until_high(state, 2.0)


def test_on_probation_one_lossy_report_is_enough() -> None:
    state = QualityState(RULE)
    up = up_after_a_fall(state)
    assert state.on_loss(RULE.loss_down, up + 1) is None  # 10 % is not "above 10 %"
    assert state.on_loss(0.3, up + 2) == LOW  # the probe is what hurts
    assert (state.history[-1].at, state.history[-1].reason) == (up + 2, "loss 30%")
    assert state.failures == 1
    assert state.wait_s == 2 * RULE.clean_s


def test_outside_probation_two_lossy_reports_are_needed_again() -> None:
    state = QualityState(RULE)
    up = up_after_a_fall(state)
    held = up + RULE.probation_s  # probation is over, though nothing has said so yet
    assert state.on_loss(0.3, held) is None
    assert state.layer == HIGH
    assert state.on_loss(0.3, held + 1) == LOW
    assert state.failures == 0  # the try held: this fall is no failure


def test_coming_back_during_probation_goes_low_and_doubles_the_wait() -> None:
    state = QualityState(RULE)
    up = up_after_a_fall(state)
    state.on_remb(900_000, HIGH_BPS, up + 1)
    state.rejoin(up + 5)
    assert state.layer == LOW
    assert state.failures == 1 and state.wait_s == 2 * RULE.clean_s
    [_, _, back] = state.history
    assert (back.at, back.layer) == (up + 5, LOW)
    assert back.reason == "lost the picture while trying the full one"
    assert (state.up_at, state.clean_since, state.last_remb) == (None, None, None)
    assert state.lossy_reports == state.low_rembs == 0
    assert clean_until_high(state, up + 6) - (up + 6) == 2 * RULE.clean_s


def test_coming_back_on_low_stays_low_and_counts_the_clean_spell_afresh() -> None:
    state = QualityState(RULE)
    reports(state, [0.3, 0.3], 0.0)
    reports(state, [0.0] * 10, 2.0)  # clean since t=2
    state.on_remb(400_000, HIGH_BPS, 11.5)  # under the high layer's need: a low REMB
    assert (state.clean_since, state.last_remb, state.low_rembs) == (2.0, 400_000, 1)
    state.rejoin(12.0)
    assert state.layer == LOW
    assert (state.clean_since, state.last_remb) == (None, None)
    assert state.lossy_reports == state.low_rembs == 0
    assert state.failures == 0 and len(state.history) == 1  # no switch, no failure
    # Without the return it would go up at t=27; the spell now starts with the next report.
    assert clean_until_high(state, 13.0) == 13.0 + RULE.clean_s


def test_coming_back_on_high_outside_probation_stays_high() -> None:
    state = QualityState(RULE)
    assert state.on_loss(0.3, 0.0) is None
    state.rejoin(1.0)  # the old connection's lossy report no longer counts
    assert state.on_loss(0.3, 2.0) is None
    assert state.layer == HIGH and state.history == []
    assert state.on_loss(0.3, 3.0) == LOW

    up = clean_until_high(state, 4.0)
    state.rejoin(up + RULE.probation_s)  # the try had held
    assert state.layer == HIGH
    assert state.failures == 0 and len(state.history) == 2
