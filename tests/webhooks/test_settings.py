"""HETANG_WEBHOOK_* are read once and checked: a bad value names its variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.domain.webhooks import WebhookSettings
from server.settings import Settings, SettingsError

KEY = {"HETANG_SECRET_KEY": "k" * 40}


def test_the_defaults_refuse_private_targets_and_disable_after_a_day(tmp_path: Path) -> None:
    settings = Settings.from_env({"HETANG_DATA_DIR": str(tmp_path), **KEY})
    assert settings.webhooks == WebhookSettings()
    assert (settings.webhooks.allow_private, settings.webhooks.disable_after_s) == (False, 86400)


def test_the_values_are_read(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "HETANG_DATA_DIR": str(tmp_path),
            **KEY,
            "HETANG_WEBHOOK_ALLOW_PRIVATE": "1",
            "HETANG_WEBHOOK_DISABLE_AFTER_S": "30",
            "HETANG_WEBHOOK_POLL_S": "0.2",
            "HETANG_WEBHOOK_RETRY_BASE_S": "0.5",
            "HETANG_WEBHOOK_TIMEOUT_S": "3",
        }
    )
    assert settings.webhooks == WebhookSettings(True, 30, 0.2, 0.5, 3)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HETANG_WEBHOOK_ALLOW_PRIVATE", "maybe"),
        ("HETANG_WEBHOOK_DISABLE_AFTER_S", "0"),
        ("HETANG_WEBHOOK_DISABLE_AFTER_S", "a day"),
        ("HETANG_WEBHOOK_POLL_S", "-1"),
        ("HETANG_WEBHOOK_RETRY_BASE_S", "nan"),
        ("HETANG_WEBHOOK_TIMEOUT_S", "1000"),
    ],
)
def test_a_bad_value_names_its_variable(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({"HETANG_DATA_DIR": str(tmp_path), **KEY, name: value})
