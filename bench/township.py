"""A township's links, in the network lab (tests/support/netlab.py; needs root, nftables, tc,
coturn and Debian's Chromium): for each condition one short real broadcast — Chromium publishing
from the console, one real `hetang-agent` behind its venue's NAT router — and its time to first
frame, mean decoded fps, freezes per minute, verified up-time, the quality the relay chose and when
it switched, what the publisher sent meanwhile (its getStats) and the machine's load; then one
broadcast to four venues measuring the relay's CPU per subscriber while all get the full picture
(one quality) and, in the same run, while two of them are capped (two qualities). The camera is
the ~1 Mbit/s lesson clip (tests/lab/scenario.py lesson_clip); agents get TURN as in production,
from the server. Traffic stays on this machine (loopback and the lab's own namespaces).

    python -m bench.township [--seconds 20]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.lab.scenario import Outcome, Scene, lab_broadcast
from tests.support.netlab import lab_unavailable
from tests.support.procs import server_template


@dataclass(frozen=True)
class Condition:
    """One link to try: what the router does, and how the agent connects."""

    name: str
    apply: Callable[[Scene], None]
    with_turn: bool = False
    on_host: bool = False


def _nothing(scene: Scene) -> None:
    return None


def _only_tls(scene: Scene) -> None:
    assert scene.turn is not None
    scene.lab.block_udp("b1")
    scene.lab.block_tcp("b1", scene.turn.plain_port)


CONDITIONS = (
    Condition("clean (host, no NAT)", _nothing, on_host=True),
    Condition("NAT", _nothing),
    Condition("UDP blocked, TURN/TCP", lambda s: s.lab.block_udp("b1"), with_turn=True),
    Condition("UDP+TCP blocked, TURN/TLS", _only_tls, with_turn=True),
    Condition("2 % loss", lambda s: s.lab.set_loss("b1", 2)),
    Condition("5 % loss", lambda s: s.lab.set_loss("b1", 5)),
    Condition("10 % loss", lambda s: s.lab.set_loss("b1", 10)),
    Condition("400 kbit/s cap", lambda s: s.lab.cap_downlink("b1", 400)),
    Condition("1 Mbit/s cap", lambda s: s.lab.cap_downlink("b1", 1000)),
)


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _row(name: str, got: Outcome) -> str:
    first = "—" if got.to_first_frame_s is None else f"{got.to_first_frame_s:5.2f}"
    switches = ", ".join(f"{quality}@{at:.0f}s" for at, quality in got.qualities) or "—"
    sent = " + ".join(f"{v.height}p {v.fps:.0f}fps {v.kbps:.0f}k" for v in got.sent) or "—"
    turn = got.turn[-1].split(":", 1)[0] + "/" + got.turn[-1].rsplit("=", 1)[-1] if got.turn else ""
    return (
        f"{name:<26} {first:>6} {got.mean_fps:6.1f} {got.freezes_per_min:8.1f} "
        f"{got.up_ratio * 100:6.0f}%  {switches:<22} {sent:<32} "
        f"{got.load[0]:4.2f}/{got.load[1]:4.2f} {turn}"
    )


def run_condition(
    template: tuple[Path, str], tmp: Path, condition: Condition, seconds: float
) -> str:
    """One broadcast under the condition; its row of the table."""
    with lab_broadcast(template, tmp, ("b1",), with_turn=condition.with_turn, lesson=True) as scene:
        condition.apply(scene)
        scene.start_agent("b1", on_host=condition.on_host)
        scene.start_broadcast()
        with contextlib.suppress(AssertionError):  # no first frame: the row says so
            scene.wait_first_frames(timeout=20)
        scene.run_for(seconds)
        scene.end_broadcast()
        return _row(condition.name, scene.outcome("b1"))


def run_cpu(template: tuple[Path, str], tmp: Path, seconds: float) -> list[str]:
    """Four venues: relay CPU per subscriber with one quality served, then with two."""
    venues = ("b1", "b2", "b3", "b4")
    lines = []
    with lab_broadcast(template, tmp, venues, lesson=True) as scene:
        for venue in venues:
            scene.start_agent(venue)
        scene.start_broadcast()
        scene.wait_first_frames()
        assert scene.server.process is not None
        pid = scene.server.process.pid
        scene.run_for(5)  # settle
        for label, capped in (
            ("one quality (no cap)", ()),
            ("two qualities (2 capped)", venues[:2]),
        ):
            for venue in capped:
                scene.lab.cap_downlink(venue, 400)
            scene.run_for(time.monotonic() - scene.started_mono + 8)  # let the relay switch
            before, began = _cpu_s(pid), time.monotonic()
            scene.run_for(time.monotonic() - scene.started_mono + seconds)
            used = (_cpu_s(pid) - before) / (time.monotonic() - began)
            qualities = scene.wall_qualities()
            fps = {venue: round(scene.traces[venue].mean_fps(since=began), 1) for venue in venues}
            lines.append(
                f"{label:<26} server CPU {used * 100:5.1f} % of a core, "
                f"{used * 100 / len(venues):4.1f} % per subscriber; qualities {qualities}; "
                f"decoded fps {fps}; load {os.getloadavg()[0]:.2f}"
            )
        scene.end_broadcast()
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="broadcast length each")
    parser.add_argument("--only", help="run only conditions whose name contains this")
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the lab is torn down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    why = lab_unavailable()
    if why:
        print(f"township: {why}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="township-") as raw:
        root = Path(raw)
        template = server_template(root / "template")
        print(
            f"{'condition':<26} {'first':>6} {'fps':>6} {'freeze/m':>8} {'up':>7}  "
            f"{'quality@switch':<22} {'publisher sent':<32} load start/max, TURN"
        )
        for index, condition in enumerate(CONDITIONS):
            if args.only and args.only not in condition.name:
                continue
            try:
                print(
                    run_condition(template, root / f"c{index}", condition, args.seconds), flush=True
                )
            except Exception as error:  # one failed condition must not hide the others
                print(f"{condition.name:<26} failed: {error!r}", flush=True)
        if not args.only:
            for line in run_cpu(template, root / "cpu", args.seconds):
                print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
