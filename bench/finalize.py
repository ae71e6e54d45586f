"""Finalize a big joint session: 20,000 roster members over 200 venues, 3 hours of 5-second
stream samples at every branch (~430,000) and ~40,000 check-ins, all sent through the real agent
API first. Prints the finalization time and the server's peak memory; as the floor, the same run
times the pure attendance computation alone on the same input."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_env, peak_rss_mb, prepare, server_process, temp_dir
from bench.world import BenchCity, build_city
from server.domain.attendance import CheckInEvent, Policy, Sample, SessionInput, compute


async def send(http: aiohttp.ClientSession, token: str, path: str, body: object) -> None:
    """POST as an agent; fail loudly."""
    async with http.post(path, json=body, headers={"Authorization": f"Bearer {token}"}) as answer:
        if answer.status != 200:
            raise SystemExit(f"{path}: {await answer.text()}")


async def feed(city: BenchCity, start: datetime, hours: int) -> tuple[int, int, SessionInput]:
    """Stream samples at every branch and two check-ins per member (a few missing, a few at the
    wrong venue), through the agent API; returns the counts and the engine's input."""
    venues = sorted(city.venue_tokens)
    samples, events = [], []
    async with aiohttp.ClientSession(city.base) as http:
        for venue in venues[1:]:
            rows = [
                {
                    "at": (start + timedelta(seconds=s)).isoformat(),
                    "state": "down" if 3600 <= s < 3900 and venue.endswith("7") else "good",
                    "fps": 30,
                    "bitrate_kbps": 900.0,
                }
                for s in range(0, hours * 3600, 5)
            ]
            samples += [
                Sample(venue, int((start + timedelta(seconds=s)).timestamp()), r["state"])
                for s, r in zip(range(0, hours * 3600, 5), rows, strict=True)
            ]
            for first in range(0, len(rows), 2000):
                await send(
                    http,
                    city.venue_tokens[venue],
                    "/api/v1/agent/stream-stats",
                    {
                        "sent_at": datetime.now(UTC).isoformat(),
                        "session_id": city.session_id,
                        "samples": rows[first : first + 2000],
                    },
                )
        by_venue: dict[str, list[dict[str, str]]] = {venue: [] for venue in venues}
        for index, number in enumerate(city.member_nos):
            if index % 50 == 7:
                continue  # absent
            venue = venues[(index + (1 if index % 97 == 0 else 0)) % len(venues)]
            arrive = start + timedelta(seconds=(index * 37) % 1500 - 600)
            leave = start + timedelta(hours=hours) - timedelta(seconds=(index * 53) % 2400)
            for kind, moment in (("in", arrive), ("out", leave)):
                by_venue[venue].append(
                    {
                        "event_id": str(uuid.uuid4()),
                        "session_id": city.session_id,
                        "member_no": number,
                        "kind": kind,
                        "at": moment.isoformat(),
                        "source": "scanner",
                    }
                )
                events.append(
                    CheckInEvent(number, venue, kind, int(moment.timestamp()), len(events))
                )
        for venue, batch in by_venue.items():
            for first in range(0, len(batch), 500):
                await send(
                    http,
                    city.venue_tokens[venue],
                    "/api/v1/agent/checkins",
                    {
                        "sent_at": datetime.now(UTC).isoformat(),
                        "events": batch[first : first + 500],
                    },
                )
    roster = {number: venues[index % len(venues)] for index, number in enumerate(city.member_nos)}
    begin = int(start.timestamp())
    inp = SessionInput(
        begin,
        begin + hours * 3600,
        Decimal(3),
        Policy(),
        venues[0],
        tuple(venues),
        roster,
        events,
        samples,
        frozenset(),
    )
    return len(samples), len(events), inp


async def run(args: argparse.Namespace, directory: Path) -> None:
    """Build, feed, finalize, measure."""
    env = bench_env(directory / "data")
    prepare(env)
    start = (datetime.now(UTC) - timedelta(hours=args.hours + 2)).replace(microsecond=0)
    with server_process(env) as (base, pid):
        city = await build_city(
            base,
            env,
            directory,
            venues=args.venues,
            members=args.members,
            starts_at=start,
            hours=args.hours,
        )
        began = time.perf_counter()
        samples, events, inp = await feed(city, start, args.hours)
        fed = time.perf_counter() - began
        headers = {"Authorization": f"Bearer {city.admin_token}"}
        async with aiohttp.ClientSession(base, headers=headers) as http:
            for action in ("start", "end"):
                async with http.post(f"/api/v1/sessions/{city.session_id}/{action}") as answer:
                    assert answer.status == 200, await answer.text()
            before = peak_rss_mb(pid)
            began = time.perf_counter()
            async with http.post(f"/api/v1/sessions/{city.session_id}/finalize") as answer:
                assert answer.status == 200, await answer.text()
            took = time.perf_counter() - began
            after = peak_rss_mb(pid)
            began = time.perf_counter()
            async with http.post(f"/api/v1/sessions/{city.session_id}/finalize") as answer:
                assert answer.status == 200, await answer.text()
            again = time.perf_counter() - began
            async with http.get(f"/api/v1/sessions/{city.session_id}/attendance") as answer:
                summary = (await answer.json())["summary"]
    began = time.perf_counter()
    compute(inp)
    pure = time.perf_counter() - began
    print(
        f"session: {args.members:,} roster members, {args.venues} venues, "
        f"{samples:,} stream samples, {events:,} check-ins (fed through the API in {fed:.0f} s)"
    )
    print(f"summary: {summary}")
    print(
        f"finalize (HTTP, first):      {took:6.2f} s   server peak RSS {before:.0f} MB before, "
        f"{after:.0f} MB after"
    )
    print(f"finalize again (no changes): {again:6.2f} s")
    print(
        f"floor: attendance rules alone on the same input: {pure:.2f} s "
        f"(finalize/floor {took / pure:.1f}x)"
    )


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--venues", type=int, default=200)
    parser.add_argument("--hours", type=int, default=3)
    args = parser.parse_args()
    with temp_dir("hetang-finalize-") as directory:
        asyncio.run(run(args, directory))


if __name__ == "__main__":
    main()
