"""Print layouts (issue 14, item 7), in a real Chromium printing to PDF: the sign-in sheet
(开班签到表) one run and one venue at a time, 20 and more rows to an A4 page, each row high
enough and its signature column wide enough to sign; a branch venue's staff get only their
venue's sheets; the write-in boxes of the needs survey and the filing form are big enough to
write in; and a committee prints every member's registration form (培训登记表) in one document,
one form a page, naming categories and organizers, never codes, and nobody outside it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from server.auth.principal import WHOLE_TREE
from server.db.session import write_session
from server.domain.members import MemberFields
from server.services import members
from tests.support.browser import add_user
from tests.support.chromium import launched, needs_chromium, signed_in_page
from tests.support.class_workflow import CLASS_PAGE, START, TRAINEES, add_run, seed_class
from tests.support.databases import Db
from tests.support.world import World

pytestmark = [needs_chromium, pytest.mark.sqlite_only]

MAIN, BRANCH = "西泉镇党校主会场", "西泉村分会场"
AT_MAIN = [f"PM-{n:02d}" for n in range(1, 41)]  # 40 members of a1 at the main venue in run 2
AT_BRANCH = [f"PB-{n}" for n in range(1, 6)]  # 5 members of a1a at the branch in run 2
OUTSIDE = {"UP-1": "a", "OUT-1": "b1"}  # the county above a1, another county's committee
PX_PER_MM = 96 / 25.4
PRINTABLE_MM = 297 - 14 - 16  # an A4 page less print.css's margins
CONTENT_WIDTH_PX = round((210 - 2 * 14) * PX_PER_MM)  # the printed sheet's width


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    async with launched() as browser:
        yield browser


async def _seed(db: Db) -> None:
    """The class of a1 with its finalized run 1 (tests/support/class_workflow.py), and run 2,
    not yet held, with 40 at the main venue and 5 at the branch; two members outside a1."""
    await seed_class(db)
    async with write_session(db) as session:
        for number in AT_MAIN:
            category = "secretary" if number == "PM-01" else "ordinary"
            fields = MemberFields(number, f"主会场{number[3:]}", "a1", category, None)
            await members.create_member(session, WHOLE_TREE, "test", fields)
        for number in AT_BRANCH:
            fields = MemberFields(number, f"分会场{number[3:]}", "a1a", "ordinary", None)
            await members.create_member(session, WHOLE_TREE, "test", fields)
        for number, org in OUTSIDE.items():
            fields = MemberFields(number, f"外单位{number}", org, "ordinary", None)
            await members.create_member(session, WHOLE_TREE, "test", fields)
    roster = [(n, "WF-MAIN") for n in AT_MAIN] + [(n, "WF-BR") for n in AT_BRANCH]
    await add_run(db, "C01", "乡村振兴第二期", START + timedelta(days=7), roster, {}, held=False)


async def _signed_in(
    client: Any, db: Db, chromium: Browser, username: str, role: str, org: str
) -> tuple[str, Page]:
    """The app's address and a page signed in as a new user of that role and organization."""
    await add_user(db, username, role, org)
    base = str(client.make_url("/")).rstrip("/")
    return base, await signed_in_page(chromium, base, username)


def pdf_pages(pdf: bytes) -> int:
    """The pages of a PDF Chromium wrote (its page objects are not compressed)."""
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf))


async def _mm(page: Page, selector: str, side: str) -> float:
    """A box's width or height in millimetres, as printed."""
    box = await page.locator(selector).first.bounding_box()
    assert box is not None, selector
    return float(box[side]) / PX_PER_MM


async def _roomy(boxes: Locator, count: int) -> None:
    """There are `count` boxes, each at least 11.5 mm high and 40 mm wide as printed."""
    await expect(boxes).to_have_count(count)
    for index in range(count):
        box = await boxes.nth(index).bounding_box()
        assert box is not None
        assert box["height"] / PX_PER_MM >= 11.5 and box["width"] / PX_PER_MM >= 40, box


