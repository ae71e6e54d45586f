"""Processes of the relay benchmark: children that take one-line commands on stdin and answer in
JSON lines on stdout, a group that always ends them, and CPU and memory read from /proc."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from bench.common import peak_rss_mb

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1


class ChildFailed(RuntimeError):
    """A benchmark process died, said something unexpected or did not answer in time."""


# --- inside a child ------------------------------------------------------------------------


def say(event: str, **fields: Any) -> None:
    """One JSON line to the benchmark."""
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


async def commands() -> AsyncIterator[str]:
    """Commands from the benchmark until it says "quit" or its end of the pipe closes (so a
    child never outlives a benchmark that died)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).decode().strip()
        if not line or line == "quit":
            return
        yield line


def run_child(main: Callable[[], Awaitable[None]], lifetime: float) -> None:
    """Run a child's main coroutine for at most `lifetime` seconds, then leave at once (aiortc's
    worker threads must not keep a finished child alive)."""
    code = 0
    try:
        asyncio.run(asyncio.wait_for(main(), lifetime))
    except TimeoutError:
        print(f"lifetime of {lifetime:.0f} s is over", file=sys.stderr)
    except Exception as error:
        print(f"failed: {error!r}", file=sys.stderr)
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


# --- in the benchmark ----------------------------------------------------------------------


class Child:
    """A benchmark process (`python -m bench.<module> ...`): its JSON lines arrive through a
    reader thread, its stderr goes to a log file shown when it fails."""

    def __init__(self, name: str, module: str, args: list[str], log_dir: Path) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                start_new_session=True,  # Ctrl-C reaches the benchmark, which ends us in order
            )
        self.pid = self.process.pid
        self._lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stdout: IO[str] | None = self.process.stdout
        assert stdout is not None
        for line in stdout:
            with contextlib.suppress(ValueError):
                self._lines.put(json.loads(line))
        self._lines.put(None)

    def send(self, command: str) -> None:
        """One command line; a child already gone is reported by the next expect()."""
        with contextlib.suppress(OSError):
            assert self.process.stdin is not None
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()

    def expect(self, event: str, timeout: float) -> dict[str, Any]:
        """The child's next message, which must be `event`."""
        try:
            message = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise ChildFailed(f"{self.name}: no {event!r} within {timeout:.0f} s") from None
        if message is None:
            self.process.wait(timeout=5)
            raise ChildFailed(f"{self.name} exited ({self.process.returncode}):\n{self.tail()}")
        if message.get("event") != event:
            raise ChildFailed(f"{self.name}: expected {event!r}, got {message}")
        return message

    def tail(self, lines: int = 15) -> str:
        """The end of its stderr."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def end(self, grace: float) -> None:
        """Ask it to quit, then insist."""
        if self.process.poll() is None:
            self.send("quit")
            with contextlib.suppress(OSError):
                assert self.process.stdin is not None
                self.process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def process_group(log_dir: Path) -> Iterator[list[Child]]:
    """A list to put children in; all of them are ended on the way out, whatever happened."""
    children: list[Child] = []
    try:
        yield children
    finally:
        for child in children:
            child.send("quit")
        deadline = time.monotonic() + 10
        for child in children:
            child.end(grace=max(0.1, deadline - time.monotonic()))


@dataclass(frozen=True)
class Times:
    """Seconds a process has spent so far: CPU time in user and in system mode (all threads),
    and how long its main thread (an asyncio process's event loop) was ready to run but
    waited for a CPU."""

    user: float
    system: float
    waited: float

    @classmethod
    def read(cls, pid: int) -> Times:
        """Read them now."""
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        waited = 0.0
        with contextlib.suppress(OSError, IndexError, ValueError):  # needs schedstats
            waited = int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
        return cls(int(fields[11]) / TICKS, int(fields[12]) / TICKS, waited)  # utime, stime

    @property
    def cpu(self) -> float:
        """User + system."""
        return self.user + self.system


def rss_mb(pid: int) -> float:
    """Resident memory now (VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, over all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    total = sum(values[:8])  # without guest time, already counted in user
    return (total - idle) / TICKS, total / TICKS


def udp_drops(pid: int) -> int:
    """Datagrams the kernel dropped so far because the process's UDP sockets were full (it
    did not read them fast enough)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    drops = 0
    for table in ("udp", "udp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    drops += int(fields[12])
    return drops


@dataclass
class CpuSample:
    """CPU seconds and UDP drops of some processes, and the machine's CPU, at one moment."""

    at: float
    process: dict[int, Times]
    busy: float
    total: float
    drops: dict[int, int]

    @classmethod
    def take(cls, pids: list[int], *, drops: bool = False) -> CpuSample:
        """Read them now (the drops too, if asked: they take longer to read)."""
        busy, total = machine_busy_seconds()
        at = time.monotonic()
        cpu = {pid: Times.read(pid) for pid in pids}
        dropped = {pid: udp_drops(pid) for pid in pids} if drops else {}
        return cls(at, cpu, busy, total, dropped)

    def percent(self, later: CpuSample, pid: int, part: str = "cpu") -> float:
        """% of one core (or of the wall time) that `pid` spent between this sample and a later
        one: "cpu" (user + system), "system", or "waited" (its main thread, for a CPU)."""
        spent = getattr(later.process[pid], part) - getattr(self.process[pid], part)
        return 100 * float(spent) / (later.at - self.at)

    def machine_percent(self, later: CpuSample) -> float:
        """CPU % of one core used by the whole machine in between (at most 100 x cores)."""
        share = (later.busy - self.busy) / max(1e-9, later.total - self.total)
        return 100 * CORES * share


@dataclass(frozen=True)
class ProcessCost:
    """What one process costs over a window."""

    cpu_percent: float
    rss_mb: float
    peak_rss_mb: float


def process_cost(pid: int, seconds: float) -> ProcessCost:
    """CPU % of one core and memory of any running process over `seconds` (e.g. a real
    `hetang-agent` showing a stream)."""
    first = CpuSample.take([pid])
    time.sleep(seconds)
    last = CpuSample.take([pid])
    return ProcessCost(first.percent(last, pid), rss_mb(pid), peak_rss_mb(pid))
