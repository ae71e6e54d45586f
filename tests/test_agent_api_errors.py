"""Bad input to the agent API and the session API answers what PROTOCOL.md documents, and
nothing is lost or half-written: every rejected check-in is in quarantine with its reason and
payload; every refused request leaves every table as it was."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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
from server.domain import validation as v
from tests.conftest import World

Db = async_sessionmaker[AsyncSession]
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

    client: TestClient  # type: ignore[type-arg]
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


@pytest.fixture
async def site(client: TestClient, db: Db, world: World) -> Site:  # type: ignore[type-arg]
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


# --- Who may call the agent API ------------------------------------------------------------


def _agent_calls(site: Site) -> list[tuple[str, str, Any]]:
    """Every agent endpoint with a body that would store something."""
    sample = {"at": iso(S), "state": "good", "fps": 25}
    return [
        ("POST", "/api/v1/agent/hello", {"agent_version": "1", "hostname": "pc"}),
        ("GET", "/api/v1/agent/schedule", None),
        ("GET", "/api/v1/agent/schedule.ics", None),
        (
            "POST",
            "/api/v1/agent/heartbeat",
            {"state": "idle", "session_id": None, "queue_depth": 0, "agent_version": "1"},
        ),
        ("POST", "/api/v1/agent/checkins", {"sent_at": now(), "events": [site.event()]}),
        (
            "POST",
            "/api/v1/agent/stream-stats",
            {"sent_at": now(), "session_id": site.session_id, "samples": [sample]},
        ),
    ]


async def agent_state(db: Db, code: str) -> tuple[Any, ...]:
    """What the server remembers of a venue's agent."""
    async with read_session(db) as session:
        row = (await session.execute(select(*AGENT_VENUE_COLUMNS).where(Venue.code == code))).one()
    return tuple(row)


async def test_agent_endpoints_refuse_every_wrong_token(site: Site) -> None:
    rotated = await site.client.post("/api/v1/venues/OTHER/token", headers=site.admin)
    assert rotated.status == 200
    refusals = {
        "no token": None,
        "made up": "Bearer hv_made-up-token",
        "a user's token": f"Bearer {site.world.tokens['admin@a']}",
        "a rotated token": f"Bearer {site.tokens['OTHER']}",
        "not bearer": f"Basic {site.tokens['BRANCH']}",
        "bare": site.tokens["BRANCH"],
    }
    for method, path, body in _agent_calls(site):
        for label, authorization in refusals.items():
            headers = {"Authorization": authorization} if authorization else {}
            kwargs = {"json": body} if body is not None else {}
            error = await site.refused(method, path, 401, headers, **kwargs)
            assert error["code"] == "unauthorized", (path, label)
    for code in ("BRANCH", "OTHER"):
        assert await agent_state(site.db, code) == (None,) * len(AGENT_VENUE_COLUMNS)


# --- Check-ins -----------------------------------------------------------------------------


async def test_an_event_for_a_session_of_other_venues_is_quarantined(site: Site) -> None:
    event = site.event()
    results = await site.results([event], venue="OTHER")
    assert results == [
        {"event_id": event["event_id"], "status": "rejected", "reason": "venue_not_in_session"}
    ]
    assert (await counts(site.db))["checkins"] == 0
    assert await quarantined(site.db) == [
        (event["event_id"], site.session_id, "venue_not_in_session", event, "OTHER")
    ]


