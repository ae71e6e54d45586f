"""Signed event callbacks (webhooks): the event names, which audited change is which event, an
endpoint as asked for, and the delivery rules (what is retried, when, and when to give up)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from urllib.parse import urlsplit

from server.domain import validation as v

EVENT_TYPES = (
    "session.scheduled",
    "session.changed",
    "session.started",
    "session.ended",
    "session.finalized",
    "session.approved",
    "broadcast.started",
    "broadcast.ended",
    "venue.down",
    "venue.recovered",
    "plan.filed",
    "plan.accepted",
    "plan.returned",
    "report.stored",
)
# The audited change each event reports (services/audit appends, services/webhook_outbox emits).
EVENT_OF_ACTION = MappingProxyType(
    {
        "session.create": "session.scheduled",
        "session.update": "session.changed",
        "session.start": "session.started",
        "session.end": "session.ended",
        "session.finalize": "session.finalized",
        "session.approve": "session.approved",
        "session.broadcast_start": "broadcast.started",
        "session.broadcast_end": "broadcast.ended",
        "plan.file": "plan.filed",
        "plan.accept": "plan.accepted",
        "plan.return": "plan.returned",
        "report.snapshot": "report.stored",
    }
)
DELIVERY_STATES = ("pending", "delivered", "failed")
SECRET_PREFIX = "whsec_"  # noqa: S105  (a prefix)
MSG_PREFIX = "msg_"
MAX_URL_LENGTH = 2000
RETRY_CAP_S = 3600.0  # back-off never waits longer than this between tries
RETRY_AFTER_CAP_S = 86400.0  # nor does a receiver's Retry-After
ROTATION_OVERLAP = timedelta(hours=24)  # the previous secret still signs this long
# Statuses below 500 that mean "later", not "never".
RETRYABLE_4XX = frozenset({408, 429})

BAD_URL = "must be an http:// or https:// URL"
PRIVATE_URL = "must not point to a loopback, private or link-local address"
BAD_EVENTS = "must be a non-empty list of known event types"


@dataclass(frozen=True)
class WebhookSettings:
    """The delivery worker's knobs (HETANG_WEBHOOK_*)."""

    allow_private: bool = False  # targets on loopback and private networks (tests, labs)
    disable_after_s: float = 86400.0  # an endpoint failing this long is disabled
    poll_s: float = 1.0  # how often the worker looks for due deliveries
    retry_base_s: float = 10.0  # the first retry's wait; doubled each time up to RETRY_CAP_S
    timeout_s: float = 10.0  # one delivery attempt's whole time


@dataclass(frozen=True)
class EndpointFields:
    """An endpoint as asked for, already checked (the URL's address is checked by the service,
    which resolves it)."""

    url: str
    events: tuple[str, ...]
    org_code: str
    enabled: bool


def parse_endpoint(raw: Mapping[str, object]) -> tuple[EndpointFields | None, v.Problems]:
    """Check `url` (http/https), `events` (known dotted names), `org_code`, `enabled`."""
    problems = v.Problems()
    url = v.text(raw, "url", problems, max_len=MAX_URL_LENGTH)
    if url is not None and url_host(url) is None:
        problems["url"] = BAD_URL
    events = raw.get("events")
    if (
        not isinstance(events, list)
        or not events
        or not all(isinstance(e, str) and e in EVENT_TYPES for e in events)
    ):
        problems["events"] = BAD_EVENTS
    org_code = v.code(raw, "org_code", problems)
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        problems["enabled"] = "must be true or false"
    if problems or url is None or org_code is None or not isinstance(events, list):
        return None, problems
    ordered = tuple(e for e in EVENT_TYPES if e in events)
    return EndpointFields(url, ordered, org_code, bool(enabled)), problems


def url_host(url: str) -> str | None:
    """The host of an http(s) URL, or None when the URL is not one we deliver to."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        return None
    return parts.hostname


def is_public_address(address: str) -> bool:
    """False for loopback, private, link-local, multicast, reserved and unspecified addresses."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def covers(endpoint_path: str, org_path: str) -> bool:
    """An endpoint of an organization hears the events of its whole subtree."""
    return org_path.startswith(endpoint_path)


def wants(events: Sequence[str], event_type: str) -> bool:
    """Whether an endpoint subscribed to this event type."""
    return event_type in events


@dataclass(frozen=True)
class Outcome:
    """What one attempt's answer means for the delivery."""

    state: str  # "delivered", "pending" (try again) or "failed" (never again)
    wait_s: float = 0.0  # before the next try, when pending


def outcome(
    status: int | None, attempts: int, retry_after_s: float | None, base_s: float, jitter: float
) -> Outcome:
    """The answer of attempt number `attempts` (1 = the first): 2xx delivered; no answer
    (timeout, connection error), 5xx, 408 and 429 retried after min(cap, base·2ⁿ)·jitter, or
    the receiver's Retry-After when longer; any other status never retried."""
    if status is not None and 200 <= status < 300:
        return Outcome("delivered")
    if status is not None and status < 500 and status not in RETRYABLE_4XX:
        return Outcome("failed")
    wait = min(RETRY_CAP_S, base_s * 2 ** max(0, attempts - 1)) * jitter
    if retry_after_s is not None:
        wait = max(wait, min(retry_after_s, RETRY_AFTER_CAP_S))
    return Outcome("pending", wait)


def parse_retry_after(raw: str | None, now: datetime) -> float | None:
    """Retry-After as seconds from now: a number of seconds or an HTTP date; None if unreadable."""
    if not raw:
        return None
    raw = raw.strip()
    if raw.isdigit():
        return float(raw)
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def should_disable(failing_since: datetime | None, now: datetime, limit_s: float) -> bool:
    """An endpoint that has failed without a success for the limit is disabled."""
    return failing_since is not None and (now - failing_since).total_seconds() >= limit_s


def body(event_type: str, at: datetime, data: Mapping[str, object]) -> dict[str, object]:
    """The Standard Webhooks body: {"type", "timestamp", "data"}."""
    stamp = at.isoformat().replace("+00:00", "Z")
    return {"type": event_type, "timestamp": stamp, "data": dict(data)}


def stream_events(
    previous: str | None, readings: Sequence[tuple[datetime, str]]
) -> list[tuple[datetime, str]]:
    """A venue's stream going down (`venue.down`) and coming back (`venue.recovered`) in its
    samples, oldest first, after the state it was in before them (None: no sample yet, as up)."""
    found = []
    was_down = previous == "down"
    for at, state in sorted(readings):
        down = state == "down"
        if down != was_down:
            found.append((at, "venue.down" if down else "venue.recovered"))
        was_down = down
    return found
