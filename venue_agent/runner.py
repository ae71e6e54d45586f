"""`hetang-agent run`: every part wired in one place, background tasks cancelled and awaited."""

from __future__ import annotations

import asyncio
import errno
import logging
import secrets
import signal
import socket
import sys
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from venue_agent import __version__
from venue_agent.checkin_code import CodeMaker
from venue_agent.client import ServerClient
from venue_agent.config import UI_PORT, AgentConfig, ConfigError, ExitCode
from venue_agent.desk import CheckinReceipt, Desk
from venue_agent.events import EventListener
from venue_agent.link import Link
from venue_agent.local_ui import UiContext, create_ui_app
from venue_agent.outbox import Outbox
from venue_agent.presence import Presence
from venue_agent.receiver import Receiver
from venue_agent.scanner import Scanner
from venue_agent.schedule import ScheduleBook
from venue_agent.screen import Screen
from venue_agent.staff_pin import StaffGate
from venue_agent.uploader import Uploader

log = logging.getLogger(__name__)

RESTART_S = 5.0  # a loop that failed unexpectedly starts again after this


async def supervised(name: str, loop: Callable[[], Awaitable[None]]) -> None:
    """Run a forever-loop; a bug in it is logged and the loop restarts instead of dying."""
    while True:
        try:
            await loop()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; restarting it in %g s", name, RESTART_S)
        await asyncio.sleep(RESTART_S)


def announce(receipt: CheckinReceipt) -> None:
    """Tell the staff at the console what became of a scan (a bell when they should look)."""
    try:
        print(("\a✗ " if receipt.alarm else "✓ ") + receipt.message, flush=True)
    except OSError:  # no console to print to (closed pipe): the page still shows it
        log.info("%s", receipt.message)


async def read_scanner(scanner: Scanner, desk: Desk) -> None:
    """Every scanned line becomes a check-in of the desk's current kind."""
    while True:
        line = await scanner.next_line()
        announce(await desk.check(line, kind=desk.scan_kind, source="scanner"))


async def start_ui(context: UiContext) -> web.AppRunner:
    """Serve the staff page on 127.0.0.1 only; a taken port is a ConfigError."""
    runner = web.AppRunner(create_ui_app(context), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", context.port, reuse_address=False)
    try:
        await site.start()
    except OSError as error:
        await runner.cleanup()
        if error.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"{UI_PORT.label}: port {context.port} on 127.0.0.1 is already in use "
                "(is another hetang-agent running?)",
                ExitCode.UI_PORT,
            ) from None
        raise ConfigError(
            f"{UI_PORT.label}: cannot listen on 127.0.0.1:{context.port}: {error.strerror}",
            ExitCode.UI_PORT,
        ) from None
    return runner


async def run_agent(config: AgentConfig, outbox: Outbox) -> None:
    """Run until SIGTERM or SIGINT; raises ConfigError when the staff page cannot start."""
    link = Link()
    book = await asyncio.to_thread(ScheduleBook.load, outbox)
    desk = Desk(outbox, book, link)
    screen = Screen(config.ice)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []
    # Opening the client session does no I/O: the staff page's port is still the first thing
    # that can fail.
    async with aiohttp.ClientSession() as http:
        client = ServerClient(http, config.server.url, config.server.token, __version__)
        receiver = Receiver(client, outbox, link, config.ice, screen)
        ui = await start_ui(
            UiContext(
                desk,
                outbox,
                link,
                secrets.token_urlsafe(32),
                config.ui_port,
                __version__,
                receiver,
                screen,
                None if config.staff_pin is None else StaffGate(config.staff_pin, config.ui_port),
                CodeMaker(config.server.url, config.server.token),
            )
        )
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        try:
            uploader = Uploader(outbox, client, link)
            presence = Presence(client, outbox, book, link, socket.gethostname(), media=receiver)
            tasks.append(asyncio.create_task(supervised("uploader", uploader.run_forever)))
            tasks.append(asyncio.create_task(supervised("presence", presence.run_forever)))
            listener = EventListener(client, presence.schedule_stale, receiver, desk)
            tasks.append(asyncio.create_task(supervised("events", listener.run_forever)))
            if config.scanner is not None:
                scanner = Scanner(config.scanner)
                scanner.start()
                tasks.append(
                    asyncio.create_task(supervised("scanner", lambda: read_scanner(scanner, desk)))
                )
            log.info(
                "hetang-agent %s: staff page http://127.0.0.1:%d (%s), server %s, scanner %s",
                __version__,
                config.ui_port,
                "staff PIN asked" if config.staff_pin else "no staff PIN: open to local users",
                config.server.url,
                config.scanner or "none",
            )
            print(
                f"合堂签到程序已启动：请在浏览器打开 http://127.0.0.1:{config.ui_port}", flush=True
            )
            await stop.wait()
            log.info("stopping")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
            await ui.cleanup()  # before the screen closes: no new viewer can come in between
            await receiver.close()
            await screen.close()
            sys.stdout.flush()
