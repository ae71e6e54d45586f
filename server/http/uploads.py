"""Request bodies too large for memory: read in chunks into a temporary file (kept in memory up
to 1 MiB, then on disk), within the route's body limit."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import IO

from aiohttp import web

from server.errors import TooLarge

CHUNK = 256 * 1024
IN_MEMORY = 1024 * 1024


@asynccontextmanager
async def spooled_body(request: web.Request) -> AsyncIterator[IO[bytes]]:
    """The whole body as a seekable file at its start; 413 past `request.client_max_size`."""
    limit = request.client_max_size
    with tempfile.SpooledTemporaryFile(max_size=IN_MEMORY) as spool:
        size = 0
        while chunk := await request.content.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise TooLarge("The request body is larger than {limit} bytes.", limit=limit)
            spool.write(chunk)
        spool.seek(0)
        yield spool