def _without(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda event: {key: value for key, value in event.items() if key != name}


def _with(**changes: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda event: {**event, **changes}


MALFORMED: dict[str, Callable[[dict[str, Any]], Any]] = {
    "no event_id": _without("event_id"),
    "event_id null": _with(event_id=None),
    "event_id not a UUID": _with(event_id="not-a-uuid"),
    "event_id a number": _with(event_id=12345),
    "event_id too long": _with(event_id=str(uuid.uuid4()) * 3),
    "member_no and card_code": _with(card_code="CARD-P1"),
    "neither member_no nor card_code": _without("member_no"),
    "both null": _with(member_no=None, card_code=None),
    "member_no empty": _with(member_no=""),
    "member_no a number": _with(member_no=7),
    "card_code too long": lambda event: {
        **_without("member_no")(event),
        "card_code": "C" * 129,
    },
    "kind unknown": _with(kind="sideways"),
    "kind upper case": _with(kind="IN"),
    "no kind": _without("kind"),
    "source unknown": _with(source="fax"),
    "no source": _without("source"),
    "at not a time": _with(at="yesterday"),
    "at without an offset": _with(at="2026-11-20T09:00:00"),
    "at a number": _with(at=1763600400),
    "no at": _without("at"),
    "at outside UTC's range": _with(at="0001-01-01T00:00:00+01:00"),
    "no session_id": _without("session_id"),
    "session_id a number": _with(session_id=42),
    "session_id too long": _with(session_id="s" * 33),
    "text instead of an event": lambda event: "just text",
    "a number instead of an event": lambda event: 42,
    "null instead of an event": lambda event: None,
    "a list instead of an event": lambda event: [event],
}


def _canonical(value: Any) -> str | None:
    try:
        return str(uuid.UUID(value)) if isinstance(value, str) else None
    except ValueError:
        return None


@pytest.mark.parametrize("label", list(MALFORMED))
async def test_a_malformed_event_is_rejected_and_kept(site: Site, label: str) -> None:
    bad = MALFORMED[label](site.event())
    good = site.event(at=iso(S + timedelta(minutes=1)))
    before = await counts(site.db)
    results = await site.results([good, bad, dict(good)])
    expected_id = _canonical(bad.get("event_id")) if isinstance(bad, dict) else None
    assert results == [
        {"event_id": good["event_id"], "status": "accepted", "reason": None},
        {"event_id": expected_id, "status": "rejected", "reason": "invalid"},
        {"event_id": good["event_id"], "status": "duplicate", "reason": None},
    ]
    after = await counts(site.db)
    assert after["checkins"] == before["checkins"] + 1
    assert after["quarantined_checkins"] == before["quarantined_checkins"] + 1
    [(event_id, session_ref, reason, payload, venue)] = await quarantined(site.db)
    assert (reason, venue) == ("invalid", "BRANCH")
    if isinstance(bad, dict):
        assert payload == bad
        given = bad.get("session_id")
        assert session_ref == (given if isinstance(given, str) else None)
        raw_id = bad.get("event_id")
        assert event_id == (expected_id or (None if raw_id is None else str(raw_id)[:64]))
    else:
        assert payload == {"value": repr(bad)}
        assert (event_id, session_ref) == (None, None)


async def test_a_rejected_event_sent_again_is_kept_once(site: Site) -> None:
    bad = site.event(kind="sideways")
    for _ in range(3):
        assert (await site.results([bad]))[0]["reason"] == "invalid"
    assert [row[2] for row in await quarantined(site.db)] == ["invalid"]


async def test_a_batch_of_501_events_is_413_and_stores_nothing(site: Site) -> None:
    good = [site.event(at=iso(S + timedelta(seconds=i))) for i in range(501)]
    bad = [site.event(kind="sideways") for _ in range(501)]
    for events in (good, bad):
        error = await site.refused(
            "POST",
            "/api/v1/agent/checkins",
            413,
            site.agent(),
            json={"sent_at": now(), "events": events},
        )
        assert error["code"] == "too_large" and "500" in error["message"]
    results = await site.results(good[:500])
    assert {r["status"] for r in results} == {"accepted"}
    assert (await counts(site.db))["checkins"] == 500


async def test_unknown_members_and_sessions_are_quarantined(site: Site) -> None:
    events = [
        site.event(member_no="NOBODY"),
        site.event(member_no=None, card_code="NO-SUCH-CARD"),
        site.event(session_id="nosuchsession"),
        site.event(member_no=None, card_code="CARD-P1"),
    ]
    results = await site.results(events)
    assert [(r["event_id"], r["status"], r["reason"]) for r in results] == [
        (events[0]["event_id"], "rejected", "unknown_member"),
        (events[1]["event_id"], "rejected", "unknown_member"),
        (events[2]["event_id"], "rejected", "unknown_session"),
        (events[3]["event_id"], "accepted", None),
    ]
    assert (await counts(site.db))["checkins"] == 1
    assert [(row[0], row[1], row[2], row[3]) for row in await quarantined(site.db)] == [
        (events[0]["event_id"], site.session_id, "unknown_member", events[0]),
        (events[1]["event_id"], site.session_id, "unknown_member", events[1]),
        (events[2]["event_id"], "nosuchsession", "unknown_session", events[2]),
    ]


async def test_times_far_from_the_window_are_outside_it(site: Site) -> None:
    """The window is [S − 30 min, E + 30 min], on the server's clock (after correction)."""
    margin = timedelta(minutes=30)
    inside = [S - margin, E + margin]
    outside = [S - margin - timedelta(seconds=1), E + margin + timedelta(seconds=1)]
    far = ["1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"]
    events = [site.event(at=iso(t)) for t in inside + outside] + [site.event(at=t) for t in far]
    results = await site.results(events)
    assert [r["reason"] for r in results] == [None, None] + ["outside_window"] * 5
    assert (await counts(site.db))["checkins"] == 2
    assert [row[2:4] for row in await quarantined(site.db)] == [
        ("outside_window", event) for event in events[2:]
    ]


@pytest.mark.parametrize("skew", [timedelta(hours=4), -timedelta(hours=4)], ids=["fast", "slow"])
async def test_the_window_is_judged_after_clock_correction(site: Site, skew: timedelta) -> None:
    """An agent whose clock is off by four hours (more than the window and its margins): its
    raw times say nothing by themselves."""
    sent_at = datetime.now(UTC) + skew
    on_our_clock_inside = site.event(at=iso(S + timedelta(minutes=5) + skew))
    on_our_clock_outside = site.event(at=iso(S + timedelta(minutes=5)), member_no="P2")
    results = await site.results([on_our_clock_inside, on_our_clock_outside], sent_at=iso(sent_at))
    assert [r["reason"] for r in results] == [None, "outside_window"]
    assert [row[2:4] for row in await quarantined(site.db)] == [
        ("outside_window", on_our_clock_outside)
    ]
    async with read_session(site.db) as session:
        row = (await session.execute(select(CheckIn))).scalar_one()
    assert row.at_raw == S + timedelta(minutes=5) + skew
    assert S + timedelta(minutes=5) <= row.at <= S + timedelta(minutes=5, seconds=2)


@pytest.mark.parametrize(
    ("skew", "at"),
    [
        (-timedelta(seconds=10), "9999-12-31T23:59:59Z"),
        (timedelta(seconds=10), "0001-01-01T00:00:00Z"),
    ],
    ids=["end-of-time-slow-clock", "start-of-time-fast-clock"],
)
async def test_a_correction_past_the_calendar_is_outside_the_window(
    site: Site, skew: timedelta, at: str
) -> None:
    """A time that correction would carry beyond year 1 or 9999 is far outside any window."""
    event = site.event(at=at)
    results = await site.results([event], sent_at=iso(datetime.now(UTC) + skew))
    assert results == [
        {"event_id": event["event_id"], "status": "rejected", "reason": "outside_window"}
    ]
    assert [row[2:4] for row in await quarantined(site.db)] == [("outside_window", event)]


NOT_OBJECTS = {
    "a list": b"[]",
    "a string": b'"events"',
    "a number": b"42",
    "null": b"null",
    "broken JSON": b'{"events": [',
    "not UTF-8": b'\xff{"events": []}',
}


@pytest.mark.parametrize("label", list(NOT_OBJECTS))
async def test_agent_bodies_that_are_not_json_objects(site: Site, label: str) -> None:
    for path in (
        "/api/v1/agent/hello",
        "/api/v1/agent/heartbeat",
        "/api/v1/agent/checkins",
        "/api/v1/agent/stream-stats",
    ):
        headers = {**site.agent(), "Content-Type": "application/json"}
        error = await site.refused("POST", path, 422, headers, data=NOT_OBJECTS[label])
        assert error["code"] == "invalid" and "JSON" in error["message"], (path, error)
        error = await site.refused(
            "POST", path, 422, {**site.agent(), "Content-Type": "text/plain"}, data=b"{}"
        )
        assert "application/json" in error["message"]


@pytest.mark.parametrize("events", [None, {}, {"0": {}}, "events", 3])
async def test_events_must_be_a_list(site: Site, events: Any) -> None:
    body = {"sent_at": now(), "events": events}
    if events is None:
        del body["events"]
    await site.refused(
        "POST",
        "/api/v1/agent/checkins",
        422,
        site.agent(),
        fields={"events": "must be a list"},
        json=body,
    )


SENT_AT_PROBLEM = {"sent_at": "must be an ISO 8601 time with an offset"}
BAD_SENT_AT = [
    None,
    "",
    "now",
    "2026-11-20T09:00:00",
    1763600400,
    ["2026-11-20T09:00:00Z"],
    "0001-01-01T00:00:00+01:00",
]


@pytest.mark.parametrize("sent_at", BAD_SENT_AT, ids=repr)
async def test_sent_at_is_required_and_a_time_with_an_offset(site: Site, sent_at: Any) -> None:
    batch = {"events": [site.event()], "sent_at": sent_at}
    stats = {
        "session_id": site.session_id,
        "samples": [{"at": iso(S), "state": "good"}],
        "sent_at": sent_at,
    }
    for path, body in (("/api/v1/agent/checkins", batch), ("/api/v1/agent/stream-stats", stats)):
        if sent_at is None:
            del body["sent_at"]
        await site.refused("POST", path, 422, site.agent(), fields=SENT_AT_PROBLEM, json=body)


# --- Stream statistics ---------------------------------------------------------------------


def sample(**changes: Any) -> dict[str, Any]:
    return {
        "at": iso(S),
        "state": "good",
        "bitrate_kbps": 900.0,
        "fps": 30,
        "loss_pct": 0.1,
        "jitter_ms": 4.0,
        "freezes": 0,
        "frames_decoded": 0,
        **changes,
    }


BAD_SAMPLES: dict[str, Any] = {
    "text": "good",
    "a number": 1,
    "null": None,
    "a list": [sample()],
    "no at": {key: value for key, value in sample().items() if key != "at"},
    "at not a time": sample(at="soon"),
    "at without an offset": sample(at="2026-11-20T09:00:00"),
    "at outside UTC's range": sample(at="9999-12-31T23:59:59-01:00"),
    "no state": {key: value for key, value in sample().items() if key != "state"},
    "state unknown": sample(state="sunny"),
    "negative bitrate": sample(bitrate_kbps=-1),
    "fps as text": sample(fps="30"),
    "fps true": sample(fps=True),
    "loss NaN": sample(loss_pct=float("nan")),
    "jitter infinite": sample(jitter_ms=float("inf")),
    "freezes fractional": sample(freezes=1.5),
    "frames negative": sample(frames_decoded=-1),
    "frames as text": sample(frames_decoded="10"),
    "frames beyond any counter": sample(frames_decoded=10**30),
    "freezes past 32 bits": sample(freezes=2**31),
}


@pytest.mark.parametrize("label", list(BAD_SAMPLES))
async def test_a_malformed_sample_stores_nothing_of_the_batch(site: Site, label: str) -> None:
    good = [sample(at=iso(S + timedelta(seconds=5 * i))) for i in range(3)]
    body = {
        "sent_at": now(),
        "session_id": site.session_id,
        "samples": [*good[:2], BAD_SAMPLES[label], good[2]],
    }
    # NaN and Infinity are not JSON, but Python's encoder writes them, and so may an agent.
    error = await site.refused(
        "POST",
        "/api/v1/agent/stream-stats",
        422,
        {**site.agent(), "Content-Type": "application/json"},
        fields={"samples": "has malformed samples"},
        data=json.dumps(body).encode(),
    )
    assert "2" in error["message"]  # the index of the bad sample


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"samples": None}, {"samples": "must be a list"}),
        ({"samples": {"at": "x"}}, {"samples": "must be a list"}),
        ({"session_id": None}, {"session_id": "is required"}),
        ({"session_id": ""}, {"session_id": "is required"}),
        ({"session_id": 42}, {"session_id": "is required"}),
        ({"session_id": "s" * 33}, {"session_id": "is required"}),
    ],
    ids=repr,
)
async def test_stream_stats_batch_shape(
    site: Site, changes: dict[str, Any], fields: dict[str, str]
) -> None:
    body = {"sent_at": now(), "session_id": site.session_id, "samples": [sample()], **changes}
    body = {key: value for key, value in body.items() if value is not None}
    await site.refused(
        "POST", "/api/v1/agent/stream-stats", 422, site.agent(), fields=fields, json=body
    )


