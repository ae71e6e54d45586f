"""Figures of the relay benchmark: what one scenario measured, worked out from the marks its
processes answered, and the table and verdicts printed at the end."""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from bench.rtc_procs import CORES, CpuSample, ProcessCost

PASS, BASE = "passthrough", "mediarelay"
PASS2 = "passthrough2"  # pass-through with two qualities: half the subscribers on each
PASSREC = "passthrough-rec"  # pass-through recording the broadcast into a WebM as it relays
JANUS = "janus"  # a Janus VideoRoom (HETANG_MEDIA=janus): Janus's own process is measured
LABELS = {
    PASS: "pass-through",
    BASE: "MediaRelay",
    PASS2: "two qualities",
    PASSREC: "recording",
    JANUS: "Janus",
}
RECORDING_CPU = 5.0  # % of a core recording may add (issue 15)
FULL_FPS = 28.5  # 95 % of the camera's 30 fps
SATURATED_FPS = 15.0
SATURATED_CPU = 0.9 * CORES * 100  # % of one core: the relay has (nearly) the whole machine
QUIET_OTHERS = 25.0  # % of one core used by other people's work: below this, a quiet machine
CAMERA_FPS = 30.0
TARGET_RATIO = 15.0
AGENT_CPU, AGENT_RSS = 10.0, 150.0

# What every process answered to one "mark" (relay, publisher, then subscriber processes, in
# the order they started) and the CPU times read at that moment.
Mark = tuple[list[dict[str, Any]], CpuSample]


@dataclass
class Result:
    """One relay with N subscribers, measured over the window."""

    kind: str
    n: int
    relay_cpu: float = math.nan
    relay_samples: list[float] = field(default_factory=list)  # relay CPU in each slice
    relay_system: float = math.nan
    relay_waited: float = math.nan
    decoded_fps: float = math.nan
    first_frames_s: list[float] = field(default_factory=list)
    light_fps: list[float] = field(default_factory=list)
    kbps: float = math.nan
    received_fps: float = math.nan
    publisher_fps: float = math.nan
    relay_in_fps: float = math.nan
    publisher_kbps: float = math.nan
    relay_drops: int = 0
    subscriber_drops: int = 0
    load_cpu: float = math.nan
    machine_cpu: float = math.nan
    sizes: list[str] = field(default_factory=list)
    joined: int = 0
    join_s: float = math.nan
    viewer_cost: ProcessCost | None = None
    recorded_bps: float = math.nan  # bytes a second of the finished recording
    recording_cpu: float = math.nan  # % of a core spent inside the recorder (its thread time)
    error: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def per_subscriber(self) -> float:
        """Relay CPU % of one core per subscriber."""
        return self.relay_cpu / self.n

    @property
    def demand_cpu(self) -> float:
        """Relay CPU scaled to every subscriber receiving all 30 fps: what a relay that fell
        behind (often because other work took the machine) would have needed. Slightly high for
        the baseline, whose one decode does not shrink with the frames it fails to send; not
        given (nan) below 15 fps, where scaling is guesswork."""
        if not self.received_fps >= SATURATED_FPS:
            return math.nan
        return self._scaled_cpu()

    @property
    def cpu_per_frame(self) -> float:
        """Relay CPU per subscriber per frame it delivered (% of a core x s)."""
        if not self.received_fps > 0:
            return math.nan
        return self.relay_cpu / (self.n * self.received_fps)

    def _scaled_cpu(self) -> float:
        if not self.received_fps > 0:
            return math.inf
        return self.relay_cpu * CAMERA_FPS / min(CAMERA_FPS, self.received_fps)

    @property
    def first_frame_s(self) -> float:
        """Median time from subscribing to the first decoded frame (inf: never)."""
        return statistics.median(self.first_frames_s) if self.first_frames_s else math.nan

    @property
    def others_cpu(self) -> float:
        """CPU used on the machine by everything but this benchmark's processes."""
        return max(0.0, self.machine_cpu - self.relay_cpu - self.load_cpu)

    @property
    def saturated(self) -> bool:
        """The relay did not serve this many (fps collapsed, CPU exhausted, or it failed)."""
        return bool(
            self.error or not self.decoded_fps >= SATURATED_FPS or self.relay_cpu >= SATURATED_CPU
        )

    @property
    def beyond_machine(self) -> bool:
        """More subscribers cannot be served here: it failed, it would need more than the
        machine even alone, or it saturated while the machine was otherwise quiet."""
        return bool(
            self.error
            or not self._scaled_cpu() < SATURATED_CPU
            or (self.saturated and self.others_cpu < QUIET_OTHERS)
        )

    @property
    def full_rate(self) -> bool:
        """Every subscriber got (nearly) every frame."""
        light_ok = not self.light_fps or min(self.light_fps) >= FULL_FPS
        return not self.error and self.decoded_fps >= FULL_FPS and light_ok


