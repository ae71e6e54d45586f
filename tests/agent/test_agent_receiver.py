"""The live broadcast reaches real `hetang-agent`s: the test publishes from an aiortc peer to a real
server; each agent subscribes, decodes, and its health samples land in the server's database; the
room screen plays the same packets; ending the broadcast brings a `down` sample; a lesson whose
sound stops is `down`, one broadcast without sound is judged on its picture."""

from __future__ import annotations

import asyncio
import fractions
import json
import re
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import AUDIO_PTIME, AudioStreamTrack, MediaStreamError, MediaStreamTrack
from av import AudioFrame
from playwright.async_api import async_playwright, expect

from passthrough.peer import IceSettings, before_gathering, new_peer
from tests.support.chromium import CHROMIUM, FLAGS, needs_chromium
from tests.support.procs import Agent, Agents, Server, http_json
from venue_agent.client import ServerClient
from venue_agent.link import Link
from venue_agent.outbox import PENDING, REJECTED, SENT, NewEvent, Outbox
from venue_agent.uploader import SAMPLES, Uploader

pytestmark = [pytest.mark.slow, pytest.mark.solo]
LOOPBACK = IceSettings(hosts=("127.0.0.1",))
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
T = TypeVar("T")
# As a kiosk room screen is started: sound plays without a click.
CHROMIUM_FLAGS = [*FLAGS, "--autoplay-policy=no-user-gesture-required"]


async def eventually(check: Callable[[], Awaitable[T | None]], what: str, within: float) -> T:
    """Poll without blocking the event loop (the publisher lives on it)."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(0.25)


def _city(server: Server, venues: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """Venues (the first one main), a session running now; answers its id and venue tokens."""
    server.api(
        "POST",
        "organizations",
        {"code": "cz", "name": "滁州市", "level": "city", "parent_code": None},
    )
    tokens = {
        venue: server.api(
            "POST", "venues", {"code": venue, "name": f"{venue}会场", "org_code": "cz"}
        )["token"]
        for venue in venues
    }
    now = datetime.now(UTC)
    session = server.api(
        "POST",
        "sessions",
        {
            "title": "党的二十届三中全会精神专题辅导",
            "topic_code": "LIVE-1",
            "credit_hours": 1,
            "starts_at": (now - timedelta(minutes=1)).isoformat(),
            "ends_at": (now + timedelta(minutes=30)).isoformat(),
            "main_venue": venues[0],
            "branch_venues": list(venues[1:]),
            "roster": [],
        },
    )
    return session["id"], tokens


@asynccontextmanager
async def publishing(
    server: Server, session_id: str, tracks: Sequence[MediaStreamTrack] | None = None
) -> AsyncIterator[RTCPeerConnection]:
    """The operator's camera and microphone (aiortc's synthetic tracks, unless given) on air."""
    pc = new_peer(LOOPBACK)
    for track in tracks if tracks is not None else (VideoStreamTrack(), AudioStreamTrack()):
        pc.addTrack(track)
    before_gathering(pc, LOOPBACK)
    try:
        await pc.setLocalDescription(await pc.createOffer())
        async with aiohttp.ClientSession() as http:
            response = await http.post(
                f"{server.url}/api/v1/sessions/{session_id}/broadcast",
                json={"sdp": pc.localDescription.sdp, "type": "offer"},
                headers={"Authorization": f"Bearer {server.admin_token}"},
            )
            answer = await response.json()
            assert response.status == 200, answer
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        yield pc
    finally:
        await pc.close()


def _samples(server: Server, session_id: str, venue: str) -> list[dict[str, Any]]:
    rows = server.query(
        "SELECT s.at, s.state, s.fps, s.frames_decoded, s.bitrate_kbps, s.loss_pct, s.jitter_ms "
        "FROM stream_samples s JOIN venues v ON v.id = s.venue_id "
        "JOIN training_sessions t ON t.id = s.session_id "
        "WHERE t.public_id = ? AND v.code = ? ORDER BY s.at",
        session_id,
        venue,
    )
    names = ("at", "state", "fps", "frames_decoded", "bitrate_kbps", "loss_pct", "jitter_ms")
    return [dict(zip(names, row, strict=True)) for row in rows]


async def receiving_well(
    server: Server, session_id: str, venue: str, within: float, *, after: int = 0
) -> None:
    """Wait for a sample of this venue (past the first `after`) showing decoded frames at a
    watchable rate."""

    async def check() -> bool:
        samples = await asyncio.to_thread(_samples, server, session_id, venue)
        return any(
            s["state"] == "good" and s["frames_decoded"] > 0 and s["fps"] >= 15
            for s in samples[after:]
        )

    await eventually(check, f"a good sample from {venue}", within)


async def _drain(track: MediaStreamTrack, frames: list[float]) -> None:
    try:
        while True:
            await track.recv()
            frames.append(time.monotonic())
    except MediaStreamError:
        return


@asynccontextmanager
async def watching_screen(agent: Agent) -> AsyncIterator[list[float]]:
    """What the room's browser does: load /screen, offer recvonly audio+video to the agent."""
    frames: list[float] = []
    drains: list[asyncio.Task[None]] = []
    pc = new_peer(LOOPBACK)
    try:
        async with aiohttp.ClientSession() as http:
            page = await (await http.get(agent.ui + "/screen")).text()
            found = CSRF_META.search(page)
            assert found is not None and "等待主会场开始直播" in page
            for kind in ("video", "audio"):
                pc.addTransceiver(kind, direction="recvonly")
            before_gathering(pc, LOOPBACK)
            await pc.setLocalDescription(await pc.createOffer())
            offer = {"sdp": pc.localDescription.sdp, "type": "offer"}
            refused = await http.post(agent.ui + "/screen/offer", json=offer)
            assert refused.status == 403, "an offer without the page's token is refused"
            response = await http.post(
                agent.ui + "/screen/offer", json=offer, headers={"X-CSRF-Token": found.group(1)}
            )
            answer = await response.json()
            assert response.status == 200, answer
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        for transceiver in pc.getTransceivers():  # the tracks exist once the answer is in
            counted = frames if transceiver.kind == "video" else []
            drains.append(asyncio.create_task(_drain(transceiver.receiver.track, counted)))
        yield frames
    finally:
        await pc.close()
        for task in drains:
            task.cancel()
        await asyncio.gather(*drains, return_exceptions=True)


