"""The administration pages in a browser's shoes: sign in with a password, read and submit forms."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import FormData
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth import tokens
from server.auth.passwords import PasswordService
from server.auth.principal import WHOLE_TREE
from server.db.models import Member, Organization, User, Venue
from server.db.session import read_session, write_session
from server.domain.members import MemberFields
from server.services import members
from tests.support import browser
from tests.support.world import World

Db = async_sessionmaker[AsyncSession]
PASSWORD = browser.PASSWORD
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def add_user(db: Db, username: str, role: str = "admin", org: str | None = None) -> None:
    """An account with a real password hash, addressed as 同志 on its pages."""
    await browser.add_user(db, username, role, org, display_name=f"{username} 同志")


async def sign_in(client: Any, username: str, password: str = PASSWORD) -> Any:
    """The login form, filled in and sent as a browser would."""
    form = await client.get("/login")
    assert form.status == 200
    token = CSRF.search(await form.text())
    assert token is not None
    return await client.post(
        "/login?next=/",
        data={"username": username, "password": password, "csrf_token": token.group(1)},
        allow_redirects=False,
    )


async def signed_in(client: Any, db: Db, username: str, role: str, org: str | None) -> str:
    """Add a user, sign them in and return the CSRF token of their session."""
    await add_user(db, username, role, org)
    answer = await sign_in(client, username)
    assert answer.status == 302, await answer.text()
    return await csrf_of(client)


async def csrf_of(client: Any) -> str:
    """The CSRF token every signed-in page carries (in the sign-out form)."""
    found = CSRF.search(await page(client, "/"))
    assert found is not None
    return found.group(1)


async def page(client: Any, path: str, status: int = 200) -> str:
    """GET a page and check its status."""
    answer = await client.get(path)
    text: str = await answer.text()
    assert answer.status == status, text
    return text


async def post(client: Any, path: str, data: Any, status: int = 303) -> Any:
    """POST a form without following the redirect."""
    answer = await client.post(path, data=data, allow_redirects=False)
    assert answer.status == status, await answer.text()
    return answer


async def count(db: Db, model: Any, *where: Any) -> int:
    """How many rows of a table match."""
    async with read_session(db) as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def add_members(db: Db, org: str, numbers: range, category: str = "ordinary") -> None:
    """Members M0001… with names 党员N."""
    async with write_session(db) as session:
        for n in numbers:
            fields = MemberFields(f"M{n:04d}", f"党员{n}", org, category, None)
            await members.create_member(session, WHOLE_TREE, "test", fields)


async def test_sign_in_chinese_by_default_then_english(client: Any, db: Db, world: World) -> None:
    login = await page(client, "/login")
    assert 'lang="zh-CN"' in login and "登录" in login
    await add_user(db, "web-admin")
    wrong = await sign_in(client, "web-admin", "not the password")
    assert wrong.status == 401 and "用户名或密码不正确" in await wrong.text()
    assert (await client.get("/", allow_redirects=False)).status == 302  # still signed out
    right = await sign_in(client, "web-admin")
    assert right.status == 302 and right.headers["Location"] == "/"
    home = await page(client, "/")
    assert "您好，web-admin 同志" in home and "您负责全部组织" in home
    assert "退出" in home and "用户" in home
    switched = await client.get("/lang/en?next=/organizations", allow_redirects=False)
    assert switched.status == 302 and switched.headers["Location"] == "/organizations"
    english = await page(client, "/organizations")
    assert 'lang="en"' in english and "Organization tree" in english and "Sign out" in english
    assert "组织架构" not in english


async def test_sign_out_ends_the_session(client: Any, db: Db, world: World) -> None:
    token = await signed_in(client, db, "web-admin", "admin", None)
    await post(client, "/logout", {"csrf_token": token}, status=302)
    assert (await client.get("/members", allow_redirects=False)).status == 302


async def test_home_counts_what_is_in_scope(client: Any, db: Db, world: World) -> None:
    await add_members(db, "a1a", range(1, 4))
    await add_members(db, "b1", range(4, 6))
    await signed_in(client, db, "web-staff-a1", "venue_staff", "a1")
    home = await page(client, "/")
    assert re.findall(r'class="stat-value">(\d+)<', home) == ["2", "3", "0"]
    assert "西泉镇党委" in home and 'href="/members"' not in home


async def test_tree_shows_member_counts(client: Any, db: Db, world: World) -> None:
    await add_members(db, "a1a", range(1, 4))
    await add_members(db, "a1", range(4, 5))
    await add_members(db, "b1", range(5, 7))
    await signed_in(client, db, "web-reviewer", "reviewer", "city")
    tree = await page(client, "/organizations")

    def counts(code: str) -> list[str]:
        rows = [row for row in tree.split("<tr") if f"<code>{code}</code>" in row]
        assert len(rows) == 1, code
        return re.findall(r'class="num">(?:<a [^>]*>)?(\d+)<', rows[0])

    assert counts("city") == ["0", "6"]
    assert counts("a1") == ["1", "4"]
    assert counts("a1a") == ["3", "3"]
    assert counts("b1") == ["2", "2"]
    assert "党支部" in tree and "基层党(工)委" in tree and "depth-3" in tree
    assert "organization_create" not in tree and 'action="/organizations"' not in tree


async def test_member_search_by_name_and_number_with_paging(
    client: Any, db: Db, world: World
) -> None:
    await add_members(db, "a1a", range(1, 121))
    await add_members(db, "b1", range(121, 131))
    await signed_in(client, db, "web-op-a", "operator", "a")

    def numbers(html: str) -> list[str]:
        return re.findall(r"<code>(M\d{4})</code></a>", html)

    first = await page(client, "/members")
    assert numbers(first) == [f"M{n:04d}" for n in range(1, 51)]
    assert "第 1–50 条，共 120 条" in first and 'rel="next"' in first and 'rel="prev"' not in first
    last = await page(client, "/members?page=3")
    assert numbers(last) == [f"M{n:04d}" for n in range(101, 121)]
    assert 'rel="next"' not in last and 'rel="prev"' in last
    assert "此页已超出最后一名党员" in await page(client, "/members?page=9")
    by_name = await page(client, "/members?q=%E5%85%9A%E5%91%9877")  # 党员77
    assert numbers(by_name) == ["M0077"]
    by_number = await page(client, "/members?q=M011")
    assert numbers(by_number) == [f"M{n:04d}" for n in range(110, 120)]
    outside = await page(client, "/members?q=M0125")
    assert numbers(outside) == [] and "没有符合条件的党员" in outside
    assert (await client.get("/members?org=b1")).status == 404
    filtered = await page(client, "/members?org=a1a&page=2")
    assert numbers(filtered)[0] == "M0051"


async def test_member_detail_and_other_subtree(client: Any, db: Db, world: World) -> None:
    await add_members(db, "a1a", range(1, 2), category="secretary")
    await add_members(db, "b1", range(2, 3))
    await signed_in(client, db, "web-rev-a", "reviewer", "a")
    detail = await page(client, "/members/M0001")
    assert "党员1" in detail and "西泉村党支部" in detail and "党组织书记" in detail
    assert "每年 56 学时" in detail and "年该党员没有培训记录" in detail and "/ 56 学时" in detail
    missing = await page(client, "/members/M0002", status=404)
    assert "没有编号为 M0002 的党员" in missing and "党员2" not in missing


async def test_admin_adds_a_member_and_imports_a_file(client: Any, db: Db, world: World) -> None:
    token = await signed_in(client, db, "web-admin-a", "admin", "a")
    form = {
        "csrf_token": token,
        "member_no": "P0001",
        "name": "郑梦如",
        "org_code": "a1a",
        "category": "committee",
        "card_code": "",
    }
    added = await post(client, "/members", form)
    assert added.headers["Location"].startswith("/members/P0001?notice=member_created")
    shown = await page(client, added.headers["Location"])
    assert "已添加党员 P0001" in shown and "班子成员" in shown and "每年 56 学时" in shown
    async with read_session(db) as session:
        stored = (
            await session.execute(select(Member).where(Member.member_no == "P0001"))
        ).scalar_one()
    assert (stored.name, stored.category, stored.card_code) == ("郑梦如", "committee", None)

    good = (
        "党员编号,姓名,组织代码,类别,卡号\n"
        "P0002,丁庆春,a1,党组织书记,C2\n"
        "P0001,郑梦如,a1a,普通党员,\n"
    )
    done = await post(client, "/members/import", _upload(token, good))
    assert "created=1" in done.headers["Location"] and "updated=1" in done.headers["Location"]
    assert "导入完成：新增党员 1 名，更新 1 名" in await page(client, done.headers["Location"])
    assert await count(db, Member, Member.member_no.in_(["P0001", "P0002"])) == 2

    bad = (
        "member_no,name,org_code,category\n"
        "P0003,陈云,a1,ordinary\n"
        "P0004,,a1,boss\n"
        "P0005,缪青松,b1,ordinary\n"
    )
    rejected = await post(client, "/members/import", _upload(token, bad), status=422)
    html = await rejected.text()
    assert "有 2 行存在问题，未导入任何数据" in html
    assert re.search(r'class="num">3</td><td>部分内容有误：.*姓名: 必填', html)
    assert re.search(r'class="num">4</td><td>组织 b1 不存在', html)
    assert await count(db, Member, Member.member_no == "P0003") == 0


def _upload(token: str | None, text: str) -> Any:
    data = FormData()
    if token is not None:
        data.add_field("csrf_token", token)
    data.add_field("file", text.encode("utf-8"), filename="members.csv", content_type="text/csv")
    return data


async def _hello(client: Any, token: str) -> int:
    body = {"agent_version": "1.0", "hostname": "pc-1"}
    headers = {"Authorization": f"Bearer {token}"}
    answer = await client.post("/api/v1/agent/hello", json=body, headers=headers)
    status: int = answer.status
    return status


async def test_venue_token_shown_once_and_rotated(client: Any, db: Db, world: World) -> None:
    csrf = await signed_in(client, db, "web-admin-a", "admin", "a")
    form = {"csrf_token": csrf, "code": "xq-dx", "name": "西泉镇党校", "org_code": "a1"}
    created = await post(client, "/venues", form, status=200)
    html = await created.text()
    first = re.search(r'<code class="token" id="new-token">(hv_[^<]+)</code>', html)
    assert first is not None and "只显示这一次" in html
    token = first.group(1)
    async with read_session(db) as session:
        venue = (await session.execute(select(Venue).where(Venue.code == "xq-dx"))).scalar_one()
    assert venue.token_digest == tokens.digest(token) and venue.name == "西泉镇党校"
    listing = await page(client, "/venues")
    assert token not in listing and token[:8] in listing and "从未连接" in listing
    assert await _hello(client, token) == 200
    assert "最近联系" in await page(client, "/venues")

    confirm = await page(client, "/venues/xq-dx/token")
    assert "将立即失效" in confirm and token not in confirm
    assert await _hello(client, token) == 200  # asking does not rotate
    rotated = await post(client, "/venues/xq-dx/token", {"csrf_token": csrf}, status=200)
    second = re.search(r'id="new-token">(hv_[^<]+)</code>', await rotated.text())
    assert second is not None and second.group(1) != token
    assert await _hello(client, token) == 401
    assert await _hello(client, second.group(1)) == 200
    assert (await client.get("/venues/nope/token")).status == 404


async def test_user_administration(client: Any, db: Db, world: World) -> None:
    csrf = await signed_in(client, db, "web-admin-a", "admin", "a")
    form = {
        "csrf_token": csrf,
        "username": "Zheng",
        "display_name": "郑组织委员",
        "role": "operator",
        "org_code": "a1",
        "password": "short",
    }
    short = await post(client, "/users", form, status=422)
    assert "至少需要 8 个字符" in await short.text()
    assert await count(db, User, User.username == "zheng") == 0
    whole_tree = {**form, "org_code": "", "role": "admin", "password": "zheng-password"}
    whole = await post(client, "/users", whole_tree, status=403)
    assert "只有管理全部组织的管理员" in await whole.text()
    added = await post(client, "/users", {**form, "password": "zheng-password"})
    assert "已添加用户 zheng" in await page(client, added.headers["Location"])
    async with read_session(db) as session:
        user = (await session.execute(select(User).where(User.username == "zheng"))).scalar_one()
    assert (user.role, user.display_name, user.is_active) == ("operator", "郑组织委员", True)
    assert await PasswordService().verify(user.password_hash, "zheng-password")

    edit = await page(client, "/users?edit=zheng")
    assert "修改用户 zheng" in edit and 'value="郑组织委员"' in edit
    change = {"csrf_token": csrf, "role": "reviewer", "org_code": "a", "display_name": "郑梦如"}
    await post(client, "/users/zheng", change)
    async with read_session(db) as session:
        user = (
            await session.execute(
                select(User, Organization.code)
                .join(Organization, User.org_id == Organization.id)
                .where(User.username == "zheng")
            )
        ).one()
    assert (user[0].role, user[1], user[0].display_name, user[0].is_active) == (
        "reviewer",
        "a",
        "郑梦如",
        False,  # the "may sign in" box was not ticked
    )
    await post(client, "/users/zheng/password", {"csrf_token": csrf, "password": "new-password-1"})
    async with read_session(db) as session:
        stored = await session.scalar(select(User.password_hash).where(User.username == "zheng"))
    assert await PasswordService().verify(stored, "new-password-1")
    assert (await client.post("/users/reviewer-b", data=change)).status == 404
    assert await count(db, User, User.username == "reviewer-b", User.role == "reviewer") == 1


async def test_the_new_user_can_sign_in(client: Any, db: Db, world: World) -> None:
    csrf = await signed_in(client, db, "root-web", "admin", None)
    form = {
        "csrf_token": csrf,
        "username": "chen",
        "display_name": "陈令东",
        "role": "reviewer",
        "org_code": "b",
        "password": "chen-password",
    }
    await post(client, "/users", form)
    await post(client, "/logout", {"csrf_token": csrf}, status=302)
    assert (await sign_in(client, "chen", "chen-password")).status == 302
    home = await page(client, "/")
    assert "您好，陈令东" in home and "天长市" in home
    assert (await client.get("/users")).status == 403


async def test_form_without_csrf_token_is_refused(client: Any, db: Db, world: World) -> None:
    csrf = await signed_in(client, db, "root-web", "admin", None)
    form = {"code": "new", "name": "新党支部", "level": "branch", "parent_code": "a1"}
    refused = await post(client, "/organizations", form, status=403)
    assert "缺少安全校验码" in await refused.text()
    assert await count(db, Organization, Organization.code == "new") == 0
    forged = await post(client, "/organizations", {**form, "csrf_token": "x" * 64}, status=403)
    assert forged.status == 403
    upload = _upload(None, "member_no,name,org_code,category\nQ1,某,a1,ordinary\n")
    await post(client, "/members/import", upload, status=403)
    await post(client, "/venues", {"code": "v", "name": "v", "org_code": "a1"}, status=403)
    assert await count(db, Member) == 0 and await count(db, Venue) == 0
    await post(client, "/organizations", {**form, "csrf_token": csrf})
    assert await count(db, Organization, Organization.code == "new") == 1


async def test_bad_input_shows_the_form_again(client: Any, db: Db, world: World) -> None:
    csrf = await signed_in(client, db, "root-web", "admin", None)
    bad = {"csrf_token": csrf, "code": "bad code", "name": "新党委", "level": "", "parent_code": ""}
    answer = await post(client, "/organizations", bad, status=422)
    html = await answer.text()
    assert "有些内容没有填写或填写有误" in html and "只能包含字母" in html and "必填" in html
    assert 'value="新党委"' in html and "<details" in html and " open>" in html
    under = {**bad, "code": "c2", "level": "committee", "parent_code": "a1a"}
    wrong_level = await post(client, "/organizations", under, status=422)
    assert "“党支部”之下不能设立“基层党(工)委”" in await wrong_level.text()
    taken = await post(client, "/organizations", {**under, "code": "a1", "parent_code": "a"}, 409)
    assert "组织代码 a1 已存在" in await taken.text()
    assert await count(db, Organization) == 6
    done = await post(client, "/organizations", {**under, "parent_code": "a"})
    assert "已添加组织 c2" in await page(client, done.headers["Location"])
    venue = {"csrf_token": csrf, "code": "v1", "name": "会场", "org_code": "nope"}
    answer = await post(client, "/venues", venue, status=422)
    assert "不是已登记的组织" in await answer.text()
    member = {"csrf_token": csrf, "member_no": "X1", "name": "", "org_code": "a1", "category": "x"}
    answer = await post(client, "/members", member, status=422)
    assert "不是可选的值" in await answer.text()
    assert await count(db, Venue) == 0 and await count(db, Member) == 0


async def test_venue_staff_sees_venues_without_admin_forms(
    client: Any, db: Db, world: World
) -> None:
    await signed_in(client, db, "web-staff-a", "venue_staff", "a")
    venues = await page(client, "/venues")
    assert "会场" in venues and 'action="/venues"' not in venues
    assert 'href="/members"' not in venues and 'href="/users"' not in venues
    assert (await client.get("/members")).status == 403


async def test_language_switch_stays_on_this_site(client: Any) -> None:
    for target in ("//evil.example", "/%09/evil.example", "https://evil.example", "/\\evil"):
        answer = await client.get(f"/lang/en?next={target}", allow_redirects=False)
        assert answer.status == 302 and answer.headers["Location"] == "/", target
