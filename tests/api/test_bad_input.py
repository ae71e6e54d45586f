"""Bad input of every kind answers the documented 4xx with a clear message, and leaves NOTHING
half-written; the member import is all-or-nothing, idempotent and audited field by field."""

from __future__ import annotations

import io
import json
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.principal import WHOLE_TREE
from server.db.models import ApiToken, AuditEntry, Member, Organization, User, Venue
from server.db.session import read_session, write_session
from server.domain.labels import LEVEL_LABELS
from server.errors import Conflict, Invalid
from server.http.body_limit import MAX_BODY, MAX_IMPORT_BODY
from server.services import users
from tests.support.client import Client
from tests.support.world import World

COUNTED = {
    "organizations": Organization,
    "members": Member,
    "venues": Venue,
    "users": User,
    "api_tokens": ApiToken,
    "audit_entries": AuditEntry,
}
HEADER = "member_no,name,org_code,category,card_code\n"


async def counts(db: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    """Rows per table: a rejected request must leave every one of these as it was."""
    async with read_session(db) as session:
        return {
            name: int(await session.scalar(select(func.count()).select_from(model)) or 0)
            for name, model in COUNTED.items()
        }


def as_dict(value: Any) -> Any:
    """An audit snapshot, whether the column hands back JSON or its canonical text."""
    return json.loads(value) if isinstance(value, str) else value


class Api:
    """The API as admin of subtree a, in English, with a check that rejections write nothing."""

    def __init__(self, client: Client, db: async_sessionmaker[AsyncSession], world: World):
        self.client = client
        self.db = db
        self.headers = {**world.auth("admin", "a"), "Accept-Language": "en"}

    async def rejected(
        self, method: str, path: str, status: int, *, csv: bytes | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Send; expect `status` with the documented error; assert no table changed."""
        before = await counts(self.db)
        headers = {**self.headers, **kwargs.pop("headers", {})}
        if csv is not None:
            kwargs["data"] = csv
            headers["Content-Type"] = "text/csv"
        response = await self.client.request(method, path, headers=headers, **kwargs)
        body = await response.json()
        assert response.status == status, body
        assert set(body) == {"error"} and body["error"]["message"], body
        assert await counts(self.db) == before, f"{method} {path} wrote something: {body}"
        return dict(body["error"])

    async def ok(self, method: str, path: str, *, csv: bytes | None = None, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        if csv is not None:
            kwargs["data"] = csv
            headers["Content-Type"] = "text/csv"
        response = await self.client.request(method, path, headers=headers, **kwargs)
        body = await response.json()
        assert response.status in (200, 201), body
        return body

    async def import_rows(self, csv: bytes) -> list[dict[str, Any]]:
        """A rejected import: its rows, after checking nothing was stored."""
        error = await self.rejected("POST", "/api/v1/members/import", 422, csv=csv)
        assert "nothing was imported" in error["message"]
        return list(error["rows"])


@pytest.fixture
async def api(
    client: Client,
    db: async_sessionmaker[AsyncSession],
    world: World,
) -> Api:
    return Api(client, db, world)


async def members_by_number(db: async_sessionmaker[AsyncSession]) -> dict[str, tuple[Any, ...]]:
    async with read_session(db) as session:
        rows = await session.execute(
            select(
                Member.member_no, Member.name, Organization.code, Member.category, Member.card_code
            ).join(Organization, Member.org_id == Organization.id)
        )
        return {row[0]: tuple(row[1:]) for row in rows}


async def test_bodies_that_are_not_json_objects(api: Api) -> None:
    for path in ("/api/v1/organizations", "/api/v1/members", "/api/v1/venues"):
        for raw in (b"", b"{", b"{'code': 'x'}", b"[]", b"null", b"42", b"\xff{}", b"[" * 50_000):
            error = await api.rejected(
                "POST", path, 422, data=raw, headers={"Content-Type": "application/json"}
            )
            assert "JSON" in error["message"]
        error = await api.rejected(
            "POST", path, 422, data="code=x", headers={"Content-Type": "text/plain"}
        )
        assert "Content-Type: application/json" in error["message"]
        error = await api.rejected(
            "POST",
            path,
            413,
            data=io.BytesIO(b" " * (MAX_BODY + 1)),
            headers={"Content-Type": "application/json"},
        )
        assert str(MAX_BODY) in error["message"]
    error = await api.rejected("POST", "/api/v1/members/import", 422, json={"rows": []})
    assert "text/csv" in error["message"]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"code": "is required", "name": "is required", "level": "is required"}),
        (
            {"code": 12, "name": ["党委"], "level": True, "parent_code": {"x": 1}},
            {
                "code": "must be text",
                "name": "must be text",
                "level": "is not one of the allowed values",
                "parent_code": "must be text",
            },
        ),
        (
            {"code": "x1", "name": "党委", "level": "province", "parent_code": "a"},
            {"level": "is not one of the allowed values"},
        ),
        (
            {"code": "a b", "name": "党委", "level": "committee", "parent_code": "a"},
            {"code": "may contain only letters, digits, '.', '_' and '-' (at most 64)"},
        ),
        (
            {"code": "x" * 65, "name": "党委", "level": "committee", "parent_code": "a"},
            {"code": "is too long"},
        ),
        (
            {"code": "x1", "name": "党\n委", "level": "committee", "parent_code": "a"},
            {"name": "contains control characters"},
        ),
        (
            {"code": "x1", "name": "   ", "level": "committee", "parent_code": "a"},
            {"name": "is required"},
        ),
    ],
)
async def test_organization_fields(api: Api, body: dict[str, Any], fields: dict[str, str]) -> None:
    error = await api.rejected("POST", "/api/v1/organizations", 422, json=body)
    assert error["code"] == "invalid"
    assert error["fields"] == fields


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (
            {"member_no": 1, "name": "甲", "org_code": "a1", "category": "ordinary"},
            {"member_no": "must be text"},
        ),
        (
            {"member_no": "m1", "name": "甲", "org_code": "a1", "category": "leader"},
            {"category": "is not one of the allowed values"},
        ),
        (
            {"member_no": "m1", "name": "甲", "org_code": "a1", "category": ["ordinary"]},
            {"category": "is not one of the allowed values"},
        ),
        (
            {"member_no": "m1", "name": "甲" * 101, "org_code": "a1", "category": "ordinary"},
            {"name": "is too long"},
        ),
        (
            {
                "member_no": "m1",
                "name": "甲",
                "org_code": "a1",
                "category": "ordinary",
                "card_code": 5,
            },
            {"card_code": "must be text"},
        ),
    ],
)
async def test_member_fields(api: Api, body: dict[str, Any], fields: dict[str, str]) -> None:
    error = await api.rejected("POST", "/api/v1/members", 422, json=body)
    assert error["fields"] == fields


async def test_venue_fields(api: Api) -> None:
    error = await api.rejected(
        "POST", "/api/v1/venues", 422, json={"code": "v/1", "name": None, "org_code": 3}
    )
    assert error["fields"] == {
        "code": "may contain only letters, digits, '.', '_' and '-' (at most 64)",
        "name": "is required",
        "org_code": "must be text",
    }


async def test_unknown_parents_and_organizations(api: Api) -> None:
    error = await api.rejected(
        "POST",
        "/api/v1/organizations",
        422,
        json={"code": "x1", "name": "党委", "level": "committee", "parent_code": "nosuch"},
    )
    assert error["message"] == "The parent organization nosuch does not exist."
    assert error["fields"] == {"parent_code": "is not a known organization"}
    for path, body in (
        ("/api/v1/members", {"member_no": "m1", "name": "甲", "category": "ordinary"}),
        ("/api/v1/venues", {"code": "v1", "name": "会场"}),
    ):
        error = await api.rejected("POST", path, 422, json={**body, "org_code": "nosuch"})
        assert error["message"] == "The organization nosuch does not exist."
        assert error["fields"] == {"org_code": "is not a known organization"}
    await api.rejected("GET", "/api/v1/members?org=nosuch", 404)


@pytest.mark.parametrize(
    ("level", "parent"),
    [("county", "a1"), ("city", "a"), ("branch", "a1a"), ("committee", "a1a"), ("county", "a")],
)
async def test_level_hierarchy(api: Api, level: str, parent: str) -> None:
    error = await api.rejected(
        "POST",
        "/api/v1/organizations",
        422,
        json={"code": "x1", "name": "组织", "level": level, "parent_code": parent},
    )
    assert error["fields"] == {"level": "must be below the parent's level"}
    assert LEVEL_LABELS[level] in error["message"]  # the level in words, not its code


async def test_a_level_may_be_skipped_downwards(api: Api) -> None:
    body = {"code": "x1", "name": "支部", "level": "branch", "parent_code": "a"}
    created = await api.ok("POST", "/api/v1/organizations", json=body)
    assert created == {"code": "x1", "name": "支部", "level": "branch", "parent_code": "a"}


async def test_duplicate_codes(api: Api, db: async_sessionmaker[AsyncSession]) -> None:
    error = await api.rejected(
        "POST",
        "/api/v1/organizations",
        409,
        json={"code": "a1a", "name": "支部", "level": "branch", "parent_code": "a1"},
    )
    assert error["message"] == "An organization with code a1a already exists."
    member = {"member_no": "m1", "name": "甲", "org_code": "a1", "category": "ordinary"}
    await api.ok("POST", "/api/v1/members", json={**member, "card_code": "C1"})
    error = await api.rejected("POST", "/api/v1/members", 409, json=member)
    assert error["message"] == "A member with number m1 already exists."
    error = await api.rejected(
        "POST", "/api/v1/members", 409, json={**member, "member_no": "m2", "card_code": "C1"}
    )
    assert error["message"] == "Card C1 already belongs to another member."
    venue = {"code": "v1", "name": "会场", "org_code": "a1"}
    await api.ok("POST", "/api/v1/venues", json=venue)
    error = await api.rejected("POST", "/api/v1/venues", 409, json={**venue, "name": "别的"})
    assert error["message"] == "A venue with code v1 already exists."
    # Users have no JSON API yet; the service the CLI and the pages share refuses the same way.
    before = await counts(db)
    for username, problem in (("Operator-A", Conflict), ("x", Invalid), ("a b", Invalid)):
        with pytest.raises(problem):
            async with write_session(db) as session:
                await users.create_user(
                    session,
                    WHOLE_TREE,
                    "test",
                    username=username,
                    display_name="重名",
                    role="operator",
                    org_code="a1",
                    password_hash=None,
                )
    with pytest.raises(Invalid):
        async with write_session(db) as session:
            await users.create_user(
                session,
                WHOLE_TREE,
                "test",
                username="new-user",
                display_name="新",
                role="operator",
                org_code="nosuch",
                password_hash=None,
            )
    assert await counts(db) == before


# ---- member CSV import ---------------------------------------------------------------------


async def test_import_header_problems(api: Api) -> None:
    rows = await api.import_rows(b"member_no,name,category\nm1,A,ordinary\n")
    assert rows == [
        {
            "line": 1,
            "message": "The header must name the columns member_no, name, org_code, category, "
            "card_code; missing: org_code; unknown: -.",
        }
    ]
    rows = await api.import_rows(b"member_no,name,org_code,category,phone\nm1,A,a1,ordinary,1\n")
    assert rows[0]["line"] == 1 and "unknown: phone" in rows[0]["message"]
    rows = await api.import_rows(b"member_no,name,org_code,category,name\nm1,A,a1,ordinary,B\n")
    assert rows == [{"line": 1, "message": "The header names name more than once."}]
    rows = await api.import_rows(b"")
    assert rows == [{"line": 1, "message": "The file is empty."}]


async def test_import_lists_every_bad_line_and_stores_nothing(
    api: Api, db: async_sessionmaker[AsyncSession]
) -> None:
    await api.ok(
        "POST",
        "/api/v1/members",
        json={
            "member_no": "old",
            "name": "老",
            "org_code": "a1",
            "category": "ordinary",
            "card_code": "TAKEN",
        },
    )
    await api.ok(
        "POST",
        "/api/v1/members",
        json={"member_no": "keep", "name": "留", "org_code": "a1", "category": "ordinary"},
    )
    lines = [
        HEADER.strip(),
        "g1,好,a1,ordinary,",  # 2: fine on its own
        "g2,好,a1,ordinary",  # 3: a value short
        "g3,好,a1,ordinary,,extra",  # 4: a value too many
        "g4,好,a1,leader,",  # 5: unknown category
        "g1,又,a1,ordinary,",  # 6: repeats line 2
        "g6,好,nosuch,ordinary,",  # 7: unknown organization
        "g7,好,a1,ordinary,TAKEN",  # 8: another member's card
        "g8,好,a1,ordinary,C8",  # 9: fine
        "g9,好,a1,ordinary,C8",  # 10: card repeats line 9
        ",无号,a1,ordinary,",  # 11: no member number
        "",  # blank lines are skipped
        "g10,好,b1,ordinary,",  # 13: an organization outside the caller's subtree
    ]
    rows = await api.import_rows(("\n".join(lines) + "\n").encode())
    assert rows == [
        {"line": 3, "message": "Expected 5 values, found 4."},
        {"line": 4, "message": "Expected 5 values, found 6."},
        {
            "line": 5,
            "message": "Some values are wrong: Category: is not one of the allowed values"
            " (“leader”)",
        },
        {"line": 6, "message": "Member number g1 repeats line 2."},
        {"line": 7, "message": "Organization nosuch does not exist."},
        {"line": 8, "message": "Card TAKEN already belongs to member old."},
        {"line": 10, "message": "Card C8 repeats line 9."},
        {"line": 11, "message": "Some values are wrong: Member number: is required"},
        {"line": 13, "message": "Organization b1 does not exist."},
    ]
    assert set(await members_by_number(db)) == {"old", "keep"}


async def test_import_never_names_members_of_another_subtree(
    api: Api,
    client: Client,
    world: World,
) -> None:
    other = {**world.auth("admin", "b"), "Accept-Language": "en"}
    created = await client.post(
        "/api/v1/members",
        json={
            "member_no": "SECRET-B",
            "name": "乙",
            "org_code": "b1",
            "category": "ordinary",
            "card_code": "CARD-B",
        },
        headers=other,
    )
    assert created.status == 201
    rows = await api.import_rows(HEADER.encode() + "n1,甲,a1,ordinary,CARD-B\n".encode())
    assert rows == [{"line": 2, "message": "Card CARD-B already belongs to another member."}]
    assert "SECRET-B" not in json.dumps(rows)


async def test_import_a_line_the_csv_reader_cannot_read(api: Api) -> None:
    huge = "x" * 200_000  # past the csv module's field limit
    rows = await api.import_rows(f"{HEADER}m1,甲,a1,ordinary,\nm2,{huge},a1,ordinary,\n".encode())
    assert rows[-1]["line"] == 3 and "not valid CSV" in rows[-1]["message"]


async def test_import_encodings_and_chinese_headers(
    api: Api, db: async_sessionmaker[AsyncSession]
) -> None:
    chinese = (
        "党员编号,姓名,组织代码,人员类别,卡号\nz1,张三,a1,普通党员,ZC1\nz2,李四,a1a,支部书记,\n"
    )
    result = await api.ok("POST", "/api/v1/members/import", csv=chinese.encode("gb18030"))
    assert result == {"created": 2, "updated": 0, "unchanged": 0}
    bom = "\ufeffmember_no,name,org_code,category\nz3,王五,a1,委员\n"
    result = await api.ok("POST", "/api/v1/members/import", csv=bom.encode("utf-8"))
    assert result == {"created": 1, "updated": 0, "unchanged": 0}
    aliases = "编号,姓名,所在组织代码,类别,证卡号\r\nz4,赵六,a1,党组织书记,ZC4\r\n"
    result = await api.ok("POST", "/api/v1/members/import", csv=aliases.encode("utf-8"))
    assert result == {"created": 1, "updated": 0, "unchanged": 0}
    stored = await members_by_number(db)
    assert stored == {
        "z1": ("张三", "a1", "ordinary", "ZC1"),
        "z2": ("李四", "a1a", "secretary", None),
        "z3": ("王五", "a1", "committee", None),
        "z4": ("赵六", "a1", "secretary", "ZC4"),
    }


async def test_reimport_changes_and_card_moves(
    api: Api, db: async_sessionmaker[AsyncSession]
) -> None:
    first = HEADER + "p1,甲,a1,ordinary,K1\np2,乙,a1,ordinary,K2\np3,丙,a1a,secretary,\n"
    assert await api.ok("POST", "/api/v1/members/import", csv=first.encode()) == {
        "created": 3,
        "updated": 0,
        "unchanged": 0,
    }
    before = await counts(db)
    # The same file again: nothing changes, nothing is audited.
    assert await api.ok("POST", "/api/v1/members/import", csv=first.encode()) == {
        "created": 0,
        "updated": 0,
        "unchanged": 3,
    }
    assert await counts(db) == before
    # One changed row: one update, audited with just the changed fields.
    changed = first.replace("p3,丙,a1a,secretary,", "p3,丙丙,a1a,committee,")
    assert await api.ok("POST", "/api/v1/members/import", csv=changed.encode()) == {
        "created": 0,
        "updated": 1,
        "unchanged": 2,
    }
    async with read_session(db) as session:
        last = (
            await session.execute(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1))
        ).scalar_one()
    assert (last.action, last.object_type, last.object_id, last.actor) == (
        "member.import",
        "member",
        "p3",
        "user:admin-a",
    )
    assert as_dict(last.before) == {"name": "丙", "category": "secretary"}
    assert as_dict(last.after) == {"name": "丙丙", "category": "committee"}
    assert (await counts(db))["audit_entries"] == before["audit_entries"] + 1
    # Two members swap cards, and a third hands its card on to a new member, in one file.
    swapped = HEADER + "p1,甲,a1,ordinary,K2\np2,乙,a1,ordinary,K1\np3,丙丙,a1a,committee,\n"
    swapped += "p4,丁,a1,ordinary,K3\n"
    assert await api.ok("POST", "/api/v1/members/import", csv=swapped.encode()) == {
        "created": 1,
        "updated": 2,
        "unchanged": 1,
    }
    handed_on = HEADER + "p4,丁,a1,ordinary,\np5,戊,a1,ordinary,K3\n"
    assert await api.ok("POST", "/api/v1/members/import", csv=handed_on.encode()) == {
        "created": 1,
        "updated": 1,
        "unchanged": 0,
    }
    stored = await members_by_number(db)
    assert {number: row[3] for number, row in stored.items()} == {
        "p1": "K2",
        "p2": "K1",
        "p3": None,
        "p4": None,
        "p5": "K3",
    }


@pytest.mark.parametrize(
    ("content_type", "raw"),
    [
        ("multipart/form-data", b"no boundary given"),
        ("multipart/form-data; boundary=xyz", b"--xyz\r\nnot a header line\r\n\r\nvalue"),
        ("multipart/form-data; boundary=xyz", b"--xyz\r\nContent-Disposition: form-data"),
        ("application/x-www-form-urlencoded", b"name=\xff\xfe"),
        ("application/x-www-form-urlencoded; charset=no-such-charset", b"name=x"),
    ],
)
async def test_unreadable_forms_are_refused_not_crashed_on(
    client: Client,
    db: async_sessionmaker[AsyncSession],
    world: World,
    content_type: str,
    raw: bytes,
) -> None:
    """A form body that cannot be parsed is the sender's mistake: 422, on pages and API alike."""
    before = await counts(db)
    # English: the API by Accept-Language, pages by the language cookie.
    headers = {"Content-Type": content_type, "Accept-Language": "en", "Cookie": "hetang_lang=en"}
    admin = {**world.auth("admin", "a"), **headers}
    for path, sent in (
        ("/login", headers),  # public: read before any sign-in check
        ("/organizations", admin),  # a page form, with a bearer token (so no CSRF step)
        ("/api/v1/organizations", admin),
    ):
        response = await client.post(path, data=raw, headers=sent, allow_redirects=False)
        assert response.status == 422, (path, await response.text())
        if path.startswith("/api/"):
            error = (await response.json())["error"]
            assert error == {"code": "invalid", "message": "The request could not be read."}
        else:
            assert "The request could not be read." in await response.text()
    assert await counts(db) == before


async def test_an_oversize_upload_is_413_on_the_page_too(
    client: Client,
    db: async_sessionmaker[AsyncSession],
    world: World,
) -> None:
    before = await counts(db)
    form = aiohttp.FormData()
    big = b" " * (MAX_IMPORT_BODY + 1)  # imports take 64 MiB, not the 1 MiB of other forms
    form.add_field("file", io.BytesIO(big), filename="big.csv", content_type="text/csv")
    response = await client.post("/members/import", data=form, headers=world.auth("admin"))
    assert response.status == 413
    assert await counts(db) == before
