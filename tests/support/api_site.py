"""The place the bad-input tests of the agent and session APIs work in: venues, members and a
session of subtree "a", and table counts to prove that nothing was half-written."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from server.db.models import (
    Attendance,
    AuditEntry,
    CheckIn,
    QuarantinedCheckIn,
    RosterEntry,
    SessionVenue,
    StreamSample,
    TrainingRecord,
    TrainingSession,
    Venue,
)
from server.db.session import read_session
from tests.support.client import Client
from tests.support.databases import Db
from tests.support.world import World

COUNTED = {
    "training_sessions": TrainingSession,
    "session_venues": SessionVenue,
    "roster_entries": RosterEntry,
    "checkins": CheckIn,
    "quarantined_checkins": QuarantinedCheckIn,
    "stream_samples": StreamSample,
    "attendance": Attendance,
    "training_records": TrainingRecord,
    "audit_entries": AuditEntry,
}
# The session's window: fixed, so nothing depends on today (a past window is allowed).
S = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
E = S + timedelta(hours=3)
EN = {"Accept-Language": "en"}
AGENT_VENUE_COLUMNS = (
    Venue.agent_last_seen_at,
    Venue.agent_state,
    Venue.agent_version,
    Venue.agent_hostname,
    Venue.agent_queue_depth,
    Venue.agent_session_id,
    Venue.agent_ice_path,
)
STATES = ("scheduled", "live", "ended", "finalized", "approved")
# The actions that bring a new session into each state, and the actions each state allows.
ACTIONS_TO = {
    "scheduled": (),
    "live": ("start",),
    "ended": ("start", "end"),
    "finalized": ("start", "end", "finalize"),
    "approved": ("start", "end", "finalize", "approve"),
}
ALLOWED = {
    "scheduled": {"start"},
    "live": {"end"},
    "ended": {"finalize"},
    "finalized": {"finalize", "approve"},
    "approved": {"reopen"},
}
ACTIONS = ("start", "end", "finalize", "approve", "reopen")


async def counts(db: Db) -> dict[str, int]:
    """Rows per table: a rejected request must leave these as they were (or as it says)."""
    async with read_session(db) as session:
        return {
            name: int(await session.scalar(select(func.count()).select_from(model)) or 0)
            for name, model in COUNTED.items()
        }


async def quarantined(db: Db) -> list[tuple[str | None, str | None, str, Any, str]]:
    """(event_id, session_ref, reason, payload, venue code) of every quarantined event."""
    async with read_session(db) as session:
        rows = await session.execute(
            select(
                QuarantinedCheckIn.event_id,
                QuarantinedCheckIn.session_ref,
                QuarantinedCheckIn.reason,
                QuarantinedCheckIn.payload,
                Venue.code,
            )
            .join(Venue, Venue.id == QuarantinedCheckIn.venue_id)
            .order_by(QuarantinedCheckIn.id)
        )
        return [
            (
                event_id,
                ref,
                reason,
                json.loads(payload) if isinstance(payload, str) else payload,
                code,
            )
            for event_id, ref, reason, payload, code in rows
        ]


def iso(moment: datetime) -> str:
    return moment.isoformat()


def now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class Site:
    """Venues MAIN and BRANCH of one session (owned by subtree a), a venue OTHER that is not
    in it, members P1 (card CARD-P1) and P2, and the API as admin of subtree a."""

    client: Client
    db: Db
    world: World
    tokens: dict[str, str]
    session_id: str

    @property
    def admin(self) -> dict[str, str]:
        return {**self.world.auth("admin", "a"), **EN}

    def agent(self, venue: str = "BRANCH") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[venue]}", **EN}

    def event(self, **changes: Any) -> dict[str, Any]:
        """A well-formed check-in event of P1 at the start of the session."""
        return {
            "event_id": str(uuid.uuid4()),
            "session_id": self.session_id,
            "member_no": "P1",
            "kind": "in",
            "at": iso(S),
            "source": "scanner",
            **changes,
        }

    async def call(
        self, method: str, path: str, headers: dict[str, str], **kwargs: Any
    ) -> tuple[int, Any]:
        response = await self.client.request(method, path, headers=headers, **kwargs)
        text = await response.text()
        assert response.content_type == "application/json", (response.status, text[:300])
        return response.status, json.loads(text)

    async def checkins(self, body: Any, venue: str = "BRANCH") -> tuple[int, Any]:
        return await self.call("POST", "/api/v1/agent/checkins", self.agent(venue), json=body)

    async def results(self, events: list[Any], venue: str = "BRANCH", **batch: Any) -> list[Any]:
        """Post a batch that must be answered 200; its results."""
        status, body = await self.checkins({"sent_at": now(), "events": events, **batch}, venue)
        assert status == 200, body
        assert len(body["results"]) == len(events)
        return list(body["results"])

    async def refused(
        self,
        method: str,
        path: str,
        status: int,
        headers: dict[str, str] | None = None,
        *,
        fields: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Send; expect `status` with the documented error (and these fields); no table changed."""
        before = await counts(self.db)
        code, body = await self.call(method, path, headers or self.admin, **kwargs)
        assert code == status, body
        assert set(body) == {"error"} and body["error"]["message"], body
        if fields is not None:
            assert body["error"].get("fields") == fields, body
        assert await counts(self.db) == before, f"{method} {path} wrote something: {body}"
        return dict(body["error"])

    async def new_session(self, state: str = "scheduled", **changes: Any) -> str:
        """A session through the API, driven into `state` by the admin."""
        status, body = await self.call(
            "POST", "/api/v1/sessions", self.admin, json={**session_body(), **changes}
        )
        assert status == 201, body
        for action in ACTIONS_TO[state]:
            status, moved = await self.call(
                "POST", f"/api/v1/sessions/{body['id']}/{action}", self.admin
            )
            assert status == 200, moved
        return str(body["id"])

    async def state_of(self, public_id: str) -> str | None:
        async with read_session(self.db) as session:
            state: str | None = await session.scalar(
                select(TrainingSession.state).where(TrainingSession.public_id == public_id)
            )
        return state


