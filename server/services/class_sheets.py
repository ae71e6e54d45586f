"""What the print templates of a class are filled with: its runs (the sessions linked to it),
their venues and rosters, attendance once finalized, and the figures over all of them."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from server.auth.principal import Scope
from server.db.models import (
    Attendance,
    Member,
    Organization,
    RosterEntry,
    SessionVenue,
    TrainingSession,
    Venue,
)
from server.domain.certificates import LEFT_OUT_REASONS, left_out_reason
from server.domain.class_workflow import Tally, tally
from server.domain.vocabulary import HELD_STATES
from server.services.class_workflow import ClassFacts


@dataclass(frozen=True)
class VenuePart:
    """A venue of a run: the main venue or a branch, with its figures once finalized."""

    code: str
    name: str
    org_name: str
    role: str
    rostered: int
    expected: int | None
    checked_in: int | None


@dataclass(frozen=True)
class Trainee:
    """A member on a run's roster, at their assigned venue."""

    member_no: str
    name: str
    category: str
    org_code: str
    org_name: str
    venue_code: str
    venue_name: str


@dataclass(frozen=True)
class Result:
    """A member's finalized attendance in a run."""

    member_no: str
    name: str
    org_name: str
    venue_name: str | None
    status: str
    presence_minutes: int
    credit_hours: Decimal
    flags: list[str]


@dataclass(frozen=True)
class Run:
    """One run (期) of the class: a session linked to it."""

    number: int
    public_id: str
    title: str
    topic_code: str
    state: str
    starts_at: datetime
    ends_at: datetime
    credit_hours: Decimal
    venues: list[VenuePart]
    roster: list[Trainee]
    results: list[Result]

    @property
    def finalized(self) -> bool:
        """Attendance is computed (finalized or approved)."""
        return self.state in HELD_STATES

    @property
    def main_venue(self) -> VenuePart | None:
        """The venue the lesson is given at."""
        return next((venue for venue in self.venues if venue.role == "main"), None)


@dataclass(frozen=True)
class Credit:
    """A trainee of the class and what the class credited them (结业证书/学时证明): the runs
    that credited them (held and finalized only) and why they have no certificate, if not."""

    member_no: str
    name: str
    category: str
    org_name: str
    runs_rostered: int
    runs_attended: int
    credit_hours: Decimal
    credited_runs: list[Run]
    left_out: str | None

    @property
    def certified(self) -> bool:
        """The trainee earns the class's certificate."""
        return self.left_out is None


@dataclass(frozen=True)
class ClassSheet:
    """Everything a print template may show about a class."""

    facts: ClassFacts
    runs: list[Run]
    tally: Tally
    credits: list[Credit]

    @property
    def first_start(self) -> datetime | None:
        """When the first run begins."""
        return self.runs[0].starts_at if self.runs else None

    @property
    def last_end(self) -> datetime | None:
        """When the last run ends."""
        return max((run.ends_at for run in self.runs), default=None)

    @property
    def roster_total(self) -> int:
        """Person-times on the rosters of all runs."""
        return sum(len(run.roster) for run in self.runs)

    @property
    def courses(self) -> list[str]:
        """The runs' course titles, each once, in time order: what the documents name as the
        class's content (a topic code is a key for the once-a-year rule, not a name)."""
        return list(dict.fromkeys(run.title for run in self.runs))

    @property
    def held_runs(self) -> list[Run]:
        """The runs held with their attendance finalized: the only ones a document may say
        took place."""
        return [run for run in self.runs if run.finalized]

    @property
    def certified(self) -> list[Credit]:
        """The trainees who earn the certificate, by organization and number."""
        return [credit for credit in self.credits if credit.certified]

    @property
    def left_out(self) -> list[tuple[str, list[Credit]]]:
        """The trainees without a certificate, grouped by why (reasons in a fixed order)."""
        groups = [
            (reason, [credit for credit in self.credits if credit.left_out == reason])
            for reason in LEFT_OUT_REASONS
        ]
        return [(reason, people) for reason, people in groups if people]


async def class_sheet(session: AsyncSession, scope: Scope, facts: ClassFacts) -> ClassSheet:
    """The class's runs in time order (those the caller sees: a run lies in the plan's subtree,
    see services/plan_links.py); members outside the scope are left out of rosters and results
    (as a joint session's attendance leaves them out)."""
    sessions = (
        await session.scalars(
            select(TrainingSession)
            .join(Organization, Organization.id == TrainingSession.org_id)
            .where(TrainingSession.plan_class_id == facts.id, scope.clause(Organization.path))
            .order_by(TrainingSession.starts_at, TrainingSession.id)
        )
    ).all()
    ids = [training.id for training in sessions]
    rosters = await _rosters(session, scope, ids)
    results = await _results(session, scope, [t.id for t in sessions if t.state in HELD_STATES])
    venues = await _venues(session, ids, rosters)
    runs = [
        Run(
            number,
            training.public_id,
            training.title,
            training.topic_code,
            training.state,
            training.starts_at,
            training.ends_at,
            training.credit_hours,
            venues.get(training.id, []),
            rosters.get(training.id, []),
            results.get(training.id, []),
        )
        for number, training in enumerate(sessions, 1)
    ]
    figures = tally(
        [(line.status, line.credit_hours, line.venue_name is not None) for line in run.results]
        for run in runs
        if run.finalized
    )
    return ClassSheet(facts, runs, figures, _credits(runs, facts.hours_per_run))


