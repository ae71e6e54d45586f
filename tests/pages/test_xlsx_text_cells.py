"""Security review, issue 11, finding 6: every workbook the server writes keeps user text as text.
A member or an organization named like a formula (`=HYPERLINK(…)`, `+1+1`, `@SUM(A1)`) or an
error code (`#N/A`) is a string cell in attendance.xlsx, cabinet.xlsx, the monthly report's
workbook and the month's results (/api/v1/attendance.xlsx, streamed), never a live formula; the
data is built through the real API and each workbook is downloaded through its real HTTP
address."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import load_workbook

from tests.support.client import Client
from tests.support.world import World

TZ = ZoneInfo("Asia/Shanghai")
# Text a spreadsheet would run or show as something else if it were not kept as a string cell.
TRICKY = ('=HYPERLINK("http://x","y")', "+1+1", "@SUM(A1)", "-2+3", "=1", "#N/A")
ORG_NAME = TRICKY[0]


async def _post(client: Client, world: World, path: str, body: Any) -> Any:
    answer = await client.post(path, json=body, headers=world.auth("admin", "all"))
    assert answer.status in (200, 201), await answer.text()
    return await answer.json()


async def _download(client: Client, world: World, path: str) -> bytes:
    answer = await client.get(path, headers=world.auth("admin", "all"))
    assert answer.status == 200, await answer.text()
    assert answer.content_type.endswith("spreadsheetml.sheet")
    return await answer.read()


def _cells(body: bytes) -> tuple[dict[str, str], list[tuple[str, str, Any]]]:
    """Every text cell of the workbook (value → data type), and every formula or error cell."""
    book = load_workbook(io.BytesIO(body))
    found: dict[str, str] = {}
    live: list[tuple[str, str, Any]] = []
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if cell.data_type in ("f", "e"):
                    live.append((sheet.title, cell.coordinate, cell.value))
                if isinstance(cell.value, str):
                    found[cell.value] = cell.data_type
    return found, live


async def _build(client: Client, world: World) -> str:
    """Committee x1 named like a formula, under county a, with one member per tricky name on
    the roster of a session at its venue, held and finalized; the session's public id."""
    await _post(
        client,
        world,
        "/api/v1/organizations",
        {"code": "x1", "name": ORG_NAME, "level": "committee", "parent_code": "a"},
    )
    for number, name in enumerate(TRICKY, start=1):
        body = {"member_no": f"X{number}", "name": name, "org_code": "x1", "category": "ordinary"}
        await _post(client, world, "/api/v1/members", body)
    await _post(client, world, "/api/v1/venues", {"code": "VX", "name": "会场", "org_code": "x1"})
    starts = datetime.now(TZ).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=1)
    created = await _post(
        client,
        world,
        "/api/v1/sessions",
        {
            "title": "培训班",
            "topic_code": "T1",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=3)).isoformat(),
            "credit_hours": 3,
            "main_venue": "VX",
            "branch_venues": [],
            "policy": {"require_stream_verification": False},
            "roster": [{"member_no": f"X{n}", "venue": "VX"} for n in range(1, len(TRICKY) + 1)],
        },
    )
    session_id: str = created["id"]
    for action in ("start", "end", "finalize"):
        await _post(client, world, f"/api/v1/sessions/{session_id}/{action}", None)
    return session_id


async def test_every_workbook_writes_user_text_as_string_cells(
    client: Client, world: World
) -> None:
    session_id = await _build(client, world)
    now = datetime.now(TZ)
    held = now - timedelta(days=1)  # the session's day, as _build schedules it
    workbooks = {
        "attendance": await _download(client, world, f"/sessions/{session_id}/attendance.xlsx"),
        "cabinet": await _download(
            client, world, f"/organizations/x1/cabinet.xlsx?year={now.year}"
        ),
        "report": await _download(client, world, f"/reports/monthly.xlsx?org=a&month={now:%Y-%m}"),
        "month": await _download(
            client, world, f"/api/v1/attendance.xlsx?org=a&month={held:%Y-%m}"
        ),
    }
    expected = {
        "attendance": set(TRICKY),  # the members' names
        "cabinet": {*TRICKY, ORG_NAME},  # the members' names and their organization's
        "report": {ORG_NAME},  # the child organization's name
        "month": {*TRICKY, ORG_NAME},  # the members' names and their organization's
    }
    problems = []
    for kind, body in workbooks.items():
        cells, live = _cells(body)
        problems += [(kind, "formula or error cell", found) for found in live]
        problems += [
            (kind, "not a string cell", (text, cells.get(text)))
            for text in sorted(expected[kind])
            if cells.get(text) != "s"
        ]
    assert problems == []
