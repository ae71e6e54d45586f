"""Which part of a class a sign-in sheet (开班签到表) prints: one run and one venue at a time,
so that each venue's staff sign and keep their own sheet; a venue's staff only ever get the
sheets of the venues in their subtree."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from server.errors import NotFound
from server.services.class_sheets import Run, Trainee, VenuePart

NO_RUN = "The class has no run {run}."
NO_VENUE = "No venue {venue} in this class's runs."


@dataclass(frozen=True)
class SigninPart:
    """One sign-in sheet: a run (None: a blank sheet) at one venue (None: every venue of the
    run) and the trainees to sign on it."""

    run: Run | None
    venue: VenuePart | None
    seats: list[Trainee]


@dataclass(frozen=True)
class Selection:
    """What the address asks for: a run by its number and a venue by its code (None: all)."""

    run: int | None
    venue: str | None


def parse_selection(query: Mapping[str, str]) -> Selection:
    """?run=<number>&venue=<code>; a run that is no number names no run (404)."""
    raw_run = query.get("run", "").strip()
    run: int | None = None
    if raw_run:
        if not (raw_run.isascii() and raw_run.isdigit() and len(raw_run) <= 4):
            raise NotFound(NO_RUN, run=raw_run[:16])
        run = int(raw_run)
    venue = query.get("venue", "").strip() or None
    return Selection(run, venue)


def whole_runs(runs: list[Run]) -> list[SigninPart]:
    """A sheet per run with every venue's trainees, the main venue's first; a blank sheet
    without runs."""
    parts = []
    for run in runs:
        order = {venue.code: index for index, venue in enumerate(run.venues)}
        seats = sorted(run.roster, key=lambda seat: order.get(seat.venue_code, len(order)))
        parts.append(SigninPart(run, None, seats))
    return parts or [SigninPart(None, None, [])]


def venue_sheets(
    runs: list[Run], selection: Selection, allowed: Collection[str] | None = None
) -> list[SigninPart]:
    """A sheet per run and venue, the main venue first: the chosen run and venue only, and
    only the `allowed` venue codes (None: every venue). A venue with nobody on its roster gets
    a sheet only when chosen (walk-ins sign on blank rows). A run or venue that is not there,
    or not allowed, is not found; nothing at all to print is a blank sheet."""
    chosen = runs
    if selection.run is not None:
        chosen = [run for run in runs if run.number == selection.run]
        if not chosen:
            raise NotFound(NO_RUN, run=str(selection.run))
    parts = []
    for run in chosen:
        for venue in run.venues:
            if allowed is not None and venue.code not in allowed:
                continue
            if selection.venue is not None and venue.code != selection.venue:
                continue
            seats = [seat for seat in run.roster if seat.venue_code == venue.code]
            if seats or selection.venue is not None:
                parts.append(SigninPart(run, venue, seats))
    if selection.venue is not None and not parts:
        raise NotFound(NO_VENUE, venue=selection.venue[:64])
    return parts or [SigninPart(None, None, [])]


def choices(runs: list[Run], allowed: Collection[str] | None = None) -> list[tuple[Run, VenuePart]]:
    """Every (run, venue) a sheet can be printed for, for the toolbar's list."""
    return [
        (run, venue)
        for run in runs
        for venue in run.venues
        if allowed is None or venue.code in allowed
    ]
