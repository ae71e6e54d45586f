"""Self check-in by phone (扫码签到, issue 16) end to end: a real server, a real agent, and a
real Chromium. A 390 px phone reads the rotating code off the agent's room screen, opens it and
checks a member in; the agent's staff page and the operator's venue wall show it within 2 s. An
expired code, a code made for another venue, a second member from the same phone and guessed
member numbers are refused in Chinese (the second member kept for the reviewer), and nothing
is stored for any of them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.chromium import console_sync, launched_sync, needs_chromium
from tests.support.procs import Agents, Server, add_city, http_json, wait_until

pytestmark = [needs_chromium, pytest.mark.slow, pytest.mark.solo]

PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "locale": "zh-CN",
}
PASSWORD = "op-password-123456"
ROTATION_S, MARGIN_S = 15, 2
SHOWN_WITHIN_MS = 2000


@pytest.fixture
def chromium() -> Iterator[Browser]:
    with launched_sync() as browser:
        yield browser


def city(server: Server) -> dict[str, str]:
    """A city with members who hold ID digits, a main venue and two branch venues, and a
    session on now at all three; answers the ids and the branch venues' tokens."""
    tag = uuid.uuid4().hex[:6]
    org = f"city-{tag}"
    add_city(server.api, server.env, org, "滁州市", PASSWORD)
    for number, last4 in ((f"{tag}-1", "1234"), (f"{tag}-2", "567X"), (f"{tag}-3", "0003")):
        member = {
            "member_no": number,
            "name": f"党员{number[-1]}",
            "org_code": org,
            "category": "ordinary",
            "id_last4": last4,
        }
        server.api("POST", "members", member)
    server.api("POST", "venues", {"code": f"M-{tag}", "name": "主会场", "org_code": org})
    b1 = server.api("POST", "venues", {"code": f"B1-{tag}", "name": "西泉分会场", "org_code": org})
    b2 = server.api("POST", "venues", {"code": f"B2-{tag}", "name": "铜城分会场", "org_code": org})
    starts = datetime.now(UTC) - timedelta(minutes=5)
    session = server.api(
        "POST",
        "sessions",
        {
            "title": "党的二十届四中全会精神专题培训",
            "topic_code": f"T-{tag}",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=2)).isoformat(),
            "credit_hours": 2,
            "main_venue": f"M-{tag}",
            "branch_venues": [f"B1-{tag}", f"B2-{tag}"],
            "roster": [{"member_no": f"{tag}-{n}", "venue": f"B1-{tag}"} for n in (1, 2, 3)],
        },
    )
    return {
        "tag": tag,
        "session": session["id"],
        "b1": f"B1-{tag}",
        "b2": f"B2-{tag}",
        "b1_token": b1["token"],
        "b2_token": b2["token"],
    }


def self_checkins(server: Server) -> list[tuple[str, str, str | None]]:
    """(member_no, kind, review_flags) of every stored self check-in."""
    return [
        (str(number), str(kind), flags)
        for number, kind, flags in server.query(
            "SELECT m.member_no, c.kind, c.review_flags FROM checkins c "
            "JOIN members m ON m.id = c.member_id WHERE c.source = 'self' ORDER BY c.id"
        )
    ]


def screen_code(screen: Page) -> str:
    """The address the room screen's QR code holds now, read off the page."""
    expect(screen.locator("#checkin")).to_be_visible(timeout=30_000)
    expect(screen.locator("#qr svg")).to_be_visible()
    url = screen.locator("#qr").get_attribute("data-url")
    assert url
    return url


def phone_checks(phone: Page, member_no: str, last4: str, button: str = "#check-in") -> str:
    """Fill the phone page's form and press a button; answers what the page says."""
    phone.fill("#member-no", member_no)
    phone.fill("#id-last4", last4)
    phone.click(button)
    expect(phone.locator("#answer")).not_to_have_text("…", timeout=10_000)
    expect(phone.locator("#answer")).not_to_be_empty()
    return str(phone.locator("#answer").text_content())


