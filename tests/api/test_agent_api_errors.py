"""Bad input to the agent API answers what PROTOCOL.md documents, and nothing is lost: every
rejected check-in is in quarantine with its reason and payload; every refused request leaves
every table as it was."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from server.db.models import (
    CheckIn,
    StreamSample,
    Venue,
)
from server.db.session import read_session
from server.domain import validation as v
from tests.support.api_site import (
    AGENT_VENUE_COLUMNS,
    E,
    S,
    Site,
    counts,
    iso,
    make_site,
    now,
    quarantined,
)
from tests.support.client import Client
from tests.support.databases import Db
from tests.support.world import World


@pytest.fixture
async def site(client: Client, db: Db, world: World) -> Site:
    """The place these tests work in."""
    return await make_site(client, db, world)


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
    "ice_path unknown": ({"ice_path": "relay/quic"}, {"ice_path": v.NOT_ALLOWED}),
    "ice_path a number": ({"ice_path": 4}, {"ice_path": v.NOT_ALLOWED}),
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
