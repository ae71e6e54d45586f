"""A session's roster replaced by a CSV file past the old 1 MiB limit (issue 14, item 8),
through server/api/rosters.put_roster: read in chunks, all lines or none, bad lines named with
their number, the column in Chinese and the value, and never a member of another county."""

from __future__ import annotations

import io

from tests.support.api_site import counts
from tests.support.client import Client
from tests.support.databases import Db
from tests.support.many_members import import_members
from tests.support.scoping_city import rostered, scheduled_with_a1
from tests.support.world import World

LINES = 30_000  # about 1.3 MB: past the 1 MiB every JSON body keeps
NUMBER = "R{:07d}-COUNTY-ROSTER"
ZH = {"Content-Type": "text/csv", "Accept-Language": "zh"}


def _roster(last: str | None = None) -> bytes:
    lines = ["A1,FY\n"] + [f"{NUMBER.format(i)},FY\n" for i in range(LINES)]
    if last is not None:
        lines[-1] = last
    return ("党员编号,会场代码\n" + "".join(lines)).encode()


async def test_a_roster_file_past_1_mib_replaces_the_roster_whole(
    client: Client, world: World, db: Db
) -> None:
    session_id, operator = await scheduled_with_a1(client, world)
    await import_members(db, (NUMBER.format(i) for i in range(LINES)))
    path = f"/api/v1/sessions/{session_id}/roster"
    answer = await client.put(path, data=io.BytesIO(_roster()), headers={**operator, **ZH})
    assert answer.status == 200, await answer.text()
    assert (await answer.json())["roster_size"] == LINES + 1
    assert len(await rostered(db)) == LINES + 1


async def test_bad_lines_and_other_counties_leave_the_roster_alone(
    client: Client, world: World, db: Db
) -> None:
    session_id, operator = await scheduled_with_a1(client, world)
    await import_members(db, (NUMBER.format(i) for i in range(LINES)))
    before = await counts(db)
    path = f"/api/v1/sessions/{session_id}/roster"
    headers = {**operator, **ZH}

    bad = _roster(last=f"{NUMBER.format(LINES - 1)},TC\n")  # 天长市's venue, not the session's
    answer = await client.put(path, data=io.BytesIO(bad), headers=headers)
    assert answer.status == 422, await answer.text()
    rows = (await answer.json())["error"]["rows"]
    assert rows == [
        {"line": LINES + 2, "message": "部分内容有误： 会场代码: 不是本场次的会场 (“TC”)"}
    ]

    outside = "党员编号,会场代码\nA1,FY\nB1,FY\n".encode()
    answer = await client.put(path, data=io.BytesIO(outside), headers=headers)
    assert answer.status == 422
    assert "天长" not in await answer.text()

    unicode_text = "党员编号,会场代码\nA1,FY\n".encode("utf-16")
    answer = await client.put(path, data=io.BytesIO(unicode_text), headers=headers)
    assert answer.status == 422
    assert "UTF-16" in (await answer.json())["error"]["rows"][0]["message"]

    answer = await client.put(path, json={"roster": []}, headers=operator)
    assert answer.status == 422
    assert await counts(db) == before
    assert await rostered(db) == ["A1"]
