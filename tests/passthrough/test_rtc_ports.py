"""Fixed media ports (HETANG_RTC_PORTS): every UDP socket the relay opens, for the publisher and
every subscriber, is inside the range; a range too small for the connections asked refuses the
next one clearly and leaves nothing half-open; the setting is validated."""

from __future__ import annotations

import os
import random
import re
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiortc import RTCPeerConnection

from passthrough.hooks import HookMissing
from passthrough.peer import IceSettings, before_gathering, new_peer
from passthrough.ports import PortRange, PortsExhausted, bind_host_ports, parse_port_range
from server.rtc.broadcasts import Broadcasts
from server.settings import Settings, SettingsError
from tests.support.rtc_peers import LOOPBACK, Viewer, offer_to_publish, offer_to_view

SUBSCRIBERS = 3
SECRET = "s" * 40


def free_range(size: int) -> PortRange:
    """`size` consecutive UDP ports on 127.0.0.1 that nothing holds now (below the ephemeral
    range, so our own test peers never land in it)."""
    for _ in range(200):
        first = random.randrange(20000, 30000 - size)
        held = []
        try:
            for port in range(first, first + size):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
        return PortRange(first, first + size - 1)
    raise AssertionError("no free range of UDP ports")


def udp_ports_of_this_process() -> set[int]:
    """Local ports of every UDP socket this process holds (its file descriptors' inodes looked up
    in the kernel's tables; other processes' sockets are not counted)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        match = re.fullmatch(r"socket:\[(\d+)\]", target)
        if match:
            inodes.add(match.group(1))
    ports = set()
    for table in ("/proc/self/net/udp", "/proc/self/net/udp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def candidate_ports(sdp: str) -> set[int]:
    """The ports of the host candidates in a session description."""
    return {int(m) for m in re.findall(r"a=candidate:\S+ \d+ udp \d+ \S+ (\d+) typ host", sdp)}


def peer_ports(pc: RTCPeerConnection) -> set[int]:
    """The local ports of a peer's ICE sockets (our test peers', to tell them apart)."""
    ports = set()
    for transceiver in pc.getTransceivers():
        connection = transceiver.receiver.transport.transport.iceGatherer._connection
        for protocol in connection._protocols:
            ports.add(protocol.transport.get_extra_info("sockname")[1])
    return ports


async def _publish(broadcasts: Broadcasts, made: list[RTCPeerConnection]) -> None:
    publisher = await offer_to_publish()
    made.append(publisher)
    answer = await broadcasts.publish(
        "S1", ("MAIN", "B1"), publisher.localDescription, datetime.now(UTC)
    )
    await publisher.setRemoteDescription(answer)


async def _subscribe(
    broadcasts: Broadcasts, venue: str, made: list[RTCPeerConnection]
) -> tuple[Viewer, str]:
    viewer = await offer_to_view()
    made.append(viewer.pc)
    answer = await broadcasts.subscribe("S1", venue, viewer.pc.localDescription)
    await viewer.pc.setRemoteDescription(answer)
    return viewer, answer.sdp


async def test_every_relay_socket_is_inside_the_range(made: list[RTCPeerConnection]) -> None:
    ports = free_range(8)
    before = udp_ports_of_this_process()
    broadcasts = Broadcasts(IceSettings(hosts=("127.0.0.1",), ports=ports))
    try:
        await _publish(broadcasts, made)
        answers = []
        viewers = []
        for index in range(SUBSCRIBERS):
            viewer, sdp = await _subscribe(broadcasts, f"B{index}", made)
            viewers.append(viewer)
            answers.append(sdp)
        for viewer in viewers:  # they really connect through those ports
            await viewer.frames_after(0, 3)
        offered = set().union(*(candidate_ports(sdp) for sdp in answers))
        assert offered and all(port in ports for port in offered)
        ours = set().union(*(peer_ports(pc) for pc in made))
        relay = udp_ports_of_this_process() - before - ours
        assert len(relay) == 1 + SUBSCRIBERS, "one bundled socket per connection"
        assert all(port in ports for port in relay), (relay, ports)
    finally:
        await broadcasts.close_all()
    assert not udp_ports_of_this_process() & set(range(ports.first, ports.last + 1))


async def test_a_range_too_small_refuses_clearly_and_leaves_nothing_open(
    made: list[RTCPeerConnection], caplog: pytest.LogCaptureFixture
) -> None:
    ports = free_range(2)
    in_range = set(range(ports.first, ports.last + 1))
    broadcasts = Broadcasts(IceSettings(hosts=("127.0.0.1",), ports=ports))
    try:
        await _publish(broadcasts, made)
        await _subscribe(broadcasts, "B1", made)
        assert udp_ports_of_this_process() & in_range == in_range
        viewer = await offer_to_view()
        made.append(viewer.pc)
        with pytest.raises(PortsExhausted, match="HETANG_RTC_PORTS"):
            await broadcasts.subscribe("S1", "B2", viewer.pc.localDescription)
        assert any("HETANG_RTC_PORTS" in r.getMessage() for r in caplog.records)
        status = broadcasts.status("S1")
        assert status.subscribers == 1 and status.publishing
        assert udp_ports_of_this_process() & in_range == in_range
    finally:
        await broadcasts.close_all()
    assert not udp_ports_of_this_process() & in_range, "every port is given back"


async def test_busy_ports_are_skipped(made: list[RTCPeerConnection]) -> None:
    ports = free_range(3)
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        squatter.bind(("127.0.0.1", ports.first + 1))
        ice = IceSettings(hosts=("127.0.0.1",), ports=ports)
        for _ in range(2):
            pc = new_peer(ice)
            made.append(pc)
            pc.addTransceiver("video", direction="recvonly")
            before_gathering(pc, ice)
            await pc.setLocalDescription(await pc.createOffer())
            (port,) = candidate_ports(pc.localDescription.sdp)
            assert port in ports and port != ports.first + 1
    finally:
        squatter.close()


async def test_the_hook_checks_what_it_touches() -> None:
    pc = RTCPeerConnection()
    pc.addTransceiver("audio")
    gatherer = pc.getTransceivers()[0].receiver.transport.transport.iceGatherer
    gatherer._connection = object()
    with pytest.raises(HookMissing):
        bind_host_ports(pc, PortRange(40000, 40001))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", None),
        (" ", None),
        ("40000-40199", PortRange(40000, 40199)),
        ("5000", PortRange(5000, 5000)),
    ],
)
def test_port_range_parses(raw: str, expected: PortRange | None) -> None:
    assert parse_port_range(raw) == expected


@pytest.mark.parametrize("raw", ["40000-", "a-b", "40199-40000", "0-10", "65000-70000", "1,2"])
def test_bad_port_ranges_name_the_variable(raw: str, tmp_path: Path) -> None:
    env = {"HETANG_DATA_DIR": str(tmp_path), "HETANG_SECRET_KEY": SECRET, "HETANG_RTC_PORTS": raw}
    with pytest.raises(SettingsError, match="HETANG_RTC_PORTS"):
        Settings.from_env(env)


def test_the_range_reaches_the_relay_settings(tmp_path: Path) -> None:
    env = {"HETANG_DATA_DIR": str(tmp_path), "HETANG_SECRET_KEY": SECRET}
    assert Settings.from_env(env).ice.ports is None
    env["HETANG_RTC_PORTS"] = "40000-40199"
    assert Settings.from_env(env).ice.ports == PortRange(40000, 40199)
    assert LOOPBACK.ports is None
