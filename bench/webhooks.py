"""Webhook delivery from a real `hetang serve` to receivers on 127.0.0.1: first a baseline of
events to 18 healthy endpoints alone, then 1,000 events to 20 endpoints — the same 18, one slow
(it answers after a second) and one failing (500 always). Prints the delivery throughput, the
median and p99 latency (event written → receiver) of the healthy endpoints in each phase and
their ratio: near 1 means the slow and the failing endpoint held nobody up. Traffic goes only
to 127.0.0.1; every wait is bounded."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_env, free_port, hetang, percentile, prepare, server, temp_dir

HEALTHY = 18
SLOW_S = 1.0
EVENTS_PER_SESSION = 3  # scheduled, started, ended
WAIT_LIMIT_S = 300.0


@dataclass
class Receiver:
    """One endpoint's receiver: when each message first arrived, and how it answers."""

    kind: str  # "healthy", "slow" or "failing"
    port: int = field(default_factory=free_port)
    arrived: dict[str, float] = field(default_factory=dict)  # msg id → latency in seconds
    requests: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests += 1
        written = datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
        latency = (datetime.now(UTC) - written).total_seconds()
        if self.kind == "slow":
            await asyncio.sleep(SLOW_S)
        if self.kind == "failing":
            return web.Response(status=500)
        self.arrived.setdefault(request.headers["webhook-id"], latency)
        return web.Response(status=204)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


async def start_receivers(receivers: list[Receiver]) -> list[web.AppRunner]:
    runners = []
    for receiver in receivers:
        app = web.Application()
        app.router.add_post("/hook", receiver.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", receiver.port).start()
        runners.append(runner)
    return runners


class Api:
    """The admin's API calls."""

    def __init__(self, http: aiohttp.ClientSession, base: str, token: str) -> None:
        self.http, self.base = http, base
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: object = None) -> dict[str, object]:
        async with self.http.request(
            method, f"{self.base}/api/v1/{path}", json=body, headers=self.headers
        ) as answer:
            data: dict[str, object] = await answer.json()
            if answer.status not in (200, 201):
                raise SystemExit(f"{method} {path}: {answer.status} {data}")
            return data


async def one_session(api: Api, index: int) -> None:
    """A session's three events: scheduled, started, ended."""
    created = await api.call(
        "POST",
        "sessions",
        {
            "title": f"压测场次 {index}",
            "topic_code": "T-1",
            "starts_at": "2026-03-02T01:00:00Z",
            "ends_at": "2026-03-02T03:00:00Z",
            "credit_hours": 2,
            "main_venue": "V1",
            "roster": [],
        },
    )
    await api.call("POST", f"sessions/{created['id']}/start")
    await api.call("POST", f"sessions/{created['id']}/end")


async def emit(api: Api, events: int, concurrency: int) -> float:
    """Make about `events` events, `concurrency` sessions at a time; returns seconds taken."""
    sessions = -(-events // EVENTS_PER_SESSION)
    queue = iter(range(sessions))
    began = time.perf_counter()

    async def worker() -> None:
        for index in queue:
            await one_session(api, index)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - began


async def wait_healthy(receivers: list[Receiver], expected: int) -> float:
    """Seconds until every healthy receiver has `expected` messages (bounded)."""
    began = time.perf_counter()
    deadline = began + WAIT_LIMIT_S
    while any(len(r.arrived) < expected for r in receivers if r.kind == "healthy"):
        if time.perf_counter() > deadline:
            raise SystemExit(f"healthy receivers still short after {WAIT_LIMIT_S:g} s")
        await asyncio.sleep(0.05)
    return time.perf_counter() - began


async def phase(
    api: Api, receivers: list[Receiver], events: int, concurrency: int, name: str
) -> list[float]:
    """Emit, wait for the healthy receivers, print the figures; returns healthy latencies."""
    for receiver in receivers:
        receiver.arrived.clear()
    began = time.perf_counter()
    emitting = await emit(api, events, concurrency)
    made = -(-events // EVENTS_PER_SESSION) * EVENTS_PER_SESSION
    await wait_healthy(receivers, made)
    total = time.perf_counter() - began
    healthy = [r for r in receivers if r.kind == "healthy"]
    latencies = [value for r in healthy for value in r.arrived.values()]
    print(
        f"{name}: {made} events × {len(receivers)} endpoints; written in {emitting:5.1f} s, "
        f"all healthy deliveries ({len(latencies)}) done in {total:5.1f} s = "
        f"{len(latencies) / total:6.0f} deliveries/s"
    )
    print(
        f"    healthy latency: median {statistics.median(latencies) * 1000:7.1f} ms   "
        f"p99 {percentile(latencies, 99) * 1000:7.1f} ms   max {max(latencies) * 1000:7.1f} ms"
    )
    for r in receivers:
        if r.kind != "healthy":
            print(
                f"    {r.kind:8} endpoint meanwhile: {r.requests} requests, {len(r.arrived)} taken"
            )
    return latencies


async def run(args: argparse.Namespace, directory: Path) -> None:
    env = bench_env(
        directory / "data",
        HETANG_WEBHOOK_ALLOW_PRIVATE="1",
        HETANG_WEBHOOK_RETRY_BASE_S="0.5",
    )
    prepare(env)
    token = hetang(env, "token", "create", "bench").strip()
    healthy = [Receiver("healthy") for _ in range(HEALTHY)]
    extra = [Receiver("slow"), Receiver("failing")]
    runners = await start_receivers(healthy + extra)
    try:
        with server(env) as base:
            async with aiohttp.ClientSession() as http:
                api = Api(http, base, token)
                await api.call(
                    "POST",
                    "organizations",
                    {"code": "c", "name": "滁州市", "level": "city", "parent_code": None},
                )
                await api.call("POST", "venues", {"code": "V1", "name": "主会场", "org_code": "c"})
                events = ["session.scheduled", "session.started", "session.ended"]
                for receiver in healthy:
                    body = {"url": receiver.url, "events": events, "org_code": "c"}
                    await api.call("POST", "webhooks", body)
                baseline = await phase(
                    api, healthy, args.baseline_events, args.concurrency, "baseline, 18 healthy"
                )
                for receiver in extra:
                    body = {"url": receiver.url, "events": events, "org_code": "c"}
                    await api.call("POST", "webhooks", body)
                loaded = await phase(
                    api, healthy + extra, args.events, args.concurrency, "with slow + failing"
                )
    finally:
        for runner in runners:
            await runner.cleanup()
    ratio = statistics.median(loaded) / statistics.median(baseline)
    p99_ratio = percentile(loaded, 99) / percentile(baseline, 99)
    print(
        f"healthy median latency with a slow and a failing endpoint / baseline: {ratio:4.2f}×   "
        f"(p99: {p99_ratio:4.2f}×)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--baseline-events", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=4, help="sessions made at a time")
    args = parser.parse_args()
    with temp_dir("hetang-bench-webhooks-") as directory:
        asyncio.run(run(args, directory))


if __name__ == "__main__":
    main()
