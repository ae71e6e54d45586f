"""Debian's Chromium for browser tests, with the flags WebRTC on loopback needs (never
`playwright install`: the browser comes from apt)."""

from __future__ import annotations

import shutil

import pytest

CHROMIUM = shutil.which("chromium")
FLAGS = [
    "--no-sandbox",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not on PATH")
