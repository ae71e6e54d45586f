"""Helpers shared by the benchmarks: a throw-away server process, timing and printing."""

from __future__ import annotations

import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tools.procfs import children, process

BIN = Path(sys.executable).parent


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def bench_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for the `hetang` CLI pointing at a fresh data directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HETANG_")}
    env.update(
        {"HETANG_DATA_DIR": str(data_dir), "HETANG_SECRET_KEY": "b" * 48, "HETANG_LOCALE": "zh_CN"}
    )
    env.update(extra)
    return env


def hetang(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    """Run the real CLI; fail loudly with its stderr."""
    result = subprocess.run(
        [str(BIN / "hetang"), "--log-level", "WARNING", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"hetang {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


BENCH_PASSWORD = "bench-password-1"  # noqa: S105  (a throw-away bench user)


def prepare(env: dict[str, str]) -> None:
    """A migrated database with an admin `bench` who signs in with BENCH_PASSWORD."""
    hetang(env, "migrate")
    hetang(
        env,
        "user",
        "add",
        "bench",
        "--role",
        "admin",
        "--password-stdin",
        stdin=BENCH_PASSWORD + "\n",
    )


@contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    """A temporary directory removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=prefix) as name:
        yield Path(name)


@contextmanager
def server(env: dict[str, str]) -> Iterator[str]:
    """`hetang serve` on a free port; yields its base URL and stops it afterwards."""
    with server_process(env) as (base, _):
        yield base


def peak_rss_mb(pid: int) -> float:
    """The peak resident memory of a process so far (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(parent: int) -> float:
    """CPU time (user + system) used so far by a process and its live children."""
    own = process(parent)
    return (own.cpu_s if own else 0.0) + sum(child.cpu_s for child in children(parent))


@contextmanager
def server_process(env: dict[str, str], workers: int = 1) -> Iterator[tuple[str, int]]:
    """`hetang serve` on a free port (`--workers` when more than one); yields its base URL and
    pid, and stops it afterwards."""
    port = free_port()
    several = ["--workers", str(workers)] if workers != 1 else []
    process = subprocess.Popen(
        [str(BIN / "hetang"), "--log-level", "WARNING", "serve", "--port", str(port), *several],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=1):  # noqa: S310
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.1)
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=60)


def percentile(values: list[float], pct: float) -> float:
    """The pct-th percentile (nearest rank)."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def summary(values: list[float]) -> str:
    """p50 and p95 of timings in seconds, as milliseconds."""
    return (
        f"p50 {statistics.median(values) * 1000:7.1f} ms   "
        f"p95 {percentile(values, 95) * 1000:7.1f} ms"
    )


def csrf_from(html: str) -> str:
    """The hidden csrf_token of a rendered form."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    if match is None:
        raise SystemExit("no csrf_token on the page")
    return match.group(1)
