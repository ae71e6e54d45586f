"""What /proc says about running processes, for the tests and the benchmarks that watch
`hetang serve --workers` and its workers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    parent: int
    state: str  # "R", "S", … ; "Z": ended, not yet reaped
    cpu_s: float  # user + system time so far
    command: tuple[str, ...]

    @property
    def running(self) -> bool:
        return self.state != "Z"


def process(pid: int) -> ProcessInfo | None:
    """The process now, or None when it is gone."""
    entry = Path(f"/proc/{pid}")
    try:
        fields = (entry / "stat").read_text().rpartition(")")[2].split()
        command = (entry / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return ProcessInfo(
        pid,
        int(fields[1]),
        fields[0],
        (int(fields[11]) + int(fields[12])) / ticks,
        tuple(part.decode(errors="replace") for part in command if part),
    )


def processes() -> Iterator[ProcessInfo]:
    """Every process there is."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (info := process(int(entry.name))) is not None:
            yield info


def children(parent: int) -> list[ProcessInfo]:
    """The running children of a process."""
    return [p for p in processes() if p.parent == parent and p.running]