def summarise(result: Result, marks: list[Mark]) -> None:
    """Fill in the result from the marks: each rate is the median over the window's slices (a
    burst of work by other users of the machine spoils a slice, not the figure); each light
    subscriber's frame rate is over the whole window."""
    pids = list(marks[0][1].process)
    relay, others = pids[0], pids[1:]
    figures: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        figures.setdefault(name, []).append(value)

    for (a, a_cpu), (b, b_cpu) in itertools.pairwise(marks):
        add("relay", a_cpu.percent(b_cpu, relay))
        add("relay_system", a_cpu.percent(b_cpu, relay, "system"))
        add("relay_waited", a_cpu.percent(b_cpu, relay, "waited"))
        add("machine", a_cpu.machine_percent(b_cpu))
        add("load", sum(a_cpu.percent(b_cpu, pid) for pid in others))
        add("publisher", rate(a[1], b[1], "sent"))
        add("relay_in", rate(a[0], b[0], "frames_in"))
        add("publisher_kbps", rate(a[1], b[1], "sent_bytes") * 8 / 1000)
        decoded: list[float] = []
        received: list[float] = []
        kbps: list[float] = []
        for a_sub, b_sub in zip(a[2:], b[2:], strict=True):
            decoded += rates(a_sub, b_sub, "decoded")
            received += rates(a_sub, b_sub, "frames")
            bps = rates(a_sub, b_sub, "bytes")
            kbps += [r * 8 / 1000 for r, dec in zip(bps, b_sub["decodes"], strict=True) if dec]
        add("decoded", statistics.median(decoded))
        add("received", statistics.median(received))
        add("kbps", statistics.median(kbps))
    result.relay_cpu = statistics.median(figures["relay"])
    result.relay_samples = figures["relay"]
    result.relay_system = statistics.median(figures["relay_system"])
    result.relay_waited = statistics.median(figures["relay_waited"])
    result.machine_cpu = statistics.median(figures["machine"])
    result.load_cpu = statistics.median(figures["load"])
    result.publisher_fps = statistics.median(figures["publisher"])
    result.relay_in_fps = statistics.median(figures["relay_in"])
    result.publisher_kbps = statistics.median(figures["publisher_kbps"])
    result.decoded_fps = statistics.median(figures["decoded"])
    result.received_fps = statistics.median(figures["received"])
    result.kbps = statistics.median(figures["kbps"])
    (first, first_cpu), (last, last_cpu) = marks[0], marks[-1]
    resyncs = last[0].get("resyncs", 0) - first[0].get("resyncs", 0)
    if resyncs:
        requests = last[0]["keyframe_requests"] - first[0]["keyframe_requests"]
        result.notes.append(
            f"subscribers fell behind and were resynchronised {resyncs} times "
            f"({requests} keyframe requests to the publisher)"
        )
    dropped = {pid: last_cpu.drops[pid] - first_cpu.drops[pid] for pid in pids}
    if min(dropped.values()) < 0:
        result.notes.append("a socket closed during the window (its drops are not counted)")
    result.relay_drops = max(0, dropped[relay])
    result.subscriber_drops = sum(max(0, dropped[pid]) for pid in pids[2:])
    for mark in (first, last):
        states = {mark[1]["state"], mark[0]["publisher"]}
        if states != {"connected"}:
            moment = "start" if mark is first else "end"
            result.notes.append(
                f"at the window's {moment} the publisher's connection was {mark[1]['state']} "
                f"(the relay's side: {mark[0]['publisher']})"
            )
    for a_sub, b_sub in zip(first[2:], last[2:], strict=True):
        fps = rates(a_sub, b_sub, "frames")
        result.light_fps += [f for f, dec in zip(fps, b_sub["decodes"], strict=True) if not dec]
        result.first_frames_s += [math.inf if s is None else s for s in b_sub["first_frame_s"]]
        result.sizes += b_sub["sizes"]


