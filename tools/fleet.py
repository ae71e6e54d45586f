"""A fleet of light simulated venue agents, for the fleet test and bench/fleet.py (issue 17).

Each simulated agent does what `hetang-agent` does on the wire, without media: one events
WebSocket held open (and opened again, after a short random pause, whenever it closes), a
heartbeat every 15 s, a schedule poll with If-None-Match, and a batch of check-ins every 30 s
kept until the server answered it (sent again with the same event ids after a failure, as the
agent's outbox does). Many agents share one process and one connection pool; `run_fleet` spreads
them over a few processes (`python -m tools.fleet`) and adds up what they saw."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

ENDPOINTS = ("heartbeat", "schedule", "checkins", "events")
TIMEOUT_S = 30.0
DRAIN_S = 60.0  # after the run, how long agents keep sending what the server has not answered
SETTLE_S = 60.0  # after the run, how long agents still reconnecting are waited for


@dataclass(frozen=True)
class Pace:
    """How often each agent does each thing (seconds)."""

    heartbeat_s: float = 15.0
    schedule_s: float = 60.0
    batch_s: float = 30.0
    batch_size: int = 5


@dataclass
class Tally:
    """What the agents of one process saw."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {e: [] for e in ENDPOINTS})
    failures: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ENDPOINTS, 0))
    statuses: dict[str, str] = field(default_factory=dict)  # event id → the server's answer
    created: int = 0  # check-in events made
    connects: int = 0  # events WebSockets opened (first ones and reconnections)
    unsent: int = 0  # events still not answered after the drain
    connected_at_end: int = 0  # agents holding their events socket, once all did or SETTLE_S
    settled_s: float = 0.0  # how long after the run that took

    def add(self, other: Tally) -> None:
        """Count another process's agents in (run_fleet adds up its processes' tallies)."""
        for endpoint in ENDPOINTS:
            self.latencies[endpoint] += other.latencies[endpoint]
            self.failures[endpoint] += other.failures[endpoint]
        self.statuses.update(other.statuses)
        self.created += other.created
        self.connects += other.connects
        self.unsent += other.unsent
        self.connected_at_end += other.connected_at_end
        self.settled_s = max(self.settled_s, other.settled_s)


@dataclass(frozen=True)
class AgentPlan:
    token: str
    session_id: str
    members: tuple[str, ...]


