"""The certificate rule on its own: a trainee earns the class's certificate only once held runs
credited them a run's hours; absent, partial and not-yet-held trainees get none, and why."""

from __future__ import annotations

from decimal import Decimal

import pytest

from server.domain.certificates import LEFT_OUT_REASONS, left_out_reason, required_hours

THREE = Decimal(3)


@pytest.mark.parametrize(
    ("results", "pending", "reason"),
    [
        ([("present", THREE)], 0, None),
        ([("absent", Decimal(0)), ("present", THREE)], 0, None),  # a second run made up for it
        ([("present", THREE)], 1, None),  # earned already; a later run changes nothing
        ([("absent", Decimal(0))], 0, "absent"),
        ([("partial", Decimal(0))], 0, "partial"),
        ([("partial", Decimal(0)), ("absent", Decimal(0))], 0, "partial"),
        ([("present", Decimal(0))], 0, "uncredited"),  # a repeat: credited elsewhere this year
        ([("present", Decimal("1.5"))], 0, "uncredited"),  # a shorter run than the class's
        ([], 1, "not_held"),
        ([("absent", Decimal(0))], 1, "not_held"),  # may still attend the next run
    ],
)
def test_who_earns_a_certificate(
    results: list[tuple[str, Decimal]], pending: int, reason: str | None
) -> None:
    assert left_out_reason(results, pending, THREE) == reason
    assert reason is None or reason in LEFT_OUT_REASONS


def test_a_class_without_hours_still_needs_credited_time() -> None:
    assert required_hours(Decimal(0)) > 0
    assert left_out_reason([("absent", Decimal(0))], 0, Decimal(0)) == "absent"
    assert left_out_reason([("present", Decimal(1))], 0, Decimal(0)) is None