def rate(a: dict[str, Any], b: dict[str, Any], key: str) -> float:
    """Per second, between two marks of one process."""
    return float(b[key] - a[key]) / float(b["t"] - a["t"])


def rates(a: dict[str, Any], b: dict[str, Any], key: str) -> list[float]:
    """Per second for each viewer, between two marks of one process of subscribers."""
    seconds = b["t"] - a["t"]
    return [(y - x) / seconds for x, y in zip(a[key], b[key], strict=True)]


def cell(value: float, width: int, spec: str, unit: str = "") -> str:
    """A right-aligned figure, '-' when there is none, 'never' when it never happened."""
    if math.isnan(value):
        text = "-"
    elif math.isinf(value):
        text = "never"
    else:
        text = f"{value:{spec}}{unit}"
    return f"{text:>{width}}"


COLUMNS = (
    ("joined", 7),
    ("CPU", 8),
    ("sys", 6),
    ("waited", 7),
    ("/sub", 7),
    ("@30fps", 7),
    ("decoded", 8),
    ("1st", 7),
    ("light", 11),
    ("kbit/s", 7),
    ("cam/in", 11),
    ("gen", 6),
    ("others", 7),
    ("drops", 10),
)

LEGEND = """\
relay: the relay process; CPU, sys (its system-mode part), gen and others in % of one core,
  medians over the window's slices; the machine has {cores} cores = {total} %.
joined: subscribers connected.  waited: % of the time the relay's event loop was ready to run
  but waited for a CPU.  /sub: relay CPU / N.  @30fps: /sub scaled to every subscriber getting
  all 30 fps (what a relay that fell behind would have needed).
decoded: median fps of the {decoding} decoding subscribers; 1st: their median seconds from
  subscribing to the first decoded frame.  light: fps of the light subscribers, median/slowest.
kbit/s: video bitrate the decoding subscribers received.  cam/in: fps the publisher's camera
  made / the relay received (MediaRelay: frames it decoded).
gen: publisher and subscriber processes (the load generator).  others: the rest of the
  machine, i.e. other people's work meanwhile.
drops: datagrams the kernel dropped over the window, relay/subscribers, because the relay
  (these are the publisher's packets) or the load generator did not read its sockets in time."""


