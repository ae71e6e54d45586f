"""Settings.from_env: the defaults, the generated secret, and every bad value named."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from server.settings import SECRET_FILE, Settings, SettingsError

KEY = "k" * 40


def test_defaults(tmp_path: Path) -> None:
    settings = Settings.from_env({"HETANG_DATA_DIR": str(tmp_path)})
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.timezone == "Asia/Shanghai"
    assert str(settings.tz) == "Asia/Shanghai"
    assert settings.locale == "zh_CN"
    assert settings.database_url == f"sqlite+aiosqlite:///{(tmp_path / 'hetang.sqlite3').resolve()}"
    assert settings.is_sqlite
    assert settings.redis_url is None
    assert settings.data_dir == tmp_path
    # ICE: every local address found, and no STUN/TURN server unless one is configured.
    assert settings.ice.hosts == () and settings.ice.servers == ()
    assert settings.recordings_path == tmp_path / "recordings"  # every broadcast is recorded
    assert settings.recording_retention_days == 365
    assert (
        Settings.from_env(
            {"HETANG_DATA_DIR": str(tmp_path), "HETANG_RECORDING_RETENTION_DAYS": "0"}
        ).recording_retention_days
        == 0
    )


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"HETANG_RECORDINGS_DIR": "/srv/hetang-recordings"}, Path("/srv/hetang-recordings")),
        ({"HETANG_RECORDING": "off"}, None),
        ({"HETANG_RECORDING": "OFF", "HETANG_RECORDINGS_DIR": "/srv/r"}, None),
        ({"HETANG_RECORDING": "on", "HETANG_RECORDINGS_DIR": " "}, "default"),
    ],
)
def test_where_recordings_go(tmp_path: Path, environ: dict[str, str], expected: object) -> None:
    settings = Settings.from_env({"HETANG_DATA_DIR": str(tmp_path), **environ})
    assert settings.recordings_path == (
        tmp_path / "recordings" if expected == "default" else expected
    )


def test_values_are_read(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "HETANG_DATA_DIR": str(tmp_path),
            "HETANG_HOST": "0.0.0.0",  # noqa: S104
            "HETANG_PORT": "9000",
            "HETANG_TIMEZONE": "UTC",
            "HETANG_LOCALE": "en",
            "HETANG_DATABASE_URL": "postgresql+asyncpg://hetang@db/hetang",
            "HETANG_REDIS_URL": "redis://cache:6379/0",
            "HETANG_SECRET_KEY": KEY,
            "HETANG_ICE_HOSTS": "127.0.0.1, 10.0.0.5",
            "HETANG_ICE_SERVERS": "stun:stun.example.cn:3478,turn:turn.example.cn:3478",
            "HETANG_TURN_USERNAME": "hetang",
            "HETANG_TURN_CREDENTIAL": "s3cret",
            "HETANG_DB_POOL_SIZE": "40",
            "HETANG_DB_POOL_TIMEOUT_S": "2.5",
            "HETANG_MEDIA": "janus",
            "HETANG_JANUS_URLS": "http://10.0.0.5:8088/janus/, http://10.0.1.7:8088/janus#cz-ld",
            "HETANG_JANUS_FORWARD_PORTS": "31000-31099",
        }
    )
    assert (settings.db_pool_size, settings.db_pool_timeout_s) == (40, 2.5)
    assert settings.media.janus
    assert settings.media.janus_urls == ("http://10.0.0.5:8088/janus", "http://10.0.1.7:8088/janus")
    assert settings.media.regions == ("", "cz-ld")
    assert (settings.media.forward_ports.first, settings.media.forward_ports.last) == (31000, 31099)
    assert settings.ice.hosts == ("127.0.0.1", "10.0.0.5")
    assert settings.ice.servers == ("stun:stun.example.cn:3478", "turn:turn.example.cn:3478")
    assert (settings.ice.username, settings.ice.credential) == ("hetang", "s3cret")
    assert (settings.host, settings.port, settings.timezone, settings.locale) == (
        "0.0.0.0",  # noqa: S104
        9000,
        "UTC",
        "en",
    )
    assert settings.database_url == "postgresql+asyncpg://hetang@db/hetang"
    assert not settings.is_sqlite
    assert settings.redis_url == "redis://cache:6379/0"
    assert settings.secret_key == KEY
    assert not (tmp_path / SECRET_FILE).exists(), "a given key is not written anywhere"


def test_the_generated_secret_is_kept_private_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "data"
    first = Settings.from_env({"HETANG_DATA_DIR": str(data_dir)})
    path = data_dir / SECRET_FILE
    assert path.read_text().strip() == first.secret_key
    assert len(first.secret_key) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = Settings.from_env({"HETANG_DATA_DIR": str(data_dir), "HETANG_SECRET_KEY": ""})
    assert again.secret_key == first.secret_key
    elsewhere = Settings.from_env({"HETANG_DATA_DIR": str(tmp_path / "other")})
    assert elsewhere.secret_key != first.secret_key


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HETANG_PORT", "http"),
        ("HETANG_PORT", ""),
        ("HETANG_PORT", "0"),
        ("HETANG_PORT", "65536"),
        ("HETANG_PORT", "-1"),
        ("HETANG_TIMEZONE", "Mars/Olympus"),
        ("HETANG_TIMEZONE", "../../etc/passwd"),
        ("HETANG_TIMEZONE", ""),
        ("HETANG_LOCALE", "fr"),
        ("HETANG_LOCALE", "zh-CN"),
        ("HETANG_DATABASE_URL", "mysql://hetang@db/hetang"),
        ("HETANG_DATABASE_URL", "sqlite:///var/hetang.sqlite3"),
        ("HETANG_DATABASE_URL", "postgresql://hetang@db/hetang"),
        ("HETANG_REDIS_URL", "localhost:6379"),
        ("HETANG_REDIS_URL", "http://cache:6379"),
        ("HETANG_SECRET_KEY", "too-short"),
        ("HETANG_SECRET_KEY", "x" * 31),
        ("HETANG_ICE_HOSTS", "localhost"),
        ("HETANG_ICE_HOSTS", "127.0.0.1,300.1.1.1"),
        ("HETANG_ICE_SERVERS", "stun.l.google.com:19302"),
        ("HETANG_ICE_SERVERS", "http://turn.example.cn"),
        ("HETANG_RECORDING", "sometimes"),
        ("HETANG_RECORDING_RETENTION_DAYS", "-1"),
        ("HETANG_RECORDING_RETENTION_DAYS", "a year"),
        ("HETANG_DB_POOL_SIZE", "0"),
        ("HETANG_DB_POOL_SIZE", "2.5"),
        ("HETANG_DB_POOL_SIZE", "many"),
        ("HETANG_DB_POOL_TIMEOUT_S", "0"),
        ("HETANG_MEDIA", "mediasoup"),
        ("HETANG_JANUS_URLS", "janus.example.cn:8088"),
        ("HETANG_JANUS_URLS", "http://a/janus,http://a/janus"),
        ("HETANG_JANUS_URLS", "http://a/janus#滁州"),
        ("HETANG_JANUS_FORWARD_PORTS", "31000"),
        ("HETANG_JANUS_FORWARD_PORTS", "80-90"),
    ],
)
def test_a_bad_value_names_its_variable(tmp_path: Path, name: str, value: str) -> None:
    environ = {"HETANG_DATA_DIR": str(tmp_path), "HETANG_SECRET_KEY": KEY, name: value}
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(environ)
    assert name in str(raised.value)


def test_janus_needs_its_urls(tmp_path: Path) -> None:
    environ = {"HETANG_DATA_DIR": str(tmp_path), "HETANG_SECRET_KEY": KEY, "HETANG_MEDIA": "janus"}
    with pytest.raises(SettingsError, match="HETANG_JANUS_URLS is required"):
        Settings.from_env(environ)
    default = Settings.from_env({"HETANG_DATA_DIR": str(tmp_path), "HETANG_SECRET_KEY": KEY})
    assert default.media.engine == "builtin" and not default.media.janus


def test_a_data_dir_that_cannot_hold_the_secret_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"HETANG_DATA_DIR": str(blocker / "data")})
    assert "HETANG_DATA_DIR" in str(raised.value)


def test_a_damaged_secret_file_is_named(tmp_path: Path) -> None:
    (tmp_path / SECRET_FILE).write_text("short\n")
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"HETANG_DATA_DIR": str(tmp_path)})
    assert "HETANG_DATA_DIR" in str(raised.value) and SECRET_FILE in str(raised.value)
