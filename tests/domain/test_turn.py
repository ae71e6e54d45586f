"""TURN credentials in coturn's shared-secret REST scheme, and their settings."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.turn import DEFAULT_TTL_S, TurnSettings, mint, turn_password
from server.settings import Settings, SettingsError

SECRET = "turn-shared-secret-0123456789"
URLS = ("turn:turn.example.cn:3478?transport=udp", "turns:turn.example.cn:443?transport=tcp")
TURN = TurnSettings(SECRET, URLS)
NOW = datetime(2025, 7, 1, 8, 30, 15, 700_000, tzinfo=UTC)


def test_username_is_expiry_colon_name() -> None:
    minted = mint(TURN, "venue.B1", NOW)
    expiry = int(NOW.timestamp()) + DEFAULT_TTL_S
    assert minted.username == f"{expiry}:venue.B1"
    assert minted.expires_at == datetime.fromtimestamp(expiry, UTC)
    assert minted.expires_at - NOW == timedelta(hours=6) - timedelta(microseconds=700_000)
    assert minted.urls == URLS
    assert minted.as_ice_server() == {
        "urls": list(URLS),
        "username": minted.username,
        "credential": minted.credential,
    }


def test_password_is_coturns_hmac() -> None:
    # coturn's own description of the scheme, worked by hand: base64(hmac-sha1(secret, user)).
    username = "1751366415:venue.B1"
    expected = base64.b64encode(
        hmac.new(SECRET.encode(), username.encode(), hashlib.sha1).digest()
    ).decode()
    assert turn_password(SECRET, username) == expected
    # a value computed once with `echo -n 1751366415:venue.B1 | openssl dgst -sha1 -hmac … -binary
    # | base64`, so the formula above is not only checked against itself
    assert turn_password("secret", "1600000000:name") == "JJo+x2rkFCT/+Pk41kYbHNrz5NY="


@given(st.text(min_size=1, max_size=40).filter(lambda s: ":" not in s), st.integers(60, 604800))
def test_every_name_and_ttl(name: str, ttl_s: int) -> None:
    minted = mint(TurnSettings(SECRET, URLS, ttl_s), name, NOW)
    expiry, _, rest = minted.username.partition(":")
    assert rest == name and int(expiry) == int(NOW.timestamp()) + ttl_s
    assert minted.credential == turn_password(SECRET, minted.username)


def test_refuses_without_secret_or_with_a_colon() -> None:
    with pytest.raises(ValueError, match="secret"):
        mint(TurnSettings("", URLS), "x", NOW)
    with pytest.raises(ValueError, match="':'"):
        mint(TURN, "a:b", NOW)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"HETANG_DATA_DIR": str(tmp_path), "HETANG_SECRET_KEY": "k" * 40, **extra}


def test_settings_read_the_turn_variables(tmp_path: Path) -> None:
    assert not Settings.from_env(_env(tmp_path)).turn.enabled
    turn = Settings.from_env(
        _env(
            tmp_path,
            HETANG_TURN_SECRET=SECRET,
            HETANG_TURN_URLS=" , ".join(URLS),
            HETANG_TURN_TTL_S="7200",
        )
    ).turn
    assert turn == TurnSettings(SECRET, URLS, 7200)
    assert turn.enabled


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"HETANG_TURN_SECRET": SECRET}, "HETANG_TURN_URLS"),
        ({"HETANG_TURN_URLS": URLS[0]}, "HETANG_TURN_SECRET"),
        ({"HETANG_TURN_SECRET": "short", "HETANG_TURN_URLS": URLS[0]}, "HETANG_TURN_SECRET"),
        ({"HETANG_TURN_SECRET": SECRET, "HETANG_TURN_URLS": "stun:x:3478"}, "HETANG_TURN_URLS"),
        ({"HETANG_TURN_TTL_S": "6h"}, "HETANG_TURN_TTL_S"),
        ({"HETANG_TURN_TTL_S": "10"}, "HETANG_TURN_TTL_S"),
    ],
)
def test_bad_turn_settings_name_the_variable(
    tmp_path: Path, extra: dict[str, str], named: str
) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(_env(tmp_path, **extra))
