"""What Janus's event handler (sampleevh) reports, read into figures for our metrics: events by
emitter and type, hangups, and the media statistics of the handles our server opened: a venue's
subscriber handle (opaque_id `hetang-venue-<code>`) and a broadcast's publisher handle
(`hetang-operator-<session>`). deploy/janus/NOTES.md, section 5, has samples of the events."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# The `type` bitmask of src/events/eventhandler.h.
TYPE_NAMES = MappingProxyType(
    {
        1: "session",
        2: "handle",
        4: "external",
        8: "jsep",
        16: "webrtc",
        32: "media",
        64: "plugin",
        128: "transport",
        256: "core",
    }
)
MEDIA, WEBRTC = 32, 16
VENUE_PREFIX, OPERATOR_PREFIX = "hetang-venue-", "hetang-operator-"
MAX_EVENTS = 10_000  # one POST's events read at most (the handler groups them)


@dataclass(frozen=True)
class MediaReport:
    """A venue's subscriber handle's video counters, as one media event reported them."""

    venue_code: str
    handle_id: int
    packets_sent: int
    lost_by_remote: int


@dataclass
class JanusFigures:
    """The figures in one batch of events."""

    events: dict[tuple[str, str], int] = field(default_factory=dict)  # (emitter, type) → count
    hangups: dict[str, int] = field(default_factory=dict)  # emitter → count
    venue_kbps: dict[str, float] = field(default_factory=dict)  # venue → video sent, last s
    venue_lost: dict[str, int] = field(default_factory=dict)  # venue → lost, as it reports
    publisher_kbps: dict[str, float] = field(default_factory=dict)  # session → video received
    reports: list[MediaReport] = field(default_factory=list)  # for the venues' layers


def read_events(body: Any) -> JanusFigures:
    """The figures of a POST body: one event, or a list of them (grouping on). Entries that are
    not events are skipped; ValueError when the body is neither."""
    if isinstance(body, dict):
        events: Iterable[Any] = [body]
    elif isinstance(body, list):
        events = body[:MAX_EVENTS]
    else:
        raise ValueError("an event handler's body is a JSON object or a list of them")
    figures = JanusFigures()
    for event in events:
        if isinstance(event, dict) and isinstance(event.get("type"), int):
            _read(event, figures)
    return figures


def _read(event: dict[str, Any], figures: JanusFigures) -> None:
    emitter = str(event.get("emitter") or "janus")[:64]
    kind = int(event["type"])
    name = TYPE_NAMES.get(kind, "other")
    figures.events[(emitter, name)] = figures.events.get((emitter, name), 0) + 1
    body = event.get("event")
    if not isinstance(body, dict):
        return
    if kind == WEBRTC and body.get("connection") == "hangup":
        figures.hangups[emitter] = figures.hangups.get(emitter, 0) + 1
    if kind != MEDIA or body.get("media") != "video":
        return
    opaque = str(event.get("opaque_id") or "")
    if opaque.startswith(VENUE_PREFIX):
        venue = opaque.removeprefix(VENUE_PREFIX)[:64]
        sent = _number(body.get("bytes-sent-lastsec"))
        if sent is not None:
            figures.venue_kbps[venue] = sent * 8 / 1000
        lost = _number(body.get("lost-by-remote"))
        if lost is not None:
            figures.venue_lost[venue] = int(lost)
        packets = _number(body.get("packets-sent"))
        handle = _number(event.get("handle_id"))
        if lost is not None and packets is not None and handle is not None:
            figures.reports.append(MediaReport(venue, int(handle), int(packets), int(lost)))
    elif opaque.startswith(OPERATOR_PREFIX):
        received = _number(body.get("bytes-received-lastsec"))
        if received is not None:
            session = opaque.removeprefix(OPERATOR_PREFIX)[:64]
            # A simulcast publisher reports each layer: the session's figure is their sum.
            figures.publisher_kbps[session] = (
                figures.publisher_kbps.get(session, 0.0) + received * 8 / 1000
            )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return float(value)
