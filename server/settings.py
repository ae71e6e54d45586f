"""Settings: one frozen dataclass read from HETANG_* variables and validated at start."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from passthrough.peer import IceSettings, parse_hosts, parse_servers
from passthrough.ports import parse_port_range
from server.domain.media import MediaSettings, parse_media
from server.domain.turn import DEFAULT_TTL_S, TurnSettings, parse_ttl, parse_turn_urls
from server.domain.webhooks import WebhookSettings

SUPPORTED_LOCALES = ("zh_CN", "en")
SECRET_FILE = "secret_key"  # noqa: S105  (a file name)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*")


class SettingsError(ValueError):
    """A HETANG_* variable has a bad value; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to know about its environment."""

    data_dir: Path
    database_url: str
    secret_key: str
    redis_url: str | None = None
    # The addresses `hetang serve` listens on (HETANG_HOST, comma-separated).
    hosts: tuple[str, ...] = ("127.0.0.1",)
    port: int = 8080
    timezone: str = "Asia/Shanghai"
    locale: str = "zh_CN"
    login_max_failures_per_user: int = 5
    login_max_failures_per_address: int = 20
    login_window_s: int = 900
    hash_concurrency: int = 2
    session_lifetime_s: int = 12 * 3600
    workflow_interval_s: float = 60.0
    metrics_token: str | None = None
    trusted_origins: tuple[str, ...] = field(default=())
    # Reverse proxies whose X-Forwarded-For names the client (HETANG_TRUSTED_PROXIES).
    trusted_proxies: tuple[Network, ...] = field(default=())
    # How long a connection may wait for its next request head (idle keep-alive included), and
    # how long a request's body may take to arrive; slower clients are cut off.
    keepalive_timeout_s: float = 20.0
    body_timeout_s: float = 60.0
    ice: IceSettings = field(default_factory=IceSettings)
    # Our coturn: credentials minted for agents and operators' pages (the relay needs none).
    turn: TurnSettings = field(default_factory=TurnSettings)
    # Every broadcast is recorded into this directory (HETANG_RECORDINGS_DIR; default
    # <data dir>/recordings) unless HETANG_RECORDING=off.
    recordings_dir: Path | None = None
    recording: bool = True
    # Recordings older than this many days are deleted (HETANG_RECORDING_RETENTION_DAYS; 0 keeps
    # them for ever).
    recording_retention_days: int = 365
    # Signed event callbacks (HETANG_WEBHOOK_*): who may be a target, retries, disabling.
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    # PostgreSQL connections each process keeps (HETANG_DB_POOL_SIZE, as many again in bursts),
    # and how long a request waits for one before it is answered 503 (HETANG_DB_POOL_TIMEOUT_S).
    db_pool_size: int = 10
    db_pool_timeout_s: float = 30.0
    # The media engine: the built-in relay, or Janus (HETANG_MEDIA, HETANG_JANUS_*).
    media: MediaSettings = field(default_factory=MediaSettings)

    @property
    def tz(self) -> ZoneInfo:
        """The display time zone."""
        return ZoneInfo(self.timezone)

    @property
    def host(self) -> str:
        """The first listening address: the one this machine's own URLs use."""
        return self.hosts[0]

    @property
    def recordings_home(self) -> Path:
        """The recordings directory, where recordings are kept and served from."""
        return self.recordings_dir or self.data_dir / "recordings"

    @property
    def recordings_path(self) -> Path | None:
        """Where new broadcasts are recorded; None when recording is off."""
        return self.recordings_home if self.recording else None

    @property
    def is_sqlite(self) -> bool:
        """True when the database is a SQLite file."""
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate HETANG_* variables; raise SettingsError naming the bad one."""
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("HETANG_DATA_DIR", "./var")).expanduser()
        database_url = env.get("HETANG_DATABASE_URL") or default_database_url(data_dir)
        _check_database_url(database_url)
        redis_url = env.get("HETANG_REDIS_URL") or None
        if redis_url is not None and not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError("HETANG_REDIS_URL must start with redis://, rediss:// or unix://")
        try:
            hosts = parse_listen_hosts(env.get("HETANG_HOST", "127.0.0.1"))
        except ValueError as error:
            raise SettingsError(f"HETANG_HOST: {error}") from None
        port = _parse_port(env.get("HETANG_PORT", "8080"))
        timezone = env.get("HETANG_TIMEZONE", "Asia/Shanghai")
        _check_timezone(timezone)
        locale = env.get("HETANG_LOCALE", "zh_CN")
        if locale not in SUPPORTED_LOCALES:
            raise SettingsError(
                f"HETANG_LOCALE must be one of {', '.join(SUPPORTED_LOCALES)}, not {locale!r}"
            )
        metrics_token = env.get("HETANG_METRICS_TOKEN") or None
        if metrics_token is not None and len(metrics_token) < 16:
            raise SettingsError("HETANG_METRICS_TOKEN must be at least 16 characters long")
        ice = _ice_settings(env)
        turn = _turn_settings(env)
        try:
            media = parse_media(env)
        except ValueError as error:
            raise SettingsError(str(error)) from None
        try:
            trusted_proxies = parse_trusted_proxies(env.get("HETANG_TRUSTED_PROXIES", ""))
        except ValueError as error:
            raise SettingsError(f"HETANG_TRUSTED_PROXIES: {error}") from None
        secret = env.get("HETANG_SECRET_KEY")
        if secret is None or secret == "":
            secret = load_or_create_secret(data_dir)
            if len(secret) < 32:
                raise SettingsError(
                    f"HETANG_DATA_DIR holds a secret key shorter than 32 characters in "
                    f"{data_dir / SECRET_FILE}; remove the file or set HETANG_SECRET_KEY"
                )
        if len(secret) < 32:
            raise SettingsError("HETANG_SECRET_KEY must be at least 32 characters long")
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            secret_key=secret,
            redis_url=redis_url,
            hosts=hosts,
            port=port,
            timezone=timezone,
            locale=locale,
            metrics_token=metrics_token,
            trusted_proxies=trusted_proxies,
            ice=ice,
            turn=turn,
            recordings_dir=_optional_path(env.get("HETANG_RECORDINGS_DIR")),
            recording=_switch(env, "HETANG_RECORDING", default=True),
            recording_retention_days=_days(env.get("HETANG_RECORDING_RETENTION_DAYS", "365")),
            workflow_interval_s=_seconds(env, "HETANG_WORKFLOW_INTERVAL_S", 60.0, 0.5, 3600),
            webhooks=_webhook_settings(env),
            db_pool_size=_whole(env, "HETANG_DB_POOL_SIZE", 10, 1, 200),
            db_pool_timeout_s=_seconds(env, "HETANG_DB_POOL_TIMEOUT_S", 30.0, 0.1, 600),
            media=media,
        )


def _seconds(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    """A number of seconds from `low` to `high` (the default when unset)."""
    return _number(env, name, default, low, high, "a number of seconds")


def _whole(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """A whole number from `low` to `high` (the default when unset)."""
    value = _number(env, name, default, low, high, "a whole number")
    if value != int(value):
        raise SettingsError(f"{name} must be a whole number from {low} to {high}, not {value:g}")
    return int(value)


def _number(
    env: Mapping[str, str], name: str, default: float, low: float, high: float, kind: str
) -> float:
    """A number from `low` to `high` (the default when unset); SettingsError naming the
    variable and quoting the value otherwise."""
    raw = (env.get(name) or "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        value = -1.0
    if not low <= value <= high:
        raise SettingsError(f"{name} must be {kind} from {low:g} to {high:g}, not {raw!r}")
    return value


def _days(raw: str) -> int:
    try:
        days = int(raw.strip())
    except ValueError:
        days = -1
    if not 0 <= days <= 36_500:
        raise SettingsError(
            f"HETANG_RECORDING_RETENTION_DAYS must be a number of days from 0 (keep for ever) to "
            f"36500, not {raw!r}"
        )
    return days


def _webhook_settings(env: Mapping[str, str]) -> WebhookSettings:
    """HETANG_WEBHOOK_ALLOW_PRIVATE, _DISABLE_AFTER_S, _POLL_S, _RETRY_BASE_S, _TIMEOUT_S."""
    defaults = WebhookSettings()
    return WebhookSettings(
        allow_private=_switch(env, "HETANG_WEBHOOK_ALLOW_PRIVATE", default=False),
        disable_after_s=_seconds(
            env, "HETANG_WEBHOOK_DISABLE_AFTER_S", defaults.disable_after_s, 1, 30 * 86400
        ),
        poll_s=_seconds(env, "HETANG_WEBHOOK_POLL_S", defaults.poll_s, 0.05, 60),
        retry_base_s=_seconds(
            env, "HETANG_WEBHOOK_RETRY_BASE_S", defaults.retry_base_s, 0.01, 3600
        ),
        timeout_s=_seconds(env, "HETANG_WEBHOOK_TIMEOUT_S", defaults.timeout_s, 0.1, 120),
    )


def _optional_path(raw: str | None) -> Path | None:
    return Path(raw).expanduser() if raw and raw.strip() else None


def _switch(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    """An on/off variable: on, off, true, false, 1, 0, yes, no (any case); empty = default."""
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("on", "true", "1", "yes"):
        return True
    if raw in ("off", "false", "0", "no"):
        return False
    raise SettingsError(f"{name} must be on or off, not {raw!r}")


def parse_listen_hosts(raw: str) -> tuple[str, ...]:
    """Comma-separated addresses to listen on: IP addresses or host names, repeats dropped."""
    hosts: list[str] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            ipaddress.ip_address(item)
        except ValueError:
            if not _HOST_NAME.fullmatch(item):
                raise ValueError(f"not an IP address or host name: {item!r}") from None
        if item not in hosts:
            hosts.append(item)
    if not hosts:
        raise ValueError("name at least one address to listen on, e.g. 127.0.0.1")
    return tuple(hosts)


def parse_trusted_proxies(raw: str) -> tuple[Network, ...]:
    """Comma-separated IP addresses or networks (CIDR); blanks are skipped."""
    networks: list[Network] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or network: {item!r}") from None
    return tuple(networks)


def _ice_settings(env: Mapping[str, str]) -> IceSettings:
    """HETANG_ICE_HOSTS / HETANG_ICE_SERVERS (+ TURN credentials); empty means automatic / none."""
    try:
        hosts = parse_hosts(env.get("HETANG_ICE_HOSTS", ""))
    except ValueError as error:
        raise SettingsError(f"HETANG_ICE_HOSTS: {error}") from None
    try:
        servers = parse_servers(env.get("HETANG_ICE_SERVERS", ""))
    except ValueError as error:
        raise SettingsError(f"HETANG_ICE_SERVERS: {error}") from None
    try:
        ports = parse_port_range(env.get("HETANG_RTC_PORTS", ""))
    except ValueError as error:
        raise SettingsError(
            f"HETANG_RTC_PORTS: {error} (give first-last, e.g. 40000-40199, or leave it empty)"
        ) from None
    return IceSettings(
        hosts,
        servers,
        env.get("HETANG_TURN_USERNAME") or None,
        env.get("HETANG_TURN_CREDENTIAL") or None,
        ports,
    )


def _turn_settings(env: Mapping[str, str]) -> TurnSettings:
    """HETANG_TURN_SECRET / HETANG_TURN_URLS / HETANG_TURN_TTL_S: both the secret and the URLs,
    or neither."""
    secret = (env.get("HETANG_TURN_SECRET") or "").strip()
    try:
        urls = parse_turn_urls(env.get("HETANG_TURN_URLS") or "")
    except ValueError as error:
        raise SettingsError(f"HETANG_TURN_URLS: {error}") from None
    try:
        ttl_s = parse_ttl((env.get("HETANG_TURN_TTL_S") or "").strip() or str(DEFAULT_TTL_S))
    except ValueError as error:
        raise SettingsError(f"HETANG_TURN_TTL_S {error}") from None
    if secret and not urls:
        raise SettingsError("HETANG_TURN_URLS is required with HETANG_TURN_SECRET")
    if urls and not secret:
        raise SettingsError("HETANG_TURN_SECRET is required with HETANG_TURN_URLS")
    if secret and len(secret) < 16:
        raise SettingsError("HETANG_TURN_SECRET must be at least 16 characters long")
    return TurnSettings(secret, urls, ttl_s)


def default_database_url(data_dir: Path) -> str:
    """The embedded default: a SQLite file in the data directory."""
    return f"sqlite+aiosqlite:///{(data_dir / 'hetang.sqlite3').resolve()}"


def load_or_create_secret(data_dir: Path) -> str:
    """Return the secret kept in the data dir, generating it (mode 0600) on first use."""
    path = data_dir / SECRET_FILE
    try:
        if path.exists():
            return path.read_text(encoding="ascii").strip()
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # this user's alone
        secret = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secret + "\n")
    except (OSError, UnicodeDecodeError) as error:
        problem = error.strerror if isinstance(error, OSError) else "it is not ASCII text"
        raise SettingsError(
            f"HETANG_DATA_DIR: cannot keep the secret key in {path}: {problem}"
        ) from None
    return secret


def _parse_port(raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise SettingsError(f"HETANG_PORT must be a whole number, not {raw!r}") from None
    if not 0 < port < 65536:
        raise SettingsError(f"HETANG_PORT must be between 1 and 65535, not {port}")
    return port


def _check_timezone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"HETANG_TIMEZONE is not a known time zone: {name!r}") from None


def _check_database_url(url: str) -> None:
    if not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise SettingsError(
            "HETANG_DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
        )