def agent_states(
    server: Server, venues: tuple[str, ...], state: str
) -> Callable[[], Awaitable[bool]]:
    """A check for eventually(): every venue's last heartbeat said this state."""

    async def check() -> bool:
        rows = await asyncio.to_thread(server.query, "SELECT code, agent_state FROM venues")
        return all(dict(rows).get(venue) == state for venue in venues)

    return check


def more_than(frames: list[float], count: int) -> Callable[[], Awaitable[bool]]:
    """A check for eventually(): more frames than `count` have come."""

    async def check() -> bool:
        return len(frames) > count

    return check


def _journaled(agent: Agent) -> list[tuple[dict[str, Any], str]]:
    """(the sample, journal state) of every sample the agent journaled."""
    db = sqlite3.connect(agent.data_dir / "agent.sqlite3", timeout=30)
    try:
        rows = db.execute(
            "SELECT payload, state FROM outbox WHERE kind = 'sample' ORDER BY seq"
        ).fetchall()
    finally:
        db.close()
    return [(json.loads(payload), state) for payload, state in rows]


def _journal_samples(agent: Agent) -> list[tuple[str, str]]:
    """(state of the sample, journal state) of every sample the agent journaled."""
    return [(sample["state"], state) for sample, state in _journaled(agent)]


async def test_agents_receive_the_broadcast_report_its_health_and_see_it_end(
    server: Server, agents: Agents, tmp_path: Path
) -> None:
    venues = ("m", "b1", "b2")
    session_id, tokens = _city(server, venues)
    early = {
        venue: await asyncio.to_thread(agents.start, tmp_path / venue, server.url, tokens[venue])
        for venue in ("b1", "b2")
    }
    status, body = await asyncio.to_thread(http_json, "GET", early["b1"].ui + "/screen/state")
    assert status == 200 and body["live"] is False
    async with publishing(server, session_id):
        for venue in early:
            await receiving_well(server, session_id, venue, within=20)
        # An agent started while the broadcast is on joins at once (told when it connects).
        late = await asyncio.to_thread(agents.start, tmp_path / "m", server.url, tokens["m"])
        started = time.monotonic()
        await receiving_well(server, session_id, "m", within=20)
        assert time.monotonic() - started < 15
        # The heartbeat says so at once: the operator's venue wall shows who receives.
        await eventually(agent_states(server, venues, "receiving"), "receiving heartbeats", 10)
        # The staff page's status shows the stream.
        stream = (await asyncio.to_thread(late.status) or {})["stream"]
        assert stream["state"] in ("good", "degraded") and stream["session_id"] == session_id
        assert stream["fps"] > 0 and stream["bitrate_kbps"] > 0
        # The room screen plays what the agent receives, without a second upstream connection.
        async with watching_screen(early["b1"]) as frames:
            await eventually(more_than(frames, 30), "the screen's frames", 15)
        # The operator ends the broadcast: each agent reports `down`, and stops sampling.
        status, _ = await asyncio.to_thread(
            http_json,
            "DELETE",
            f"{server.url}/api/v1/sessions/{session_id}/broadcast",
            None,
            {"Authorization": f"Bearer {server.admin_token}"},
        )
        assert status == 200
    for venue in venues:

        async def ended(venue: str = venue) -> bool:
            samples = await asyncio.to_thread(_samples, server, session_id, venue)
            return bool(samples) and samples[-1]["state"] == "down"

        await eventually(ended, f"the final down sample of {venue}", 15)
    await eventually(agent_states(server, venues, "idle"), "idle heartbeats", 10)
    count = {venue: len(_samples(server, session_id, venue)) for venue in venues}
    await asyncio.sleep(6)  # more than one sampling interval
    assert count == {venue: len(_samples(server, session_id, venue)) for venue in venues}
    for agent in (*early.values(), late):
        journal = _journal_samples(agent)
        assert journal and all(state == "sent" for _, state in journal)
        assert journal[-1][0] == "down"
        assert (agent.status() or {})["stream"]["state"] == "idle"
    status, body = await asyncio.to_thread(http_json, "GET", early["b1"].ui + "/screen/state")
    assert body["live"] is False


