"""What the real venue agent costs while it receives a broadcast: a server, one `hetang-agent`, and
a publisher sending 640x360 VP8 at 30 fps (~1 Mbit/s) through the server's relay; the agent's CPU
(% of one core) and memory are read from /proc over a window, beside an idle agent's as the
baseline measured in the same run.

    python bench/agent_cost.py [--window 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiortc import RTCSessionDescription  # noqa: E402

from bench.common import BIN, bench_env, free_port, hetang, prepare, server_process, temp_dir  # noqa: E402
from bench.rtc_media import SyntheticCamera, pin_vp8_bitrate  # noqa: E402
from bench.rtc_procs import process_cost  # noqa: E402
from bench.rtc_report import print_viewer_cost  # noqa: E402
from passthrough.peer import IceSettings, before_gathering, new_peer  # noqa: E402

LOOPBACK = IceSettings(hosts=("127.0.0.1",))


def api(base: str, token: str, method: str, path: str, body: object = None) -> Any:
    """One JSON call with a bearer token."""
    request = urllib.request.Request(  # noqa: S310  (loopback only)
        f"{base}/api/v1/{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
        return json.loads(answer.read())


def agent_status(port: int) -> dict[str, Any]:
    """The agent's staff-page status."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status.json", timeout=5) as answer:
        status: dict[str, Any] = json.loads(answer.read())
        return status


def setup(base: str, token: str) -> tuple[str, str]:
    """A main venue, one branch venue and a session running now; its id and the branch token."""
    api(
        base,
        token,
        "POST",
        "organizations",
        {"code": "cz", "name": "滁州市", "level": "city", "parent_code": None},
    )
    api(base, token, "POST", "venues", {"code": "m", "name": "主会场", "org_code": "cz"})
    branch = api(base, token, "POST", "venues", {"code": "b", "name": "分会场", "org_code": "cz"})
    now = datetime.now(UTC)
    session = api(
        base,
        token,
        "POST",
        "sessions",
        {
            "title": "基准测试",
            "topic_code": "BENCH",
            "credit_hours": 1,
            "starts_at": (now - timedelta(minutes=1)).isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
            "main_venue": "m",
            "branch_venues": ["b"],
            "roster": [],
        },
    )
    return session["id"], branch["token"]


async def publish_and_measure(
    base: str, token: str, session_id: str, ui_port: int, pid: int, window: float
) -> None:
    """Publish, wait until the agent decodes, then measure it."""
    pin_vp8_bitrate()
    camera = SyntheticCamera()
    pc = new_peer(LOOPBACK)
    pc.addTrack(camera)
    before_gathering(pc, LOOPBACK)
    await pc.setLocalDescription(await pc.createOffer())
    answer = await asyncio.to_thread(
        api,
        base,
        token,
        "POST",
        f"sessions/{session_id}/broadcast",
        {"sdp": pc.localDescription.sdp, "type": "offer"},
    )
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
    try:
        started = time.monotonic()
        while True:
            status = await asyncio.to_thread(agent_status, ui_port)
            if (status.get("stream") or {}).get("frames_decoded_now", 0) > 30:
                break
            if time.monotonic() - started > 30:
                raise SystemExit("the agent did not start decoding within 30 s")
            await asyncio.sleep(0.2)
        print(
            f"agent decoding {time.monotonic() - started:.2f} s after publishing; warming up 3 s",
            file=sys.stderr,
        )
        await asyncio.sleep(3)
        before = (await asyncio.to_thread(agent_status, ui_port))["stream"]["frames_decoded_now"]
        cost = await asyncio.to_thread(process_cost, pid, window)
        after = (await asyncio.to_thread(agent_status, ui_port))["stream"]["frames_decoded_now"]
        rate = (after - before) / window
        print(f"frames decoded by the agent in the window: {after - before} ({rate:.1f} fps)")
        print_viewer_cost(
            cost, f"hetang-agent receiving 640x360 VP8 at 30 fps, over {window:.0f} s"
        )
    finally:
        await pc.close()
        camera.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--window", type=float, default=10.0, help="seconds measured")
    args = parser.parse_args()
    with temp_dir("hetang-agent-cost-") as root:
        env = bench_env(root / "server", HETANG_ICE_HOSTS="127.0.0.1")
        prepare(env)
        admin = hetang(env, "token", "create", "bench").strip()
        with server_process(env) as (base, _):
            session_id, venue_token = setup(base, admin)
            ui_port = free_port()
            agent = subprocess.Popen(
                [
                    str(BIN / "hetang-agent"),
                    "run",
                    "--server",
                    base,
                    "--token",
                    venue_token,
                    "--data-dir",
                    str(root / "agent"),
                    "--ui-port",
                    str(ui_port),
                    "--ice-hosts",
                    "127.0.0.1",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                deadline = time.monotonic() + 30
                while True:
                    try:
                        agent_status(ui_port)
                        break
                    except OSError:
                        if time.monotonic() > deadline or agent.poll() is not None:
                            raise SystemExit("the agent did not start") from None
                        time.sleep(0.2)
                time.sleep(2)
                idle = process_cost(agent.pid, args.window)
                print_viewer_cost(idle, f"hetang-agent idle (baseline), over {args.window:.0f} s")
                asyncio.run(
                    publish_and_measure(base, admin, session_id, ui_port, agent.pid, args.window)
                )
            finally:
                agent.terminate()
                agent.wait(timeout=20)


if __name__ == "__main__":
    main()
