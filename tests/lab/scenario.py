"""One lab broadcast, as the lab tests and bench/township.py run it: a network lab with venues
behind NAT, the server on the host's lab address, a city with those venues as branches, a real
Chromium publishing from the console page, real agents in the venue namespaces; while it runs the
agents' decoded frames, the publisher's own outbound video (getStats) and the machine's load are
polled, so a verdict can say whether the publisher, the path or the machine was slow; afterwards
what the server stored is read back."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import av.filter
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.support.chromium import CHROMIUM, FLAGS, confirm_ending_sync
from tests.support.lab_procs import (
    LabAgent,
    LabAgents,
    LabServer,
    LabTurn,
    lab_server,
    lab_turn,
    stored_samples,
    verified_up_seconds,
)
from tests.support.netlab import Lab, network_lab
from tests.support.procs import add_city, wait_until

PASSWORD = "lab-broadcast-password"
PUBLISHER_FPS_OK = 18  # the fake camera runs at 20 fps
SETTLE_S = 5.0  # after a venue moved to the lighter picture, its rates are measured from here
WAIT_MS = 20_000


@dataclass
class Trace:
    """A venue's decoded-frame count over the broadcast: (monotonic time, frames)."""

    points: list[tuple[float, int]] = field(default_factory=list)
    first_frame_at: float | None = None

    def mean_fps(self, since: float | None = None) -> float:
        """Frames per second from `since` (default: the first frame) to the last point."""
        start = since if since is not None else self.first_frame_at
        if start is None or not self.points:
            return 0.0
        later = [(t, n) for t, n in self.points if t >= start]
        if len(later) < 2:
            return 0.0
        (t0, n0), (t1, n1) = later[0], later[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def freezes_per_minute(self, min_gap_s: float = 0.8) -> float:
        """Polls (about 1 s apart) in which no frame was decoded, per minute: a coarse count
        (polls closer than min_gap_s to the one before are skipped: a 50 ms gap without a
        frame is no stall)."""
        if len(self.points) < 2 or self.first_frame_at is None:
            return 0.0
        later: list[tuple[float, int]] = []
        for t, n in self.points:
            if t >= self.first_frame_at and (not later or t - later[-1][0] >= min_gap_s):
                later.append((t, n))
        if len(later) < 2:
            return 0.0
        stalls = sum(1 for (_, a), (_, b) in itertools.pairwise(later) if b == a)
        minutes = (later[-1][0] - later[0][0]) / 60
        return stalls / minutes if minutes > 0 else 0.0


@dataclass(frozen=True)
class SentVideo:
    """One of the publisher's outbound video streams over the broadcast, from its getStats."""

    mid: str
    width: int
    height: int
    fps: float  # frames encoded per second
    kbps: float  # bytes sent per second, in kbit/s
    pps: float  # RTP packets sent per second
    limited_s: dict[str, float]  # seconds Chromium limited it, by reason (cpu, bandwidth, other)
    encoder: str

    def __str__(self) -> str:
        limited = ", ".join(f"{why} {s:.0f} s" for why, s in self.limited_s.items() if s >= 0.5)
        return (
            f"video mid {self.mid} {self.width}x{self.height} {self.fps:.1f} fps "
            f"{self.kbps:.0f} kbit/s ({self.encoder}; limited: {limited or 'never'})"
        )


@dataclass
class PublisherTrace:
    """The publisher's outbound video streams as getStats reported them: (monotonic time,
    streams)."""

    points: list[tuple[float, list[dict[str, Any]]]] = field(default_factory=list)

    def over(self, since: float, until: float) -> list[SentVideo]:
        """Each stream's rates between the first and the last point within [since, until]."""
        window = [(t, found) for t, found in self.points if since <= t <= until]
        if len(window) < 2:
            return []
        (t0, first), (t1, last) = window[0], window[-1]
        before = {str(stream["mid"]): stream for stream in first}
        sent = []
        for stream in last:
            earlier = before.get(str(stream["mid"]))
            if earlier is None or t1 <= t0 or stream["kind"] != "video":
                continue
            span = t1 - t0
            limited = {
                why: float(stream["limited"].get(why, 0)) - float(earlier["limited"].get(why, 0))
                for why in stream["limited"]
                if why != "none"
            }
            sent.append(
                SentVideo(
                    mid=str(stream["mid"]),
                    width=int(stream["width"]),
                    height=int(stream["height"]),
                    fps=(stream["frames"] - earlier["frames"]) / span,
                    kbps=(stream["bytes"] - earlier["bytes"]) * 8 / span / 1000,
                    pps=(stream["packets"] - earlier["packets"]) / span,
                    limited_s=limited,
                    encoder=str(stream["encoder"]),
                )
            )
        return sorted(sent, key=lambda video: -video.width)

    def audio_pps(self, since: float, until: float) -> float:
        """The audio streams' RTP packets sent per second within [since, until]."""
        window = [(t, found) for t, found in self.points if since <= t <= until]
        if len(window) < 2 or window[-1][0] <= window[0][0]:
            return 0.0
        (t0, first), (t1, last) = window[0], window[-1]

        def packets(found: list[dict[str, Any]]) -> int:
            return sum(int(s["packets"]) for s in found if s["kind"] == "audio")

        return (packets(last) - packets(first)) / (t1 - t0)


@dataclass
class Outcome:
    """What one venue got from the broadcast, and what the publisher and the machine did
    meanwhile (for the verdict's message)."""

    venue: str
    to_first_frame_s: float | None
    mean_fps: float
    freezes_per_min: float
    samples: list[tuple[dt.datetime, str, float | None, int | None]]  # during the broadcast
    up_ratio: float
    qualities: list[tuple[float, str]]  # (seconds after start, stream_quality) as the wall said
    sent: list[SentVideo]  # the publisher's video streams over the broadcast
    load: tuple[float, float]  # the machine's 1-minute load at the start, and its highest since
    turn: list[str]  # the TURN URL the agent chose for each subscription
    downlink: str  # what the venue's rate cap passed and dropped, when it has one
    # Once the venue is on the lighter picture (5 s after it moved there): the packets per second
    # offered to its rate cap (passed or dropped), and the packets per second of its media (the
    # publisher's lighter video and its audio); None without a cap or without the move.
    offered_pps: float | None = None
    media_pps: float | None = None
    ice_paths: frozenset[str] = frozenset()  # how the picture travelled, as the wall said

    @property
    def context(self) -> str:
        """The publisher's side and the machine's load, in words, for assertion messages."""
        cores = os.cpu_count() or 1
        sent = "; ".join(str(video) for video in self.sent) or "nothing measured"
        return (
            f"[{self.slow_side}. {self.venue}: first frame {self.to_first_frame_s} s, "
            f"{self.mean_fps:.1f} fps decoded, {self.freezes_per_min:.1f} stalls/min, "
            f"up {self.up_ratio:.0%}, qualities {self.qualities}, TURN {self.turn or 'none'}, "
            f"ICE path {', '.join(sorted(self.ice_paths)) or 'not reported'}; "
            f"{self.downlink}{self.packet_rates}publisher sent: {sent}; "
            f"machine load {self.load[0]:.2f} at the start, "
            f"up to {self.load[1]:.2f} on {cores} cores]"
        )

    @property
    def packet_rates(self) -> str:
        """The offered and media packet rates, in words ('' when not measured)."""
        if self.offered_pps is None or not self.media_pps:
            return ""
        return (
            f"on the lighter picture: offered {self.offered_pps:.0f} packets/s for media of "
            f"{self.media_pps:.0f} packets/s ({self.offered_pps / self.media_pps:.2f}x); "
        )

    @property
    def publisher_fps(self) -> float:
        """The frame rate of the publisher's fullest stream (0 when unmeasured)."""
        return self.sent[0].fps if self.sent else 0.0

    @property
    def slow_side(self) -> str:
        """Where frames went missing, if they did: the publisher, the machine, or the path and
        the agent (a first reading of the figures in `context`)."""
        cores = os.cpu_count() or 1
        if not self.sent:
            return "the publisher's rate was not measured"
        if self.publisher_fps < PUBLISHER_FPS_OK:
            return f"the publisher itself sent only {self.publisher_fps:.1f} fps"
        if self.load[1] > cores:
            return f"the publisher sent {self.publisher_fps:.1f} fps on an overloaded machine"
        return f"the publisher sent {self.publisher_fps:.1f} fps: missing ones went on the way"


@dataclass
class Scene:
    """A running lab broadcast (see the module's docstring)."""

    lab: Lab
    server: LabServer
    agents: LabAgents
    session_id: str
    tokens: dict[str, str]
    browser: Browser
    page: Page
    tmp: Path
    turn: LabTurn | None = None
    running: dict[str, LabAgent] = field(default_factory=dict)
    traces: dict[str, Trace] = field(default_factory=dict)
    qualities: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    paths: dict[str, set[str]] = field(default_factory=dict)  # each venue's ICE paths on the wall
    publisher: PublisherTrace = field(default_factory=PublisherTrace)
    loads: list[float] = field(default_factory=list)  # 1-minute load at the start and each poll
    # A capped venue's downlink at each poll: (monotonic time, bytes passed, packets passed,
    # packets dropped).
    downlinks: dict[str, list[tuple[float, int, int, int]]] = field(default_factory=dict)
    started_mono: float = 0.0
    last_poll: float = 0.0
    started_utc: dt.datetime | None = None
    ended_utc: dt.datetime | None = None

    def start_agent(self, venue: str, *, on_host: bool = False) -> LabAgent:
        """A real agent in the venue's namespace (on_host: on the host, no NAT). It is told no
        STUN/TURN: it asks the server, which mints credentials for the lab's coturn when the
        scene has one; it trusts that coturn's self-signed certificate through SSL_CERT_FILE."""
        env = self.turn.trust_env() if self.turn is not None else {}
        agent = self.agents.start(
            venue,
            self.tmp / f"agent-{venue}",
            self.server.url,
            self.tokens[venue],
            extra_env=env,
            on_host=on_host,
        )
        wait_until(
            lambda: (agent.status() or {}).get("session"), f"{venue}'s agent has the schedule"
        )
        self.running[venue] = agent
        self.traces[venue] = Trace()
        return agent

    def start_broadcast(self) -> None:
        """Press 开始直播."""
        self.loads.append(os.getloadavg()[0])
        self.started_utc = dt.datetime.now(dt.UTC)
        self.started_mono = time.monotonic()
        self.page.get_by_role("button", name="开始直播").click()

    def poll(self) -> None:
        """One look at every agent's decoded frames (and the wall's qualities)."""
        now = time.monotonic()
        for venue, agent in self.running.items():
            frames = agent.decoded()
            trace = self.traces[venue]
            trace.points.append((now, frames))
            if trace.first_frame_at is None and frames > 0:
                trace.first_frame_at = now
        tiles = self.wall_tiles()
        for venue, quality in self.wall_qualities(tiles).items():
            seen = self.qualities.setdefault(venue, [])
            if not seen or seen[-1][1] != quality:
                seen.append((now - self.started_mono, quality))
        for tile in tiles:
            if tile.get("ice_path"):
                self.paths.setdefault(str(tile["code"]), set()).add(str(tile["ice_path"]))
        self.publisher.points.append((time.monotonic(), self.publisher_video()))
        self.loads.append(os.getloadavg()[0])
        for venue in self.running:
            if self.lab.venue(venue).conditions.downlink_kbit is not None:
                counted = self.lab.downlink_counters(venue)
                self.downlinks.setdefault(venue, []).append((time.monotonic(), *counted))
        self.last_poll = time.monotonic()

    def publisher_video(self) -> list[dict[str, Any]]:
        """What the operator's page sends now: each stream's kind and packets sent; each video
        stream's frames encoded, bytes sent, size, and Chromium's reason for limiting it (cpu,
        bandwidth or none), now and in seconds so far."""
        found: list[dict[str, Any]] = self.page.evaluate(OUTBOUND_RTP)
        return found

    def wall_tiles(self) -> list[dict[str, Any]]:
        """The wall's venues now."""
        wall = self.server.api("GET", f"sessions/{self.session_id}/wall")
        return list(wall.get("venues", []))

    def wall_qualities(self, tiles: list[dict[str, Any]] | None = None) -> dict[str, str]:
        """Each venue's `stream_quality` on the wall, where the wall carries one."""
        found: dict[str, str] = {}
        for tile in self.wall_tiles() if tiles is None else tiles:
            quality = tile.get("stream_quality") or (tile.get("stream") or {}).get("stream_quality")
            if quality:
                found[str(tile["code"])] = str(quality)
        return found

    def wait_first_frames(self, timeout: float = 30) -> None:
        """Poll until every agent decoded a frame."""

        def all_decoding() -> bool:
            self.poll()
            return all(t.first_frame_at is not None for t in self.traces.values())

        wait_until(all_decoding, "every agent decoding the broadcast", timeout=timeout)

    def run_for(self, seconds: float, step: float = 1.0) -> None:
        """Poll about once a second until `seconds` after the start."""
        while time.monotonic() < self.started_mono + seconds:
            self.poll()
            time.sleep(max(0.0, min(step, self.started_mono + seconds - time.monotonic())))
        self.poll()

    def end_broadcast(self) -> None:
        """Press 结束直播 and wait until every agent's final sample reached the server."""
        self.ended_utc = dt.datetime.now(dt.UTC)
        self.page.get_by_role("button", name="结束直播").click()
        expect(self.page.locator("#broadcast-status")).to_have_text("直播已结束。", timeout=WAIT_MS)
        ended = self.ended_utc.replace(microsecond=0)  # the server keeps whole seconds
        for venue in self.running:

            def final_stored(venue: str = venue) -> bool:
                rows = stored_samples(self.server, self.session_id, venue)
                return any(at >= ended for at, *_ in rows)

            wait_until(final_stored, f"{venue}'s final sample stored", timeout=60)

    def outcome(self, venue: str) -> Outcome:
        """What the venue got, from the polls and from what the server stored."""
        assert self.started_utc is not None and self.ended_utc is not None
        trace = self.traces[venue]
        rows = stored_samples(self.server, self.session_id, venue)
        span = (self.ended_utc - self.started_utc).total_seconds()
        up = verified_up_seconds(
            [(at, state) for at, state, *_ in rows], self.started_utc, self.ended_utc
        )
        first = trace.first_frame_at
        agent = self.running[venue]
        return Outcome(
            venue=venue,
            to_first_frame_s=None if first is None else first - self.started_mono,
            mean_fps=trace.mean_fps(),
            freezes_per_min=trace.freezes_per_minute(),
            # The final sample (at the end, "down": the broadcast is over) is not one of them.
            samples=[
                r for r in rows if self.started_utc <= r[0] < self.ended_utc.replace(microsecond=0)
            ],
            up_ratio=up / span if span > 0 else 0.0,
            qualities=list(self.qualities.get(venue, [])),
            sent=self.publisher.over(first or self.started_mono, self.last_poll),
            load=(self.loads[0], max(self.loads)) if self.loads else (0.0, 0.0),
            turn=agent.turn_chosen(),
            downlink=self._downlink(venue),
            ice_paths=frozenset(self.paths.get(venue, ())),
            **self._packet_rates(venue),
        )

    def _packet_rates(self, venue: str) -> dict[str, float]:
        """offered_pps and media_pps of Outcome, when the venue has a cap and moved down."""
        lower = [at for at, quality in self.qualities.get(venue, []) if quality != "high"]
        points = self.downlinks.get(venue, [])
        if not lower or not points:
            return {}
        since = self.started_mono + lower[0] + SETTLE_S
        window = [point for point in points if point[0] >= since]
        videos = self.publisher.over(since, self.last_poll)
        if len(window) < 2 or not videos:
            return {}
        (t0, _, passed0, dropped0), (t1, _, passed1, dropped1) = window[0], window[-1]
        offered = (passed1 + dropped1 - passed0 - dropped0) / (t1 - t0)
        media = videos[-1].pps + self.publisher.audio_pps(since, self.last_poll)
        return {"offered_pps": offered, "media_pps": media}

    def _downlink(self, venue: str) -> str:
        """The cap's throughput and drops, over the broadcast and over its last 10 s."""
        points = self.downlinks.get(venue, [])
        if len(points) < 2:
            return ""
        parts = []
        for label, since in (("broadcast", points[0][0]), ("last 10 s", points[-1][0] - 10)):
            window = [point for point in points if point[0] >= since]
            (t0, sent0, _, dropped0), (t1, sent1, _, dropped1) = window[0], window[-1]
            if t1 > t0:
                kbps = (sent1 - sent0) * 8 / (t1 - t0) / 1000
                parts.append(f"{label} {kbps:.0f} kbit/s passed, {dropped1 - dropped0} dropped")
        return f"downlink cap: {'; '.join(parts)}; "


def _city(server: LabServer, branches: Sequence[str]) -> tuple[str, dict[str, str]]:
    """A main venue and these branch venues, a session running now; answers its id and the
    branch venues' tokens."""
    add_city(server.api, server.env, "lab", "实验市", PASSWORD)
    server.api("POST", "venues", {"code": "m", "name": "主会场", "org_code": "lab"})
    tokens = {
        code: str(
            server.api(
                "POST", "venues", {"code": code, "name": f"{code}分会场", "org_code": "lab"}
            )["token"]
        )
        for code in branches
    }
    now = dt.datetime.now(dt.UTC)
    session: dict[str, Any] = server.api(
        "POST",
        "sessions",
        {
            "title": "网络实验课",
            "topic_code": "LAB-" + now.strftime("%H%M%S"),
            "credit_hours": 1,
            "starts_at": (now - dt.timedelta(minutes=2)).isoformat(),
            "ends_at": (now + dt.timedelta(minutes=58)).isoformat(),
            "main_venue": "m",
            "branch_venues": list(branches),
            "roster": [],
        },
    )
    return str(session["id"]), tokens


# Keeps the page's peer connections within reach, to read what the publisher sends.
KEEP_PEERS = """
(() => {
  const Original = window.RTCPeerConnection;
  window.__labPeers = [];
  window.RTCPeerConnection = function (...args) {
    const pc = new Original(...args);
    window.__labPeers.push(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = Original.prototype;
})();
"""
OUTBOUND_RTP = """
async () => {
  const found = [];
  for (const pc of window.__labPeers || []) {
    if (pc.connectionState === "closed") { continue; }
    (await pc.getStats()).forEach((s) => {
      if (s.type === "outbound-rtp") {
        found.push({mid: s.mid || String(s.ssrc), kind: s.kind, packets: s.packetsSent || 0,
          fps: s.framesPerSecond || 0,
          width: s.frameWidth || 0, height: s.frameHeight || 0, frames: s.framesEncoded || 0,
          bytes: s.bytesSent || 0, limitation: s.qualityLimitationReason || "",
          limited: s.qualityLimitationDurations || {}, encoder: s.encoderImplementation || ""});
      }
    });
  }
  return found;
}
"""


def _console(browser: Browser, server: LabServer, session_id: str) -> Page:
    page = browser.new_context().new_page()
    confirm_ending_sync(page)
    page.add_init_script(KEEP_PEERS)
    page.goto(f"{server.url}/login")
    page.fill("input[name=username]", "op")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)
    page.goto(f"{server.url}/sessions/{session_id}/console")
    expect(page.locator("#live-status")).to_have_text("实时更新中", timeout=WAIT_MS)
    expect(page.locator("#camera option")).not_to_have_count(0, timeout=WAIT_MS)
    return page


