"""The venue wall of a session: each venue's agent, head count and stream health, read fresh."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Scope
from server.db.models import CheckIn, RosterEntry, SessionVenue, StreamSample, Venue
from server.domain.venues import STATS_S, is_online
from server.domain.wall_tiles import PROBLEMS, branch_condition, main_condition, wall_rank
from server.services.session_views import load_visible

MISSED_REPORTS_STALE = 3
# A venue whose latest sample is older than this has stopped reporting: its stream counts as down.
STREAM_STALE_AFTER = timedelta(seconds=MISSED_REPORTS_STALE * STATS_S)


@dataclass(frozen=True)
class StreamHealth:
    """A venue's latest stream-health sample; a stale one reads as down."""

    state: str
    bitrate_kbps: float | None
    fps: float | None
    loss_pct: float | None
    freezes: int | None
    at: datetime
    stale: bool


@dataclass(frozen=True)
class WallTile:
    """One venue on the wall."""

    code: str
    name: str
    role: str
    online: bool
    last_seen_at: datetime | None
    agent_state: str | None
    queue_depth: int | None
    ice_path: str | None  # passthrough.peer.ICE_PATHS: how the picture reaches the venue
    checked_in: int
    expected: int
    stream: StreamHealth | None = None


@dataclass(frozen=True)
class ShownTile:
    """A tile with the wall's judgement of it (server/domain/wall_tiles.py)."""

    tile: WallTile
    condition: str

    @property
    def problem(self) -> bool:
        """Whether the operator should look at this venue."""
        return self.condition in PROBLEMS


@dataclass(frozen=True)
class Readiness:
    """The wall in one sentence: branch venues' agents online, who is offline, and how many
    receive the broadcast well; ready when nothing is missing."""

    branches: int
    online: int
    offline: tuple[str, ...]
    receiving_well: int
    ready: bool


def stream_health(sample: StreamSample, now: datetime) -> StreamHealth:
    """A stored sample as the wall shows it: too old means the venue stopped reporting."""
    stale = now - sample.at > STREAM_STALE_AFTER
    return StreamHealth(
        "down" if stale else sample.state,
        sample.bitrate_kbps,
        sample.fps,
        sample.loss_pct,
        sample.freezes,
        sample.at,
        stale,
    )


def arrange(tiles: list[WallTile], on_air: bool, publishing: bool) -> list[ShownTile]:
    """Each tile judged, in the wall's order: the main venue, then the worst branches first."""
    shown = [
        ShownTile(
            tile,
            main_condition(on_air, publishing)
            if tile.role == "main"
            else branch_condition(
                tile.online,
                None if tile.stream is None or tile.stream.stale else tile.stream.state,
                on_air,
            ),
        )
        for tile in tiles
    ]
    return sorted(shown, key=lambda item: wall_rank(item.tile.role, item.condition, item.tile.code))


def readiness(shown: list[ShownTile], on_air: bool) -> Readiness:
    """Count what the operator checks before and while broadcasting: the branch venues (the
    main venue sends from the operator's page and needs no agent)."""
    branches = [item for item in shown if item.tile.role == "branch"]
    offline = tuple(item.tile.name for item in branches if not item.tile.online)
    well = sum(1 for item in branches if item.condition == "good")
    return Readiness(
        branches=len(branches),
        online=len(branches) - len(offline),
        offline=offline,
        receiving_well=well,
        ready=not offline and (not on_air or well == len(branches)),
    )


async def _latest_samples(
    session: AsyncSession, training_id: int, now: datetime
) -> dict[int, StreamHealth]:
    """Each venue's newest sample of the session, in one query."""
    newest = (
        select(StreamSample.venue_id, func.max(StreamSample.at).label("at"))
        .where(StreamSample.session_id == training_id)
        .group_by(StreamSample.venue_id)
        .subquery()
    )
    samples = (
        await session.scalars(
            select(StreamSample).join(
                newest,
                and_(
                    StreamSample.session_id == training_id,
                    StreamSample.venue_id == newest.c.venue_id,
                    StreamSample.at == newest.c.at,
                ),
            )
        )
    ).all()
    return {sample.venue_id: stream_health(sample, now) for sample in samples}


async def venue_wall(
    session: AsyncSession, scope: Scope, public_id: str, now: datetime
) -> tuple[str, list[WallTile]]:
    """The session's state and one tile per venue, main venue first."""
    training = await load_visible(session, scope, public_id)
    expected = dict(
        (
            await session.execute(
                select(RosterEntry.venue_id, func.count())
                .where(RosterEntry.session_id == training.id)
                .group_by(RosterEntry.venue_id)
            )
        ).all()
    )
    checked_in = dict(
        (
            await session.execute(
                select(CheckIn.venue_id, func.count(distinct(CheckIn.member_id)))
                .where(CheckIn.session_id == training.id, CheckIn.kind == "in")
                .group_by(CheckIn.venue_id)
            )
        ).all()
    )
    streams = await _latest_samples(session, training.id, now)
    rows = (
        await session.execute(
            select(Venue, SessionVenue.role)
            .join(SessionVenue, SessionVenue.venue_id == Venue.id)
            .where(SessionVenue.session_id == training.id)
            .order_by(SessionVenue.role.desc(), Venue.code)
        )
    ).all()
    tiles = [
        WallTile(
            venue.code,
            venue.name,
            role,
            is_online(venue.agent_last_seen_at, now),
            venue.agent_last_seen_at,
            venue.agent_state,
            venue.agent_queue_depth,
            venue.agent_ice_path if is_online(venue.agent_last_seen_at, now) else None,
            int(checked_in.get(venue.id, 0)),
            int(expected.get(venue.id, 0)),
            streams.get(venue.id),
        )
        for venue, role in rows
    ]
    return training.state, tiles
