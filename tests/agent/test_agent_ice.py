"""The agent's choice of ICE servers: the server's (our coturn with credentials minted for the
venue) combined with the local ones, TURN ordered UDP → TCP → TLS and probed against a real coturn,
the next transport after a connection that failed, and the local settings when the server cannot
be asked."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from pytest_aiohttp import AiohttpClient

from passthrough.peer import IceSettings
from server.app import create_app
from server.domain.turn import TurnSettings, turn_password
from server.settings import Settings
from tests.support.api_site import Site, make_site
from tests.support.client import Client
from tests.support.coturn import Coturn, free_udp_and_tcp_port, running_coturn
from tests.support.databases import Db
from tests.support.procs import free_port
from tests.support.world import World
from venue_agent.client import ServerClient
from venue_agent.ice import IcePicker, TurnOption, combine, probe, settings_with, turn_option

SECRET = "agent-coturn-secret-" + "y" * 24
LOCAL = IceSettings(hosts=("127.0.0.1",))
pytestmark = pytest.mark.sqlite_only


@pytest.fixture(scope="module")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    """A coturn with TLS, for the module."""
    directory = tmp_path_factory.mktemp("coturn")
    with running_coturn(directory, SECRET, tls_port=free_udp_and_tcp_port()) as running:
        yield running


def _answer(*urls: str) -> dict[str, object]:
    return {
        "ice_servers": [
            {"urls": list(urls), "username": "1:venue.B", "credential": "pw"},
            {"urls": ["stun:stun.example.cn:3478"]},
        ],
        "expires_at": None,
    }


def test_turn_is_ordered_udp_tcp_tls_and_local_settings_stay() -> None:
    local = IceSettings(
        hosts=("10.0.0.5",),
        servers=("stun:local.example:3478", "turn:local.example:3478"),
        username="lu",
        credential="lc",
    )
    choice = combine(
        _answer(
            "turns:t.example:443?transport=tcp",
            "turn:t.example:3478?transport=tcp",
            "turn:t.example:3478?transport=udp",
        ),
        local,
    )
    assert [(o.url, o.transport, o.username) for o in choice.turn] == [
        ("turn:t.example:3478?transport=udp", "udp", "1:venue.B"),
        ("turn:local.example:3478", "udp", "lu"),
        ("turn:t.example:3478?transport=tcp", "tcp", "1:venue.B"),
        ("turns:t.example:443?transport=tcp", "tls", "1:venue.B"),
    ]
    assert choice.stun == ("stun:stun.example.cn:3478", "stun:local.example:3478")
    chosen = settings_with(local, choice, choice.turn[2])
    assert chosen.hosts == ("10.0.0.5",)
    assert chosen.servers == (
        "turn:t.example:3478?transport=tcp",
        "stun:stun.example.cn:3478",
        "stun:local.example:3478",
    )
    assert (chosen.username, chosen.credential) == ("1:venue.B", "pw")
    # nothing from the server: the local settings as they are
    nothing = combine(None, local)
    assert settings_with(local, nothing, None) == replace(
        local, servers=("stun:local.example:3478",)
    )
    assert settings_with(LOCAL, combine(None, LOCAL), None) == LOCAL
    assert turn_option("turn:x:1?transport=sctp", None, None) is None


async def test_probes_against_a_real_coturn(
    coturn: Coturn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = combine({"ice_servers": [{"urls": list(coturn.urls)}]}, LOCAL).turn
    udp, tcp, tls = options
    assert (udp.transport, tcp.transport, tls.transport) == ("udp", "tcp", "tls")
    assert await probe(udp) and await probe(tcp)
    assert not await probe(tls), "a certificate nobody vouches for is refused, as aioice would"
    assert coturn.certificate is not None
    monkeypatch.setenv("SSL_CERT_FILE", str(coturn.certificate))
    assert await probe(tls)
    silent = replace(udp, port=free_port())  # nothing answers there: as if UDP were blocked
    closed = replace(tcp, port=free_port())
    started = time.monotonic()
    assert not await probe(silent) and not await probe(closed)
    assert time.monotonic() - started < 3


@pytest.fixture
def settings(database_url: str, tmp_path: Path, coturn: Coturn) -> Settings:
    """The app mints credentials for this module's coturn; its UDP URL points where nothing
    answers, as when a county's firewall drops UDP."""
    blocked_udp = f"turn:127.0.0.1:{free_port()}?transport=udp"
    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        secret_key="agent-ice-test-secret-" + "k" * 32,
        hash_concurrency=2,
        ice=LOCAL,
        turn=TurnSettings(SECRET, (blocked_udp, coturn.tcp_url, coturn.tls_url)),
    )


@pytest.fixture
async def site(client: Client, db: Db, world: World) -> Site:
    """Venues with agent tokens."""
    return await make_site(client, db, world)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_the_picker_takes_minted_tcp_when_udp_is_silent_and_moves_on_after_a_failure(
    client: Client, site: Site, coturn: Coturn, http: aiohttp.ClientSession
) -> None:
    base = str(client.make_url("/"))
    agent = ServerClient(http, base, site.tokens["BRANCH"], "test")
    picker = IcePicker(agent, LOCAL)
    started = time.monotonic()
    chosen = await picker.settings()
    assert time.monotonic() - started < 2.5
    assert chosen.hosts == LOCAL.hosts
    assert chosen.servers == (coturn.tcp_url,)
    assert chosen.username is not None and chosen.username.endswith(":venue.BRANCH")
    assert chosen.credential == turn_password(SECRET, chosen.username)
    picker.failed()  # TCP did not carry the broadcast: TLS next (it needs trust in its cert)
    again = await picker.settings()
    assert again.servers[0] in (coturn.tls_url, coturn.tcp_url)
    picker.failed()
    assert picker.current is not None


async def test_the_local_settings_serve_when_the_server_cannot_be_asked(
    http: aiohttp.ClientSession,
) -> None:
    local = IceSettings(hosts=("127.0.0.1",), servers=("stun:stun.example.cn:3478",))
    dead = ServerClient(http, f"http://127.0.0.1:{free_port()}", "hv_x", "test")
    assert await IcePicker(dead, local).settings() == local


async def test_a_wrong_token_falls_back_to_the_local_settings(
    client: Client, site: Site, http: aiohttp.ClientSession
) -> None:
    agent = ServerClient(http, str(client.make_url("/")), "hv_wrong", "test")
    assert await IcePicker(agent, LOCAL).settings() == LOCAL


async def test_turn_off_on_the_server_keeps_the_local_turn(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    site: Site,
    coturn: Coturn,
    http: aiohttp.ClientSession,
) -> None:
    off = await aiohttp_client(create_app(replace(settings, turn=TurnSettings())))
    local = IceSettings(
        hosts=("127.0.0.1",), servers=(coturn.tcp_url,), username="u", credential="c"
    )
    agent = ServerClient(http, str(off.make_url("/")), site.tokens["BRANCH"], "test")
    assert await IcePicker(agent, local).settings() == local


def test_option_fields() -> None:
    option = turn_option("turns:turn.example.cn:443?transport=tcp", "u", "c")
    assert option == TurnOption(
        "turns:turn.example.cn:443?transport=tcp", "u", "c", "turn.example.cn", 443, "tls"
    )