def lesson_clip(path: Path, seconds: float = 3, fps: int = 20) -> Path:
    """A Y4M clip (640x360, 20 fps) for Chromium's fake camera that takes the page's full
    picture to ~1.2–1.4 Mbit/s (its cap is 1.5), where Chromium's default fake picture (a clock
    on a still background, 1280x720 here) takes ~0.6–0.7 Mbit/s: FFmpeg's Mandelbrot zoom,
    slightly blurred, moderate detail in continuous motion, played forwards then backwards so the
    loop has no cut. libvpx VP8 realtime encodes it in ~5 ms a frame here and Chromium keeps
    20 fps with both pictures (its qualityLimitationReason stays "none"); at a fixed quantizer
    of 15 it takes ~0.85 Mbit/s, so it is no noise that only the cap limits. (Whole-frame
    noise, tried before, needs so many bits that the encoder dropped to 1–3 fps.)"""
    width, height = 640, 360
    graph = av.filter.Graph()
    chain = [
        graph.add("mandelbrot", f"size={width}x{height}:rate={fps}"),
        graph.add("format", "yuv420p"),
        graph.add("gblur", "sigma=1"),  # softens the finest detail, as a real camera does
        graph.add("buffersink"),
    ]
    for before, after in itertools.pairwise(chain):
        before.link_to(after)
    graph.configure()
    pictures = []
    for _ in range(int(seconds * fps)):
        frame = graph.pull()
        assert isinstance(frame, av.VideoFrame)
        planes = []
        for plane in frame.planes:
            raw, stride = bytes(plane), plane.line_size
            rows = range(plane.height)
            planes.append(b"".join(raw[row * stride : row * stride + plane.width] for row in rows))
        pictures.append(b"".join(planes))
    with path.open("wb") as clip:
        clip.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for picture in [*pictures, *pictures[-2:0:-1]]:
            clip.write(b"FRAME\n")
            clip.write(picture)
    return path