def print_table(
    results: list[Result], kinds: tuple[str, ...], counts: tuple[int, ...], decoding: int
) -> None:
    """One line per relay and N; a baseline stopped early prints 'saturated'."""
    header = f"{'relay':<13}{'N':>4}" + "".join(f"{name:>{width}}" for name, width in COLUMNS)
    print(header)
    print("-" * len(header))
    done = {(r.kind, r.n): r for r in results}
    for kind in kinds:
        for n in counts:
            r = done.get((kind, n))
            start = f"{LABELS[kind]:<13}{n:>4}"
            if r is None:
                print(f"{start}  saturated (not run: a smaller N already saturated it)")
            elif r.error:
                print(f"{start}  failed: {r.error}")
            else:
                light = (
                    f"{statistics.median(r.light_fps):.1f}/{min(r.light_fps):.1f}"
                    if r.light_fps
                    else "-"
                )
                print(
                    start
                    + f"{r.joined:>7}"
                    + cell(r.relay_cpu, 8, ".1f")
                    + cell(r.relay_system, 6, ".0f")
                    + cell(r.relay_waited, 7, ".0f")
                    + cell(r.per_subscriber, 7, ".2f")
                    + cell(r.demand_cpu / r.n, 7, ".2f")
                    + cell(r.decoded_fps, 8, ".1f")
                    + cell(r.first_frame_s, 7, ".2f")
                    + f"{light:>11}"
                    + cell(r.kbps, 7, ".0f")
                    + f"{r.publisher_fps:>6.1f}/{r.relay_in_fps:<4.1f}"
                    + cell(r.load_cpu, 6, ".0f")
                    + cell(r.others_cpu, 7, ".0f")
                    + f"{r.relay_drops:>6}/{r.subscriber_drops:<3}"
                )
    print(LEGEND.format(cores=CORES, total=CORES * 100, decoding=decoding))
    for r in results:
        for note in r.notes:
            print(f"note: {LABELS[r.kind]} N={r.n}: {note}")


def print_verdicts(results: list[Result]) -> None:
    """The ratio at equal N, the marginal cost per subscriber and the 256-subscriber check."""
    done = {(r.kind, r.n): r for r in results if not r.error}
    ratios, per_frame = [], []
    for (kind, n), base in sorted(done.items()):
        passed = done.get((PASS, n))
        if kind == BASE and passed is not None and passed.relay_cpu > 0:
            note = " (baseline fell behind)" if base.saturated else ""
            ratios.append(f"N={n}: {base.relay_cpu / passed.relay_cpu:.1f}x{note}")
            ratio = base.cpu_per_frame / passed.cpu_per_frame
            if math.isfinite(ratio):
                fps = f" (baseline at {base.received_fps:.1f} fps)" if base.saturated else ""
                per_frame.append(f"N={n}: {ratio:.1f}x{fps}")
    print(
        "ratio MediaRelay / pass-through, relay CPU per subscriber at equal N: "
        f"{', '.join(ratios) or '-'}   (target >= {TARGET_RATIO:.0f}x)"
    )
    print(
        f"  the same per frame delivered, CPU / (N x fps received): {', '.join(per_frame) or '-'}"
    )
    for kind in (PASS, BASE):
        points = sorted(
            (n, r.demand_cpu)
            for (k, n), r in done.items()
            if k == kind and math.isfinite(r.demand_cpu)
        )
        if len(points) >= 2:
            (n0, c0), (n1, c1) = points[0], points[-1]
            print(
                f"marginal relay CPU per added subscriber at 30 fps, {LABELS[kind]} "
                f"(N {n0} -> {n1}): {(c1 - c0) / (n1 - n0):.2f} % of a core"
            )
    big = done.get((PASS, 256))
    if big is not None:
        ok = big.full_rate and big.relay_cpu < 100
        light = min(big.light_fps) if big.light_fps else math.nan
        print(
            "256 subscribers at full frame rate with relay under one core: "
            f"{'yes' if ok else 'NO'} (relay {big.relay_cpu:.1f} % of a core and its loop waited "
            f"{big.relay_waited:.0f} % of the time for a CPU; decoded {big.decoded_fps:.1f} fps, "
            f"slowest light subscriber {light:.1f} fps, full rate = at least {FULL_FPS} fps; "
            f"{big.relay_drops} of the publisher's packets dropped at the relay's socket)"
        )


