"""`hetang demo-agents`: real venue agents on this machine for the demo city, so a newcomer's
venue wall has agents online (their tokens are rotated for the purpose, audited as "demo")."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

import aiohttp
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.principal import WHOLE_TREE
from server.db.models import SessionVenue, TrainingSession, Venue
from server.db.session import write_session
from server.services import venues
from server.services.clock import utcnow

DEMO_ACTOR = "demo"
FIRST_UI_PORT = 8765
SERVER_WAIT_S = 60.0


@dataclass(frozen=True)
class DemoAgent:
    """One agent to start: its venue, token, data dir and staff-page port."""

    venue: str
    token: str
    data_dir: Path
    ui_port: int


async def pick_and_rotate(
    factory: async_sessionmaker[AsyncSession],
    count: int,
    data_dir: Path,
    first_ui_port: int = FIRST_UI_PORT,
) -> tuple[str | None, list[DemoAgent]]:
    """The session that is live or comes next (the busiest of those starting together) and its
    branch venues, each with a fresh token."""
    async with write_session(factory) as session:
        public_id, codes = await _branch_venues_of_next_session(session, count)
        agents = []
        for index, code in enumerate(codes):
            token = await venues.rotate_token(session, WHOLE_TREE, DEMO_ACTOR, code)
            agents.append(DemoAgent(code, token, data_dir / "agents" / code, first_ui_port + index))
    return public_id, agents


async def _branch_venues_of_next_session(
    session: AsyncSession, count: int
) -> tuple[str | None, list[str]]:
    size = func.count(SessionVenue.id)
    found = (
        await session.execute(
            select(TrainingSession.id, TrainingSession.public_id)
            .join(SessionVenue, SessionVenue.session_id == TrainingSession.id)
            .where(
                TrainingSession.ends_at >= utcnow(),
                TrainingSession.state.in_(("scheduled", "live")),
            )
            .group_by(TrainingSession.id, TrainingSession.public_id, TrainingSession.starts_at)
            .order_by(TrainingSession.starts_at, size.desc())
            .limit(1)
        )
    ).first()
    upcoming, public_id = (found[0], found[1]) if found is not None else (None, None)
    query = select(Venue.code).order_by(Venue.code).limit(count)
    if upcoming is not None:
        query = query.join(SessionVenue, SessionVenue.venue_id == Venue.id).where(
            SessionVenue.session_id == upcoming, SessionVenue.role == "branch"
        )
    return public_id, list((await session.execute(query)).scalars())


async def _server_answers(server_url: str) -> bool:
    """Wait up to SERVER_WAIT_S for the server's /healthz; False when it never answered."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SERVER_WAIT_S
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as client:
        while True:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with client.get(f"{server_url}/healthz") as response:
                    if response.status == HTTPStatus.OK:
                        return True
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.2)


async def run_agents(
    agents: list[DemoAgent],
    server_url: str,
    ice_hosts: tuple[str, ...] = (),
    log_level: str = "INFO",
) -> int:
    """Run the agents until this process is told to stop; then stop them too. They offer the
    same ICE host addresses as the server (a one-machine demo on loopback) and log at this
    command's level."""
    executable = Path(sys.executable).parent / "hetang-agent"
    # Started beside the server (`make run`): let it listen first, or each agent would start
    # by saying it works offline.
    await _server_answers(server_url)
    processes = []
    for agent in agents:
        agent.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        args = ["--log-level", log_level, "run", "--server", server_url]
        args += ["--data-dir", str(agent.data_dir), "--ui-port", str(agent.ui_port)]
        if ice_hosts:
            args += ["--ice-hosts", ",".join(ice_hosts)]
        # The token by environment: a command line is visible to every user (`ps`).
        env = {**os.environ, "HETANG_AGENT_TOKEN": agent.token}
        processes.append(await asyncio.create_subprocess_exec(str(executable), *args, env=env))
        print(
            f"demo agent for venue {agent.venue}: staff page http://127.0.0.1:{agent.ui_port}",
            flush=True,
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    waiting = [asyncio.create_task(process.wait()) for process in processes]
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait([stopping, *waiting], return_when=asyncio.FIRST_COMPLETED)
    for process in processes:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
    codes = await asyncio.gather(*waiting)
    stopping.cancel()
    return 0 if stop.is_set() else max((code or 0) for code in codes)
