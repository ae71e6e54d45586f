"""`hetang serve --workers N`: the parent binds the listening sockets once and runs N worker
processes that accept on them (a connection waits in the shared backlog, never in a dead
worker's), restarts a worker that ends, and stops them all on SIGTERM or Ctrl+C. Worker 0 holds
the relay and serves it to the others on a Unix socket in a directory only this user can enter;
everything else any worker answers, with the live events, presence and limits in Redis and the
background jobs behind a PostgreSQL lock."""

from __future__ import annotations

import ctypes
import logging
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

log = logging.getLogger("hetang.workers")

POLL_S = 0.2
STOP_GRACE_S = 40.0  # a worker finishes its requests, its recordings and its job rounds
QUICK_EXIT_S = 10.0  # a worker that ends sooner than this after starting is restarted later
MAX_BACKOFF_S = 10.0
BACKLOG = 1024
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class ListenError(Exception):
    """An address could not be listened on."""


def listen(hosts: Sequence[str], port: int) -> list[socket.socket]:
    """One listening socket per address, inherited by the workers."""
    sockets: list[socket.socket] = []
    for host in hosts:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            sock.close()
            for opened in sockets:
                opened.close()
            raise ListenError(f"cannot listen on {host} port {port}: {error.strerror}") from None
        sock.listen(BACKLOG)
        sock.set_inheritable(True)
        sockets.append(sock)
    return sockets


def _end_with_parent() -> None:
    """In the worker, before it runs: SIGTERM when the parent dies, even by kill -9, so that no
    orphaned worker keeps serving the port (Linux's PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Worker:
    index: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    backoff_s: float = 1.0
    due: float = 0.0  # when to start it again after it ended


@dataclass
class Supervisor:
    """Runs and restarts the workers; `command(index)` is a worker's command line."""

    count: int
    fds: tuple[int, ...]
    base_command: list[str]
    workers: list[Worker] = field(default_factory=list)
    stopping: bool = False

    def command(self, index: int) -> list[str]:
        return [*self.base_command, "--worker", str(index)]

    def start(self, worker: Worker) -> None:
        # Our own interpreter and module, with arguments we built: nothing from outside.
        worker.process = subprocess.Popen(  # noqa: S603
            self.command(worker.index), pass_fds=self.fds, preexec_fn=_end_with_parent
        )
        worker.started = time.monotonic()
        log.info("worker %d runs as process %d", worker.index, worker.process.pid)

    def run(self) -> int:
        self.workers = [Worker(index) for index in range(self.count)]
        for worker in self.workers:
            self.start(worker)
        while not self.stopping:
            time.sleep(POLL_S)
            for worker in self.workers:
                self._look_after(worker)
        return self._stop_all()

    def _look_after(self, worker: Worker) -> None:
        now = time.monotonic()
        if worker.process is None:
            if now >= worker.due and not self.stopping:
                self.start(worker)
            return
        code = worker.process.poll()
        if code is None:
            return
        lived = now - worker.started
        worker.backoff_s = (
            1.0 if lived >= QUICK_EXIT_S else min(2 * worker.backoff_s, MAX_BACKOFF_S)
        )
        worker.due = now + (0.0 if lived >= QUICK_EXIT_S else worker.backoff_s)
        log.warning(
            "worker %d (process %d) ended with code %s after %.0f s; starting it again",
            worker.index,
            worker.process.pid,
            code,
            lived,
        )
        worker.process = None

    def stop(self, _signal: int, _frame: FrameType | None) -> None:
        self.stopping = True

    def _stop_all(self) -> int:
        running = [w.process for w in self.workers if w.process is not None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for process in running:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker process %d did not stop in time; killed", process.pid)
                process.kill()
                process.wait()
        return 0


def supervise(count: int, hosts: Sequence[str], port: int, worker_args: Sequence[str]) -> int:
    """Listen, run `count` workers until SIGTERM or SIGINT; 0 when they stopped cleanly."""
    sockets = listen(hosts, port)
    run_dir = Path(tempfile.mkdtemp(prefix="hetang-"))  # mode 0700: this user only
    fds = tuple(sock.fileno() for sock in sockets)
    base = [sys.executable, "-m", "server", *worker_args]
    base += ["--listen-fds", ",".join(map(str, fds)), "--relay-socket", str(run_dir / "relay")]
    supervisor = Supervisor(count, fds, base)
    signal.signal(signal.SIGTERM, supervisor.stop)
    signal.signal(signal.SIGINT, supervisor.stop)
    try:
        return supervisor.run()
    finally:
        for sock in sockets:
            sock.close()
        shutil.rmtree(run_dir, ignore_errors=True)