def print_viewer_cost(cost: ProcessCost, what: str) -> None:
    """The line about one decoding subscriber process (the venue agent's proxy)."""
    ok = cost.cpu_percent < AGENT_CPU and cost.rss_mb < AGENT_RSS
    print(
        f"{what}: CPU {cost.cpu_percent:.1f} % of a core, RSS {cost.rss_mb:.0f} MB "
        f"(peak {cost.peak_rss_mb:.0f} MB)   targets < {AGENT_CPU:.0f} %, "
        f"< {AGENT_RSS:.0f} MB: {'ok' if ok else 'MISSED'}"
    )


def print_qualities(results: list[Result]) -> None:
    """Relay CPU with two qualities against one, at each N both ran (same run, medians of the
    window's slices), and the 256-subscriber check for two qualities."""
    done = {(r.kind, r.n): r for r in results if not r.error}
    for (kind, n), two in sorted(done.items()):
        one = done.get((PASS, n))
        if kind != PASS2 or one is None:
            continue
        samples = "; ".join(
            f"{LABELS[r.kind]} " + " ".join(f"{c:.0f}" for c in r.relay_samples) for r in (one, two)
        )
        print(
            f"relay CPU at N={n}: one quality {one.relay_cpu:.1f} %, two qualities "
            f"{two.relay_cpu:.1f} % of a core (medians of {len(two.relay_samples)} slices: "
            f"{samples}); two / one = {two.relay_cpu / one.relay_cpu:.2f}"
        )
    big = done.get((PASS2, 256))
    if big is not None:
        ok = big.full_rate and big.relay_cpu < 100
        light = min(big.light_fps) if big.light_fps else math.nan
        print(
            "256 subscribers with two qualities at full frame rate, relay under one core: "
            f"{'yes' if ok else 'NO'} (relay {big.relay_cpu:.1f} % of a core, its loop waited "
            f"{big.relay_waited:.0f} %; decoded {big.decoded_fps:.1f} fps, slowest light "
            f"subscriber {light:.1f} fps; decoded sizes {', '.join(big.sizes) or '-'})"
        )


def print_recording(results: list[Result]) -> None:
    """Relay CPU with recording on against off at each N both ran (same run, medians of the
    window's slices), and what a three-hour lesson's file weighs at 1 Mbit/s."""
    done = {(r.kind, r.n): r for r in results if not r.error}
    for (kind, n), on in sorted(done.items()):
        off = done.get((PASS, n))
        if kind != PASSREC or off is None:
            continue
        added = on.relay_cpu - off.relay_cpu
        samples = "; ".join(
            f"{LABELS[r.kind]} " + " ".join(f"{c:.0f}" for c in r.relay_samples) for r in (off, on)
        )
        print(
            f"relay CPU at N={n}: recording off {off.relay_cpu:.1f} %, on {on.relay_cpu:.1f} % "
            f"of a core (medians of {len(on.relay_samples)} slices: {samples}); on / off = "
            f"{on.relay_cpu / off.relay_cpu:.2f}; recording adds {added:.1f} % of a core "
            f"(target < {RECORDING_CPU:.0f} %: {'ok' if added < RECORDING_CPU else 'MISSED'})"
        )
        inside_ok = "ok" if on.recording_cpu < RECORDING_CPU else "MISSED"
        print(
            f"time inside the recorder itself (thread CPU time of Recorder.take over the window, "
            f"free of other processes' noise): {on.recording_cpu:.2f} % of a core "
            f"(target < {RECORDING_CPU:.0f} %: {inside_ok})"
        )
        if on.recorded_bps > 0 and on.publisher_kbps > 0:
            per_mbit = on.recorded_bps / (on.publisher_kbps * 1000 / 8)
            three_hours = on.recorded_bps * 3 * 3600 * (1000 / on.publisher_kbps)
            print(
                f"the recording holds {on.recorded_bps * 8 / 1000:.0f} kbit/s of file for a "
                f"publisher sending {on.publisher_kbps:.0f} kbit/s ({per_mbit:.2f} bytes written "
                f"per byte sent): a 3-hour lesson at 1 Mbit/s is {three_hours / 1e9:.2f} GB"
            )
