"""GET /api/v1/agent/ice-servers and the console page: our coturn's URLs with credentials minted
for the venue (or the operator), then the static servers; only the static ones when TURN is off;
the venue token required. On SQLite and PostgreSQL."""

from __future__ import annotations

import html
import json
import re
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

from passthrough.peer import IceSettings
from server.app import create_app
from server.domain.turn import TurnSettings, turn_password
from server.settings import Settings
from tests.support import browser
from tests.support.api_site import Site, make_site
from tests.support.client import Client
from tests.support.databases import Db
from tests.support.openapi_check import check, load_spec
from tests.support.world import SECRET, World

TURN_SECRET = "our-coturn-secret-" + "t" * 24
TURN_URLS = (
    "turn:turn.example.cn:3478?transport=udp",
    "turn:turn.example.cn:3478?transport=tcp",
    "turns:turn.example.cn:443?transport=tcp",
)
STATIC = IceSettings(
    hosts=("127.0.0.1",),
    servers=("stun:stun.example.cn:3478",),
    username="static-user",
    credential="static-pass",
)
PATH = "/api/v1/agent/ice-servers"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """The test app runs our coturn (as far as settings go) beside a static STUN server."""
    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        secret_key=SECRET,
        hash_concurrency=2,
        ice=STATIC,
        turn=TurnSettings(TURN_SECRET, TURN_URLS, 3600),
    )


@pytest.fixture
async def site(client: Client, db: Db, world: World) -> Site:
    """Venues MAIN and BRANCH of a session of subtree a, and others."""
    return await make_site(client, db, world)


def _check_minted(server: dict[str, Any], name: str, ttl_s: int) -> int:
    """The minted entry is coturn's REST scheme for `name`; answers its expiry."""
    assert server["urls"] == list(TURN_URLS)
    expiry_text, _, got_name = server["username"].partition(":")
    expiry = int(expiry_text)
    assert got_name == name
    assert abs(expiry - (time.time() + ttl_s)) < 30
    assert server["credential"] == turn_password(TURN_SECRET, server["username"])
    return expiry


async def test_an_agent_gets_credentials_for_its_own_venue(client: Client, site: Site) -> None:
    spec = load_spec()
    body = await check(client, spec, "get", PATH, 200, headers=site.agent("BRANCH"))
    minted, static = body["ice_servers"]
    expiry = _check_minted(minted, "venue.BRANCH", 3600)
    assert body["expires_at"] == datetime.fromtimestamp(expiry, UTC).isoformat().replace(
        "+00:00", "Z"
    )
    assert static == {
        "urls": ["stun:stun.example.cn:3478"],
        "username": "static-user",
        "credential": "static-pass",
    }
    other = await check(client, spec, "get", PATH, 200, headers=site.agent("MAIN"))
    assert other["ice_servers"][0]["username"].endswith(":venue.MAIN")
    answer = await client.get(PATH, headers=site.agent("BRANCH"))
    assert answer.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer hv_not-a-token"},
        {"Authorization": "Basic eDp5"},
    ],
)
async def test_without_a_venue_token_401(
    client: Client, site: Site, headers: dict[str, str]
) -> None:
    answer = await client.get(PATH, headers=headers)
    assert answer.status == 401
    body = await answer.json()
    assert body["error"]["code"] == "unauthorized" and body["error"]["message"]


async def test_a_user_token_is_not_a_venue_token(client: Client, site: Site) -> None:
    answer = await client.get(PATH, headers=site.admin)
    assert answer.status == 401
    assert (await answer.json())["error"]["code"] == "unauthorized"


async def test_turn_off_gives_the_static_servers_only(
    aiohttp_client: AiohttpClient, settings: Settings, site: Site
) -> None:
    off = await aiohttp_client(create_app(replace(settings, turn=TurnSettings())))
    answer = await off.get(PATH, headers=site.agent())
    assert answer.status == 200
    assert await answer.json() == {
        "ice_servers": [
            {
                "urls": ["stun:stun.example.cn:3478"],
                "username": "static-user",
                "credential": "static-pass",
            }
        ],
        "expires_at": None,
    }
    nothing = await aiohttp_client(
        create_app(replace(settings, turn=TurnSettings(), ice=IceSettings()))
    )
    answer = await nothing.get(PATH, headers=site.agent())
    assert await answer.json() == {"ice_servers": [], "expires_at": None}


async def test_the_console_page_gets_credentials_for_its_user(
    client: Client, site: Site, db: Db
) -> None:
    await browser.add_user(db, "op-turn", "operator", "a")
    async with browser.Browser(client) as page:
        await page.signed_in("op-turn")
        async with page.request("GET", f"/sessions/{site.session_id}/console") as response:
            text = await response.text()
    assert response.status == 200
    found = re.search(r"data-ice-servers='([^']*)'", text)
    assert found is not None
    servers = json.loads(html.unescape(found.group(1)))
    _check_minted(servers[0], "user.op-turn", 3600)
    assert servers[1]["urls"] == ["stun:stun.example.cn:3478"]
