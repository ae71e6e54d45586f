"""Janus in the relay benchmark (bench/relay.py --media janus): a real Janus process on a veth
address of its own (Janus never offers loopback candidates), the clients' ICE pinned to it, and
the figures of Janus against the built-in pass-through relay."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.rtc_report import JANUS, PASS, Result
from tests.support.janus import janus_address, janus_instance

ICE_HOST_ENV = "HETANG_BENCH_ICE_HOST"  # read by bench.rtc_media in every child process


@dataclass(frozen=True)
class JanusPlace:
    url: str
    pid: int


@contextlib.contextmanager
def running_janus(log_dir: Path, name: str) -> Iterator[JanusPlace]:
    """A Janus for one scenario; the children started meanwhile use its address for ICE."""
    with janus_address() as address, janus_instance(log_dir, name, address) as janus:
        os.environ[ICE_HOST_ENV] = address
        try:
            yield JanusPlace(janus.url, janus.process.pid)
        finally:
            os.environ.pop(ICE_HOST_ENV, None)


def print_janus(results: list[Result]) -> None:
    """CPU per subscriber of Janus against the built-in pass-through relay at each N both ran
    (same run, same publisher; medians of the window's slices)."""
    done = {(r.kind, r.n): r for r in results if not r.error}
    for (kind, n), janus in sorted(done.items()):
        builtin = done.get((PASS, n))
        if kind != JANUS or builtin is None:
            continue
        print(
            f"N={n}: CPU per subscriber: Janus {janus.per_subscriber:.3f} %, built-in "
            f"pass-through {builtin.per_subscriber:.3f} % of a core (whole process: "
            f"{janus.relay_cpu:.1f} % vs {builtin.relay_cpu:.1f} %); Janus / built-in = "
            f"{janus.relay_cpu / builtin.relay_cpu:.2f}; decoding subscribers at "
            f"{janus.decoded_fps:.1f} vs {builtin.decoded_fps:.1f} fps"
        )