@contextlib.contextmanager
def lab_broadcast(
    template: tuple[Path, str],
    tmp: Path,
    venues: Sequence[str],
    *,
    with_turn: bool = False,
    lesson: bool = False,
) -> Iterator[Scene]:
    """The lab, coturn when asked (the server then mints credentials for it), the server, the
    city, the operator's console open (not yet broadcasting); the camera is Chromium's default
    fake one, or with lesson, lesson_clip's ~1 Mbit/s picture. Everything is stopped and torn
    down on exit."""
    with network_lab(venues) as lab, contextlib.ExitStack() as stack:
        turn = stack.enter_context(lab_turn(lab, tmp / "turn")) if with_turn else None
        server = lab_server(template, tmp / "server", lab, turn)
        stack.callback(server.stop)
        session_id, tokens = _city(server, venues)
        agents = LabAgents(lab)
        stack.callback(agents.stop_all)
        playwright = stack.enter_context(sync_playwright())
        # getUserMedia needs a secure context: http://<lab address> is not one unless told.
        args = [*FLAGS, f"--unsafely-treat-insecure-origin-as-secure={server.url}"]
        if lesson:
            args.append(f"--use-file-for-fake-video-capture={lesson_clip(tmp / 'lesson.y4m')}")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        stack.callback(browser.close)
        page = _console(browser, server, session_id)
        yield Scene(lab, server, agents, session_id, tokens, browser, page, tmp, turn)
