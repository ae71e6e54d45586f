"""Credentials minted by server.domain.turn are accepted by a real coturn: a viewer that may use
only relayed candidates receives the relay's broadcast through it, over UDP and over TCP; a
credential minted with another secret gets no relay at all."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from passthrough.peer import IceSettings
from server.domain.turn import TurnSettings, mint
from server.rtc.broadcasts import Broadcasts
from tests.support.coturn import Coturn, running_coturn
from tests.support.rtc_peers import close_all, offer_to_publish

SECRET = "coturn-test-secret-" + "z" * 24
pytestmark = pytest.mark.sqlite_only


@pytest.fixture(scope="module")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    """One coturn for the module, on loopback, relaying to loopback peers."""
    with running_coturn(tmp_path_factory.mktemp("coturn"), SECRET) as running:
        yield running


def relay_only_viewer(url: str, username: str, credential: str) -> RTCPeerConnection:
    """A receive-only peer that may use relayed candidates only (policy "relay")."""
    server = RTCIceServer(urls=[url], username=username, credential=credential)
    pc = RTCPeerConnection(
        RTCConfiguration(iceServers=[server], iceTransportPolicy=RTCIceTransportPolicy.RELAY)
    )
    pc.addTransceiver("audio", direction="recvonly")
    pc.addTransceiver("video", direction="recvonly")
    return pc


async def _frames(track: MediaStreamTrack, count: int) -> None:
    for _ in range(count):
        await track.recv()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_minted_credentials_relay_the_broadcast(coturn: Coturn, transport: str) -> None:
    url = coturn.udp_url if transport == "udp" else coturn.tcp_url
    minted = mint(TurnSettings(SECRET, (url,)), "venue.B1", datetime.now(UTC))
    broadcasts = Broadcasts(IceSettings(hosts=("127.0.0.1",)))  # the relay itself: no TURN
    made: list[RTCPeerConnection] = []
    try:
        publisher = await offer_to_publish()
        made.append(publisher)
        answer = await broadcasts.publish(
            "S1", ("MAIN", "B1"), publisher.localDescription, datetime.now(UTC)
        )
        await publisher.setRemoteDescription(answer)

        viewer = relay_only_viewer(url, minted.username, minted.credential)
        made.append(viewer)
        tracks: list[MediaStreamTrack] = []
        viewer.on("track", tracks.append)
        started = time.monotonic()
        await viewer.setLocalDescription(await viewer.createOffer())
        offer = viewer.localDescription.sdp
        assert "typ relay" in offer, f"coturn refused the credential:\n{coturn.log()[-2000:]}"
        assert "typ host" not in offer
        answer = await broadcasts.subscribe("S1", "B1", viewer.localDescription)
        await viewer.setRemoteDescription(answer)
        video = next(t for t in tracks if t.kind == "video")
        with contextlib.suppress(MediaStreamError):
            await asyncio.wait_for(_frames(video, 10), 10)
        assert viewer.connectionState == "connected"
        pair = viewer.getTransceivers()[0].receiver.transport.transport._connection._nominated[1]
        assert pair.local_candidate.type == "relay"
        assert time.monotonic() - started < 5
    finally:
        await broadcasts.close_all()
        await close_all(made)


async def test_a_credential_of_another_secret_gets_no_relay(coturn: Coturn) -> None:
    minted = mint(
        TurnSettings("another-secret-" + "q" * 20, (coturn.udp_url,)), "x", datetime.now(UTC)
    )
    viewer = relay_only_viewer(coturn.udp_url, minted.username, minted.credential)
    try:
        await viewer.setLocalDescription(await viewer.createOffer())
        assert "typ relay" not in viewer.localDescription.sdp
    finally:
        await viewer.close()


async def test_tls_listener_starts(tmp_path: Path) -> None:
    """The launcher's TLS option (for the network lab): coturn answers a TLS handshake with the
    self-signed certificate, which a context given that certificate trusts."""
    from tests.support.coturn import free_udp_and_tcp_port

    with running_coturn(tmp_path, SECRET, tls_port=free_udp_and_tcp_port()) as running:
        assert running.tls_port is not None
        _, writer = await asyncio.open_connection(
            running.host, running.tls_port, ssl=running.trusting_context()
        )
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