async def test_stream_stats_of_a_session_elsewhere_are_404(site: Site) -> None:
    for venue, session_id in (("OTHER", site.session_id), ("BRANCH", "nosuchsession")):
        error = await site.refused(
            "POST",
            "/api/v1/agent/stream-stats",
            404,
            site.agent(venue),
            json={"sent_at": now(), "session_id": session_id, "samples": [sample()]},
        )
        assert error["code"] == "not_found"


async def test_too_many_samples_are_413(site: Site) -> None:
    samples = [sample(at=iso(S + timedelta(seconds=i))) for i in range(2001)]
    await site.refused(
        "POST",
        "/api/v1/agent/stream-stats",
        413,
        site.agent(),
        json={"sent_at": now(), "session_id": site.session_id, "samples": samples},
    )


async def test_a_repeated_sample_is_stored_once(site: Site) -> None:
    path = "/api/v1/agent/stream-stats"
    second = S + timedelta(seconds=7)
    samples = [
        sample(at=iso(second)),
        sample(at=iso(second), state="down"),
        sample(at=iso(second + timedelta(milliseconds=600))),  # the same whole second
        sample(at=iso(second + timedelta(seconds=5))),
    ]
    body = {"sent_at": now(), "session_id": site.session_id, "samples": samples}
    assert await site.call("POST", path, site.agent(), json=body) == (200, {"accepted": 2})
    assert await site.call("POST", path, site.agent(), json=body) == (200, {"accepted": 0})
    async with read_session(site.db) as session:
        stored = (await session.execute(select(StreamSample.at, StreamSample.state))).all()
    assert sorted(stored) == [(second, "good"), (second + timedelta(seconds=5), "good")]
    # The same second from another venue of the session is its own sample.
    assert await site.call("POST", path, site.agent("MAIN"), json=body) == (200, {"accepted": 2})


