"""Webhook tests deliver to receivers on 127.0.0.1 (HETANG_WEBHOOK_ALLOW_PRIVATE), retry fast
and give up on an endpoint after a few seconds instead of a day."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from server.domain.webhooks import WebhookSettings
from server.settings import Settings
from tests.support.webhooks import Receiver

FAST = WebhookSettings(
    allow_private=True, disable_after_s=3.0, poll_s=0.1, retry_base_s=0.05, timeout_s=2.0
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared test settings with fast webhook delivery to loopback."""
    return replace(settings, webhooks=FAST)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver on 127.0.0.1 of the test's own (started by the test)."""
    made = Receiver()
    yield made
    await made.close()
