"""A real Janus origin whose event handler posts to the test app's /janus/events (the app is
then started on `app_port`, with the metrics token `EVENTS_TOKEN`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

from server.app import create_app
from server.domain.media import MediaSettings
from server.settings import Settings
from tests.support.databases import Db
from tests.support.janus import RunningJanus, janus_instance
from tests.support.procs import free_port

EVENTS_TOKEN = "janus-events-metrics-token"


@pytest.fixture
def app_port() -> int:
    """The port the test app will listen on (Janus is told before the app starts)."""
    return free_port()


@pytest.fixture
def reporting_origin(
    tmp_path_factory: pytest.TempPathFactory, app_port: int
) -> Iterator[RunningJanus]:
    events = f"http://127.0.0.1:{app_port}/janus/events#{EVENTS_TOKEN}"
    with janus_instance(tmp_path_factory.mktemp("janus"), "origin", events=events) as janus:
        yield janus


@pytest.fixture
async def janus_client(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    db: Db,
    reporting_origin: RunningJanus,
    app_port: int,
) -> Any:
    """The real app on `app_port` with that Janus as its media engine (no edges) and the
    metrics token it posts with."""
    media = MediaSettings("janus", (reporting_origin.url,))
    janus_settings = dataclasses.replace(settings, media=media, metrics_token=EVENTS_TOKEN)
    return await aiohttp_client(create_app(janus_settings), server_kwargs={"port": app_port})
