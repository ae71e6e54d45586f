"""AgentConfig: the agent's settings from flags and HETANG_AGENT_* variables, validated at start."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from urllib.parse import urlsplit

from passthrough.peer import IceSettings, parse_hosts, parse_servers
from venue_agent.staff_pin import MAX_LENGTH, MIN_LENGTH, StaffPin

VENUE_TOKEN_PREFIX = "hv_"  # noqa: S105  (a prefix, not a secret)
DEFAULT_UI_PORT = 8765


class ExitCode(IntEnum):
    """The exit status of `hetang-agent`, one per kind of failure."""

    OK = 0
    FAILED = 1  # e.g. an import file with bad rows
    CONFIG = 2  # a bad flag or variable (argparse uses 2 for usage errors too)
    DATA_DIR = 3  # the data directory or its database cannot be used
    UI_PORT = 4  # the staff page's port is taken
    SCANNER = 5  # the scanner device cannot be opened at start


class ConfigError(ValueError):
    """A bad setting; the message names the flag and the variable."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.CONFIG) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Setting:
    """Where one setting comes from: its flag and its environment variable."""

    flag: str
    variable: str

    @property
    def label(self) -> str:
        """'--flag / VARIABLE', for error messages."""
        return f"{self.flag} / {self.variable}"


SERVER = Setting("--server", "HETANG_AGENT_SERVER")
TOKEN = Setting("--token", "HETANG_AGENT_TOKEN")
TOKEN_FILE = "--token-file"  # noqa: S105  (a flag, not a secret)
DATA_DIR = Setting("--data-dir", "HETANG_AGENT_DATA_DIR")
UI_PORT = Setting("--ui-port", "HETANG_AGENT_UI_PORT")
SCANNER = Setting("--scanner", "HETANG_AGENT_SCANNER")
ICE_HOSTS = Setting("--ice-hosts", "HETANG_AGENT_ICE_HOSTS")
ICE_SERVERS = Setting("--ice-servers", "HETANG_AGENT_ICE_SERVERS")
# The flag names a file (the PIN never on a command line); the variable holds the PIN.
STAFF_PIN = Setting("--staff-pin-file", "HETANG_AGENT_STAFF_PIN")
# TURN credentials come from the environment only: a flag would show them to `ps`.
TURN_USERNAME = "HETANG_AGENT_TURN_USERNAME"
TURN_CREDENTIAL = "HETANG_AGENT_TURN_CREDENTIAL"


@dataclass(frozen=True)
class ServerAccess:
    """The server's base URL and this venue's token."""

    url: str
    token: str


@dataclass(frozen=True)
class AgentConfig:
    """Everything `hetang-agent run` needs, already checked."""

    server: ServerAccess
    data_dir: Path
    ui_port: int = DEFAULT_UI_PORT
    scanner: str | None = None  # "stdin", a device path, or None for no scanner
    ice: IceSettings = field(default_factory=IceSettings)  # no ICE server unless configured
    staff_pin: StaffPin | None = None  # None: every local process may use the staff page

    @classmethod
    def load(cls, flags: Mapping[str, str | None], environ: Mapping[str, str]) -> AgentConfig:
        """Read flags (which win) and variables; raise ConfigError naming the bad one."""
        server = server_access(flags, environ)
        data_dir = writable_data_dir(flags, environ)
        ui_port = _port(_pick(UI_PORT, flags, environ) or str(DEFAULT_UI_PORT))
        scanner = _scanner(_pick(SCANNER, flags, environ))
        ice = ice_settings(flags, environ)
        return cls(
            server=server,
            data_dir=data_dir,
            ui_port=ui_port,
            scanner=scanner,
            ice=ice,
            staff_pin=read_staff_pin(flags, environ),
        )


def _pick(setting: Setting, flags: Mapping[str, str | None], environ: Mapping[str, str]) -> str:
    """The flag's value, else the variable's, else ''."""
    value = flags.get(setting.flag)
    if value is None:
        value = environ.get(setting.variable, "")
    return value.strip()


def optional_server_access(
    flags: Mapping[str, str | None], environ: Mapping[str, str]
) -> ServerAccess | None:
    """The server URL and token when either is given (then both must be right), else None."""
    if (
        not _pick(SERVER, flags, environ)
        and not _pick(TOKEN, flags, environ)
        and not flags.get(TOKEN_FILE)
    ):
        return None
    return server_access(flags, environ)


