"""The encoded pass-through relay against aiortc's MediaRelay (decode once, re-encode per
subscriber), in one run: a publisher sends 640x360 VP8 at 30 fps (~1 Mbit/s) to a relay process,
and N subscribers receive it (two decode every frame, the rest receive without decoding, many to
a process). For each relay and N: the relay's CPU (total and per subscriber), the decoding
subscribers' frame rate and time to first frame, the light ones' frame rate. Prints the ratio
of CPU per subscriber, MediaRelay / pass-through at equal N, and what one decoding subscriber
process costs (a proxy for the venue agent).

With --two-qualities: pass-through with one quality against pass-through with two (the publisher
sends a second video track, 320x180 at ~250 kbit/s beside 640x360 at ~1 Mbit/s, and every other
subscriber is fed from it), at 256 subscribers unless --counts says otherwise; prints the relay's
CPU for both and their ratio.

With --recording: pass-through with the broadcast recorded into a WebM as it relays (the
server's Recorder, no re-encoding) against without, at 128 subscribers unless --counts says
otherwise, alternating; prints the relay's CPU for both, what recording adds, and what a
three-hour lesson's file weighs at 1 Mbit/s.

    python bench/relay.py [--quick] [--counts 1,8,32] [--logs DIR] [--agent-pid PID]
    python bench/relay.py --two-qualities [--counts 256]
    python bench/relay.py --recording [--counts 128]
    python bench/relay.py --media janus [--counts 128,256]

With --media janus: the built-in pass-through relay against a Janus VideoRoom (a real Janus
process on a veth address; needs root), the same publisher and subscribers (they answer Janus's
offers); prints the CPU per subscriber of both at each N and their ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import signal
import statistics
import sys
import time
from pathlib import Path
from types import FrameType

import av

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import free_port, peak_rss_mb, temp_dir
from bench.rtc_janus import print_janus, running_janus
from bench.rtc_procs import (
    Child,
    ChildFailed,
    CpuSample,
    ProcessCost,
    process_cost,
    process_group,
    rss_mb,
)
from bench.rtc_report import (
    BASE,
    JANUS,
    LABELS,
    PASS,
    PASS2,
    PASSREC,
    Mark,
    Result,
    print_qualities,
    print_recording,
    print_table,
    print_verdicts,
    print_viewer_cost,
    summarise,
)

DECODING = 2  # subscribers that decode; the others are light
LIGHT_PER_PROCESS = 64
JOINS_AT_ONCE = 4  # per subscriber process
SLICES = 5  # the window is measured in slices; figures are medians over them


@dataclasses.dataclass(frozen=True)
class Plan:
    """Which subscriber counts, and how long to warm up and to measure."""

    counts: tuple[int, ...]
    warmup_s: float
    window_s: float
    light_mode: str = "count"  # or "tap" (see --light-mode)
    follow_remb: bool = False  # the publisher lowers its bitrate when the relay's REMB says so
    kinds: tuple[str, ...] = (PASS, BASE)
    logs: Path | None = None  # keep every process's stderr here (default: a temporary directory)


FULL = Plan((1, 8, 32, 128, 256), warmup_s=5, window_s=10)
QUICK = Plan((1, 8), warmup_s=2, window_s=4)
QUALITIES = Plan((256,), warmup_s=5, window_s=10, kinds=(PASS, PASS2))
RECORDING = Plan((128,), warmup_s=5, window_s=20, kinds=(PASS, PASSREC))
JANUS_PLAN = Plan((128, 256), warmup_s=5, window_s=10, kinds=(PASS, JANUS))


STARTED = time.monotonic()


def progress(message: str) -> None:
    """A progress line on stderr."""
    print(f"[{time.monotonic() - STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def split(total: int, parts: int) -> list[int]:
    """`total` spread as evenly as possible over `parts`."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def run_scenario(kind: str, n: int, plan: Plan, log_dir: Path) -> Result:
    """Fresh relay, publisher and subscribers; warm up, then measure over the window."""
    result = Result(kind, n)
    began = time.monotonic()
    url = f"http://127.0.0.1:{free_port()}"
    join_budget = 30 + 0.6 * n
    lifetime = str(join_budget * 2 + plan.warmup_s + plan.window_s + 60)
    common = ["--url", url, "--lifetime", lifetime]
    name = f"{kind}-{n}"
    with contextlib.ExitStack() as janus_stack, process_group(log_dir) as children:
        janus = janus_stack.enter_context(running_janus(log_dir, name)) if kind == JANUS else None

        def start(role: str, module: str, args: list[str]) -> Child:
            child = Child(f"{name}-{role}", module, args, log_dir)
            children.append(child)
            return child

        try:
            layers = ["--layers", "2"] if kind == PASS2 else []
            recording = log_dir / f"{name}.webm"
            record = ["--record", str(recording)] if kind == PASSREC else []
            signalling = ["--janus-url", janus.url] if janus is not None else []
            relay = start(
                "relay",
                "bench.rtc_relay_server",
                [
                    "--kind",
                    PASS if kind in (PASS2, PASSREC) else kind,
                    *layers,
                    *record,
                    *signalling,
                    "--port",
                    url.rsplit(":", 1)[1],
                    "--lifetime",
                    lifetime,
                ],
            )
            relay.expect("ready", 30)
            remb = ["--follow-remb"] if plan.follow_remb else []
            publisher = start(
                "publisher", "bench.rtc_clients", ["publisher", *remb, *layers, *common]
            )
            publisher.expect("ready", 30)
            answering = ["--answering"] if janus is not None else []
            decoding = min(DECODING, n)
            light = n - decoding
            groups = split(light, math.ceil(light / LIGHT_PER_PROCESS)) if light else []
            progress(f"{LABELS[kind]} N={n}: {light} light subscribers in {len(groups)} processes")
            joins = [
                start(
                    f"light{i}",
                    "bench.rtc_clients",
                    [
                        "subscribers",
                        "--light",
                        str(k),
                        "--light-mode",
                        plan.light_mode,
                        "--concurrency",
                        str(JOINS_AT_ONCE),
                        *answering,
                        *common,
                    ],
                )
                for i, k in enumerate(groups)
            ]
            ready = [child.expect("ready", join_budget) for child in joins]
            # The decoding subscribers join last, so their first frame is a join to a busy relay.
            viewer = start(
                "decoding",
                "bench.rtc_clients",
                ["subscribers", "--decode", str(decoding), *answering, *common],
            )
            joins.append(viewer)
            ready.append(viewer.expect("ready", 60))
            result.joined = sum(r["connected"] for r in ready)
            result.join_s = time.monotonic() - began
            errors = sorted({e for r in ready for e in r["errors"]})
            if result.joined < n:
                progress(f"  only {result.joined}/{n} joined: {errors[:2]}")
            progress(
                f"  {result.joined}/{n} joined in {result.join_s:.1f} s; "
                f"warming up {plan.warmup_s:.0f} s"
            )
            time.sleep(plan.warmup_s)
            # With Janus the media go through Janus's process: it is the one measured as the
            # relay (the signalling process, idle once everyone joined, counts as load).
            pids = [child.pid for child in children]
            if janus is not None:
                pids = [janus.pid, *pids]
            progress(f"  measuring {plan.window_s:.0f} s")
            marks = [mark(children, pids)]
            for _ in range(SLICES):
                time.sleep(plan.window_s / SLICES)
                marks.append(mark(children, pids))
            summarise(result, marks)
            if kind == PASSREC:
                before, after = marks[0][0][0], marks[-1][0][0]  # the relay's counters
                spent = after["recording_cpu_s"] - before["recording_cpu_s"]
                result.recording_cpu = 100 * spent / (after["t"] - before["t"])
            if n == 1 and kind == PASS:
                (_, first), (_, last) = marks[0], marks[-1]
                result.viewer_cost = ProcessCost(
                    first.percent(last, viewer.pid),
                    rss_mb(viewer.pid),
                    peak_rss_mb(viewer.pid),
                )
        except ChildFailed as error:
            lines = str(error).strip().splitlines()
            result.error = lines[0] + (f" ... {lines[-1]}" if len(lines) > 1 else "")
            progress(f"  FAILED: {error}")
    if kind == PASSREC and not result.error:
        result.recorded_bps = _recorded_bps(recording)
    progress(
        f"  {LABELS[kind]} N={n}: relay {result.relay_cpu:.1f} %, "
        f"decoded {result.decoded_fps:.1f} fps"
    )
    return result


