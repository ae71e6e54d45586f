"""Member imports past the old 1 MiB limit, through the API and the page: read in chunks, all
rows or none (the database is checked after each rejection), never reaching another subtree; the
template, the encoding hints, the Chinese column names and the count of matches."""

from __future__ import annotations

import io

import aiohttp
from sqlalchemy import func, select

from server.db.models import AuditEntry, Member
from server.db.session import read_session
from server.http.body_limit import MAX_BODY
from tests.support.api_site import counts
from tests.support.client import Client
from tests.support.databases import Db
from tests.support.world import World

ROWS = 30_000  # about 1.2 MB: past the limit every other route keeps
HEADER = "党员编号,姓名,组织代码,类别,卡号\n"


def big_file(rows: int = ROWS, org: str = "a1", last: str | None = None) -> bytes:
    lines = [HEADER] + [f"N{i:07d},党员{i},{org},普通党员,K{i:07d}\n" for i in range(rows)]
    if last is not None:
        lines[-1] = last
    return "".join(lines).encode("utf-8")


async def stored(db: Db) -> tuple[int, int]:
    async with read_session(db) as session:
        members = await session.scalar(select(func.count()).select_from(Member))
        audited = await session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "member.import")
        )
    return int(members or 0), int(audited or 0)


async def post_csv(
    client: Client, world: World, data: bytes, subtree: str = "a"
) -> tuple[int, dict]:
    headers = {**world.auth("admin", subtree), "Content-Type": "text/csv", "Accept-Language": "zh"}
    response = await client.post("/api/v1/members/import", data=io.BytesIO(data), headers=headers)
    return response.status, await response.json()


async def test_a_file_past_1_mib_is_imported_through_the_api(
    client: Client, db: Db, world: World
) -> None:
    data = big_file()
    assert len(data) > MAX_BODY
    status, body = await post_csv(client, world, data)
    assert status == 200, body
    assert body == {"created": ROWS, "updated": 0, "unchanged": 0}
    before = await stored(db)
    assert before[0] >= ROWS and before[1] == ROWS
    # The same file again changes nothing.
    status, body = await post_csv(client, world, data)
    assert body == {"created": 0, "updated": 0, "unchanged": ROWS}
    assert await stored(db) == before


async def test_one_bad_last_row_of_a_big_file_leaves_nothing(
    client: Client, db: Db, world: World
) -> None:
    before = await counts(db)
    status, body = await post_csv(client, world, big_file(last="N9999999,,a1,领导,\n"))
    assert status == 422
    rows = body["error"]["rows"]
    assert rows == [
        {
            "line": ROWS + 1,
            "message": "部分内容有误： 姓名: 必填; 类别: 不是可选的值 (“领导”)",
        }
    ] or (
        rows[0]["line"] == ROWS + 1
        and "姓名" in rows[0]["message"]
        and "领导" in rows[0]["message"]
    )
    assert await counts(db) == before


async def test_a_big_import_never_reaches_another_subtree(
    client: Client, db: Db, world: World
) -> None:
    # Subtree b's admin owns b1's members; subtree a's admin sends a big file naming them.
    status, _ = await post_csv(client, world, big_file(rows=10, org="b1"), subtree="b")
    assert status == 200
    before = await counts(db)
    data = big_file(last="N0000009,改名,a1,普通党员,\n")  # N0000009 is b1's member
    status, body = await post_csv(client, world, data)
    assert status == 422
    rows = body["error"]["rows"]
    # Lines 2-11 name b1's ten members (never confirmed to exist); the last repeats line 11.
    assert [row["line"] for row in rows] == [*range(2, 12), ROWS + 1]
    assert all("不能使用" in row["message"] for row in rows[:-1])
    assert await counts(db) == before
    async with read_session(db) as session:
        name = await session.scalar(select(Member.name).where(Member.member_no == "N0000009"))
    assert name == "党员9"


async def test_a_file_past_1_mib_is_imported_through_the_page(
    client: Client, db: Db, world: World
) -> None:
    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(big_file()), filename="县.csv", content_type="text/csv")
    response = await client.post(
        "/members/import", data=form, headers=world.auth("admin"), allow_redirects=False
    )
    assert response.status == 303 or response.status == 302, await response.text()
    assert f"created={ROWS}" in response.headers["Location"]
    assert (await stored(db))[1] == ROWS


async def test_encoding_hints_name_what_to_do(client: Client, db: Db, world: World) -> None:
    before = await counts(db)
    utf16 = (HEADER + "x1,甲,a1,普通党员,\n").encode("utf-16")
    status, body = await post_csv(client, world, utf16)
    assert status == 422 and "UTF-16" in body["error"]["rows"][0]["message"]
    assert "CSV UTF-8" in body["error"]["rows"][0]["message"]
    big5 = "黨員編號,姓名,組織代碼,類別,卡號\nx1,陳,a1,普通党员,\n".encode("big5", errors="replace")
    status, body = await post_csv(client, world, big5)
    assert status == 422 and "Big5" in body["error"]["rows"][0]["message"]
    broken = HEADER.encode() + b"x1,\xff\xfe\xfd,a1,ordinary,\n"
    status, body = await post_csv(client, world, broken)
    assert status == 422 and "CSV UTF-8" in body["error"]["rows"][0]["message"]
    status, body = await post_csv(client, world, b"member_no,name,category\nm1,A,ordinary\n")
    assert "组织代码" in body["error"]["rows"][0]["message"]
    assert await counts(db) == before


async def test_other_routes_keep_1_mib(client: Client, world: World) -> None:
    headers = {**world.auth("admin"), "Content-Type": "application/json"}
    response = await client.post(
        "/api/v1/members", data=io.BytesIO(b" " * (MAX_BODY + 1)), headers=headers
    )
    assert response.status == 413


async def test_the_template_and_the_count_of_matches(client: Client, world: World) -> None:
    response = await client.get("/members?template=csv", headers=world.auth("admin"))
    assert response.status == 200
    body = await response.read()
    assert body == "\ufeff党员编号,姓名,组织代码,类别,卡号\r\n".encode()
    assert "attachment" in response.headers["Content-Disposition"]
    assert (await post_csv(client, world, big_file(rows=120)))[0] == 200
    page = await client.get("/members?q=党员1", headers=world.auth("admin"))
    # 党员1, 党员10–19, 党员100–119: 31
    assert "31 名党员符合条件" in await page.text()
