"""Two venues in one broadcast of a lesson that takes about 1 Mbit/s (lesson_clip, checked on the
publisher's own getStats), one venue's downlink capped at 400 kbit/s: the capped venue gets the
lighter picture within 10 s, still decodes ≥ 10 fps and is verified up as long as the
unconstrained venue, give or take one 5-s sample (even a flawless venue is verified for only about
83 % of a 50-s broadcast: its first sample judges a whole window), while the unconstrained venue
keeps the full picture. The relay's one blind try of the full picture
after 25 clean seconds costs the capped venue about a second: one lossy receiver report on
probation sends it back, its resends are rationed (passthrough.resend) and its agent skips to the
lighter layer's keyframe (passthrough.stall), so what is offered to its cap stays within 1.5 times
its media's packet rate."""

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
CAP_KBIT = 400
SAMPLE_S = 5  # the agents' stream sample period
LESSON_KBIT = 700  # below this the full picture would fit under the cap with little to spare


def test_a_capped_venue_gets_the_lighter_picture(
    template: tuple[Path, str], tmp_path: Path, capsys: Any
) -> None:
    with lab_broadcast(template, tmp_path, ("b1", "b2"), lesson=True) as scene:
        scene.lab.cap_downlink("b1", CAP_KBIT)
        scene.start_agent("b1")
        scene.start_agent("b2")
        scene.start_broadcast()
        scene.wait_first_frames()
        scene.run_for(BROADCAST_S)
        scene.end_broadcast()
        capped, free = scene.outcome("b1"), scene.outcome("b2")
    with capsys.disabled():
        print(f"\n{CAP_KBIT} kbit/s cap: {capped.context}\nunconstrained: {free.context}")
        print("capped venue's samples:", *capped.samples, sep="\n  ")
    # The lesson really needs more than the cap: otherwise nothing here would be tested.
    assert capped.sent and capped.sent[0].kbps >= LESSON_KBIT, capped.context
    lower = [at for at, quality in capped.qualities if quality != "high"]
    assert lower and lower[0] <= 10, capped.context
    assert capped.qualities[-1][1] != "high", capped.context
    assert capped.mean_fps >= 10, capped.context
    # What reaches its cap is its media plus rationed resends, not a storm of them.
    assert capped.offered_pps is not None and capped.media_pps, capped.context
    assert capped.offered_pps <= 1.5 * capped.media_pps, capped.context
    assert capped.up_ratio >= free.up_ratio - SAMPLE_S / BROADCAST_S, (capped.context, free.context)
    assert free.qualities and all(quality == "high" for _, quality in free.qualities), free.context
    assert free.mean_fps >= 15, free.context
