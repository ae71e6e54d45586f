"""A barcode/QR scanner that types one code per line, read from stdin or a device path."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
import threading
import time

log = logging.getLogger(__name__)

REOPEN_S = 2.0  # how often to look for an unplugged device again
MAX_LINE = 4096


class Scanner:
    """Lines from the scanner; the end of its input never ends the agent.

    Reading happens on a daemon thread: a blocking read of a tty, pipe or device cannot be
    cancelled, and a daemon thread does not keep the process alive at exit.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Start reading (once, from within the event loop)."""
        self._loop = asyncio.get_running_loop()
        threading.Thread(target=self._read, name="scanner", daemon=True).start()

    async def next_line(self) -> str:
        """The next non-empty line scanned, as text."""
        return await self._queue.get()

    def _read(self) -> None:
        if self.source == "stdin":
            self._read_fd(sys.stdin.fileno())
            log.warning("the scanner's input (stdin) ended; check-ins continue on the staff page")
            return
        missing_logged = False
        while True:
            try:
                with open(self.source, "rb") as device:
                    log.info("scanner %s opened", self.source)
                    missing_logged = False
                    self._read_fd(device.fileno())
                log.warning("scanner %s: input ended; waiting for it to come back", self.source)
            except OSError as error:
                if not missing_logged:
                    log.warning("scanner %s: %s; trying again", self.source, error.strerror)
                    missing_logged = True
            time.sleep(REOPEN_S)

    def _read_fd(self, fd: int) -> None:
        # Scanners end a code with CR, LF or both: split on either.
        pending = b""
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError as error:  # e.g. the device was unplugged mid-read
                log.warning("scanner %s: %s", self.source, error.strerror)
                return
            if not chunk:
                break
            *lines, pending = re.split(rb"[\r\n]", pending + chunk)
            pending = pending[-MAX_LINE:]  # a device that never ends a line cannot eat memory
            for line in lines:
                if not self._deliver(line):
                    return
        self._deliver(pending)

    def _deliver(self, raw: bytes) -> bool:
        """Hand one line to the event loop; False once the loop is gone."""
        text = raw.decode("utf-8", errors="replace").strip()
        if not text:
            return True
        loop = self._loop
        if loop is None or loop.is_closed():
            return False
        try:
            loop.call_soon_threadsafe(self._queue.put_nowait, text)
        except RuntimeError:  # the loop closed while we were reading
            return False
        return True