def server_access(flags: Mapping[str, str | None], environ: Mapping[str, str]) -> ServerAccess:
    """The server URL and this venue's token, both required."""
    url = _pick(SERVER, flags, environ)
    token = _token(flags, environ)
    if not url:
        raise ConfigError(
            f"{SERVER.label} is required: the server's address, e.g. https://hetang.example.cn"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{SERVER.label} must be an http:// or https:// address, not {url!r}")
    if parts.query or parts.fragment:
        raise ConfigError(f"{SERVER.label} must not carry a query or fragment: {url!r}")
    if not token:
        raise ConfigError(f"{TOKEN.label} is required: the venue's agent token (hv_…)")
    if not token.startswith(VENUE_TOKEN_PREFIX) or any(ch.isspace() for ch in token):
        raise ConfigError(f"{TOKEN.label} must be a venue token starting with hv_")
    return ServerAccess(url=url.rstrip("/"), token=token)


def _token(flags: Mapping[str, str | None], environ: Mapping[str, str]) -> str:
    """--token, else the file --token-file names, else HETANG_AGENT_TOKEN."""
    token_file = flags.get(TOKEN_FILE)
    if token_file is None:
        return _pick(TOKEN, flags, environ)
    if flags.get(TOKEN.flag) is not None:
        raise ConfigError(f"give either {TOKEN.flag} or {TOKEN_FILE}, not both")
    return read_private_file(token_file, TOKEN_FILE)


def read_staff_pin(flags: Mapping[str, str | None], environ: Mapping[str, str]) -> StaffPin | None:
    """The staff page's PIN from the file --staff-pin-file names, else HETANG_AGENT_STAFF_PIN;
    None when neither is given."""
    pin_file = flags.get(STAFF_PIN.flag)
    if pin_file is not None:
        pin = read_private_file(pin_file, STAFF_PIN.flag)
    else:
        pin = environ.get(STAFF_PIN.variable, "").strip()
        if not pin:
            return None
    if not MIN_LENGTH <= len(pin) <= MAX_LENGTH:
        raise ConfigError(
            f"{STAFF_PIN.label}: the PIN must have at least {MIN_LENGTH} characters "
            f"(at most {MAX_LENGTH})"
        )
    return StaffPin(pin)


def read_private_file(raw_path: str, flag: str) -> str:
    """The stripped text of a secret's file, refused when other users could read it."""
    path = Path(raw_path).expanduser()
    try:
        # Checked on the open file: what is read is what was checked.
        with path.open("rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):  # a pipe: --token-file <(…)
                raise ConfigError(f"{flag}: {path} is not a file")
            if mode & (stat.S_IRGRP | stat.S_IROTH):
                raise ConfigError(
                    f"{flag}: {path} can be read by other users (mode "
                    f"{stat.S_IMODE(mode):04o}); make it private: chmod 600 {path}"
                )
            raw = handle.read(64 * 1024)
    except OSError as error:
        raise ConfigError(f"{flag}: cannot read {path}: {error.strerror or error}") from None
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"{flag}: {path} is not UTF-8 text") from None
    if not text:
        raise ConfigError(f"{flag}: {path} is empty")
    return text


def ice_settings(flags: Mapping[str, str | None], environ: Mapping[str, str]) -> IceSettings:
    """The host addresses to offer and the STUN/TURN servers to ask (both empty unless given)."""
    try:
        hosts = parse_hosts(_pick(ICE_HOSTS, flags, environ))
    except ValueError as error:
        raise ConfigError(
            f"{ICE_HOSTS.label}: {error} (give IP addresses, comma-separated)"
        ) from None
    try:
        servers = parse_servers(_pick(ICE_SERVERS, flags, environ))
    except ValueError as error:
        raise ConfigError(f"{ICE_SERVERS.label}: {error} (comma-separated)") from None
    return IceSettings(
        hosts=hosts,
        servers=servers,
        username=environ.get(TURN_USERNAME, "").strip() or None,
        credential=environ.get(TURN_CREDENTIAL, "").strip() or None,
    )


def default_data_dir(environ: Mapping[str, str]) -> Path:
    """Where the agent keeps its journal when no data dir is given."""
    base = environ.get("XDG_DATA_HOME") or os.path.join(environ.get("HOME", "."), ".local/share")
    return Path(base) / "hetang-agent"


def data_dir_path(flags: Mapping[str, str | None], environ: Mapping[str, str]) -> Path:
    """The data directory as given (not checked)."""
    raw = _pick(DATA_DIR, flags, environ)
    return Path(raw).expanduser() if raw else default_data_dir(environ)


def writable_data_dir(flags: Mapping[str, str | None], environ: Mapping[str, str]) -> Path:
    """The data directory, created if missing and proven writable."""
    path = data_dir_path(flags, environ)
    try:
        # Only this user: the journal holds rosters, names and card codes.
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as error:
        raise ConfigError(
            f"{DATA_DIR.label}: cannot write to {path}: {error.strerror or error}",
            ExitCode.DATA_DIR,
        ) from None
    return path


def _port(raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(f"{UI_PORT.label} must be a whole number, not {raw!r}") from None
    if not 0 < port < 65536:
        raise ConfigError(f"{UI_PORT.label} must be between 1 and 65535, not {port}")
    return port


def _scanner(raw: str) -> str | None:
    if not raw:
        return None
    if raw == "stdin":
        return raw
    path = Path(raw)
    if not path.exists():
        raise ConfigError(
            f"{SCANNER.label}: {raw} does not exist (give 'stdin' or the scanner's device path)",
            ExitCode.SCANNER,
        )
    if path.is_dir():
        raise ConfigError(f"{SCANNER.label}: {raw} is a directory, not a device", ExitCode.SCANNER)
    if not os.access(path, os.R_OK):
        raise ConfigError(f"{SCANNER.label}: {raw} cannot be read (permissions)", ExitCode.SCANNER)
    return raw