async def test_the_screen_and_the_samples_outlive_a_publisher_that_drops(
    server: Server, agents: Agents, tmp_path: Path
) -> None:
    session_id, tokens = _city(server, ("m", "b1"))
    agent = await asyncio.to_thread(agents.start, tmp_path / "b1", server.url, tokens["b1"])
    async with publishing(server, session_id):
        await receiving_well(server, session_id, "b1", within=20)
        async with watching_screen(agent) as frames:
            await eventually(more_than(frames, 30), "the screen's frames", 15)
            async with publishing(server, session_id) as publisher:
                # A second publisher takes over (the operator's browser reloaded): the screen
                # and the agent's connection go on.
                await eventually(more_than(frames, len(frames) + 60), "frames after it", 15)
                await publisher.close()  # and then it drops off the network

                async def down() -> int:
                    samples = await asyncio.to_thread(_samples, server, session_id, "b1")
                    return len(samples) if samples[-1]["state"] == "down" else 0

                seen = await eventually(down, "a down sample", 20)
                count = len(frames)
            async with publishing(server, session_id):  # the operator publishes again
                await receiving_well(server, session_id, "b1", within=20, after=seen)
                await eventually(more_than(frames, count + 30), "frames on the same screen", 20)
    samples = await asyncio.to_thread(_samples, server, session_id, "b1")
    states = [sample["state"] for sample in samples]
    assert "down" in states and states[-1] == "good", states
    frames_decoded = [sample["frames_decoded"] for sample in samples]
    assert frames_decoded == sorted(frames_decoded), "a running count across resubscriptions"