# --- Heartbeat and schedule ----------------------------------------------------------------

BEAT = {"state": "receiving", "session_id": None, "queue_depth": 3, "agent_version": "0.2.0"}
WHOLE_PROBLEM = "must be a whole number of at least 0"


BAD_BEATS: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "state unknown": ({"state": "dancing"}, {"state": v.NOT_ALLOWED}),
    "no state": ({"state": None}, {"state": v.REQUIRED}),
    "state a number": ({"state": 1}, {"state": v.NOT_ALLOWED}),
    "depth negative": ({"queue_depth": -1}, {"queue_depth": WHOLE_PROBLEM}),
    "depth as text": ({"queue_depth": "3"}, {"queue_depth": WHOLE_PROBLEM}),
    "depth fractional": ({"queue_depth": 1.5}, {"queue_depth": WHOLE_PROBLEM}),
    "depth true": ({"queue_depth": True}, {"queue_depth": WHOLE_PROBLEM}),
    "no depth": ({"queue_depth": None}, {"queue_depth": WHOLE_PROBLEM}),
    "depth beyond any queue": ({"queue_depth": 10**30}, {"queue_depth": WHOLE_PROBLEM}),
    "depth past 32 bits": ({"queue_depth": 2**31}, {"queue_depth": WHOLE_PROBLEM}),
    "session_id a number": ({"session_id": 42}, {"session_id": "must be a session id or null"}),
    "session_id too long": (
        {"session_id": "s" * 33},
        {"session_id": "must be a session id or null"},
    ),
    "no version": ({"agent_version": None}, {"agent_version": v.REQUIRED}),
    "version a number": ({"agent_version": 2}, {"agent_version": v.NOT_TEXT}),
    "version too long": ({"agent_version": "v" * 65}, {"agent_version": v.TOO_LONG}),
    "all at once": (
        {"state": "x", "queue_depth": -1, "agent_version": ""},
        {"state": v.NOT_ALLOWED, "queue_depth": WHOLE_PROBLEM, "agent_version": v.REQUIRED},
    ),
}


