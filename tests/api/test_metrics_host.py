"""/metrics without its token answers only a request from this machine addressed to a loopback
name (security review, issue 11, finding 12): a web page that rebinds its own DNS name to 127.0.0.1
reaches the port from this machine, but its requests carry that name in Host."""

from __future__ import annotations

import dataclasses

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.app import create_app
from server.settings import Settings, parse_trusted_proxies
from tests.support.client import Client

TOKEN = "m" * 24


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST:8080", "127.0.0.1", "127.0.0.1:9090", "[::1]", "[::1]:8080"]
)
async def test_a_loopback_host_is_served(client: Client, host: str) -> None:
    answer = await client.get("/metrics", headers={"Host": host})
    assert answer.status == 200, host
    assert "hetang_venues_online" in await answer.text()


@pytest.mark.parametrize(
    "host",
    [
        "rebind.example.cn",
        "rebind.example.cn:8080",
        "localhost.example.cn",
        "127.0.0.1.example.cn",
        "10.0.0.5:8080",
        "[::2]:8080",
        "",
    ],
)
async def test_any_other_host_is_refused(client: Client, host: str) -> None:
    answer = await client.get("/metrics", headers={"Host": host})
    assert answer.status == 403, host
    assert (await answer.json())["error"]["code"] == "forbidden"


async def test_the_token_works_whatever_the_host(
    settings: Settings, db: async_sessionmaker[AsyncSession]
) -> None:
    guarded = dataclasses.replace(settings, metrics_token=TOKEN)
    async with TestClient(TestServer(create_app(guarded))) as client:
        bearer = {"Authorization": f"Bearer {TOKEN}", "Host": "metrics.example.cn"}
        assert (await client.get("/metrics", headers=bearer)).status == 200
        plain = await client.get("/metrics", headers={"Host": "metrics.example.cn"})
        assert plain.status == 403


async def test_behind_a_trusted_proxy_loopback_means_the_client(
    settings: Settings, db: async_sessionmaker[AsyncSession]
) -> None:
    """A reverse proxy on this machine connects from 127.0.0.1 (and often passes Host
    127.0.0.1:8080): with it trusted, the client it names is who asks, not the proxy."""
    proxied = dataclasses.replace(settings, trusted_proxies=parse_trusted_proxies("127.0.0.1"))
    async with TestClient(TestServer(create_app(proxied))) as client:
        outside = {"X-Forwarded-For": "203.0.113.5", "Host": "127.0.0.1:8080"}
        assert (await client.get("/metrics", headers=outside)).status == 403
        local = {"X-Forwarded-For": "127.0.0.1", "Host": "127.0.0.1:8080"}
        assert (await client.get("/metrics", headers=local)).status == 200
        assert (await client.get("/metrics", headers={"Host": "localhost"})).status == 200