async def _as_printed(page: Page) -> None:
    """Lay the page out as print does: print media, at the printed sheet's width."""
    await page.emulate_media(media="print")
    await page.set_viewport_size({"width": CONTENT_WIDTH_PX, "height": 1100})


async def test_one_run_and_venue_prints_twenty_odd_rows_a_page_with_room_to_sign(
    client: Any, world: World, db: Db, chromium: Browser
) -> None:
    await _seed(db)
    base, page = await _signed_in(client, db, chromium, "clerk-print", "reviewer", "a")

    await page.goto(f"{base}{CLASS_PAGE}/print/signin_sheet")
    whole_pdf = await page.pdf(format="A4")
    choices = page.locator(".print-choices a")
    await expect(choices).to_have_text(
        [f"第1期 · {MAIN}", f"第1期 · {BRANCH}", f"第2期 · {MAIN}", f"第2期 · {BRANCH}"]
    )
    await choices.nth(2).click()
    await expect(page).to_have_url(re.compile(r"/signin-sheet\?run=2&venue=WF-MAIN$"))

    sheets = page.locator("article.sheet")
    await expect(sheets).to_have_count(1)
    subtitle = f"乡村振兴专题培训班（C01） · 第2期 · {MAIN}"
    await expect(sheets.locator(".sheet-sub")).to_have_text(subtitle)
    table = page.locator("table.signin")
    await expect(table).to_have_attribute("data-venue", "WF-MAIN")
    rows = table.locator("tbody tr[data-member]")
    await expect(rows).to_have_count(len(AT_MAIN))
    assert await rows.evaluate_all("rows => rows.map(r => r.dataset.member)") == AT_MAIN
    text = await sheets.inner_text()
    assert "分会场0" not in text and "张学员" not in text  # no other venue, no other run
    assert "young" not in text and not re.search(r"\b[a-z]+-[a-z]+\b", text)

    await _as_printed(page)
    sign_mm = await _mm(page, "table.signin thead th.sign", "width")
    row_mm = await _mm(page, "table.signin tbody tr[data-member]", "height")
    assert sign_mm >= 40, sign_mm
    assert 9 <= row_mm <= 10.5, row_mm
    # Laid out as printed, the 20th row ends inside the first page's printable height.
    top = await page.locator("article.sheet").evaluate("el => el.getBoundingClientRect().top")
    twentieth = await rows.nth(19).evaluate("el => el.getBoundingClientRect().bottom")
    assert (twentieth - top) / PX_PER_MM <= PRINTABLE_MM

    pdf = await page.pdf(format="A4")
    # 40 members and 3 blank rows on two pages: more than 21 rows a page; at 20 it takes three.
    assert pdf_pages(pdf) == 2
    assert pdf_pages(whole_pdf) > pdf_pages(pdf)


async def test_a_branch_venue_prints_only_its_own_sheets(
    client: Any, world: World, db: Db, chromium: Browser
) -> None:
    await _seed(db)
    base, page = await _signed_in(client, db, chromium, "staff-branch", "venue_staff", "a1a")

    answer = await page.goto(f"{base}{CLASS_PAGE}/signin-sheet")
    assert answer is not None and answer.status == 200
    tables = page.locator("table.signin")
    await expect(tables).to_have_count(2)  # run 1 and run 2, at the branch only
    assert await tables.evaluate_all("ts => ts.map(t => t.dataset.venue)") == ["WF-BR", "WF-BR"]
    await expect(page.locator(".print-choices a")).to_have_text(
        [f"第1期 · {BRANCH}", f"第2期 · {BRANCH}"]
    )
    # They do not see the class page: the toolbar leads back to their start page.
    await expect(page.locator(".print-toolbar a").first).to_have_text("← 返回首页")
    members = await page.locator("tr[data-member]").evaluate_all(
        "rows => rows.map(r => r.dataset.member)"
    )
    assert members == ["WF-3", *AT_BRANCH]
    text = await page.locator("body").inner_text()
    assert "主会场0" not in text and "张学员" not in text

    answer = await page.goto(f"{base}{CLASS_PAGE}/signin-sheet?run=2&venue=WF-BR")
    assert answer is not None and answer.status == 200
    await expect(page.locator("tr[data-member]")).to_have_count(len(AT_BRANCH))
    pdf = await page.pdf(format="A4")
    assert pdf_pages(pdf) == 1

    for refused, status in (
        ("/signin-sheet?run=2&venue=WF-MAIN", 404),  # the main venue is not theirs
        ("/signin-sheet?run=3", 404),
        ("/print/signin_sheet", 403),  # the whole class's list is for the organizers
    ):
        answer = await page.goto(f"{base}{CLASS_PAGE}{refused}")
        assert answer is not None and answer.status == status, refused
        assert "主会场0" not in await page.content()

    _, other = await _signed_in(client, db, chromium, "staff-other", "venue_staff", "b1")
    answer = await other.goto(f"{base}{CLASS_PAGE}/signin-sheet")
    assert answer is not None and answer.status == 404  # no run of the class at their venues
    assert "主会场0" not in await other.content() and "王学员" not in await other.content()


