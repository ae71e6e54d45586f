"""The agent's optional staff PIN: without it no local process reads the roster or checks anyone
in through the staff page; the room screen stays open; wrong PINs back off."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import async_playwright, expect

from tests.support.agent_run import AgentRun, start_agent
from tests.support.chromium import CHROMIUM, FLAGS, needs_chromium
from tests.support.procs import agent_cli, clean_env, free_port
from venue_agent.outbox import Outbox
from venue_agent.schedule import ScheduleBook
from venue_agent.staff_pin import PinThrottle, StaffGate, StaffPin

TOKEN = "hv_" + "p" * 40
PIN = "472913"
PIN_FORM = "请输入会场工作人员口令"
STAFF_API = [
    ("GET", "/status.json"),
    ("GET", "/roster?q=%E5%BC%A0"),  # 张
    ("POST", "/checkins"),
    ("POST", "/scan-kind"),
]


def _seed_roster(data_dir: Path) -> None:
    """A session open now, with 张三 and 李四 on its roster (as if fetched from the server)."""
    now = datetime.now(UTC)
    data_dir.mkdir(parents=True, exist_ok=True)
    outbox = Outbox.open(data_dir)
    try:
        raw = {
            "sessions": [
                {
                    "id": "s1",
                    "title": "党的二十大精神专题培训",
                    "topic_code": "T1",
                    "starts_at": (now - timedelta(minutes=10)).isoformat(),
                    "ends_at": (now + timedelta(hours=2)).isoformat(),
                    "state": "live",
                    "role": "branch",
                    "roster": [
                        {"member_no": "M001", "name": "张三", "card_code": "C001"},
                        {"member_no": "M002", "name": "李四", "card_code": None},
                    ],
                }
            ]
        }
        ScheduleBook().replace(outbox, raw, '"v1"', now.isoformat())
    finally:
        outbox.close()


def _checkins(data_dir: Path) -> list[str]:
    db = sqlite3.connect(data_dir / "agent.sqlite3", timeout=30)
    try:
        rows = db.execute("SELECT payload FROM outbox WHERE kind = 'checkin'").fetchall()
    finally:
        db.close()
    return [str(row[0]) for row in rows]


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[AgentRun]:
    """An offline agent with a roster and a staff PIN (from its variable)."""
    _seed_roster(tmp_path / "data")
    agent = start_agent(
        tmp_path / "agent.log",
        "--data-dir",
        str(tmp_path / "data"),
        HETANG_AGENT_SERVER=f"http://127.0.0.1:{free_port()}",
        HETANG_AGENT_TOKEN=TOKEN,
        HETANG_AGENT_STAFF_PIN=PIN,
    )
    yield agent
    assert agent.stop() == 0


def _browser() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def _csrf(http: aiohttp.ClientSession, ui: str, path: str = "/") -> str:
    async with http.get(ui + path) as response:
        html = await response.text()
    return html.split('name="csrf-token" content="')[1].split('"')[0]


async def _call(
    http: aiohttp.ClientSession, method: str, url: str, csrf: str, body: object = None
) -> tuple[int, Any, aiohttp.ClientResponse]:
    async with http.request(method, url, json=body, headers={"X-CSRF-Token": csrf}) as response:
        answer = await response.json(content_type=None)
        return response.status, answer, response


def _refused(status: int, answer: Any) -> bool:
    return (
        status == 401
        and set(answer) == {"error"}
        and answer["error"]["code"] == "unauthorized"
        and isinstance(answer["error"]["message"], str)
    )


async def test_the_staff_page_asks_for_the_pin_first(guarded: AgentRun, tmp_path: Path) -> None:
    ui = guarded.ui
    checkin = {"session_id": "s1", "code": "M002", "kind": "in", "field": "member_no"}
    bodies: dict[str, object] = {"/checkins": checkin, "/scan-kind": {"kind": "out"}}
    async with _browser() as http:
        async with http.get(ui + "/") as response:
            form = await response.text()
        assert response.status == 200 and PIN_FORM in form
        assert "名单查找" not in form and "张三" not in form
        csrf = await _csrf(http, ui)
        for method, path in STAFF_API:
            status, answer, _ = await _call(http, method, ui + path, csrf, bodies.get(path))
            assert _refused(status, answer), (path, status, answer)
            assert "张三" not in str(answer)
        assert _checkins(tmp_path / "data") == []
        # The room screen shows only the lesson: it stays open.
        async with http.get(ui + "/screen") as response:
            assert response.status == 200
        status, state, _ = await _call(http, "GET", ui + "/screen/state", csrf)
        assert status == 200 and state["live"] is False
        # A wrong PIN, then the right one.
        status, answer, _ = await _call(http, "POST", ui + "/login", csrf, {"pin": "000000"})
        assert _refused(status, answer) and answer["error"]["message"] == "口令不正确"
        assert not list(http.cookie_jar)
        status, answer, response = await _call(http, "POST", ui + "/login", csrf, {"pin": PIN})
        assert status == 200, answer
        cookie = response.cookies[f"hetang_staff_{guarded.ui_port}"]
        assert cookie["httponly"] is True and cookie["samesite"] == "Strict"
        assert cookie["path"] == "/"
        async with http.get(ui + "/") as page:
            assert "名单查找" in await page.text() and page.status == 200
        status, roster, _ = await _call(http, "GET", ui + "/roster?q=%E5%BC%A0", csrf)
        assert status == 200 and [m["name"] for m in roster["members"]] == ["张三"]
        status, receipt, _ = await _call(http, "POST", ui + "/checkins", csrf, checkin)
        assert status == 200 and receipt["queued"] and receipt["known"]
        assert len(_checkins(tmp_path / "data")) == 1
        # Without the CSRF token a cookie is not enough.
        async with http.post(ui + "/checkins", json=checkin) as response:
            assert response.status == 403
    # Another local process, with a cookie of its own making.
    async with _browser() as stranger:
        csrf = await _csrf(stranger, ui, "/screen")  # the screen carries the same CSRF token
        forged = {f"hetang_staff_{guarded.ui_port}": "guess"}
        async with stranger.get(ui + "/roster?q=", cookies=forged) as response:
            assert response.status == 401
        status, answer, _ = await _call(stranger, "POST", ui + "/checkins", csrf, checkin)
        assert _refused(status, answer)
    assert len(_checkins(tmp_path / "data")) == 1


async def test_wrong_pins_back_off(guarded: AgentRun) -> None:
    ui = guarded.ui
    async with _browser() as http:
        csrf = await _csrf(http, ui)
        for guess in range(5):
            status, answer, _ = await _call(http, "POST", ui + "/login", csrf, {"pin": f"{guess}"})
            assert _refused(status, answer)
        # The next try waits, the right PIN too (it is not even compared).
        status, answer, response = await _call(http, "POST", ui + "/login", csrf, {"pin": PIN})
        assert status == 429 and answer["error"]["code"] == "rate_limited", answer
        wait = int(response.headers["Retry-After"])
        assert 1 <= wait <= 2
        assert not list(http.cookie_jar)
        await asyncio.sleep(wait + 0.2)
        status, answer, _ = await _call(http, "POST", ui + "/login", csrf, {"pin": PIN})
        assert status == 200, answer
        status, _, _ = await _call(http, "GET", ui + "/status.json", csrf)
        assert status == 200
        # A body that is not a PIN is an error of its own, and costs nothing.
        status, answer, _ = await _call(http, "POST", ui + "/login", csrf, {"pin": 472913})
        assert status == 422 and answer["error"]["code"] == "invalid"


def test_the_pin_file_must_be_private(tmp_path: Path) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o640)
    args = ["run", "--server", "http://127.0.0.1:9", "--data-dir", str(tmp_path / "data")]
    args += ["--staff-pin-file", str(pin_file)]
    env = {"HETANG_AGENT_TOKEN": TOKEN}
    refused = agent_cli(*args, env=clean_env(**env))
    assert refused.returncode == 2, refused.stderr
    assert f"--staff-pin-file: {pin_file} can be read by other users" in refused.stderr
    assert "Traceback" not in refused.stderr
    pin_file.write_text("12\n")
    pin_file.chmod(0o600)
    short = agent_cli(*args, env=clean_env(**env))
    assert short.returncode == 2 and "at least 4 characters" in short.stderr


@needs_chromium
async def test_staff_sign_in_with_chromium(tmp_path: Path) -> None:
    _seed_roster(tmp_path / "data")
    pin_file = tmp_path / "pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o600)
    agent = await asyncio.to_thread(
        start_agent,
        tmp_path / "agent.log",
        "--data-dir",
        str(tmp_path / "data"),
        "--staff-pin-file",
        str(pin_file),
        HETANG_AGENT_SERVER=f"http://127.0.0.1:{free_port()}",
        HETANG_AGENT_TOKEN=TOKEN,
    )
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            try:
                context = await browser.new_context()
                page = await context.new_page()
                problems: list[str] = []
                page.on("pageerror", lambda error: problems.append(str(error)))
                await page.goto(agent.ui + "/")
                await expect(page.get_by_text(PIN_FORM)).to_be_visible()
                await page.locator("#pin").fill("000000")
                await page.locator("#pin").press("Enter")
                await expect(page.locator("#message")).to_have_text("口令不正确")
                await page.locator("#pin").fill(PIN)
                await page.get_by_role("button", name="进入").click()
                await expect(page.get_by_text("名单查找")).to_be_visible()
                await expect(page.locator("#roster")).to_contain_text("张三")
                cookies = await context.cookies()
                assert [(c["name"], c["httpOnly"], c["sameSite"]) for c in cookies] == [
                    (f"hetang_staff_{agent.ui_port}", True, "Strict")
                ]
                assert await page.evaluate("document.cookie") == ""
                assert problems == []
            finally:
                await browser.close()
    finally:
        assert await asyncio.to_thread(agent.stop) == 0


def test_the_wait_after_wrong_pins_doubles_up_to_five_minutes_and_is_forgotten() -> None:
    now = [1000.0]
    throttle = PinThrottle(lambda: now[0])
    waits = []
    for _ in range(13):
        assert throttle.wait_s() == 0  # every try waited for is heard
        throttle.failed()
        waits.append(throttle.wait_s())
        now[0] += waits[-1]
    assert waits == [0, 0, 0, 0, 2, 4, 8, 16, 32, 64, 128, 256, 300]
    gate = StaffGate(StaffPin(PIN), 8765, throttle)
    assert gate.try_pin(PIN).admitted  # heard, it starts the count again
    assert gate.admits(gate.cookie_value) and not gate.admits("guess") and not gate.admits(None)
    assert not gate.admits("口令")  # not ASCII: refused, not an error
    for _ in range(5):
        assert not gate.try_pin("wrong").admitted
    refused = gate.try_pin(PIN)  # not even compared
    assert not refused.admitted and refused.retry_after_s == 2
    # Wrong PINs a quarter of an hour old no longer count.
    now[0] += 900
    assert gate.try_pin(PIN).admitted
