"""Every error path of the API answers the one documented shape (PROTOCOL.md, Conventions):
{"error": {"code", "message", ["fields"], ["rows"]}} with the status that belongs to the code."""

from __future__ import annotations

import io
import logging
import re
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import Organization
from server.db.session import read_session
from server.http.body_limit import MAX_BODY, MAX_IMPORT_BODY
from tests.support.browser import Browser
from tests.support.client import Client
from tests.support.world import World

CODES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid",
    429: "rate_limited",
    500: "internal",
}
HAN = re.compile(r"[\u4e00-\u9fff]")


async def expect_error(
    response: Any, status: int, *, fields: dict[str, str] | None = None
) -> dict[str, Any]:
    """The response is `status` with the documented JSON error body; return the error object."""
    body_text = await response.text()
    assert response.status == status, body_text
    assert response.content_type == "application/json", body_text
    body = await response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] == CODES[status], error
    assert isinstance(error["message"], str) and error["message"].strip(), error
    assert set(error) <= {"code", "message", "fields", "rows"}, error
    if fields is not None:
        assert error.get("fields") == fields, error
    elif "fields" in error:
        assert isinstance(error["fields"], dict) and error["fields"], error
    return dict(error)


async def test_every_error_path_has_the_documented_shape(
    client: Client,
    world: World,
) -> None:
    # English, so the field problems below read as in the source (Chinese is checked below).
    admin = {**world.auth("admin", "a"), "Accept-Language": "en"}
    operator = {**world.auth("operator", "a"), "Accept-Language": "en"}

    # 401: nobody, a made-up token, a venue token on a user route, a user token on the agent API
    await expect_error(await client.get("/api/v1/members"), 401)
    await expect_error(
        await client.get("/api/v1/members", headers={"Authorization": "Bearer hu_made-up"}), 401
    )
    await expect_error(
        await client.get("/api/v1/me", headers={"Authorization": "Bearer hv_made-up"}), 401
    )
    await expect_error(
        await client.post(
            "/api/v1/agent/hello", json={"agent_version": "1", "hostname": "h"}, headers=admin
        ),
        401,
    )

    # 403: the wrong role; a subtree admin adding a top-level organization
    await expect_error(
        await client.post(
            "/api/v1/members",
            json={"member_no": "X1", "name": "某", "org_code": "a1", "category": "ordinary"},
            headers=operator,
        ),
        403,
    )
    await expect_error(
        await client.post(
            "/api/v1/organizations",
            json={"code": "top", "name": "新市", "level": "city", "parent_code": None},
            headers=admin,
        ),
        403,
    )

    # 404: unknown objects, an unknown organization filter, unknown routes
    for path in (
        "/api/v1/members/nosuch",
        "/api/v1/organizations/nosuch",
        "/api/v1/venues/nosuch",
        "/api/v1/members?org=nosuch",
        "/api/v1/nosuch",
        "/api/v2/members",
    ):
        await expect_error(await client.get(path, headers=admin), 404)
    await expect_error(await client.post("/api/v1/venues/nosuch/token", headers=admin), 404)

    # 405: a route that exists, with a method it does not take
    response = await client.delete("/api/v1/members", headers=admin)
    await expect_error(response, 405)
    assert set(response.headers["Allow"].split(",")) == {"GET", "POST"}
    await expect_error(await client.put("/api/v1/members/nosuch", headers=admin), 405)

    # 409: every kind of duplicate code
    org = {"code": "dup-org", "name": "党委", "level": "committee", "parent_code": "a"}
    assert (await client.post("/api/v1/organizations", json=org, headers=admin)).status == 201
    await expect_error(await client.post("/api/v1/organizations", json=org, headers=admin), 409)
    member = {"member_no": "D1", "name": "甲", "org_code": "a1", "category": "ordinary"}
    member_with_card = {**member, "card_code": "CARD-1"}
    assert (
        await client.post("/api/v1/members", json=member_with_card, headers=admin)
    ).status == 201
    await expect_error(await client.post("/api/v1/members", json=member, headers=admin), 409)
    await expect_error(
        await client.post(
            "/api/v1/members", json={**member_with_card, "member_no": "D2"}, headers=admin
        ),
        409,
    )
    venue = {"code": "dup-venue", "name": "会场", "org_code": "a1"}
    assert (await client.post("/api/v1/venues", json=venue, headers=admin)).status == 201
    await expect_error(await client.post("/api/v1/venues", json=venue, headers=admin), 409)

    # 413: a body over 1 MiB, with a length or chunked
    oversize = b"x" * (MAX_BODY + 1)
    await expect_error(
        await client.post(
            "/api/v1/members",
            data=io.BytesIO(oversize),
            headers={**admin, "Content-Type": "application/json"},
        ),
        413,
    )

    async def chunks() -> Any:  # imports take 64 MiB, read in chunks; one byte more is 413
        for _ in range(MAX_IMPORT_BODY // (1024 * 1024)):
            yield b"member_no,name\n" + b" " * (1024 * 1024 - 16) + b"\n"
        yield b"x"

    await expect_error(
        await client.post(
            "/api/v1/members/import", data=chunks(), headers={**admin, "Content-Type": "text/csv"}
        ),
        413,
    )

    # 422: what the body says cannot be used
    def post_json(path: str, raw: bytes, content_type: str = "application/json") -> Any:
        return client.post(path, data=raw, headers={**admin, "Content-Type": content_type})

    await expect_error(await post_json("/api/v1/organizations", b'{"code": "x",'), 422)
    await expect_error(await post_json("/api/v1/organizations", b"[1, 2]"), 422)
    await expect_error(await post_json("/api/v1/organizations", b'"text"'), 422)
    await expect_error(await post_json("/api/v1/organizations", b"\xff\xfe{}"), 422)
    await expect_error(await post_json("/api/v1/organizations", b"[" * 100_000), 422)
    await expect_error(await post_json("/api/v1/organizations", b"{}", "text/plain"), 422)
    await expect_error(await post_json("/api/v1/members/import", b"a,b\n", "text/plain"), 422)
    await expect_error(
        await client.post(
            "/api/v1/members",
            json={"member_no": 7, "name": ["甲"], "org_code": "a1", "category": "ordinary"},
            headers=admin,
        ),
        422,
        fields={"member_no": "must be text", "name": "must be text"},
    )
    await expect_error(
        await client.post(
            "/api/v1/organizations",
            json={"code": "x1", "name": "党委", "level": "province", "parent_code": "a"},
            headers=admin,
        ),
        422,
        fields={"level": "is not one of the allowed values"},
    )
    await expect_error(
        await client.post(
            "/api/v1/organizations",
            json={"code": "x1", "name": "党委", "level": "committee", "parent_code": "nosuch"},
            headers=admin,
        ),
        422,
        fields={"parent_code": "is not a known organization"},
    )
    await expect_error(
        await client.post(
            "/api/v1/venues",
            json={"code": "v9", "name": "会场", "org_code": "nosuch"},
            headers=admin,
        ),
        422,
        fields={"org_code": "is not a known organization"},
    )
    await expect_error(
        await client.get("/api/v1/members?page=zero", headers=admin),
        422,
        fields={"page": "must be a whole number"},
    )
    error = await expect_error(
        await post_json(
            "/api/v1/members/import",
            "member_no,name,org_code,category\nD9,乙,a1,ordinary\nD10,丙,a1,nobody\n".encode(),
            "text/csv",
        ),
        422,
    )
    assert [row["line"] for row in error["rows"]] == [3]
    assert all(set(row) == {"line", "message"} and row["message"] for row in error["rows"])

    # 429: the sign-in form is HTML, but its throttle answer carries Retry-After
    async with Browser(client) as browser:
        for _ in range(5):
            assert (await browser.sign_in("admin-a", "wrong-password")).status == 401
        throttled = await browser.sign_in("admin-a", "wrong-password")
        assert throttled.status == 429
        assert throttled.content_type == "text/html"
        assert int(throttled.headers["Retry-After"]) > 0


async def test_an_unexpected_failure_is_500_internal_with_the_request_id(
    client: Client,
    db: async_sessionmaker[AsyncSession],
    world: World,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No mock: the audit table is taken away under the running server, so a write fails."""
    admin = world.auth("admin", "a")
    org = {"code": "lost", "name": "党委", "level": "committee", "parent_code": "a"}
    async with db() as session, session.begin():
        await session.execute(text("ALTER TABLE audit_entries RENAME TO audit_entries_away"))
    try:
        with caplog.at_level(logging.ERROR, logger="server.http.error_middleware"):
            response = await client.post("/api/v1/organizations", json=org, headers=admin)
            error = await expect_error(response, 500)
            given = await client.post(
                "/api/v1/organizations", json=org, headers={**admin, "X-Request-Id": "req-42"}
            )
            await expect_error(given, 500)
    finally:
        async with db() as session, session.begin():
            await session.execute(text("ALTER TABLE audit_entries_away RENAME TO audit_entries"))
    request_id = response.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert request_id in error["message"]
    assert given.headers["X-Request-Id"] == "req-42"
    logged = [record for record in caplog.records if request_id in record.getMessage()]
    assert logged and logged[0].exc_info is not None, "the failure is logged with its traceback"
    assert any("req-42" in record.getMessage() for record in caplog.records)
    async with read_session(db) as session:
        stored = await session.scalar(
            select(func.count()).select_from(Organization).where(Organization.code == "lost")
        )
    assert stored == 0, "the failed request left nothing behind"
    # The server is fine once the table is back.
    assert (await client.post("/api/v1/organizations", json=org, headers=admin)).status == 201


async def test_messages_are_chinese_by_default_and_english_on_request(
    client: Client,
    world: World,
) -> None:
    admin = world.auth("admin", "a")
    default = await expect_error(await client.get("/api/v1/members/nosuch", headers=admin), 404)
    english = await expect_error(
        await client.get(
            "/api/v1/members/nosuch", headers={**admin, "Accept-Language": "en-US,en;q=0.9"}
        ),
        404,
    )
    assert english["message"] == "No member with number nosuch."
    chinese = await expect_error(
        await client.get("/api/v1/members/nosuch", headers={**admin, "Accept-Language": "zh-CN"}),
        404,
    )
    assert default["message"] == chinese["message"]
    assert HAN.search(default["message"]), (
        f"the default (zh_CN) message is not Chinese: {default['message']!r} — "
        "is web/locale/zh_CN/LC_MESSAGES/messages.po there?"
    )
    assert "nosuch" in default["message"]
    fields = await expect_error(
        await client.post(
            "/api/v1/venues", json={"code": "v 1", "name": 3, "org_code": "a1"}, headers=admin
        ),
        422,
    )
    assert all(HAN.search(problem) for problem in fields["fields"].values()), fields