def session_body(**changes: Any) -> dict[str, Any]:
    """A good new session: MAIN with the branch BRANCH, P1 at MAIN and P2 at BRANCH."""
    body = {
        "title": "年轻干部淬炼成钢",
        "topic_code": "T-2026-01",
        "starts_at": "2026-11-20T09:00:00+08:00",
        "ends_at": "2026-11-20T12:00:00+08:00",
        "credit_hours": 3,
        "main_venue": "MAIN",
        "branch_venues": ["BRANCH"],
        "roster": [{"member_no": "P1", "venue": "MAIN"}, {"member_no": "P2", "venue": "BRANCH"}],
    }
    return {**body, **changes}


async def make_site(client: Client, db: Db, world: World) -> Site:
    """Venues of both subtrees, two members and a scheduled session of subtree "a"."""
    admin = {**world.auth("admin", "a"), **EN}
    tokens = {}
    for code, org in (("MAIN", "a1"), ("BRANCH", "a1a"), ("OTHER", "a"), ("VEN-B", "b1")):
        answer = await client.post(
            "/api/v1/venues",
            headers=world.auth("admin", "all"),
            json={"code": code, "name": f"会场{code}", "org_code": org},
        )
        assert answer.status == 201, await answer.text()
        tokens[code] = (await answer.json())["token"]
    for number, card in (("P1", "CARD-P1"), ("P2", None)):
        answer = await client.post(
            "/api/v1/members",
            headers=admin,
            json={
                "member_no": number,
                "name": f"党员{number}",
                "org_code": "a1a",
                "category": "ordinary",
                "card_code": card,
            },
        )
        assert answer.status == 201, await answer.text()
    answer = await client.post("/api/v1/sessions", headers=admin, json=session_body())
    assert answer.status == 201, await answer.text()
    return Site(client, db, world, tokens, (await answer.json())["id"])
