"""The type of the `client` fixture: aiohttp's test client of the real app on a real port."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient

Client = TestClient[web.Request, web.Application]
