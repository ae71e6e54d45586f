"""50 simulated agents push check-in batches of 100 through the HTTP API at once. Prints events/s
and p50/p99 batch latency, next to a raw SQLite insert rate measured in the same run (the same
events, batches of 100, one durable commit each), and their ratio."""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_env, percentile, prepare, server, temp_dir
from bench.world import BenchCity, build_city


def batches_for(
    city: BenchCity, venue: str, count: int, size: int, start: datetime
) -> list[list[dict[str, str]]]:
    """Distinct events of one agent, cut into batches."""
    batches = []
    for b in range(count):
        batch = []
        for i in range(size):
            member = city.member_nos[(b * size + i) % len(city.member_nos)]
            batch.append(
                {
                    "event_id": str(uuid.uuid4()),
                    "session_id": city.session_id,
                    "member_no": member,
                    "kind": "in" if i % 2 == 0 else "out",
                    "at": (start + timedelta(seconds=b * size + i)).isoformat(),
                    "source": "scanner",
                }
            )
        batches.append(batch)
    return batches


async def agent(
    base: str,
    token: str,
    batches: list[list[dict[str, str]]],
    latencies: list[float],
    every: float | None,
    phase: float,
) -> int:
    """One agent sending its batches: back to back (every=None), or one each `every` seconds
    from `phase` on, like an agent syncing on a timer. Returns the events accepted."""
    accepted = 0
    loop = asyncio.get_running_loop()
    began = loop.time() + phase
    async with aiohttp.ClientSession(base, headers={"Authorization": f"Bearer {token}"}) as http:
        for index, batch in enumerate(batches):
            if every is not None:
                await asyncio.sleep(max(0.0, began + index * every - loop.time()))
            body = {"sent_at": datetime.now(UTC).isoformat(), "events": batch}
            started = time.perf_counter()
            async with http.post("/api/v1/agent/checkins", json=body) as response:
                answer = await response.json()
            latencies.append(time.perf_counter() - started)
            if response.status != 200:
                raise SystemExit(f"batch failed: {answer}")
            accepted += sum(r["status"] == "accepted" for r in answer["results"])
    return accepted


def raw_floor(directory: Path, batches: list[list[dict[str, str]]]) -> float:
    """Events/s of bare SQLite: the same rows, a unique event_id, one FULL-sync commit a batch."""
    connection = sqlite3.connect(directory / "floor.sqlite3", isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute(
        "CREATE TABLE c (id INTEGER PRIMARY KEY, event_id TEXT UNIQUE, "
        "session TEXT, member TEXT, kind TEXT, at TEXT, source TEXT)"
    )
    started = time.perf_counter()
    count = 0
    for batch in batches:
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(
            "INSERT OR IGNORE INTO c (event_id, session, member, kind, at, source) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                (e["event_id"], e["session_id"], e["member_no"], e["kind"], e["at"], e["source"])
                for e in batch
            ],
        )
        connection.execute("COMMIT")
        count += len(batch)
    elapsed = time.perf_counter() - started
    connection.close()
    return count / elapsed


async def run(args: argparse.Namespace, directory: Path) -> None:
    """Build the city, then let the agents loose: flat out, then paced at the target rate."""
    env = bench_env(directory / "data")
    prepare(env)
    start = datetime.now(UTC).replace(microsecond=0)
    every = args.agents * args.size / args.rate
    runs: dict[str, tuple[int, float, list[float]]] = {}
    sent: list[list[dict[str, str]]] = []
    with server(env) as base:
        city = await build_city(
            base, env, directory, venues=args.agents, members=args.members, starts_at=start
        )
        for mode, pace in (("flat out", None), (f"paced at {args.rate:,}/s", every)):
            plans = [
                batches_for(city, venue, args.batches, args.size, start)
                for venue in city.venue_tokens
            ]
            sent += [batch for plan in plans for batch in plan]
            latencies: list[float] = []
            began = time.perf_counter()
            accepted = await asyncio.gather(
                *(
                    agent(base, token, plan, latencies, pace, index * (pace or 0) / len(plans))
                    for index, (token, plan) in enumerate(
                        zip(city.venue_tokens.values(), plans, strict=True)
                    )
                )
            )
            runs[mode] = (sum(accepted), time.perf_counter() - began, latencies)
    floor = raw_floor(directory, sent)
    print(f"{args.agents} agents, batches of {args.size}, {args.batches} batches each per run")
    for mode, (total, wall, latencies) in runs.items():
        rate = total / wall
        print(
            f"HTTP ingest, {mode:<18} {rate:8,.0f} events/s   batch latency p50 "
            f"{statistics.median(latencies) * 1000:6.1f} ms   p99 "
            f"{percentile(latencies, 99) * 1000:6.1f} ms   ratio to floor {rate / floor:.3f}"
        )
    print(
        f"raw SQLite floor (the same events, durable batches of {args.size}): "
        f"{floor:8,.0f} events/s"
    )


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--batches", type=int, default=20, help="batches per agent")
    parser.add_argument("--size", type=int, default=100, help="events per batch")
    parser.add_argument("--members", type=int, default=5000)
    parser.add_argument(
        "--rate",
        type=int,
        default=5000,
        help="events/s offered in the paced run (the issue's target)",
    )
    args = parser.parse_args()
    with temp_dir("hetang-checkins-") as directory:
        asyncio.run(run(args, directory))


if __name__ == "__main__":
    main()