def _recorded_bps(path: Path) -> float:
    """The finished recording's bytes per second of media (its size over its duration)."""
    with av.open(str(path)) as container:
        duration = (container.duration or 0) / 1_000_000
    return path.stat().st_size / duration if duration else math.nan


def mark(children: list[Child], pids: list[int]) -> Mark:
    """Every child's counters and every process's CPU time and UDP drops, at (nearly) the same
    moment."""
    for child in children:
        child.send("mark")
    sample = CpuSample.take(pids, drops=True)
    return [child.expect("mark", 20) for child in children], sample


def run(plan: Plan) -> None:
    """Every scenario, pass-through and baseline alternating so both see the same noise."""
    results: list[Result] = []
    baseline_saturated = False
    with contextlib.ExitStack() as stack:
        log_dir = plan.logs or stack.enter_context(temp_dir("hetang-bench-relay-"))
        log_dir.mkdir(parents=True, exist_ok=True)
        for n in plan.counts:
            if PASS in plan.kinds:
                results.append(run_scenario(PASS, n, plan, log_dir))
            if PASS2 in plan.kinds:
                results.append(run_scenario(PASS2, n, plan, log_dir))
            if PASSREC in plan.kinds:
                results.append(run_scenario(PASSREC, n, plan, log_dir))
            if JANUS in plan.kinds:
                results.append(run_scenario(JANUS, n, plan, log_dir))
            if BASE in plan.kinds and not baseline_saturated:
                base = run_scenario(BASE, n, plan, log_dir)
                results.append(base)
                # Noise from other users can make it fall behind at an N it could serve alone.
                baseline_saturated = base.beyond_machine
    print(
        f"relay: 1 publisher, 640x360 VP8 at 30 fps; warm-up {plan.warmup_s:.0f} s, "
        f"window {plan.window_s:.0f} s per line; {DECODING} subscribers decode, "
        f"the rest receive without decoding ({LIGHT_PER_PROCESS} per process, "
        f"{plan.light_mode!r} mode); publisher bitrate "
        f"{'follows REMB' if plan.follow_remb else 'pinned (REMB ignored)'}"
    )
    print_table(results, plan.kinds, plan.counts, DECODING)
    print_verdicts(results)
    if PASS2 in plan.kinds:
        print_qualities(results)
    if PASSREC in plan.kinds:
        print_recording(results)
    if JANUS in plan.kinds:
        print_janus(results)
    sizes = sorted({s for r in results for s in r.sizes})
    sent = statistics.median([r.publisher_kbps for r in results if not r.error] or [math.nan])
    print(
        f"publisher sent {sent:.0f} kbit/s (median of the lines); decoded frame sizes seen: "
        f"{', '.join(sizes) or '-'}"
    )
    cost = next((r.viewer_cost for r in results if r.viewer_cost is not None), None)
    if cost is not None:
        print_viewer_cost(cost, "one decoding aiortc subscriber process (agent proxy)")