async def test_write_in_boxes_are_big_enough_to_write_in(
    client: Any, world: World, db: Db, chromium: Browser
) -> None:
    await seed_class(db)
    base, page = await _signed_in(client, db, chromium, "clerk-forms", "operator", "a1")
    await _as_printed(page)

    await page.goto(f"{base}{CLASS_PAGE}/print/needs_survey")
    await _roomy(page.locator("td.write"), 4)  # 姓名, 所在党组织, 职务, 联系电话
    assert await _mm(page, ".write-in .write-rest", "width") >= 100  # 其他：a line to the edge
    lines = page.locator(".write-line")
    await expect(lines).to_have_count(6)
    assert await _mm(page, ".write-line", "height") >= 10

    await page.goto(f"{base}{CLASS_PAGE}/print/filing_form")
    contact = page.locator("tr", has=page.locator("th", has_text="联系人")).locator("td.write")
    await _roomy(contact, 2)  # the contact and their phone


async def test_a_committee_prints_every_members_registration_form_in_one_document(
    client: Any, world: World, db: Db, chromium: Browser
) -> None:
    await _seed(db)
    base, page = await _signed_in(client, db, chromium, "clerk-cabinet", "reviewer", "a")

    await page.goto(f"{base}/organizations/a1/cabinet?year=2026")
    await page.get_by_role("link", name="批量打印培训登记表").click()
    await expect(page).to_have_url(re.compile(r"/organizations/a1/cabinet/forms\?year=2026$"))
    forms = page.locator("article.registration-form")
    inside = {number for number, _, _ in TRAINEES} | set(AT_MAIN) | set(AT_BRANCH)
    await expect(forms).to_have_count(len(inside))
    shown = await forms.evaluate_all("fs => fs.map(f => f.dataset.member)")
    assert set(shown) == inside and len(shown) == len(inside)
    text = await page.locator(".registration-forms").inner_text()
    for outsider in OUTSIDE:
        assert outsider not in text and f"外单位{outsider}" not in text

    # Names, never codes: the category's name, and the organizer where the topic code was.
    first = page.locator('article.registration-form[data-member="WF-1"]')
    await expect(first.locator(".form-sessions tbody tr")).to_have_count(1)
    await expect(first.locator(".form-sessions thead")).to_contain_text("主办组织")
    await expect(first.locator(".form-sessions tbody tr")).to_contain_text("西泉镇党委")
    await expect(first.locator(".form-sessions tbody tr")).to_contain_text(MAIN)
    assert "XC-01" not in text and not re.search(r"\b[a-z]+-[a-z]+\b", text)
    secretary = page.locator('article.registration-form[data-member="PM-01"] .form-facts')
    await expect(secretary).to_contain_text("党组织书记")
    assert "secretary" not in text and "ordinary" not in text

    pdf = await page.pdf(format="A4")
    assert pdf_pages(pdf) == len(inside)  # one form a page, nothing else printed
