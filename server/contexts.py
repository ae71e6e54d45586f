"""The app's cleanup contexts: each resource is made when the app starts and released, in
reverse order, when it stops (aiohttp's "no singletons": everything lives on the app)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from server.auth.passwords import PasswordService
from server.db.session import make_engine, make_sessionmaker, write_session
from server.domain.audit_chain import AuditSeal
from server.keys import (
    BROADCASTS_KEY,
    BROKER_KEY,
    DB_KEY,
    ENGINE_KEY,
    LEADERSHIP_KEY,
    METRICS_KEY,
    PASSWORDS_KEY,
    RATE_LIMITS_KEY,
    RELAY_KEY,
    RELAY_PLACE_KEY,
    SETTINGS_KEY,
    WEBSOCKETS_KEY,
)
from server.live.broker import make_broker
from server.live.leader import Leadership
from server.live.notify import tell_venues, wall_changed
from server.live.rate_limits import make_rate_limits
from server.live.sockets import OpenSockets
from server.rtc.broadcasts import Broadcasts, Ended
from server.rtc.janus_relay import JanusRelay
from server.rtc.relay_link import LocalRelay, Relay, RelayPlace, RemoteRelay
from server.rtc.relay_service import relay_service
from server.services import recordings
from server.services.clock import utcnow
from server.webhook_worker import run_webhook_worker
from server.workflow_clock import run_workflow_clock

log = logging.getLogger(__name__)
STOP_GRACE_S = 30.0


async def db_ctx(app: web.Application) -> AsyncIterator[None]:
    """The engine and session factory live exactly as long as the app."""
    settings = app[SETTINGS_KEY]
    engine = make_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        pool_timeout_s=settings.db_pool_timeout_s,
    )
    app[ENGINE_KEY] = engine
    app[DB_KEY] = make_sessionmaker(engine, AuditSeal.of(settings.secret_key, settings.data_dir))
    yield
    await engine.dispose()


async def broker_ctx(app: web.Application) -> AsyncIterator[None]:
    """The live-event broker and the rate limits (Redis when configured); open websockets are
    closed on exit."""
    app[BROKER_KEY] = make_broker(app[SETTINGS_KEY].redis_url)
    app[RATE_LIMITS_KEY] = make_rate_limits(app[SETTINGS_KEY].redis_url)
    app[WEBSOCKETS_KEY] = OpenSockets()
    yield
    await app[WEBSOCKETS_KEY].close_all()
    await app[BROKER_KEY].close()
    await app[RATE_LIMITS_KEY].close()


async def rtc_ctx(app: web.Application) -> AsyncIterator[None]:
    """The relay: the broadcasts on air in this process, or worker 0's, asked over its socket."""
    place = app[RELAY_PLACE_KEY]
    if not place.owner:
        assert place.socket is not None
        remote = app[RELAY_KEY] = RemoteRelay(place.socket)
        yield
        await remote.close()
        return
    async with _relay_here(app):
        yield


@contextlib.asynccontextmanager
async def _relay_here(app: web.Application) -> AsyncIterator[None]:
    """The broadcasts on air; every peer connection is closed on exit. Under several workers the
    relay is also served on its socket, which only the server's user can reach."""
    settings, place = app[SETTINGS_KEY], app[RELAY_PLACE_KEY]
    telling: set[asyncio.Task[None]] = set()

    def recording_stopped(public_id: str, problem: str) -> None:
        # The consoles show the alarm at once (the broadcast itself goes on).
        task = asyncio.ensure_future(wall_changed(app, {public_id}))
        telling.add(task)
        task.add_done_callback(telling.discard)

    broadcasts = Broadcasts(
        settings.ice, recordings=settings.recordings_path, recording_stopped=recording_stopped
    )
    app[BROADCASTS_KEY] = broadcasts
    builtin = LocalRelay(broadcasts)
    app[METRICS_KEY].watch_relay(broadcasts)
    async with _media_engine(app, builtin) as relay:
        app[RELAY_KEY] = relay
        async with _served(relay, place):
            yield
    if telling:
        await asyncio.gather(*telling, return_exceptions=True)
    # Recordings of broadcasts still on air are finished and stored, not lost.
    await _store_recordings(app, await broadcasts.close_all())


async def _store_recordings(app: web.Application, ended: list[Ended]) -> None:
    for done in ended:
        if done.recording is not None:
            async with write_session(app[DB_KEY]) as session:
                await recordings.closed(session, "system", done.public_id, done.recording, utcnow())


@contextlib.asynccontextmanager
async def _media_engine(app: web.Application, builtin: LocalRelay) -> AsyncIterator[Relay]:
    """The built-in relay, or Janus (HETANG_MEDIA=janus) with the built-in relay for replays."""
    media = app[SETTINGS_KEY].media
    if not media.janus:
        yield builtin
        return

    async def moved(public_id: str, venue_codes: tuple[str, ...]) -> None:
        message = {"type": "broadcast_moved", "session_id": public_id}
        await tell_venues(app, venue_codes, message)
        await wall_changed(app, {public_id})

    async with aiohttp.ClientSession() as http:
        janus = JanusRelay(
            http, media.janus_urls, media.forward_ports, builtin, moved, media.regions
        )
        await janus.start()
        try:
            yield janus
        finally:
            # Recordings of broadcasts still on air are finished and stored, not lost.
            await _store_recordings(app, await janus.close())


@contextlib.asynccontextmanager
async def _served(relay: Relay, place: RelayPlace) -> AsyncIterator[None]:
    """Under several workers, the relay is served on its socket to the others (only the
    server's user can reach it)."""
    service = None
    if place.socket is not None:
        place.socket.unlink(missing_ok=True)  # left by a worker 0 that was killed
        service = web.AppRunner(relay_service(relay), access_log=None)
        await service.setup()
        await web.UnixSite(service, str(place.socket)).start()
        place.socket.chmod(0o600)
    try:
        yield
    finally:
        if service is not None:
            await service.cleanup()


async def passwords_ctx(app: web.Application) -> AsyncIterator[None]:
    """Password hashing with bounded concurrency, created on the app's loop."""
    app[PASSWORDS_KEY] = PasswordService(app[SETTINGS_KEY].hash_concurrency)
    yield


async def workflow_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start the workflow clock with the app; on exit let its round finish, then await it."""
    stop = asyncio.Event()
    leadership = app[LEADERSHIP_KEY] = Leadership(app[ENGINE_KEY])
    task = asyncio.create_task(run_workflow_clock(app, stop, leadership), name="workflow-clock")
    yield
    stop.set()
    try:
        await asyncio.wait_for(task, timeout=STOP_GRACE_S)
    except TimeoutError:
        log.warning("the workflow clock did not finish its round in time; cancelled")
    await leadership.close()


async def webhooks_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start the webhook delivery worker; on exit let its sends finish (or time out), write
    their outcomes, then await it (what was not sent stays in the outbox)."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_webhook_worker(app, stop), name="webhook-worker")
    yield
    stop.set()
    try:
        await asyncio.wait_for(task, timeout=STOP_GRACE_S)
    except TimeoutError:
        log.warning("the webhook worker did not stop in time; cancelled")
