"""A province's agents against one server process and against two (`hetang serve --workers 2`),
both on PostgreSQL and Redis, in the same run: simulated agents (tools.fleet: an events WebSocket
each, heartbeats, schedule polls with ETag, check-in batches) at a pace faster than real agents'
so that one process is saturated. Prints requests/s, p50/p99 per endpoint and the server's CPU
(all its processes) for each, and the ratio of two processes to one.

    python bench/fleet.py [--agents 600] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_env, cpu_seconds, hetang, percentile, server_process
from tools.fleet import ENDPOINTS, Pace, Tally, run_fleet
from tools.fleet_setup import build_fleet_city
from tools.pg import fresh_pg_database

# Faster than an agent (15 s, 60 s, 30 s): about 9 requests/s per 10 agents, past one process.
PACE = Pace(heartbeat_s=2.0, schedule_s=5.0, batch_s=5.0, batch_size=5)
FLEET_PROCESSES = 3


def one_run(workers: int, agents: int, seconds: float, database: str, redis: str) -> str:
    """One server of `workers` processes under the fleet; its printed lines."""
    with tempfile.TemporaryDirectory(prefix="hetang-fleet-") as name:
        work = Path(name)
        env = bench_env(work, HETANG_DATABASE_URL=database, HETANG_REDIS_URL=redis)
        hetang(env, "migrate")
        hetang(env, "user", "add", "root", "--role", "admin", "--password-stdin", stdin="x" * 16)
        token = hetang(env, "token", "create", "root").strip()
        with server_process(env, workers) as (base, pid):
            plans = asyncio.run(build_fleet_city(base, token, agents))
            cpu_before, started = cpu_seconds(pid), time.monotonic()
            result = run_fleet(base, plans, seconds, FLEET_PROCESSES, work, PACE)
            # The drain after the run is counted too: the requests and the CPU alike.
            elapsed = time.monotonic() - started
            cpu = cpu_seconds(pid) - cpu_before
    return report(workers, result, elapsed, cpu)


def report(workers: int, result: Tally, elapsed: float, cpu: float) -> str:
    done = sum(len(result.latencies[e]) for e in ENDPOINTS if e != "events")
    failed = sum(result.failures.values())
    lines = [
        f"{workers} process(es): {done / elapsed:7.1f} requests/s ({done} in {elapsed:.0f} s, "
        f"{failed} failed), server CPU {cpu / elapsed:.2f} cores, "
        f"{result.created} check-ins, {result.unsent} unsent"
    ]
    for endpoint in ENDPOINTS:
        times = result.latencies[endpoint]
        if times:
            lines.append(
                f"    {endpoint:9} {len(times):7} ok  p50 {percentile(times, 50) * 1000:7.1f} ms"
                f"  p99 {percentile(times, 99) * 1000:7.1f} ms"
            )
    return "\n".join(lines)


def rate(text: str) -> float:
    return float(text.split(":", 1)[1].split("requests/s")[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=600)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    url = os.environ.get(
        "HETANG_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1/postgres"
    )
    redis = os.environ.get("HETANG_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
    print(f"{args.agents} agents at {PACE}, for {args.seconds:.0f} s, on {os.cpu_count()} cores")
    texts = []
    for workers in (1, 2):
        with fresh_pg_database(url, "hetang_fleet_bench") as database:
            texts.append(one_run(workers, args.agents, args.seconds, database, redis))
        print(texts[-1], flush=True)
    print(f"2 processes / 1: {rate(texts[1]) / rate(texts[0]):.2f}x the requests/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
