"""Connections that trickle are cut off (security review, issue 11, finding 13: 500 connections
sending a byte now and then all stayed open): a request head must arrive within the keep-alive
timeout, and a body within the body timeout, else 408 and the connection is closed."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time

from aiohttp.test_utils import TestServer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.app import create_app
from server.db.models import Organization
from server.settings import Settings
from tests.support.world import World

HEAD_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.0
GIVE_UP_S = 10.0  # far past both: a connection still open by then was never cut off


async def read_until_closed(reader: asyncio.StreamReader, answered: asyncio.Event) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    try:
        while chunk := await reader.read(65536):
            received += chunk
            answered.set()
    except ConnectionResetError:
        pass  # bytes of ours that reached a closed socket: closed all the same
    return received


async def trickle(
    writer: asyncio.StreamWriter, pieces: list[bytes], pause_s: float, answered: asyncio.Event
) -> None:
    """Send one piece every pause_s, as a slow-loris client does, until the server answers."""
    for piece in pieces:
        if answered.is_set() or writer.is_closing():
            return
        try:
            writer.write(piece)
            await writer.drain()
        except ConnectionError:
            return
        await asyncio.sleep(pause_s)


async def org_count(db: async_sessionmaker[AsyncSession]) -> int:
    async with db() as session:
        return int(await session.scalar(select(func.count()).select_from(Organization)) or 0)


async def test_a_trickled_body_gets_408_and_the_connection_closes(
    settings: Settings, db: async_sessionmaker[AsyncSession], world: World
) -> None:
    strict = dataclasses.replace(
        settings, keepalive_timeout_s=HEAD_TIMEOUT_S * 30, body_timeout_s=BODY_TIMEOUT_S
    )
    body = json.dumps(
        {"code": "slow", "name": "慢", "level": "committee", "parent_code": "a"}
    ).encode()
    async with TestServer(create_app(strict)) as server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        head = (
            f"POST /api/v1/organizations HTTP/1.1\r\nHost: {server.host}\r\n"
            f"Authorization: {world.auth('admin', 'a')['Authorization']}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        writer.write(head + body[:5])
        await writer.drain()
        started = time.monotonic()
        answered = asyncio.Event()
        # 0.7 s apart, no byte is on its way just as the server answers at 1 s and hangs up.
        pieces = [bytes([b]) for b in body[5:]]
        sender = asyncio.create_task(trickle(writer, pieces, 0.7, answered))
        try:
            answer = await asyncio.wait_for(read_until_closed(reader, answered), GIVE_UP_S)
        finally:
            sender.cancel()
            writer.close()
        took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b'"code":"request_timeout"' in answer.replace(b" ", b""), answer
    assert took < GIVE_UP_S
    assert await org_count(db) == 6  # the world's tree, and nothing more


async def test_a_trickled_request_head_is_cut_off(
    settings: Settings, db: async_sessionmaker[AsyncSession]
) -> None:
    strict = dataclasses.replace(settings, keepalive_timeout_s=HEAD_TIMEOUT_S)
    async with TestServer(create_app(strict)) as server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        lines = [b"GET /healthz HTTP/1.1\r\n", b"Host: x\r\n"] + [
            f"X-Slow-{n}: {'y' * 10}\r\n".encode() for n in range(40)
        ]
        started = time.monotonic()
        answered = asyncio.Event()
        sender = asyncio.create_task(trickle(writer, lines, 0.25, answered))
        try:
            answer = await asyncio.wait_for(read_until_closed(reader, answered), GIVE_UP_S)
        finally:
            sender.cancel()
            writer.close()
        took = time.monotonic() - started
    assert answer == b"", answer[:200]  # closed without an answer: the head never came
    assert took < GIVE_UP_S / 2, took


async def test_an_idle_connection_is_closed(
    settings: Settings, db: async_sessionmaker[AsyncSession]
) -> None:
    """A connection that sends nothing at all (or nothing after its last answer) is closed too."""
    strict = dataclasses.replace(settings, keepalive_timeout_s=HEAD_TIMEOUT_S)
    async with TestServer(create_app(strict)) as server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(f"GET /healthz HTTP/1.1\r\nHost: {server.host}\r\n\r\n".encode())
        await writer.drain()
        try:
            answer = await asyncio.wait_for(read_until_closed(reader, asyncio.Event()), GIVE_UP_S)
        finally:
            writer.close()
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