class SimulatedAgent:
    """One venue's agent, as the server sees it."""

    def __init__(self, http: aiohttp.ClientSession, plan: AgentPlan, pace: Pace, tally: Tally):
        self.http, self.plan, self.pace, self.tally = http, plan, pace, tally
        self.headers = {"Authorization": f"Bearer {plan.token}"}
        self.outbox: list[list[dict[str, str]]] = []
        self.connected = False
        self.etag = ""

    async def run(self, stop: asyncio.Event) -> None:
        loops = [self._events(stop), self._every(stop, self.pace.heartbeat_s, self._heartbeat)]
        loops += [self._every(stop, self.pace.schedule_s, self._schedule)]
        loops += [self._every(stop, self.pace.batch_s, self._checkins)]
        await asyncio.gather(*loops)

    async def _every(self, stop: asyncio.Event, period: float, step: Any) -> None:
        next_at = time.monotonic() + random.uniform(0, period)
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.monotonic()))
            except TimeoutError:
                await step()
                next_at += period

    async def _timed(
        self, endpoint: str, method: str, path: str, extra: dict[str, str] | None = None, **kw: Any
    ) -> Any:
        """One request; its answer (status, headers, body), or None after a failure."""
        started = time.perf_counter()
        sent = {**self.headers, **(extra or {})}
        try:
            async with self.http.request(method, path, headers=sent, **kw) as answer:
                body = await answer.read()
                status, headers = answer.status, answer.headers
        except (aiohttp.ClientError, TimeoutError):
            self.tally.failures[endpoint] += 1
            return None
        if status >= 400:
            self.tally.failures[endpoint] += 1
            return None
        self.tally.latencies[endpoint].append(time.perf_counter() - started)
        return status, headers, body

    async def _heartbeat(self) -> None:
        body = {"state": "idle", "agent_version": "fleet", "queue_depth": len(self.outbox)}
        await self._timed("heartbeat", "POST", "/api/v1/agent/heartbeat", json=body)

    async def _schedule(self) -> None:
        headers = {"If-None-Match": self.etag} if self.etag else {}
        answer = await self._timed("schedule", "GET", "/api/v1/agent/schedule", headers)
        if answer is not None and answer[0] == 200:
            self.etag = answer[1].get("ETag", "")

    async def _checkins(self) -> None:
        batch = []
        for n in range(self.pace.batch_size):
            batch.append(
                {
                    "event_id": str(uuid.uuid4()),
                    "session_id": self.plan.session_id,
                    "member_no": random.choice(self.plan.members),
                    "kind": "in" if n % 2 == 0 else "out",
                    "at": datetime.now(UTC).isoformat(),
                    "source": "scanner",
                }
            )
        self.tally.created += len(batch)
        self.outbox.append(batch)
        await self.flush()

    async def flush(self) -> None:
        """Send what waits, oldest first; stop at the first failure (kept for the next try)."""
        while self.outbox:
            body = {"sent_at": datetime.now(UTC).isoformat(), "events": self.outbox[0]}
            answer = await self._timed("checkins", "POST", "/api/v1/agent/checkins", json=body)
            if answer is None:
                return
            for result in json.loads(answer[2])["results"]:
                previous = self.tally.statuses.get(result["event_id"])
                # Sent again after a lost answer: "duplicate" then means it was stored before.
                if previous is None or previous == "duplicate":
                    self.tally.statuses[result["event_id"]] = result["status"]
            self.outbox.pop(0)

    async def _events(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                async with self.http.ws_connect(
                    "/api/v1/agent/events", headers=self.headers, heartbeat=30
                ) as socket:
                    self.tally.connects += 1
                    self.tally.latencies["events"].append(time.perf_counter() - started)
                    self.connected = True
                    closing = asyncio.ensure_future(stop.wait())
                    while not stop.is_set():
                        receiving = asyncio.ensure_future(socket.receive())
                        done, _ = await asyncio.wait(
                            {receiving, closing}, return_when=asyncio.FIRST_COMPLETED
                        )
                        if receiving not in done:
                            receiving.cancel()
                            break
                        if receiving.result().type in (
                            aiohttp.WSMsgType.CLOSE,
                            aiohttp.WSMsgType.CLOSED,
                            aiohttp.WSMsgType.ERROR,
                        ):
                            break
                    closing.cancel()
            except (aiohttp.ClientError, TimeoutError):
                self.tally.failures["events"] += 1
            if not stop.is_set():
                self.connected = False
                await asyncio.sleep(random.uniform(0.5, 3.0))


async def run_agents(
    server: str, plans: Sequence[AgentPlan], seconds: float, pace: Pace = Pace()
) -> Tally:
    """Run the agents for `seconds`, then let them deliver what waits (up to DRAIN_S)."""
    tally = Tally()
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    async with aiohttp.ClientSession(server, connector=connector, timeout=timeout) as http:
        agents = [SimulatedAgent(http, plan, pace, tally) for plan in plans]
        stop = asyncio.Event()
        running = asyncio.gather(*(agent.run(stop) for agent in agents))
        await asyncio.sleep(seconds)
        tally.settled_s = await _settle(agents)
        tally.connected_at_end = sum(agent.connected for agent in agents)
        stop.set()
        await running
        deadline = time.monotonic() + DRAIN_S
        while any(a.outbox for a in agents) and time.monotonic() < deadline:
            await asyncio.gather(*(a.flush() for a in agents if a.outbox))
            await asyncio.sleep(1.0)
        tally.unsent = sum(len(batch) for a in agents for batch in a.outbox)
    return tally


async def _settle(agents: Sequence[SimulatedAgent]) -> float:
    """Wait (up to SETTLE_S, the agents still running) until every agent holds its events
    socket; answers how long that took. On a loaded machine reconnections after a killed
    worker may still be under way when the run's time is up."""
    started = time.monotonic()
    while not all(agent.connected for agent in agents):
        if time.monotonic() - started >= SETTLE_S:
            break
        await asyncio.sleep(0.5)
    return time.monotonic() - started


def run_fleet(
    server: str,
    plans: Sequence[AgentPlan],
    seconds: float,
    processes: int,
    work_dir: Path,
    pace: Pace = Pace(),
) -> Tally:
    """The agents spread over `processes` processes of `python -m tools.fleet`; what they all
    saw, added up."""
    children = []
    for n in range(processes):
        share = [dataclasses.asdict(plan) for plan in plans[n::processes]]
        (work_dir / f"plans-{n}.json").write_text(json.dumps(share))
        command = [sys.executable, "-m", "tools.fleet", server, str(work_dir / f"plans-{n}.json")]
        command += ["--seconds", str(seconds), "--out", str(work_dir / f"tally-{n}.json")]
        command += ["--pace", json.dumps(dataclasses.asdict(pace))]
        children.append(subprocess.Popen(command))  # noqa: S603
    for child in children:
        if child.wait() != 0:
            raise RuntimeError(f"a fleet process ended with code {child.returncode}")
    result = Tally()
    for n in range(processes):
        result.add(Tally(**json.loads((work_dir / f"tally-{n}.json").read_text())))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.fleet")
    parser.add_argument("server")
    parser.add_argument("plans", type=Path, help="a JSON list of {token, session_id, members}")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--pace", default="{}", help="Pace's fields as JSON (default: an agent's)")
    args = parser.parse_args(argv)
    plans = [
        AgentPlan(p["token"], p["session_id"], tuple(p["members"]))
        for p in json.loads(args.plans.read_text())
    ]
    tally = asyncio.run(run_agents(args.server, plans, args.seconds, Pace(**json.loads(args.pace))))
    args.out.write_text(json.dumps(dataclasses.asdict(tally)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
