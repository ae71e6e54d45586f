"""Whole processes in the network lab (tests/support/netlab.py): `hetang serve` on the host's lab
address (its relay offering that address), `hetang-agent run` inside a venue namespace, a real
coturn (`turnserver`) with the shared-secret REST scheme and TLS, and the bits a lab test reads:
an agent's staff page (reached inside its namespace), its samples, the venue's verified up-time."""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import http.client
import json
import secrets
import shutil
import socket
import sqlite3
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.coturn import Coturn, free_udp_and_tcp_port, running_coturn
from tests.support.netlab import Lab
from tests.support.procs import BIN, Server, clean_env, free_port, stop_process, wait_until

CLONE_NEWNET = 0x40000000
STATS_S = 5  # the agent's sampling interval (the session policy's default)
TURN_TTL_S = 3600  # credentials minted by the lab's server: longer than any lab broadcast
UP_STATES = frozenset({"good", "degraded"})


@dataclass
class LabServer(Server):
    """`hetang serve` listening on the lab's host address, its relay offering that address; with
    a coturn secret and URLs it mints TURN credentials for agents (GET /api/v1/agent/ice-servers)
    and for the console page, as in production."""

    host: str = "127.0.0.1"
    turn_secret: str = ""
    turn_urls: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        """The base URL, as venues (and the operator's Chromium) reach it."""
        return f"http://{self.host}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """The server's environment: listen on, and offer media at, the lab address; our coturn."""
        env = {**super().env, "HETANG_HOST": self.host, "HETANG_ICE_HOSTS": self.host}
        if self.turn_secret:
            env["HETANG_TURN_SECRET"] = self.turn_secret
            env["HETANG_TURN_URLS"] = ",".join(self.turn_urls)
            env["HETANG_TURN_TTL_S"] = str(TURN_TTL_S)
        return env


def lab_server(
    template: tuple[Path, str], data_dir: Path, lab: Lab, turn: LabTurn | None = None
) -> LabServer:
    """A started server on a copy of the template, on the lab's host address; with turn, minting
    credentials for that coturn (every URL of it: UDP, TCP, TLS)."""
    shutil.copytree(template[0], data_dir)
    server = LabServer(data_dir, template[1], host=lab.host_address)
    if turn is not None:
        server.turn_secret, server.turn_urls = turn.coturn.secret, turn.coturn.urls
    server.start()
    return server


def _in_namespace_socket(ns: str, address: tuple[str, int], timeout: float) -> socket.socket:
    """A TCP socket connected from inside a named network namespace.

    setns(2) moves only the calling thread, and a socket stays in the namespace it was made in:
    a short-lived thread enters the namespace, connects, and hands the socket back.
    """
    made: list[socket.socket | BaseException] = []

    def enter_and_connect() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            with open(f"/run/netns/{ns}", "rb") as handle:
                if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {ns}")
            made.append(socket.create_connection(address, timeout=timeout))
        except BaseException as error:  # handed to the caller
            made.append(error)

    thread = threading.Thread(target=enter_and_connect, daemon=True)
    thread.start()
    thread.join(timeout + 5)
    if not made:
        raise TimeoutError(f"connecting inside {ns}")
    result = made[0]
    if isinstance(result, BaseException):
        raise result
    return result


def ns_get_json(ns: str | None, port: int, path: str, timeout: float = 5) -> tuple[int, Any]:
    """GET http://127.0.0.1:PORT/PATH as seen from inside the namespace (None: the host's own);
    (status, JSON or None)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    if ns is not None:
        connection.sock = _in_namespace_socket(ns, ("127.0.0.1", port), timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        raw = response.read()
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, None
    finally:
        connection.close()


@dataclass
class LabAgent:
    """A real `hetang-agent run` inside a venue's namespace; its staff page answers there."""

    venue: str
    ns: str | None  # None: on the host itself (no NAT, no router)
    data_dir: Path
    process: subprocess.Popen[bytes]
    ui_port: int

    def status(self) -> dict[str, Any] | None:
        """GET /status.json, or None when the page does not answer."""
        assert self.process.poll() is None, f"the agent exited with {self.process.returncode}"
        try:
            status, body = ns_get_json(self.ns, self.ui_port, "/status.json")
        except OSError:
            return None
        return body if status == 200 and isinstance(body, dict) else None

    def decoded(self) -> int:
        """Frames decoded so far in the current reception (live, between samples)."""
        stream = (self.status() or {}).get("stream") or {}
        return int(stream.get("frames_decoded_now") or 0)

    def samples(self) -> list[dict[str, Any]]:
        """Every stream sample the agent journaled, oldest first (read from its own file)."""
        db = sqlite3.connect(self.data_dir / "agent.sqlite3", timeout=30)
        try:
            rows = db.execute(
                "SELECT payload FROM outbox WHERE kind = 'sample' ORDER BY seq"
            ).fetchall()
        finally:
            db.close()
        return [json.loads(payload) for (payload,) in rows]

    def log(self) -> str:
        """What it wrote to its log so far."""
        return (self.data_dir / "agent.log").read_text(encoding="utf-8", errors="replace")

    def turn_chosen(self) -> list[str]:
        """The TURN URL its ICE picker chose for each subscription so far (from its log)."""
        marker = "TURN for this subscription: "
        return [
            line.split(marker, 1)[1].strip() for line in self.log().splitlines() if marker in line
        ]

    def stop(self) -> int:
        """SIGTERM; answers the exit status."""
        return stop_process(self.process)