@pytest.mark.parametrize(
    ("changes", "fields"), [pytest.param(*case, id=label) for label, case in BAD_BEATS.items()]
)
async def test_heartbeat_fields(
    site: Site, changes: dict[str, Any], fields: dict[str, str]
) -> None:
    body = {key: value for key, value in {**BEAT, **changes}.items() if value is not None}
    if "session_id" not in changes:
        body["session_id"] = None
    await site.refused(
        "POST", "/api/v1/agent/heartbeat", 422, site.agent(), fields=fields, json=body
    )
    assert await agent_state(site.db, "BRANCH") == (None,) * len(AGENT_VENUE_COLUMNS)


async def test_a_stale_etag_gets_the_whole_schedule(site: Site) -> None:
    for tag in ('"stale"', "*garbage*", ""):
        response = await site.client.get(
            "/api/v1/agent/schedule", headers={**site.agent(), "If-None-Match": tag}
        )
        assert response.status == 200
        assert "sessions" in await response.json()
        assert response.headers["ETag"] != tag


# --- Sessions API --------------------------------------------------------------------------

TIME_PROBLEM = "must be an ISO 8601 time with an offset"
HOURS_RANGE = "must be more than 0 and at most 100"
NOT_A_VENUE = "is not a known venue"
NOT_OF_SESSION = "is not a venue of this session"
NOT_CODES = "must be a list of venue codes"
REPEATS = "repeats a venue"
UNKNOWN = "names unknown members"
NEGATIVE = "must not be negative"
WHOLE = "must be a whole number"
INTERVAL = "must be between 1 and 3600"