def _sample(at: datetime, state: str = "good") -> dict[str, Any]:
    return {
        "at": at.isoformat(),
        "state": state,
        "bitrate_kbps": 1000.0,
        "fps": 30.0,
        "loss_pct": 0.0,
        "jitter_ms": 3.0,
        "freezes": 0,
        "frames_decoded": 150,
    }


def _journal(outbox: Outbox, session_id: str, *samples: dict[str, Any]) -> list[str]:
    events = [
        NewEvent(str(uuid.uuid4()), "sample", session_id, sample, sample["at"])
        for sample in samples
    ]
    outbox.add(events)
    return [event.event_id for event in events]


async def test_samples_go_through_the_outbox_and_a_refusal_is_final(
    server: Server, tmp_path: Path
) -> None:
    session_id, tokens = _city(server, ("m", "b1"))
    outbox = Outbox.open(tmp_path)
    start = datetime.now(UTC).replace(microsecond=0)
    at = [start + timedelta(seconds=5 * n) for n in range(8)]
    try:
        async with aiohttp.ClientSession() as http:
            client = ServerClient(http, server.url, tokens["b1"], "test")
            uploader = Uploader(outbox, client, Link(), lanes=[SAMPLES])
            good = _journal(outbox, session_id, _sample(at[0]), _sample(at[1], "degraded"))
            stranger = _journal(outbox, "nosuchsession", _sample(at[2]))
            assert await uploader.drain()
            # The server goes away: samples wait in the journal, none is lost.
            await asyncio.to_thread(server.stop)
            waiting = _journal(outbox, session_id, _sample(at[3]), _sample(at[4], "down"))
            assert await uploader.step() is not None
            assert {e.state for e in outbox.get(waiting)} == {PENDING}
            await asyncio.to_thread(server.start)
            assert await uploader.drain()
            malformed = _journal(outbox, session_id, _sample(at[5], "sideways"))
            assert await uploader.drain()
            assert await uploader.drain()  # a refused sample is never sent again
            # A figure past what a lesson can show (issue 13's jitter, from an agent without
            # bounds) is stored at its bound: the sample and those sent with it are kept.
            absurd = {**_sample(at[6]), "jitter_ms": 820_398.0, "fps": 500.0}
            kept = _journal(outbox, session_id, absurd, _sample(at[7]))
            assert await uploader.drain()
    finally:
        settled = {e.event_id: (e.state, e.reason) for e in outbox.get([*good, *waiting, *kept])}
        refused = {e.event_id: (e.state, e.reason) for e in outbox.get([*stranger, *malformed])}
        outbox.close()
    assert set(settled.values()) == {(SENT, None)}
    assert refused[stranger[0]] == (REJECTED, "http_404 not_found")
    assert refused[malformed[0]] == (REJECTED, "http_422 invalid")
    stored = _samples(server, session_id, "b1")
    assert [s["state"] for s in stored] == ["good", "degraded", "good", "down", "good", "good"]
    assert [(s["fps"], s["jitter_ms"]) for s in stored[-3:]] == [
        (30.0, 3.0),
        (120.0, 10_000.0),
        (30.0, 3.0),
    ]


class Microphone(MediaStreamTrack):
    """Silence in 20 ms frames, as a quiet room's microphone sends it; `on = False` cuts it off
    (its time goes on) while the picture goes on."""

    kind = "audio"
    RATE = 8000

    def __init__(self) -> None:
        super().__init__()
        self.on = True
        self._next: float | None = None
        self._pts = 0

    async def recv(self) -> AudioFrame:
        samples = int(AUDIO_PTIME * self.RATE)
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            now = time.monotonic()
            self._next = now if self._next is None else self._next
            await asyncio.sleep(max(0.0, self._next - now))
            self._next += AUDIO_PTIME
            self._pts += samples
            if self.on:
                break
        frame = AudioFrame(format="s16", layout="mono", samples=samples)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.pts, frame.sample_rate = self._pts, self.RATE
        frame.time_base = fractions.Fraction(1, self.RATE)
        return frame


