"""Member imports on the members page, in a real Chromium (issue 14, item 8): a file past the old
1 MiB limit goes up with a progress line and is imported; a file with one bad line shows that
line's number, the column in Chinese and the value given, and nothing is stored; a UTF-16 file
("Unicode text" from Excel) is answered with the hint to save it as CSV UTF-8."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import func, select

from server.db.models import AuditEntry, Member
from server.db.session import read_session
from tests.support.browser import add_user
from tests.support.chromium import launched, needs_chromium, signed_in_page
from tests.support.world import World

pytestmark = [needs_chromium, pytest.mark.sqlite_only]

ROWS = 30_000  # about 1.3 MB: past the 1 MiB every other form keeps
HEADER = "党员编号,姓名,组织代码,类别,卡号\r\n"


@pytest.fixture
async def admin_page(client: Any, db: Any, world: World) -> AsyncIterator[tuple[Page, str]]:
    """A county administrator signed in to Chromium, and the server's base URL."""
    await add_user(db, "import-admin", "admin", "a")
    base = str(client.make_url("/")).rstrip("/")
    async with launched() as browser:
        yield await signed_in_page(browser, base, "import-admin"), base


def member_file(rows: int, bad: str | None = None) -> str:
    lines = [f"E{i:07d},党员{i},a1,普通党员,EK{i:07d}\r\n" for i in range(rows)]
    if bad is not None:
        lines[-1] = bad
    return HEADER + "".join(lines)


async def stored(db: Any) -> tuple[int, int]:
    """Members numbered E…, and their member.import audit entries."""
    async with read_session(db) as session:
        members = await session.scalar(
            select(func.count()).select_from(Member).where(Member.member_no.like("E%"))
        )
        audited = await session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "member.import")
        )
    return int(members or 0), int(audited or 0)


async def upload(page: Page, base: str, path: Path) -> None:
    """Open the import panel on the members page, choose the file and press 导入."""
    await page.goto(f"{base}/members")
    await page.get_by_text("从 CSV 文件导入党员").click()
    await page.set_input_files("form[data-import-progress] input[type=file]", str(path))
    await page.locator("form[data-import-progress] button[type=submit]").click()


async def test_a_large_file_is_imported_with_progress_and_a_bad_line_is_named(
    admin_page: tuple[Page, str], db: Any, tmp_path: Path
) -> None:
    page, base = admin_page

    good = tmp_path / "党员.csv"
    good.write_text(member_file(ROWS), encoding="utf-8-sig")
    await upload(page, base, good)
    progress = page.locator("[data-progress]")
    await progress.wait_for(state="visible")
    await expect(progress).to_contain_text(re.compile("正在上传文件：|正在检查并写入党员：已用"))
    notice = page.get_by_text(f"导入完成：新增党员 {ROWS} 名，更新 0 名，0 名无变化。")
    await notice.wait_for(timeout=120_000)
    assert await stored(db) == (ROWS, ROWS)

    bad = tmp_path / "有错.csv"
    changed = member_file(ROWS, bad=f"E{ROWS - 1:07d},改名,a1,领导,\r\n")
    bad.write_text(changed.replace("党员0,", "新名字0,"), encoding="utf-8-sig")
    await upload(page, base, bad)
    row = page.locator(".bad-lines tbody tr")
    await row.first.wait_for(timeout=120_000)
    assert await row.count() == 1
    cells = await row.first.locator("td").all_inner_texts()
    assert cells[0] == str(ROWS + 1)  # the header is line 1
    assert "类别" in cells[1] and "领导" in cells[1]
    assert await page.get_by_text("有 1 行存在问题，未导入任何数据。").count() == 1
    assert await stored(db) == (ROWS, ROWS)  # nothing of the bad file, not even line 2
    async with read_session(db) as session:
        first = await session.scalar(select(Member.name).where(Member.member_no == "E0000000"))
    assert first == "党员0"


async def test_a_utf16_file_is_answered_with_the_encoding_hint(
    admin_page: tuple[Page, str], db: Any, tmp_path: Path
) -> None:
    page, base = admin_page
    unicode_text = tmp_path / "unicode.csv"
    unicode_text.write_bytes(member_file(20).encode("utf-16"))  # with its BOM, as Excel saves
    await upload(page, base, unicode_text)
    hint = page.get_by_text("文件是 UTF-16 文本")
    await hint.wait_for(timeout=60_000)
    assert "CSV UTF-8（逗号分隔）" in await hint.inner_text()
    assert await stored(db) == (0, 0)