@dataclass
class LabAgents:
    """Starts agents in venue namespaces; whatever still runs at the end is stopped."""

    lab: Lab
    started: list[LabAgent] = field(default_factory=list)

    def start(
        self,
        venue: str,
        data_dir: Path,
        server_url: str,
        token: str,
        *,
        extra_env: dict[str, str] | None = None,
        on_host: bool = False,
    ) -> LabAgent:
        """`hetang-agent run` inside the venue's namespace, offering the venue's own address
        (on_host: on the host itself, offering the lab address); waits for its staff page. No
        STUN/TURN is configured on it: it asks the server for them before each subscription."""
        ns = None if on_host else self.lab.venue(venue).ns
        # Each venue namespace has a loopback of its own: no clash there.
        port = free_port() if on_host else 8765
        argv = [str(BIN / "hetang-agent"), "--log-level", "INFO", "run", "--server", server_url]
        argv += ["--data-dir", str(data_dir), "--ui-port", str(port)]
        argv += ["--ice-hosts", self.lab.host_address if on_host else self.lab.venue(venue).address]
        data_dir.mkdir(parents=True, exist_ok=True)
        env = clean_env(HETANG_AGENT_TOKEN=token, **(extra_env or {}))
        command = argv if ns is None else self.lab.argv(venue, *argv)
        with (data_dir / "agent.log").open("ab") as log:
            process = subprocess.Popen(
                command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        agent = LabAgent(venue, ns, data_dir, process, port)
        self.started.append(agent)
        wait_until(lambda: agent.status() is not None, f"{venue}'s agent staff page")
        return agent

    def stop_all(self) -> None:
        """Stop every agent started."""
        for agent in self.started:
            stop_process(agent.process)


@dataclass
class LabTurn:
    """The lab's coturn (tests/support/coturn.py) on the host's lab address, UDP/TCP and TLS."""

    coturn: Coturn

    def url(self, transport: str = "udp") -> str:
        """turn:…?transport=udp|tcp, or with transport 'tls' turns:…?transport=tcp."""
        return {
            "udp": self.coturn.udp_url,
            "tcp": self.coturn.tcp_url,
            "tls": self.coturn.tls_url,
        }[transport]

    @property
    def plain_port(self) -> int:
        """The port of TURN over UDP and TCP."""
        return self.coturn.port

    @property
    def tls_port(self) -> int:
        """The port of TURN over TLS."""
        assert self.coturn.tls_port is not None
        return self.coturn.tls_port

    def tcp_clients(self, port: int) -> set[str]:
        """Addresses holding an established TCP connection to coturn on this port now."""
        listing = subprocess.run(
            ["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
        found: set[str] = set()
        for line in listing.splitlines():
            words = line.split()
            # With a state filter ss leaves the state out: Recv-Q Send-Q Local Peer.
            if len(words) >= 4 and words[2] == f"{self.coturn.host}:{port}":
                found.add(words[3].rsplit(":", 1)[0])
        return found

    def trust_env(self) -> dict[str, str]:
        """What an agent needs to trust this coturn's self-signed certificate over turns:. aioice
        opens TLS with asyncio's default context (the system's CAs, found through SSL_CERT_FILE;
        the host name — here an IP address — checked), and so does the agent's probe. A
        production coturn has a certificate from a public CA, which that default context trusts
        as it is: nothing is configured on a venue's PC."""
        assert self.coturn.certificate is not None
        return {"SSL_CERT_FILE": str(self.coturn.certificate)}


@contextlib.contextmanager
def lab_turn(lab: Lab, directory: Path) -> Iterator[LabTurn]:
    """coturn on the lab's host address (UDP/TCP and TLS), relaying only to that address."""
    host = lab.host_address
    with running_coturn(
        directory,
        secrets.token_hex(16),
        host=host,
        tls_port=free_udp_and_tcp_port(host),
        allowed_peers=(host,),
        # coturn allows every peer not denied: deny all but the lab host (allowed wins).
        extra=("--denied-peer-ip=0.0.0.0-255.255.255.255", "--no-tlsv1", "--no-tlsv1_1"),
    ) as coturn:
        yield LabTurn(coturn)


def verified_up_seconds(
    samples: Sequence[tuple[dt.datetime, str]], start: dt.datetime, end: dt.datetime
) -> float:
    """A venue's up time within [start, end) by ATTENDANCE.md §2: a sample at t covers
    [t, min(t_next, t + 3 × stats interval)); good and degraded are up."""
    ordered = sorted(samples)
    up = 0.0
    for index, (at, state) in enumerate(ordered):
        if state not in UP_STATES:
            continue
        until = at + dt.timedelta(seconds=3 * STATS_S)
        if index + 1 < len(ordered):
            until = min(until, ordered[index + 1][0])
        lo, hi = max(at, start), min(until, end)
        if hi > lo:
            up += (hi - lo).total_seconds()
    return up


def stored_samples(
    server: Server, session_id: str, venue_code: str
) -> list[tuple[dt.datetime, str, float | None, int | None]]:
    """(at, state, fps, frames_decoded) of a venue's stream samples the server stored."""
    rows = server.query(
        "SELECT s.at, s.state, s.fps, s.frames_decoded FROM stream_samples s "
        "JOIN venues v ON v.id = s.venue_id JOIN training_sessions t ON t.id = s.session_id "
        "WHERE v.code = ? AND t.public_id = ? ORDER BY s.at",
        venue_code,
        session_id,
    )
    return [(_utc(str(at)), str(state), fps, frames) for at, state, fps, frames in rows]


def _utc(raw: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(raw)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