def main() -> None:
    """Parse the arguments and run the benchmark (or just measure a given process)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="N = 1, 8 only, short windows")
    parser.add_argument("--counts", help="subscriber counts instead, e.g. 1,8,32")
    parser.add_argument(
        "--light-mode",
        choices=("count", "tap"),
        default="count",
        help="light subscribers count RTP packets at the socket (default) or reassemble frames"
        " in aiortc's receiver without decoding (tap_peer; costs the load generator more)",
    )
    parser.add_argument(
        "--follow-remb",
        action="store_true",
        help="let the publisher lower its bitrate on the relay's REMB (by default it is pinned"
        " at ~1 Mbit/s so both relays carry the same load)",
    )
    parser.add_argument(
        "--only", choices=(PASS, BASE), help="run only this relay (default: both, alternating)"
    )
    parser.add_argument(
        "--two-qualities",
        action="store_true",
        help="pass-through with one quality against two (half the subscribers on each layer),"
        " at N=256 unless --counts; with --quick, shorter windows",
    )
    parser.add_argument(
        "--recording",
        action="store_true",
        help="pass-through with the broadcast recorded against without, at N=128 unless --counts",
    )
    parser.add_argument(
        "--media",
        choices=("builtin", "janus"),
        default="builtin",
        help="janus: the built-in pass-through relay against a real Janus VideoRoom (root: it"
        " needs a veth address), same publisher, at N=128 and 256 unless --counts",
    )
    parser.add_argument("--logs", type=Path, help="keep each process's stderr in this directory")
    parser.add_argument(
        "--agent-pid",
        type=int,
        help="only measure this running process (e.g. hetang-agent showing a stream)",
    )
    args = parser.parse_args()

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)  # unwinds through process_group, which ends the children

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in background
    plan = QUICK if args.quick else FULL
    if args.two_qualities:
        plan = QUALITIES if not args.quick else dataclasses.replace(QUICK, kinds=QUALITIES.kinds)
    if args.media == "janus":
        plan = JANUS_PLAN if not args.quick else dataclasses.replace(QUICK, kinds=JANUS_PLAN.kinds)
    if args.recording:
        plan = RECORDING if not args.quick else dataclasses.replace(QUICK, kinds=RECORDING.kinds)
    plan = dataclasses.replace(
        plan, light_mode=args.light_mode, follow_remb=args.follow_remb, logs=args.logs
    )
    if args.only:
        plan = dataclasses.replace(plan, kinds=(args.only,))
    if args.counts:
        plan = dataclasses.replace(plan, counts=tuple(int(n) for n in args.counts.split(",")))
    if args.agent_pid is not None:
        if not Path(f"/proc/{args.agent_pid}").exists():
            raise SystemExit(f"no process {args.agent_pid}")
        cost = process_cost(args.agent_pid, plan.window_s)
        print_viewer_cost(cost, f"process {args.agent_pid} over {plan.window_s:.0f} s")
        return
    try:
        run(plan)
    except KeyboardInterrupt:
        progress("interrupted; every benchmark process has been ended")
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
