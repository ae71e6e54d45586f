"""`hetang serve` on several addresses: loopback and a LAN address without every interface."""

from __future__ import annotations

import subprocess
import urllib.error
from pathlib import Path

import pytest

from server.settings import Settings, SettingsError
from tests.support.procs import (
    BIN,
    SECRET,
    clean_env,
    free_port,
    http_json,
    stop_process,
    wait_until,
)

KEY = "k" * 32


def _settings(tmp_path: Path, host: str) -> Settings:
    return Settings.from_env(
        {"HETANG_DATA_DIR": str(tmp_path), "HETANG_SECRET_KEY": KEY, "HETANG_HOST": host}
    )


def test_a_comma_list_is_read_in_order_without_repeats(tmp_path: Path) -> None:
    settings = _settings(tmp_path, " 127.0.0.1, 10.0.0.5 ,::1,127.0.0.1, hetang.local")
    assert settings.hosts == ("127.0.0.1", "10.0.0.5", "::1", "hetang.local")
    assert settings.host == "127.0.0.1"  # the one this machine's own URLs use


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("", "at least one address"),
        (" , ", "at least one address"),
        ("127.0.0.1,bad host", "'bad host'"),
        ("10.0.0.300;", "'10.0.0.300;'"),
    ],
)
def test_bad_addresses_name_the_variable(tmp_path: Path, raw: str, says: str) -> None:
    with pytest.raises(SettingsError) as caught:
        _settings(tmp_path, raw)
    assert str(caught.value).startswith("HETANG_HOST: ")
    assert says in str(caught.value)


def _answers(host: str, port: int) -> bool:
    try:
        return http_json("GET", f"http://{host}:{port}/healthz", timeout=2)[0] == 200
    except (OSError, urllib.error.URLError):
        return False


def _serve(tmp_path: Path, args: list[str], **env: str) -> tuple[subprocess.Popen[bytes], int]:
    data = tmp_path / "var"
    environment = clean_env(HETANG_DATA_DIR=str(data), HETANG_SECRET_KEY=SECRET, **env)
    subprocess.run([str(BIN / "hetang"), "migrate"], env=environment, check=True)
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "hetang"), "--log-level", "WARNING", "serve", "--port", str(port), *args],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return process, port


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--host", "127.0.0.1", "--host", "127.0.0.2"], {"HETANG_HOST": "127.0.0.3"}),
        ([], {"HETANG_HOST": "127.0.0.1,127.0.0.2"}),
    ],
    ids=["repeated --host", "HETANG_HOST list"],
)
def test_the_server_answers_on_each_address_and_no_other(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    process, port = _serve(tmp_path, args, **env)
    try:
        wait_until(lambda: _answers("127.0.0.1", port), "the server on 127.0.0.1")
        assert _answers("127.0.0.2", port)
        assert not _answers("127.0.0.3", port)  # --host replaces HETANG_HOST, not adds to it
    finally:
        stop_process(process)


def test_a_bad_host_argument_is_a_usage_error(tmp_path: Path) -> None:
    process, _ = _serve(tmp_path, ["--host", "127.0.0.1", "--host", "no such host!"])
    code = process.wait(timeout=30)
    message = process.stderr.read().decode() if process.stderr else ""
    stop_process(process)
    assert code == 2
    assert "--host: not an IP address or host name: 'no such host!'" in message
    assert "Traceback" not in message
