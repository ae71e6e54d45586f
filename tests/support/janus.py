"""A real Janus (Debian's `janus` 1.1.x, installed by .ci/run) for tests: its own config folder,
HTTP port and RTP ports, and a veth address of its own for ICE (Janus never offers loopback
candidates; deploy/janus/NOTES.md, section 4). Stopped with SIGINT, as Janus expects."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from passthrough.peer import IceSettings, before_gathering, new_peer
from tests.support.netlab import ip_run, lab_unavailable
from tests.support.procs import free_port, stop_process
from tests.support.rtc_peers import close_all

MODULES = Path("/usr/lib/x86_64-linux-gnu/janus")
UNUSED_PLUGINS = (
    "audiobridge duktape echotest lua nosip recordplay sip textroom videocall voicemail streaming"
)
UNUSED_TRANSPORTS = "mqtt nanomsg pfunix rabbitmq websockets"
OTHER_HANDLERS = "gelfevh mqttevh nanomsgevh rabbitmqevh wsevh"


def _janus_unavailable() -> str | None:
    if shutil.which("janus") is None:
        return "Janus is not installed (apt-get install janus; .ci/run does)"
    return lab_unavailable()


needs_janus = pytest.mark.skipif(
    _janus_unavailable() is not None, reason=str(_janus_unavailable() or "Janus is here")
)


@dataclass(frozen=True)
class RunningJanus:
    url: str  # its HTTP API, http://127.0.0.1:<port>/janus
    address: str  # the only address it (and its peers) use for ICE
    process: subprocess.Popen[bytes]


def _config(
    folder: Path, name: str, http_port: int, address: str, rtp: str, events: str | None
) -> None:
    def disabled(names: str) -> str:
        return ",".join(f"libjanus_{n}.so" for n in names.split())

    folder.mkdir(parents=True)
    (folder / "janus.jcfg").write_text(
        "general: {\n"
        f'  configs_folder = "{folder}"\n'
        f'  plugins_folder = "{MODULES}/plugins"\n'
        f'  transports_folder = "{MODULES}/transports"\n'
        f'  events_folder = "{MODULES}/events"\n'
        f'  loggers_folder = "{MODULES}/loggers"\n'
        f'  debug_level = 4\n  server_name = "{name}"\n  session_timeout = 60\n'
        f'  admin_secret = "{secrets.token_hex(8)}"\n'
        "}\ncertificates: {}\n"
        f'media: {{ rtp_port_range = "{rtp}" }}\n'
        f'nat: {{ ice_enforce_list = "{address}" }}\n'
        f'plugins: {{ disable = "{disabled(UNUSED_PLUGINS)}" }}\n'
        f'transports: {{ disable = "{disabled(UNUSED_TRANSPORTS)}" }}\n'
        'loggers: { disable = "libjanus_jsonlog.so" }\n'
        + (
            "events: { broadcast = false }\n"
            if events is None
            else "events: { broadcast = true\n  stats_period = 1\n"
            f'  disable = "{disabled(OTHER_HANDLERS)}" }}\n'
        )
    )
    if events is not None:
        url, _, password = events.partition("#")
        (folder / "janus.eventhandler.sampleevh.jcfg").write_text(
            "general: {\n  enabled = true\n"
            '  events = "sessions,handles,webrtc,media,plugins"\n'
            '  grouping = true\n  json = "compact"\n'
            f'  backend = "{url}"\n'
            + (f'  backend_user = "janus"\n  backend_pwd = "{password}"\n' if password else "")
            + "  max_retransmissions = 2\n  retransmissions_backoff = 100\n}\n"
        )
    (folder / "janus.transport.http.jcfg").write_text(
        "general: {\n"
        f'  json = "compact"\n  base_path = "/janus"\n  http = true\n  port = {http_port}\n'
        '  ip = "127.0.0.1"\n  https = false\n}\n'
        "admin: { admin_http = false }\n"
    )
    (folder / "janus.plugin.videoroom.jcfg").write_text("general: {}\n")


@contextlib.contextmanager
def janus_address() -> Iterator[str]:
    """A veth address of the test's own, for Janus's ICE (and its peers'); removed afterwards."""
    tag = secrets.token_hex(2)
    third = 1 + secrets.randbelow(250)
    address, device = f"10.78.{third}.1", f"hj{tag}"
    ip_run("ip", "link", "add", device, "type", "veth", "peer", "name", device + "p")
    try:
        ip_run("ip", "addr", "add", f"{address}/24", "dev", device)
        ip_run("ip", "link", "set", device, "up")
        ip_run("ip", "link", "set", device + "p", "up")
        yield address
    finally:
        ip_run("ip", "link", "del", device, check=False)


@contextlib.contextmanager
def janus_instance(
    root: Path,
    name: str = "janus-test",
    address: str | None = None,
    rtp_low: int | None = None,
    events: str | None = None,
) -> Iterator[RunningJanus]:
    """One Janus answering /janus/info, on `address` for ICE (a veth of its own when None) with
    the RTP ports rtp_low.. rtp_low+999 (instances sharing an address need distinct ones);
    stopped afterwards (unless the test killed it). `events` ("<url>#<password>") has its event
    handler post there, media statistics each second."""
    if address is None:
        with janus_address() as own, janus_instance(root, name, own, rtp_low, events) as janus:
            yield janus
        return
    port = free_port()
    low = 20000 + 1000 * secrets.randbelow(20) if rtp_low is None else rtp_low
    folder = root / name
    _config(folder, name, port, address, f"{low}-{low + 999}", events)
    log = (root / f"{name}.log").open("ab")
    process = subprocess.Popen(
        ["janus", "-F", str(folder), "-o"], stdout=log, stderr=subprocess.STDOUT, cwd=root
    )
    log.close()
    url = f"http://127.0.0.1:{port}/janus"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(url + "/info", timeout=2):  # noqa: S310
                    break
            except OSError:
                assert process.poll() is None, (root / f"{name}.log").read_text()[-2000:]
                assert time.monotonic() < deadline, "Janus did not answer /janus/info"
                time.sleep(0.1)
        yield RunningJanus(url, address, process)
    finally:
        stop_process(process, signal.SIGINT)


async def answering_viewer(
    ice: IceSettings,
    offer_sdp: str,
    frames: list[float],
    tasks: list[asyncio.Task[None]],
    sizes: list[tuple[int, int]] | None = None,
) -> RTCPeerConnection:
    """A venue's peer that answers Janus's offer and notes when it decodes each video frame (and
    its size, given a list)."""
    pc = new_peer(ice)

    async def read(track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if isinstance(frame, av.VideoFrame):
                    frames.append(time.monotonic())
                    if sizes is not None:
                        sizes.append((frame.width, frame.height))

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        tasks.append(asyncio.ensure_future(read(track)))

    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
    before_gathering(pc, ice)
    await pc.setLocalDescription(await pc.createAnswer())
    return pc


@dataclass
class JanusVenue:
    """A venue subscribing through our API as its agent does with Janus (POST subscribe/offer,
    an aiortc viewer answering Janus's offer, POST subscribe/answer), noting the video frames it
    decodes and their sizes."""

    client: Any
    session_id: str
    token: str
    ice: IceSettings
    frames: list[float] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)
    peers: list[RTCPeerConnection] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def _post(self, step: str, body: object = None) -> Any:
        return self.client.post(
            f"/api/v1/agent/sessions/{self.session_id}/subscribe/{step}",
            headers={"Authorization": f"Bearer {self.token}"},
            json=body,
        )

    async def ask(self) -> Any:
        """POST subscribe/offer; the response, as it came."""
        return await self._post("offer")

    async def answer(self, offered: dict[str, Any]) -> RTCPeerConnection:
        """Answer an offer the server gave (200 asserted); the viewer's peer."""
        pc = await answering_viewer(self.ice, offered["sdp"], self.frames, self.tasks, self.sizes)
        self.peers.append(pc)
        body = {"sdp": pc.localDescription.sdp, "type": "answer", "token": offered["token"]}
        started = await self._post("answer", body)
        assert started.status == 200, await started.text()
        return pc

    async def subscribe(self) -> dict[str, Any]:
        """Ask for an offer and answer it; the offer."""
        answer = await self.ask()
        assert answer.status == 200, await answer.text()
        offered: dict[str, Any] = await answer.json()
        await self.answer(offered)
        return offered

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await close_all(self.peers)