async def _rosters(session: AsyncSession, scope: Scope, ids: list[int]) -> dict[int, list[Trainee]]:
    member_org = aliased(Organization)
    rows = (
        await session.execute(
            select(
                RosterEntry.session_id,
                Member.member_no,
                Member.name,
                Member.category,
                member_org.code,
                member_org.name,
                member_org.path,
                Venue.code,
                Venue.name,
            )
            .join(Member, Member.id == RosterEntry.member_id)
            .join(member_org, member_org.id == Member.org_id)
            .join(Venue, Venue.id == RosterEntry.venue_id)
            .where(RosterEntry.session_id.in_(ids))
            .order_by(RosterEntry.session_id, Venue.code, Member.member_no)
        )
    ).all()
    found: dict[int, list[Trainee]] = defaultdict(list)
    for session_id, number, name, category, org_code, org_name, path, code, venue in rows:
        if scope.covers(path):
            found[session_id].append(
                Trainee(number, name, category, org_code, org_name, code, venue)
            )
    return found


async def _results(session: AsyncSession, scope: Scope, ids: list[int]) -> dict[int, list[Result]]:
    member_org = aliased(Organization)
    rows = (
        await session.execute(
            select(
                Attendance,
                Member.member_no,
                Member.name,
                member_org.name,
                member_org.path,
                Venue.name,
            )
            .join(Member, Member.id == Attendance.member_id)
            .join(member_org, member_org.id == Member.org_id)
            .outerjoin(Venue, Venue.id == Attendance.assigned_venue_id)
            .where(Attendance.session_id.in_(ids))
            .order_by(Attendance.session_id, Member.member_no)
        )
    ).all()
    found: dict[int, list[Result]] = defaultdict(list)
    for line, number, name, org_name, path, venue_name in rows:
        if not scope.covers(path):
            continue
        found[line.session_id].append(
            Result(
                number,
                name,
                org_name,
                venue_name,
                line.status,
                line.presence_seconds // 60,
                line.credit_hours,
                sorted(line.flags),
            )
        )
    return found


async def _venues(
    session: AsyncSession, ids: list[int], rosters: dict[int, list[Trainee]]
) -> dict[int, list[VenuePart]]:
    rows = (
        await session.execute(
            select(
                SessionVenue.session_id,
                SessionVenue.role,
                SessionVenue.expected,
                SessionVenue.checked_in,
                Venue.code,
                Venue.name,
                Organization.name,
            )
            .join(Venue, Venue.id == SessionVenue.venue_id)
            .join(Organization, Organization.id == Venue.org_id)
            .where(SessionVenue.session_id.in_(ids))
            # The main venue first, then the branches by code.
            .order_by(SessionVenue.session_id, SessionVenue.role.desc(), Venue.code)
        )
    ).all()
    found: dict[int, list[VenuePart]] = defaultdict(list)
    per_venue = {
        session_id: Counter(line.venue_code for line in lines)
        for session_id, lines in rosters.items()
    }
    for session_id, role, expected, checked_in, code, name, org_name in rows:
        rostered = per_venue.get(session_id, Counter())[code]
        found[session_id].append(
            VenuePart(code, name, org_name, role, rostered, expected, checked_in)
        )
    return found


def _credits(runs: list[Run], hours_per_run: Decimal) -> list[Credit]:
    """Each trainee once, by organization and number, with the runs and hours of the class and
    whether they earn its certificate (server/domain/certificates.py)."""
    people: dict[str, Trainee] = {}
    rostered: dict[str, list[Run]] = defaultdict(list)
    results: dict[str, list[tuple[Run, Result]]] = defaultdict(list)
    for run in runs:
        for trainee in run.roster:
            people.setdefault(trainee.member_no, trainee)
            rostered[trainee.member_no].append(run)
        for result in run.results:
            results[result.member_no].append((run, result))
    ordered = sorted(people.values(), key=lambda t: (t.org_name, t.member_no))
    return [_credit(t, rostered[t.member_no], results[t.member_no], hours_per_run) for t in ordered]


def _credit(
    trainee: Trainee, rostered: list[Run], held: list[tuple[Run, Result]], hours_per_run: Decimal
) -> Credit:
    pending = sum(1 for run in rostered if not run.finalized)
    return Credit(
        trainee.member_no,
        trainee.name,
        trainee.category,
        trainee.org_name,
        len(rostered),
        sum(1 for _, result in held if result.status != "absent"),
        sum((result.credit_hours for _, result in held), Decimal(0)),
        [run for run, result in held if result.credit_hours > 0],
        left_out_reason(
            [(result.status, result.credit_hours) for _, result in held], pending, hours_per_run
        ),
    )
