"""Behind NAT, on a clean link: a venue agent in its own namespace, behind a masquerading router,
gets the operator's picture through the relay and reports it good."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.lab.scenario import lab_broadcast
from tests.support.chromium import needs_chromium
from tests.support.netlab import needs_lab

pytestmark = [
    pytest.mark.slow,
    pytest.mark.solo,
    pytest.mark.sqlite_only,
    needs_chromium,
    needs_lab,
]
BROADCAST_S = 40


def test_a_venue_behind_nat_gets_the_picture(
    template: tuple[Path, str], tmp_path: Path, capsys: Any
) -> None:
    with lab_broadcast(template, tmp_path, ("b1",)) as scene:
        scene.start_agent("b1")
        scene.start_broadcast()
        scene.wait_first_frames()
        scene.run_for(BROADCAST_S)
        scene.end_broadcast()
        got = scene.outcome("b1")
        agent_samples = scene.running["b1"].samples()
    with capsys.disabled():
        print(f"\nNAT, clean: {got.context}")
    assert got.to_first_frame_s is not None and got.to_first_frame_s <= 5, got.context
    assert got.mean_fps >= 15, got.context
    # Every sample of the broadcast is up, and good but for at most one (a scheduling hiccup
    # of this shared 2-core machine may cost a freeze).
    states = [state for _, state, _, _ in got.samples]
    assert states and "down" not in states, (got.samples, got.context)
    assert states.count("good") >= len(states) - 1, (got.samples, got.context)
    assert any(s["state"] == "good" and s["fps"] >= 15 for s in agent_samples), agent_samples
    assert got.up_ratio >= 0.8, got.context
    # The router's NAT is invisible to the agent: its own (host) candidate's packets got through.
    assert got.ice_paths == {"host/udp"}, got.context
