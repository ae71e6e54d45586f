"""GET /api/v1/sessions/{id}/venues/{code}/stream: a venue's stream-health samples of a session,
by time, paged and bounded by `from`/`to`, seen only by who may see the session."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import StreamSample, TrainingSession, Venue
from tests.support.openapi_check import load_spec, response_schema, validate_json
from tests.support.sessions import at, schedule_worked_example
from tests.support.stream_stats import post_samples
from tests.support.world import World

Db = async_sessionmaker[AsyncSession]
STREAM = "/api/v1/sessions/{id}/venues/{code}/stream"
NINE = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai, the session's start


@functools.cache
def _schema() -> dict[str, Any]:
    spec = load_spec()
    return response_schema(spec, "get", STREAM, 200)


def sample(minute: int, second: int = 0, state: str = "good", **figures: Any) -> dict[str, Any]:
    """One sample as an agent sends it, at 09:MM:SS Shanghai time, with its own figures."""
    return {
        "at": at(9, minute, second),
        "state": state,
        "bitrate_kbps": 900.0 + minute,
        "fps": 25.0,
        "loss_pct": 0.5,
        "jitter_ms": 4.25,
        "freezes": minute,
        "frames_decoded": 1000 + minute,
        **figures,
    }


async def upload(client: Any, token: str, session_id: str, samples: list[dict[str, Any]]) -> None:
    assert await post_samples(client, token, session_id, samples) == len(samples)


async def read(
    client: Any, headers: dict[str, str], session_id: str, code: str = "B1", query: str = ""
) -> tuple[int, Any]:
    path = STREAM.format(id=session_id, code=code) + (f"?{query}" if query else "")
    answer = await client.get(path, headers=headers)
    return answer.status, await answer.json()


async def test_samples_come_by_time_with_every_figure(client: Any, world: World, db: Db) -> None:
    session_id, tokens = await schedule_worked_example(client, world)
    # Sent out of order, as a buffering agent may; B2's sample of the same second is B2's alone.
    await upload(
        client,
        tokens["B1"],
        session_id,
        [
            sample(2, state="down", bitrate_kbps=0.0, fps=0.0),
            sample(0),
            sample(1, state="degraded", loss_pct=7.5, jitter_ms=None, freezes=None),
        ],
    )
    await upload(client, tokens["B2"], session_id, [sample(1, bitrate_kbps=1.0)])
    status, body = await read(client, world.auth("reviewer", "a"), session_id)
    assert status == 200, body
    validate_json(body, _schema())
    assert body["session_id"] == session_id
    assert body["venue"] == {"code": "B1", "name": "会场B1", "role": "branch"}
    assert (body["from"], body["to"]) == (None, None)
    assert (body["page"], body["per_page"], body["has_next"], body["total"]) == (1, 200, False, 3)
    received = [s.pop("received_at") for s in body["samples"]]
    assert body["samples"] == [
        {
            "at": "2026-11-20T01:00:00Z",
            "state": "good",
            "bitrate_kbps": 900.0,
            "fps": 25.0,
            "loss_pct": 0.5,
            "jitter_ms": 4.25,
            "freezes": 0,
            "frames_decoded": 1000,
        },
        {
            "at": "2026-11-20T01:01:00Z",
            "state": "degraded",
            "bitrate_kbps": 901.0,
            "fps": 25.0,
            "loss_pct": 7.5,
            "jitter_ms": None,
            "freezes": None,
            "frames_decoded": 1001,
        },
        {
            "at": "2026-11-20T01:02:00Z",
            "state": "down",
            "bitrate_kbps": 0.0,
            "fps": 0.0,
            "loss_pct": 0.5,
            "jitter_ms": 4.25,
            "freezes": 2,
            "frames_decoded": 1002,
        },
    ]
    # What was answered is what is stored.
    async with db() as session:
        stored = (
            await session.scalars(
                select(StreamSample)
                .join(Venue, Venue.id == StreamSample.venue_id)
                .join(TrainingSession, TrainingSession.id == StreamSample.session_id)
                .where(Venue.code == "B1", TrainingSession.public_id == session_id)
                .order_by(StreamSample.at)
            )
        ).all()
    assert [(s.at, s.state, s.bitrate_kbps, s.freezes) for s in stored] == [
        (NINE, "good", 900.0, 0),
        (NINE + timedelta(minutes=1), "degraded", 901.0, None),
        (NINE + timedelta(minutes=2), "down", 0.0, 2),
    ]
    assert received == [s.received_at.isoformat().replace("+00:00", "Z") for s in stored]
    # The main venue reported nothing: an empty list, not an error.
    status, main = await read(client, world.auth("operator", "a"), session_id, "M")
    assert status == 200 and main["samples"] == [] and main["total"] == 0
    assert main["venue"]["role"] == "main"


async def test_pages_walk_every_sample_once(client: Any, world: World) -> None:
    session_id, tokens = await schedule_worked_example(client, world)
    await upload(client, tokens["B1"], session_id, [sample(m // 12, m % 12 * 5) for m in range(25)])
    reviewer = world.auth("reviewer", "a")
    seen: list[str] = []
    for page, (count, more) in enumerate([(10, True), (10, True), (5, False), (0, False)], 1):
        status, body = await read(client, reviewer, session_id, query=f"per_page=10&page={page}")
        assert status == 200, body
        assert (len(body["samples"]), body["has_next"], body["total"]) == (count, more, 25)
        assert (body["page"], body["per_page"]) == (page, 10)
        seen += [s["at"] for s in body["samples"]]
    assert seen == sorted(set(seen)) and len(seen) == 25
    assert seen[0] == "2026-11-20T01:00:00Z" and seen[-1] == "2026-11-20T01:02:00Z"
    for query, field in (
        ("per_page=0", "per_page"),
        ("per_page=1001", "per_page"),
        ("page=x", "page"),
    ):
        status, body = await read(client, reviewer, session_id, query=query)
        assert status == 422 and body["error"]["code"] == "invalid", body
        assert list(body["error"]["fields"]) == [field]


async def test_from_and_to_bound_the_samples(client: Any, world: World) -> None:
    session_id, tokens = await schedule_worked_example(client, world)
    await upload(client, tokens["B1"], session_id, [sample(m) for m in range(6)])
    reviewer = world.auth("reviewer", "a")

    async def minutes(query: str) -> list[int]:
        status, body = await read(client, reviewer, session_id, query=query)
        assert status == 200, body
        assert body["total"] == len(body["samples"])
        return [int(s["at"][14:16]) for s in body["samples"]]

    # `from` is included, `to` is not; any offset is read as the instant it names.
    assert await minutes(f"from={quote(at(9, 2))}&to={quote(at(9, 4))}") == [2, 3]
    assert await minutes("from=2026-11-20T01:04:00Z") == [4, 5]
    assert await minutes("to=2026-11-20T01:01:30Z") == [0, 1]
    assert await minutes("from=2026-11-20T02:01:00%2B01:00&to=2026-11-20T01:03:00.5Z") == [1, 2, 3]
    # A "+" left unescaped in the query string reads as a space: still the offset it was.
    assert await minutes(f"from={at(9, 5)}") == [5]
    status, body = await read(client, reviewer, session_id, query=f"from={quote(at(9, 2))}")
    assert status == 200 and (body["from"], body["to"]) == ("2026-11-20T01:02:00Z", None)
    assert await minutes("from=2026-11-20T01:10:00Z") == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=yesterday", "from"),
        ("from=2026-11-20T09:00:00", "from"),  # no offset: which 09:00?
        ("to=2026-11-20", "to"),
        ("to=2026-13-01T00:00:00Z", "to"),
        ("from=2026-11-20T02:00:00Z&to=2026-11-20T02:00:00Z", "to"),
        ("from=2026-11-20T02:00:00Z&to=2026-11-20T01:00:00Z", "to"),
    ],
)
async def test_a_bad_time_is_refused_naming_its_field(
    client: Any, world: World, query: str, field: str
) -> None:
    session_id, _ = await schedule_worked_example(client, world)
    status, body = await read(client, world.auth("reviewer", "a"), session_id, query=query)
    assert status == 422, body
    assert body["error"]["code"] == "invalid"
    assert list(body["error"]["fields"]) == [field]
    assert field in body["error"]["message"]


async def test_an_unknown_session_or_a_venue_not_in_it_is_not_found(
    client: Any, world: World
) -> None:
    session_id, tokens = await schedule_worked_example(client, world)
    await upload(client, tokens["B1"], session_id, [sample(0)])
    other = await client.post(
        "/api/v1/venues",
        headers=world.auth("admin", "a"),
        json={"code": "ELSE", "name": "别处会场", "org_code": "a1"},
    )
    assert other.status == 201
    reviewer = world.auth("reviewer", "a")
    status, body = await read(client, reviewer, "nosuch", "B1")
    assert status == 404 and body["error"]["code"] == "not_found", body
    assert "nosuch" in body["error"]["message"]
    # A venue of the tree that is not one of the session's answers as a code nobody has.
    answers = {}
    for code in ("ELSE", "NOPE"):
        status, body = await read(client, reviewer, session_id, code)
        assert status == 404 and body["error"]["code"] == "not_found", body
        answers[code] = body["error"]["message"].replace(code, "<CODE>")
    assert answers["ELSE"] == answers["NOPE"]
    assert "别处会场" not in answers["ELSE"]


async def test_another_county_sees_nothing(client: Any, world: World) -> None:
    session_id, tokens = await schedule_worked_example(client, world)
    await upload(client, tokens["B1"], session_id, [sample(0, bitrate_kbps=777.0)])

    async def text_of(public_id: str, headers: dict[str, str]) -> tuple[int, str]:
        answer = await client.get(STREAM.format(id=public_id, code="B1"), headers=headers)
        return answer.status, str(await answer.text())

    for role in ("admin", "reviewer", "operator"):
        headers = world.auth(role, "b")
        status, text = await text_of(session_id, headers)
        assert status == 404, text
        assert "777" not in text and "会场B1" not in text
        # Exactly what a session that does not exist answers: nothing tells the two apart.
        unknown = await text_of("nosuch0000", headers)
        assert (status, text.replace(session_id, "<ID>")) == (
            unknown[0],
            unknown[1].replace("nosuch0000", "<ID>"),
        )
    # Venue staff read no sessions; nobody signed in is asked to sign in.
    status, body = await read(client, world.auth("venue_staff", "a"), session_id)
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, body = await read(client, {}, session_id)
    assert status == 401 and body["error"]["code"] == "unauthorized"
    # The whole tree's admin, and the county's own, read it.
    for headers in (world.auth("admin", "all"), world.auth("admin", "a")):
        status, body = await read(client, headers, session_id)
        assert status == 200 and body["samples"][0]["bitrate_kbps"] == 777.0
