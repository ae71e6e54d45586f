"""Stream-health samples uploaded as a venue's agent uploads them: POST agent/stream-stats, in
batches of at most 1000, sent now (so no clock correction applies); and the review page's stream
timeline as a reviewer reads it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.browser import Browser, give_password
from tests.support.client import Client

BATCH = 1000


async def post_samples(
    client: Client, token: str, session_id: str, samples: list[dict[str, Any]]
) -> int:
    """Upload the samples with the venue's token; answers how many the server took as new."""
    accepted = 0
    for first in range(0, len(samples), BATCH):
        answer = await client.post(
            "/api/v1/agent/stream-stats",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "sent_at": datetime.now(UTC).isoformat(),
                "session_id": session_id,
                "samples": samples[first : first + BATCH],
            },
        )
        assert answer.status == 200, await answer.text()
        accepted += (await answer.json())["accepted"]
    return accepted


async def review_page(
    client: Any, db: async_sessionmaker[AsyncSession], session_id: str, *, english: bool = False
) -> str:
    """The review page as reviewer-a reads it (in English after switching the language)."""
    await give_password(db, "reviewer-a")
    page = f"/sessions/{session_id}/attendance"
    async with Browser(client) as reviewer:
        await reviewer.signed_in("reviewer-a")
        if english:
            async with reviewer.request("GET", f"/lang/en?next={page}") as answer:
                assert answer.status == 302
        async with reviewer.request("GET", page) as answer:
            html = await answer.text()
            assert answer.status == 200, html[:2000]
    return str(html)


def timeline_block(html: str, code: str) -> str:
    """One venue's block of the timeline card."""
    card = html.split('class="card stream-timelines"', 1)[1].split("</section>", 1)[0]
    blocks = card.split('<div class="timeline">')[1:]
    (block,) = [b for b in blocks if f'<code class="muted">{code}</code>' in b]
    return block


def timeline_spans(block: str) -> list[tuple[str, str]]:
    """(state, title) of each span of a bar, in order."""
    return re.findall(r'<rect class="tl-(\w+)"[^>]*><title>([^<]*)</title>', block)
