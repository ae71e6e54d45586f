"""5 % of the venue's UDP packets lost at random, both directions: the agent still decodes
≥ 15 fps on average and the venue's verified up-time is ≥ 80 % of the broadcast."""

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
BROADCAST_S = 50


def test_five_percent_loss(template: tuple[Path, str], tmp_path: Path, capsys: Any) -> None:
    with lab_broadcast(template, tmp_path, ("b1",)) as scene:
        scene.lab.set_loss("b1", 5)
        scene.start_agent("b1")
        scene.start_broadcast()
        scene.wait_first_frames()
        scene.run_for(BROADCAST_S)
        scene.end_broadcast()
        got = scene.outcome("b1")
        dropped = scene.lab.drops("b1", "udp")
    with capsys.disabled():
        print(f"\n5 % loss: {got.context}; UDP packets dropped: {dropped}")
    assert dropped > 0
    assert got.mean_fps >= 15, got.context
    assert got.up_ratio >= 0.8, got.context
