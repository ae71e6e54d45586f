"""A real coturn (`turnserver`, Debian's package) for tests: the shared-secret REST scheme
(`use-auth-secret`), UDP and TCP on one port, TLS on another when asked (a self-signed certificate
made with `openssl req -x509`), relaying to the given peer addresses (loopback by default)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.procs import free_port, stop_process, wait_until

REALM = "hetang.test"


def free_udp_and_tcp_port(host: str = "127.0.0.1") -> int:
    """A port free for both TCP and UDP on the host (coturn listens on both)."""
    for _ in range(100):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind((host, port))
            except OSError:
                continue
        return port
    raise AssertionError("no port free for both TCP and UDP")


def self_signed_certificate(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """(certificate, key) in PEM, made by openssl, valid for the host's IP address (and
    localhost); a client trusts it through SSL_CERT_FILE or an SSLContext's cafile."""
    cert, key = directory / "turn-cert.pem", directory / "turn-key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={host}",
            "-addext",
            f"subjectAltName=IP:{host},DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@dataclass
class Coturn:
    """A running coturn and the URLs that reach it."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    secret: str
    log_path: Path
    tls_port: int | None = None
    certificate: Path | None = None

    @property
    def udp_url(self) -> str:
        """TURN over UDP."""
        return f"turn:{self.host}:{self.port}?transport=udp"

    @property
    def tcp_url(self) -> str:
        """TURN over TCP."""
        return f"turn:{self.host}:{self.port}?transport=tcp"

    @property
    def tls_url(self) -> str:
        """TURN over TLS (only when started with a TLS port)."""
        assert self.tls_port is not None, "coturn was started without TLS"
        return f"turns:{self.host}:{self.tls_port}?transport=tcp"

    @property
    def urls(self) -> tuple[str, ...]:
        """Every URL that reaches it, UDP first, then TCP, then TLS."""
        tls = (self.tls_url,) if self.tls_port is not None else ()
        return (self.udp_url, self.tcp_url, *tls)

    def log(self) -> str:
        """What coturn logged so far."""
        return self.log_path.read_text(errors="replace")

    def trusting_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts the self-signed certificate."""
        assert self.certificate is not None, "coturn was started without TLS"
        return ssl.create_default_context(cafile=str(self.certificate))


@contextlib.contextmanager
def running_coturn(
    directory: Path,
    secret: str,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    tls_port: int | None = None,
    relay_ports: tuple[int, int] | None = None,
    allowed_peers: tuple[str, ...] = ("127.0.0.1",),
    extra: tuple[str, ...] = (),
) -> Iterator[Coturn]:
    """Run coturn on the host (free ports unless given; TLS only with tls_port) until the block
    ends; its log (stdout and stderr) is kept in directory/coturn.log."""
    binary = shutil.which("turnserver")
    assert binary is not None, "coturn is not installed (apt-get install coturn)"
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_udp_and_tcp_port(host)
    low, high = relay_ports or (49160, 49660)
    arguments = [
        binary,
        "-n",  # no configuration file: only these flags
        "--no-cli",
        "--listening-ip",
        host,
        "--relay-ip",
        host,
        "--listening-port",
        str(port),
        "--min-port",
        str(low),
        "--max-port",
        str(high),
        "--use-auth-secret",
        f"--static-auth-secret={secret}",
        "--realm",
        REALM,
        "--fingerprint",
        "--no-multicast-peers",
        "--no-software-attribute",
        "--pidfile",
        str(directory / "coturn.pid"),
        "--log-file",
        "stdout",
        "--simple-log",
        "--no-dtls",
    ]
    if any(peer.startswith("127.") for peer in allowed_peers):
        arguments.append("--allow-loopback-peers")
    arguments += [f"--allowed-peer-ip={peer}" for peer in allowed_peers]
    certificate = None
    if tls_port is None:
        arguments.append("--no-tls")
    else:
        certificate, key = self_signed_certificate(directory, host)
        arguments += [
            "--tls-listening-port",
            str(tls_port),
            "--cert",
            str(certificate),
            "--pkey",
            str(key),
        ]
    arguments += list(extra)
    log_path = directory / "coturn.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(arguments, stdout=log, stderr=subprocess.STDOUT)
    coturn = Coturn(process, host, port, secret, log_path, tls_port, certificate)
    try:

        def listening() -> bool:
            assert process.poll() is None, f"coturn exited:\n{coturn.log()}"
            for expected in (port, tls_port):
                if expected is None:
                    continue
                try:
                    socket.create_connection((host, expected), timeout=0.5).close()
                except OSError:
                    return False
            return True

        wait_until(listening, "coturn to listen", timeout=15)
        yield coturn
    finally:
        stop_process(process)
