"""Up-time past the end, in the lab: a venue's agent dies mid-lesson (its last `good` sample
stored, its final `down` never sent), the operator presses 结束直播 a moment later and the session
is ended and finalized 15 s later. The venue's stored up-time stops at 结束直播: before on-air spans
were kept, its last sample vouched for up to 15 s more (printed as "without the cut")."""

from __future__ import annotations

import datetime as dt
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.lab.scenario import WAIT_MS, lab_broadcast
from tests.support.chromium import needs_chromium
from tests.support.lab_procs import stored_samples, verified_up_seconds
from tests.support.netlab import needs_lab
from tests.support.procs import stop_process, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.solo,
    pytest.mark.sqlite_only,
    needs_chromium,
    needs_lab,
]
BROADCAST_S = 25
CLERK_S = 15  # from 结束直播 to the session's End


def test_a_venue_is_not_verified_past_the_end_of_the_broadcast(
    template: tuple[Path, str], tmp_path: Path, capsys: Any
) -> None:
    with lab_broadcast(template, tmp_path, ("b1",)) as scene:
        agent = scene.start_agent("b1")
        scene.start_broadcast()
        scene.wait_first_frames()
        scene.run_for(BROADCAST_S)
        # Right after a sample reached the server the agent dies: its final `down` is never
        # written, and the operator presses 结束直播 at once.
        stored = len(stored_samples(scene.server, scene.session_id, "b1"))
        wait_until(
            lambda: len(stored_samples(scene.server, scene.session_id, "b1")) > stored,
            "the next sample stored",
        )
        stop_process(agent.process, signal.SIGKILL)
        del scene.running["b1"]
        scene.page.get_by_role("button", name="结束直播").click()
        status = scene.page.locator("#broadcast-status")
        expect(status).to_have_text("直播已结束。", timeout=WAIT_MS)
        # The clerk ends the session a while later.
        time.sleep(CLERK_S)
        for action in ("start", "end", "finalize"):
            scene.server.api("POST", f"sessions/{scene.session_id}/{action}")
        rows = stored_samples(scene.server, scene.session_id, "b1")
        spans = scene.server.query(
            "SELECT b.started_at, b.ended_at FROM broadcast_spans b JOIN training_sessions t "
            "ON t.id = b.session_id WHERE t.public_id = ?",
            scene.session_id,
        )
        (up,) = scene.server.query(
            "SELECT s.up_seconds FROM session_venues s JOIN venues v ON v.id = s.venue_id "
            "JOIN training_sessions t ON t.id = s.session_id WHERE t.public_id = ? "
            "AND v.code = 'b1'",
            scene.session_id,
        )[0]
        (ended_at,) = scene.server.query(
            "SELECT ended_at FROM training_sessions WHERE public_id = ?", scene.session_id
        )[0]
    (started, stopped) = (_utc(spans[0][0]), _utc(spans[0][1]))
    on_air = (stopped - started).total_seconds()
    uncut = verified_up_seconds([(at, state) for at, state, *_ in rows], started, _utc(ended_at))
    last = rows[-1]
    with capsys.disabled():
        print(
            f"\non air {on_air:.0f} s; last sample {last[1]} at "
            f"{(last[0] - started).total_seconds():.0f} s; stored up-time {up} s; "
            f"without the cut {uncut:.0f} s"
        )
    assert len(spans) == 1
    assert last[1] == "good", rows  # the agent died without its final `down`
    assert uncut > on_air + 5, (uncut, on_air)  # what the last sample alone would vouch for
    assert 0 < up <= on_air, (up, on_air, rows)


def _utc(raw: object) -> dt.datetime:
    moment = raw if isinstance(raw, dt.datetime) else dt.datetime.fromisoformat(str(raw))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
