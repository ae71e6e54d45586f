"""An audit trail written the way the server writes it, for the audit tests: sessions sealed as
the server's and the CLI's are, a realistic trail through the real app and services, and
`hetang audit verify` as a process of its own."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from server.auth.principal import WHOLE_TREE
from server.db.models import AuditEntry
from server.db.session import make_engine, make_sessionmaker, read_session, write_session
from server.domain.audit_chain import AuditSeal
from server.services import users
from server.settings import Settings
from tests.support.client import Client
from tests.support.databases import Db
from tests.support.world import SECRET, World

ROOT = Path(__file__).resolve().parents[2]
TZ = ZoneInfo("Asia/Shanghai")


@asynccontextmanager
async def sealed_sessions(settings: Settings) -> AsyncIterator[Db]:
    """Sessions as the `hetang` command makes them for these settings."""
    engine = make_engine(settings.database_url)
    try:
        yield make_sessionmaker(engine, AuditSeal.of(settings.secret_key, settings.data_dir))
    finally:
        await engine.dispose()


async def build_trail(client: Client, world: World, keyed: Db) -> int:
    """Organizations, members (created and imported), a venue and its token, a session held
    with a check-in and finalized, two stored monthly reports, users and tokens — through the
    real HTTP API and the real services. Returns the number of entries."""
    admin = world.auth("admin", "all")

    async def post(path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        answer = await client.post(path, json=body, headers=headers or admin)
        assert answer.status in (200, 201), await answer.text()
        return await answer.json()

    await post(
        "/api/v1/organizations",
        {"code": "n1", "name": "新党委", "level": "committee", "parent_code": "a"},
    )
    await post(
        "/api/v1/organizations",
        {"code": "n1a", "name": "新支部", "level": "branch", "parent_code": "n1"},
    )
    for number in range(1, 13):
        body = {"member_no": f"M{number}", "name": f"党员{number}", "org_code": "n1a"}
        await post("/api/v1/members", {**body, "category": "ordinary"})
    imported = await client.post(
        "/api/v1/members/import",
        data="member_no,name,org_code,category\nM1,党员1,n1a,secretary\nM7,党员7,n1,ordinary\n",
        headers={**admin, "Content-Type": "text/csv"},
    )
    assert imported.status == 200, await imported.text()
    await post("/api/v1/venues", {"code": "V1", "name": "会场", "org_code": "n1"})
    month = f"{datetime.now(TZ):%Y-%m}"
    await post("/api/v1/reports/monthly/snapshots", {"org": "a", "month": month})
    token = (await post("/api/v1/venues/V1/token", None))["token"]
    starts = datetime.now(TZ).replace(hour=9, minute=0, second=0, microsecond=0)
    starts -= timedelta(days=1)
    created = await post(
        "/api/v1/sessions",
        {
            "title": "培训班",
            "topic_code": "T1",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=3)).isoformat(),
            "credit_hours": 3,
            "main_venue": "V1",
            "branch_venues": [],
            "policy": {"require_stream_verification": False},
            "roster": [{"member_no": f"M{n}", "venue": "V1"} for n in range(1, 6)],
        },
    )
    event = {
        "event_id": str(uuid.uuid4()),
        "session_id": created["id"],
        "member_no": "M1",
        "kind": "in",
        "at": (starts + timedelta(minutes=2)).isoformat(),
        "source": "scanner",
    }
    checked = await post(
        "/api/v1/agent/checkins",
        {"sent_at": datetime.now(UTC).isoformat(), "events": [event]},
        {"Authorization": f"Bearer {token}"},
    )
    assert checked["results"][0]["status"] == "accepted", checked
    for action in ("start", "end", "finalize"):
        await post(f"/api/v1/sessions/{created['id']}/{action}", None)
    async with write_session(keyed) as session:
        await users.create_user(
            session,
            WHOLE_TREE,
            "user:root",
            username="clerk",
            display_name="办事员",
            role="operator",
            org_code="n1",
            password_hash=None,
        )
        await users.create_api_token(session, WHOLE_TREE, "user:root", "clerk")
    await post("/api/v1/reports/monthly/snapshots", {"org": "a", "month": month})
    await post(
        "/api/v1/organizations",
        {"code": "n2", "name": "又一党委", "level": "committee", "parent_code": "b"},
    )
    async with read_session(keyed) as session:
        return len((await session.execute(select(AuditEntry.id))).all())


@dataclass
class Ran:
    code: int
    out: str
    err: str


async def verify_command(database_url: str, data_dir: Path) -> Ran:
    """`hetang audit verify` in a process of its own."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HETANG_")}
    environ.update(
        HETANG_DATABASE_URL=database_url,
        HETANG_SECRET_KEY=SECRET,
        HETANG_DATA_DIR=str(data_dir),
        HETANG_LOCALE="en",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        "audit",
        "verify",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environ,
        cwd=ROOT,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())
