"""Who earns a class's completion certificate (结业证书/学时证明), and why the others do not.

The rule: a trainee earns the certificate once the class's held runs (attendance finalized) have
credited them at least the class's hours for one run — a whole run attended, as the attendance
rules credit hours only to a `present` member. Absent and partial attendees are credited 0 hours
and get none; a trainee whose runs have not been held and finalized yet gets none yet. Pure: no
I/O."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Final

# Why a rostered trainee has no certificate, in the order the print page lists them.
LEFT_OUT_REASONS: Final = ("not_held", "absent", "partial", "uncredited")


def required_hours(hours_per_run: Decimal) -> Decimal:
    """The hours a certificate needs: the class's hours for one run (and never nothing)."""
    return max(hours_per_run, Decimal("0.01"))


def left_out_reason(
    results: Iterable[tuple[str, Decimal]], runs_pending: int, hours_per_run: Decimal
) -> str | None:
    """None when the trainee earns the certificate; otherwise why not.

    results are (status, credited hours) of the trainee in the class's held runs; runs_pending
    counts the runs they are on the roster of that are not held and finalized yet."""
    held = list(results)
    credited = sum((hours for _, hours in held), Decimal(0))
    if held and credited >= required_hours(hours_per_run):
        return None
    if runs_pending:
        return "not_held"
    statuses = {status for status, _ in held}
    if "present" in statuses:
        return "uncredited"  # present, yet credited 0: already credited this topic this year
    if "partial" in statuses:
        return "partial"
    return "absent"
