"""HETANG_RTC_PORTS through the real app: when every media port of the range is taken, the
operator and the venue get a clear 503 in the documented shape, and nothing is half-set-up."""

from __future__ import annotations

import dataclasses
import socket
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

from passthrough.ports import PortRange
from server.app import create_app
from server.settings import Settings
from tests.support.broadcast_api import add_session, add_venue, audit_count, publish
from tests.support.databases import Db
from tests.support.rtc_peers import offer_to_publish, offer_to_view
from tests.support.world import World, seed_world

pytestmark = pytest.mark.sqlite_only

NO_PORT = "服务器的媒体端口已全部占用，暂时无法建立新的连接，请一分钟后重试。"


@pytest.fixture
def one_port() -> int:
    """A UDP port of 127.0.0.1 that is free now (the range of the test's server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def _app(
    aiohttp_client: AiohttpClient, settings: Settings, db: Db, port: int
) -> tuple[Any, World]:
    ice = dataclasses.replace(settings.ice, ports=PortRange(port, port))
    client = await aiohttp_client(create_app(dataclasses.replace(settings, ice=ice)))
    return client, await seed_world(db)


def _assert_no_port(status: int, body: dict[str, Any]) -> None:
    assert status == 503
    assert body == {"error": {"code": "unavailable", "message": NO_PORT}}


async def test_a_venue_past_the_range_gets_a_503_and_the_broadcast_goes_on(
    aiohttp_client: AiohttpClient, settings: Settings, db: Db, one_port: int
) -> None:
    client, world = await _app(aiohttp_client, settings, db, one_port)
    await add_venue(client, world, "MAIN")
    token = await add_venue(client, world, "B1")
    session_id = await add_session(client, world, "MAIN", ["B1"])
    publisher = await publish(client, world, session_id)  # takes the range's one port
    viewer = await offer_to_view()
    try:
        answer = await client.post(
            f"/api/v1/agent/sessions/{session_id}/subscribe",
            headers={"Authorization": f"Bearer {token}"},
            json={"sdp": viewer.pc.localDescription.sdp, "type": "offer"},
        )
        _assert_no_port(answer.status, await answer.json())
        wall = await (
            await client.get(
                f"/api/v1/sessions/{session_id}/wall", headers=world.auth("operator", "a")
            )
        ).json()
        assert wall["broadcast"]["on"] is True and wall["broadcast"]["subscribers"] == 0
    finally:
        await viewer.pc.close()
        await publisher.close()


async def test_a_publisher_past_the_range_gets_a_503_and_nothing_goes_on_air(
    aiohttp_client: AiohttpClient, settings: Settings, db: Db, one_port: int
) -> None:
    client, world = await _app(aiohttp_client, settings, db, one_port)
    await add_venue(client, world, "MAIN")
    session_id = await add_session(client, world, "MAIN", [])
    publisher = await offer_to_publish()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", one_port))  # another program holds the range's one port
        try:
            answer = await client.post(
                f"/api/v1/sessions/{session_id}/broadcast",
                headers=world.auth("operator", "a"),
                json={"sdp": publisher.localDescription.sdp, "type": "offer"},
            )
            _assert_no_port(answer.status, await answer.json())
        finally:
            await publisher.close()
    assert await audit_count(db, "session.broadcast_start") == 0
    wall = await (
        await client.get(f"/api/v1/sessions/{session_id}/wall", headers=world.auth("operator", "a"))
    ).json()
    assert wall["broadcast"]["on"] is False