def _roster_at(venue: str) -> list[dict[str, str]]:
    return [{"member_no": "P1", "venue": venue}]


AT_MAIN = _roster_at("MAIN")
TWICE = [{"member_no": "P1", "venue": "MAIN"}, {"member_no": "P1", "venue": "BRANCH"}]
RATIO = "must be more than 0 and at most 1"
# (what is wrong, the changes to a good session, the field named, its problem); a case whose
# main venue is not MAIN moves the roster there, so that only one thing is wrong.
BAD_SESSIONS: list[tuple[str, dict[str, Any], str, str]] = [
    ("start not a time", {"starts_at": "tomorrow"}, "starts_at", TIME_PROBLEM),
    ("start without offset", {"starts_at": "2026-11-20T09:00:00"}, "starts_at", TIME_PROBLEM),
    ("start a number", {"starts_at": 1763600400}, "starts_at", TIME_PROBLEM),
    ("start beyond UTC", {"starts_at": "0001-01-01T00:00:00+01:00"}, "starts_at", TIME_PROBLEM),
    ("no end", {"ends_at": None}, "ends_at", TIME_PROBLEM),
    ("end at start", {"ends_at": "2026-11-20T01:00:00Z"}, "ends_at", "must be after the start"),
    ("end before start", {"ends_at": "2026-11-20T00:59:59Z"}, "ends_at", "must be after the start"),
    (
        "over three days",
        {"ends_at": "2026-11-23T09:00:01+08:00"},
        "ends_at",
        "is more than three days after the start",
    ),
    ("hours 0", {"credit_hours": 0}, "credit_hours", HOURS_RANGE),
    ("hours -1", {"credit_hours": -1}, "credit_hours", HOURS_RANGE),
    ("hours 101", {"credit_hours": 101}, "credit_hours", HOURS_RANGE),
    ("hours NaN", {"credit_hours": "NaN"}, "credit_hours", HOURS_RANGE),
    ("hours 1.234", {"credit_hours": 1.234}, "credit_hours", "may have at most two decimals"),
    ("hours abc", {"credit_hours": "abc"}, "credit_hours", "must be a number"),
    ("hours true", {"credit_hours": True}, "credit_hours", "must be a number"),
    ("hours a list", {"credit_hours": [3]}, "credit_hours", "must be a number"),
    ("no hours", {"credit_hours": None}, "credit_hours", "is required"),
    ("no title", {"title": None}, "title", "is required"),
    ("topic with spaces", {"topic_code": "T 1"}, "topic_code", v.BAD_CODE),
    (
        "unknown main",
        {"main_venue": "NOSUCH", "roster": _roster_at("NOSUCH")},
        "main_venue",
        NOT_A_VENUE,
    ),
    (
        "main elsewhere",
        {"main_venue": "VEN-B", "roster": _roster_at("VEN-B")},
        "main_venue",
        NOT_A_VENUE,
    ),
    ("no main", {"main_venue": None, "roster": []}, "main_venue", "is required"),
    ("unknown branch", {"branch_venues": ["BRANCH", "NOSUCH"]}, "branch_venues", NOT_A_VENUE),
    # (A roster line at a branch would add its own problem: the branch list is refused whole.)
    ("branch is main", {"branch_venues": ["MAIN"], "roster": AT_MAIN}, "branch_venues", REPEATS),
    (
        "branch twice",
        {"branch_venues": ["BRANCH"] * 2, "roster": AT_MAIN},
        "branch_venues",
        REPEATS,
    ),
    ("branches not a list", {"branch_venues": "BRANCH", "roster": []}, "branch_venues", NOT_CODES),
    ("unknown member", {"roster": [{"member_no": "NOBODY", "venue": "MAIN"}]}, "roster", UNKNOWN),
    ("roster venue outside", {"roster": _roster_at("OTHER")}, "roster[0].venue", NOT_OF_SESSION),
    ("member twice", {"roster": TWICE}, "roster[1].member_no", "repeats a member"),
    (
        "roster not a list",
        {"roster": {"P1": "MAIN"}},
        "roster",
        "must be a list of {member_no, venue}",
    ),
    ("policy key unknown", {"policy": {"colour": 1}}, "policy.colour", "is not a policy field"),
    ("min_ratio 0", {"policy": {"min_ratio": 0}}, "policy.min_ratio", RATIO),
    ("min_ratio 1.5", {"policy": {"min_ratio": 1.5}}, "policy.min_ratio", RATIO),
    ("late grace -1", {"policy": {"late_grace_min": -1}}, "policy.late_grace_min", NEGATIVE),
    ("early grace -10", {"policy": {"early_grace_min": -10}}, "policy.early_grace_min", NEGATIVE),
    ("grace 2.5", {"policy": {"late_grace_min": 2.5}}, "policy.late_grace_min", WHOLE),
    ("interval 0", {"policy": {"stats_interval_s": 0}}, "policy.stats_interval_s", INTERVAL),
    (
        "verification yes",
        {"policy": {"require_stream_verification": "yes"}},
        "policy.require_stream_verification",
        "must be true or false",
    ),
    ("policy not an object", {"policy": "strict"}, "policy", "must be an object"),
]


