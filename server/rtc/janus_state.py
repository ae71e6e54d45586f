"""What the Janus media backend keeps of each broadcast on air: its room, its publisher and the
streams it sends, the edges carrying it, each venue's subscription (offered, then started) and
the venues' picture layers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from passthrough.quality import HIGH, Layer
from server.rtc.janus import JanusHandle
from server.rtc.janus_quality import VenueQuality
from server.rtc.janus_recording import JanusRecording
from server.rtc.janus_tree import Instance


@dataclass
class Subscription:
    """A venue's handle on its edge: offered, then started once the agent answers."""

    venue_code: str
    edge: Instance
    handle: JanusHandle
    layer: Layer = HIGH  # the picture it receives
    answered: bool = False  # the agent's answer is being (or was) given to Janus
    started: bool = False


@dataclass
class JanusBroadcast:
    public_id: str
    room: int
    venue_codes: tuple[str, ...]
    since: datetime
    publisher: JanusHandle | None = None
    feed: int = 0
    streams: list[dict[str, Any]] = field(default_factory=list)
    up: asyncio.Event = field(default_factory=asyncio.Event)
    watcher: asyncio.Task[None] | None = None  # sets `up` once the publisher connects
    edge_feeds: dict[str, int] = field(default_factory=dict)  # edge URL → its remote publisher
    subscriptions: dict[str, Subscription] = field(default_factory=dict)  # venue → current
    offers: dict[str, Subscription] = field(default_factory=dict)  # token → offered
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    quality: VenueQuality = field(default_factory=VenueQuality)
    recording: JanusRecording | None = None
    switching: set[str] = field(default_factory=set)  # venues moved for a change of layer
