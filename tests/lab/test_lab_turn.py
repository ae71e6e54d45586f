"""UDP blocked at the venue's router: the agent, told nothing but the server's address, asks the
server for ICE servers (credentials for our coturn, minted per venue), finds UDP silent and reaches
the relay through coturn over TCP (`turn:…?transport=tcp`); when the router also blocks coturn's
plain TCP port, over TLS (`turns:`, the test's self-signed certificate trusted through
SSL_CERT_FILE). Either way the picture arrives within 5 s of the broadcast starting."""

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
BROADCAST_S = 30


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_udp_blocked_the_picture_comes_through_turn(
    transport: str, template: tuple[Path, str], tmp_path: Path, capsys: Any
) -> None:
    with lab_broadcast(template, tmp_path, ("b1",), with_turn=True) as scene:
        turn = scene.turn
        assert turn is not None
        scene.lab.block_udp("b1")
        if transport == "tls":
            # Only TLS gets out: coturn's plain TCP port is blocked too.
            scene.lab.block_tcp("b1", turn.plain_port)
        scene.start_agent("b1")
        scene.start_broadcast()
        scene.wait_first_frames()
        # The venue's router (its NAT address) holds a TCP connection to coturn: the way in.
        on_plain, on_tls = turn.tcp_clients(turn.plain_port), turn.tcp_clients(turn.tls_port)
        scene.run_for(BROADCAST_S)
        scene.end_broadcast()
        got = scene.outcome("b1")
        udp_dropped, tcp_dropped = scene.lab.drops("b1", "udp"), scene.lab.drops("b1", "tcp")
        router = scene.lab.venue("b1").router_wan
        wanted = turn.url(transport)
    with capsys.disabled():
        print(
            f"\nUDP blocked, TURN/{transport}: {got.context}; dropped UDP {udp_dropped}, "
            f"TCP {tcp_dropped}; coturn's TCP clients {on_plain}, TLS clients {on_tls}"
        )
    assert udp_dropped > 0, "the agent tried UDP (and the router dropped it)"
    assert got.turn and got.turn[0] == wanted, got.context
    assert got.ice_paths == {f"relay/{transport}"}, got.context  # what the wall shows
    if transport == "tcp":
        assert router in on_plain, (on_plain, on_tls)
    else:
        assert tcp_dropped > 0, "the agent tried plain TCP (and the router dropped it)"
        assert router in on_tls and router not in on_plain, (on_plain, on_tls)
    assert got.to_first_frame_s is not None and got.to_first_frame_s <= 5, got.context
    assert got.mean_fps >= 15, got.context
    states = [state for _, state, _, _ in got.samples]
    assert states and "down" not in states, (got.samples, got.context)