def _sampled(agent: Agent, after: int, state: str) -> Callable[[], Awaitable[dict[str, Any]]]:
    """A check for eventually(): a sample of this state journaled past the first `after`, with
    a watchable picture (the agent's journal has what the server does not keep: audio_pct)."""

    async def check() -> dict[str, Any]:
        journal = await asyncio.to_thread(_journaled, agent)
        found = [s for s, _ in journal[after:] if s["state"] == state and s["fps"] >= 15]
        return found[0] if found else {}

    return check


async def test_a_lesson_whose_sound_stops_is_down_until_it_is_back(
    server: Server, agents: Agents, tmp_path: Path
) -> None:
    session_id, tokens = _city(server, ("m", "b1"))
    agent = await asyncio.to_thread(agents.start, tmp_path / "b1", server.url, tokens["b1"])
    microphone = Microphone()
    async with publishing(server, session_id, (VideoStreamTrack(), microphone)):
        heard = await eventually(_sampled(agent, 0, "good"), "a good sample", 20)
        assert heard["audio_pct"] >= 90
        microphone.on = False
        cut = len(await asyncio.to_thread(_journaled, agent))
        silent = await eventually(_sampled(agent, cut, "down"), "a down sample", 15)
        assert silent["audio_pct"] < 50 and silent["fps"] >= 15, silent
        microphone.on = True
        back = len(await asyncio.to_thread(_journaled, agent))
        heard = await eventually(_sampled(agent, back, "good"), "a good sample again", 15)
        assert heard["audio_pct"] >= 50
    # The server has the same verdicts: a picture without sound was not up.
    stored = await asyncio.to_thread(_samples, server, session_id, "b1")
    assert any(s["state"] == "down" and s["fps"] >= 15 for s in stored), stored


async def test_a_lesson_broadcast_without_sound_is_judged_on_its_picture(
    server: Server, agents: Agents, tmp_path: Path
) -> None:
    session_id, tokens = _city(server, ("m", "b1"))
    agent = await asyncio.to_thread(agents.start, tmp_path / "b1", server.url, tokens["b1"])
    async with publishing(server, session_id, (VideoStreamTrack(),)):
        await receiving_well(server, session_id, "b1", within=20)
        await eventually(_sampled(agent, 0, "good"), "a good sample journaled", 10)
    journal = await asyncio.to_thread(_journaled, agent)
    assert all(sample["audio_pct"] is None for sample, _ in journal), journal


@needs_chromium
async def test_the_room_screen_plays_in_chromium(
    server: Server, agents: Agents, tmp_path: Path
) -> None:
    session_id, tokens = _city(server, ("m", "b1"))
    agent = await asyncio.to_thread(agents.start, tmp_path / "b1", server.url, tokens["b1"])
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = await browser.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(str(error)))
            await page.goto(agent.ui + "/screen")
            notice = page.locator("#notice")
            await expect(notice).to_contain_text("等待主会场开始直播", timeout=5000)
            async with publishing(server, session_id):
                await expect(notice).to_be_hidden(timeout=20_000)
                await expect(page.locator("#title")).to_have_text("党的二十届三中全会精神专题辅导")
                played = await page.evaluate("document.getElementById('video').currentTime")
                await asyncio.sleep(1.5)
                video = await page.evaluate(
                    "(() => { const v = document.getElementById('video');"
                    " return [v.videoWidth, v.currentTime, v.muted]; })()"
                )
                assert video[0] == 640 and video[1] > played, video
                assert video[2] is False, "sound plays"
            await asyncio.to_thread(
                http_json,
                "DELETE",
                f"{server.url}/api/v1/sessions/{session_id}/broadcast",
                None,
                {"Authorization": f"Bearer {server.admin_token}"},
            )
            await expect(notice).to_contain_text("等待主会场开始直播", timeout=10_000)
            assert problems == []
        finally:
            await browser.close()
