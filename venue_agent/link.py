"""What the agent knows about its connection to the server, shared by the sync loops."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field

from venue_agent import clock
from venue_agent.client import Hello, Refused
from venue_agent.outbox import Outbox

log = logging.getLogger(__name__)

LAST_SYNC_KEY = "last_sync"
DEFAULT_HEARTBEAT_S = 15.0
DEFAULT_STATS_S = 5.0


class Backoff:
    """Capped exponential backoff with jitter: about 1, 2, 4 … 60 s between tries."""

    def __init__(self, first_s: float = 1.0, cap_s: float = 60.0) -> None:
        self.first_s, self.cap_s = first_s, cap_s
        self._tries = 0
        self._random = random.Random()

    def next(self) -> float:
        """The next delay; half of it is random so that venues do not retry in step."""
        delay = min(self.cap_s, self.first_s * 2.0 ** min(self._tries, 30))
        self._tries += 1
        return delay / 2 + self._random.uniform(0, delay / 2)

    def reset(self) -> None:
        """Back to the first delay after a success."""
        self._tries = 0


@dataclass
class Link:
    """Online or not, why not, and what hello told us (the last sync is kept on disk)."""

    online: bool | None = None  # None until the first try
    problem: str | None = None  # for the staff page, in Chinese
    needs_hello: bool = True
    venue_code: str | None = None
    venue_name: str | None = None
    heartbeat_s: float = DEFAULT_HEARTBEAT_S
    stats_s: float = DEFAULT_STATS_S  # how often a received stream is sampled
    new_events: asyncio.Event = field(default_factory=asyncio.Event)
    # Set, and `answers` counted, on every answer from the server: the uploader waits on it
    # while it waits out a failure, so that it tries again as soon as the server is back.
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    answers: int = 0

    def greeted(self, hello: Hello) -> None:
        """Hello went through."""
        self.needs_hello = False
        self.venue_code, self.venue_name = hello.venue_code, hello.venue_name
        self.heartbeat_s, self.stats_s = hello.heartbeat_s, hello.stats_s
        log.info(
            "hello: venue %s (%s), heartbeat every %g s, stream samples every %g s",
            hello.venue_code,
            hello.venue_name,
            hello.heartbeat_s,
            hello.stats_s,
        )

    async def reached(self, outbox: Outbox) -> None:
        """The server answered: remember when, here and on disk, and wake the uploader."""
        if self.online is not True:
            log.info("the server is reachable")
        self.online, self.problem = True, None
        self.answers += 1
        self.answered.set()
        await asyncio.to_thread(outbox.set_meta, {LAST_SYNC_KEY: clock.now_iso()})

    def lost(self, reason: str) -> None:
        """No usable answer: work offline, and say hello again once it comes back."""
        if self.online is not False:
            log.warning("the server cannot be reached (%s); working offline", reason)
        self.online, self.needs_hello = False, True
        self.problem = "无法连接服务器，签到已保存在本机，恢复后自动上传"

    def refused(self, error: Refused) -> None:
        """The server refuses the agent itself (token, address): staff must fix the setup."""
        if error.status == 401:
            problem = "服务器不接受本机的令牌（可能已更换），请管理员重新配置 --token"
        else:
            problem = f"服务器拒绝了本机的请求（HTTP {error.status}），请检查 --server 地址"
        if problem != self.problem:
            log.error("the server refuses this agent: %s", error)
        self.online, self.needs_hello, self.problem = False, True, problem