@pytest.mark.parametrize(
    ("changes", "name", "problem"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_SESSIONS],
)
async def test_a_bad_session_is_422_and_writes_nothing(
    site: Site, changes: dict[str, Any], name: str, problem: str
) -> None:
    """Neither as a new session nor as the edit of a scheduled one."""
    body = {key: value for key, value in session_body(**changes).items() if value is not None}
    error = await site.refused("POST", "/api/v1/sessions", 422, fields={name: problem}, json=body)
    assert error["code"] == "invalid"
    path = f"/api/v1/sessions/{site.session_id}"
    before = await site.call("GET", path, site.admin)
    await site.refused("PUT", path, 422, fields={name: problem}, json=body)
    assert await site.call("GET", path, site.admin) == before


async def test_the_limits_themselves_are_allowed(site: Site) -> None:
    limits: list[dict[str, Any]] = [
        {"ends_at": "2026-11-23T09:00:00+08:00"},  # exactly three days
        {"credit_hours": 100},
        {"credit_hours": 0.01},
        {"policy": {"min_ratio": 1, "late_grace_min": 0, "early_grace_min": 0}},
        {"branch_venues": [], "roster": []},
    ]
    for changes in limits:
        status, body = await site.call(
            "POST", "/api/v1/sessions", site.admin, json=session_body(**changes)
        )
        assert status == 201, (changes, body)