def test_a_phone_checks_in_from_the_room_screen_and_the_wall_and_staff_page_show_it(
    server: Server, agents: Agents, chromium: Browser, tmp_path: Path
) -> None:
    ids = city(server)
    tag, session_id = ids["tag"], ids["session"]
    agent = agents.start(tmp_path / "agent", server.url, ids["b1_token"])
    wait_until(
        lambda: http_json("GET", agent.ui + "/screen/code")[1].get("url"),
        "the agent's room screen to show a self check-in code",
    )
    wall_context, wall = console_sync(chromium, server.url, session_id, "op", PASSWORD)
    staff = chromium.new_context().new_page()
    staff.goto(agent.ui + "/")
    expect(staff.locator("#session")).to_contain_text("党的二十届四中全会精神专题培训")
    screen = chromium.new_context(viewport={"width": 1280, "height": 720}).new_page()
    screen.goto(agent.ui + "/screen")
    expect(screen.locator("#checkin")).to_contain_text("请用手机自己的网络（4G/5G）扫码")
    expect(screen.locator("#checkin")).to_contain_text("扫码枪签到")
    tile = wall.locator(f'article.tile[data-code="{ids["b1"]}"] p.count strong')
    expect(tile).to_have_text("0")

    # The phone scans the screen's code and checks 党员1 in.
    url = screen_code(screen)
    first_seen = time.time()
    assert url.startswith(server.url + f"/c/{ids['b1']}/{session_id}/")
    phone_context = chromium.new_context(**PHONE)
    phone = phone_context.new_page()
    phone.goto(url)
    expect(phone.locator("#venue-name")).to_have_text("西泉分会场")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    answer = phone_checks(phone, f"{tag}-1", "1234")
    assert answer.startswith(f"签到成功：党员1（{tag}-1）"), answer
    expect(wall.locator(f'article.tile[data-code="{ids["b1"]}"] p.count strong')).to_have_text(
        "1", timeout=SHOWN_WITHIN_MS
    )
    expect(staff.locator("#present li")).to_contain_text(
        f"党员1（{tag}-1）", timeout=SHOWN_WITHIN_MS
    )
    assert self_checkins(server) == [(f"{tag}-1", "in", None)]

    # A second member from the same phone: refused, kept for the reviewer, the first flagged.
    answer = phone_checks(phone, f"{tag}-2", "567X")
    assert "这部手机本场次已为另一名党员签到" in answer, answer
    assert self_checkins(server) == [(f"{tag}-1", "in", "shared_phone")]
    kept = server.query("SELECT reason, session_ref FROM quarantined_checkins")
    assert kept == [("phone_shared", session_id)]

    # A code made for another venue: B1's code with B2 put in it (its signature then fails).
    forged = url.replace(f"/c/{ids['b1']}/", f"/c/{ids['b2']}/")
    other = chromium.new_context(**PHONE).new_page()
    other.goto(forged)
    expect(other.locator("#refusal")).to_have_text("二维码无效，请重新扫描会场大屏上的二维码。")
    expect(other.locator("#self-checkin")).to_have_count(0)

    # Guessed member numbers from a fresh phone: the same answer for each, then a lock.
    guesser = chromium.new_context(**PHONE).new_page()
    guesser.goto(screen_code(screen))
    for guess in range(5):
        answer = phone_checks(guesser, f"{tag}-9{guess}", "1234")
        assert answer == "党员编号或身份证号后四位不正确。", answer
    answer = phone_checks(guesser, f"{tag}-3", "0003")
    assert "尝试次数过多" in answer or "输错次数过多" in answer, answer
    assert self_checkins(server) == [(f"{tag}-1", "in", "shared_phone")]

    # The screen rotates its code; the first one, once its window and margin are over, is
    # refused as expired.
    expired_at = (int(first_seen // ROTATION_S) + 1) * ROTATION_S + MARGIN_S + 0.5
    time.sleep(max(0.0, expired_at - time.time()))
    assert screen_code(screen) != url
    late = chromium.new_context(**PHONE).new_page()
    late.goto(url)
    expect(late.locator("#refusal")).to_have_text("二维码已过期，请重新扫描会场大屏上的二维码。")
    assert self_checkins(server) == [(f"{tag}-1", "in", "shared_phone")]
    wall_context.close()