@pytest.mark.parametrize("state", STATES[1:])
async def test_a_session_that_has_started_cannot_be_edited(site: Site, state: str) -> None:
    public_id = await site.new_session(state)
    path = f"/api/v1/sessions/{public_id}"
    before = await site.call("GET", path, site.admin)
    for who in ("admin", "operator"):
        error = await site.refused(
            "PUT",
            path,
            409,
            {**site.world.auth(who, "a"), **EN},
            json=session_body(title="改过的", credit_hours=1),
        )
        assert error["code"] == "conflict"
    assert await site.call("GET", path, site.admin) == before


@pytest.mark.parametrize("state", STATES)
async def test_a_wrong_transition_is_409_from_every_state(site: Site, state: str) -> None:
    public_id = await site.new_session(state)
    for action in ACTIONS:
        if action in ALLOWED[state]:
            continue
        error = await site.refused("POST", f"/api/v1/sessions/{public_id}/{action}", 409)
        assert error["code"] == "conflict", (state, action)
        assert await site.state_of(public_id) == state


@pytest.mark.parametrize("state", STATES[:3])
async def test_attendance_waits_for_finalization(site: Site, state: str) -> None:
    public_id = await site.new_session(state)
    for who in ("admin", "operator", "reviewer"):
        error = await site.refused(
            "GET",
            f"/api/v1/sessions/{public_id}/attendance",
            409,
            {**site.world.auth(who, "a"), **EN},
        )
        assert error["code"] == "conflict"


async def test_only_an_admin_reopens(site: Site) -> None:
    public_id = await site.new_session("approved")
    for who in ("operator", "reviewer", "venue_staff"):
        error = await site.refused(
            "POST",
            f"/api/v1/sessions/{public_id}/reopen",
            403,
            {**site.world.auth(who, "a"), **EN},
        )
        assert error["code"] == "forbidden"
        assert await site.state_of(public_id) == "approved"
    status, body = await site.call("POST", f"/api/v1/sessions/{public_id}/reopen", site.admin)
    assert (status, body["state"]) == (200, "finalized")


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("year=abc", {"year": "must be a whole number"}),
        ("year=1999", {"year": "is out of range"}),
        ("year=2101", {"year": "is out of range"}),
        ("year=2026.5", {"year": "must be a whole number"}),
    ],
)
async def test_record_year(site: Site, query: str, fields: dict[str, str]) -> None:
    await site.refused("GET", f"/api/v1/members/P1/record?{query}", 422, fields=fields)


async def test_a_session_at_the_end_of_the_calendar_is_refused_or_works(site: Site) -> None:
    """9999-12-31 20:00 UTC is already year 10000 in the server's zone: the server either
    refuses such a window when it is scheduled (422 on its times, nothing written), or takes
    the session through its whole life; it never fails half-way."""
    late = session_body(starts_at="9999-12-31T20:00:00Z", ends_at="9999-12-31T23:00:00Z")
    before = await counts(site.db)
    status, body = await site.call("POST", "/api/v1/sessions", site.admin, json=late)
    if status == 422:
        assert set(body["error"]["fields"]) <= {"starts_at", "ends_at"}, body
        assert await counts(site.db) == before
        return
    assert status == 201, body
    for action in ("start", "end", "finalize", "approve"):
        status, moved = await site.call(
            "POST", f"/api/v1/sessions/{body['id']}/{action}", site.admin
        )
        assert status == 200, (action, moved)
    status, attendance = await site.call(
        "GET", f"/api/v1/sessions/{body['id']}/attendance", site.admin
    )
    assert status == 200, attendance
