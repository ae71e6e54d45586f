"""What venue agents send (PROTOCOL.md): hello, heartbeat, and the two batch kinds, check-ins and
stream samples, parsed and put on our clock by the one clock-correction rule. Pure: no I/O.

Names along the scan path: `member_no` is a member's public number, `card_code` a card's code,
`member_code` whichever of the two was scanned; `session_public_id` is the session id agents
send (the database key is `session_id`); `at` is a time as the agent sent it (truncated to the
whole second), `at_corrected` the same moment on our clock.

A stream-stats batch is all or nothing, so a sample is malformed only when it is not a sample: a
figure that is not a non-negative finite number (or a counter not a 32-bit whole number). A figure
that is a number but past what a lesson can show (SAMPLE_BOUNDS, the agent's own bounds) is
clamped to its bound, not refused: one absurd figure, say a jitter of 820 398 ms from an RTP
timestamp wrapping, must not lose the samples sent with it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType

from server.domain import validation as v
from server.domain.times import parse_instant, whole_seconds
from server.domain.vocabulary import (
    AGENT_CHECKIN_SOURCES,
    AGENT_STATES,
    CHECKIN_KINDS,
    ICE_PATHS,
    STREAM_STATES,
)

MAX_CHECKINS = 500  # events in one check-ins batch
MAX_SAMPLES = 2000  # samples in one stream-stats batch
MAX_COUNTER = 2**31 - 1  # counters are 32-bit columns in PostgreSQL
MAX_SESSION_PUBLIC_ID = 32
MAX_MEMBER_CODE = 128
CLOCK_TOLERANCE = timedelta(seconds=2)
MAX_CLOCK_OFFSET_MS = 86_400_000  # clock_offset_ms: an agent a whole day off is broken, not skewed
UUID_PATTERN = re.compile(
    r"\A[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z"
)
SAMPLE_FIGURES = ("bitrate_kbps", "fps", "loss_pct", "jitter_ms", "freezes", "frames_decoded")
SAMPLE_COUNTERS = ("freezes", "frames_decoded")
# The most each figure can plausibly be, as venue_agent/health.py bounds them; beyond: clamped.
SAMPLE_BOUNDS = MappingProxyType(
    {"bitrate_kbps": 100_000.0, "fps": 120.0, "loss_pct": 100.0, "jitter_ms": 10_000.0}
)


# --- Batches refused whole ------------------------------------------------------------------


class BatchRefused(Exception):
    """A batch that cannot be taken at all; nothing of it is stored."""


class NotAList(BatchRefused):
    """The body has no list under the batch's name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} must be a list")
        self.name = name


class TooManyItems(BatchRefused):
    """The batch holds more than its kind allows."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} items")
        self.limit = limit


class BadSentAt(BatchRefused):
    """sent_at is missing or not a time with an offset."""


class BadClockOffset(BatchRefused):
    """clock_offset_ms is present but not a whole number of milliseconds within a day."""


class NoSession(BatchRefused):
    """A stream-stats batch names no session."""


class MalformedSamples(BatchRefused):
    """Some samples are malformed (their indexes, in order)."""

    def __init__(self, indexes: tuple[int, ...]) -> None:
        super().__init__(f"malformed samples {indexes}")
        self.indexes = indexes


# --- The clock-correction rule --------------------------------------------------------------


@dataclass(frozen=True)
class AgentClock:
    """How far an agent's clock is behind ours, or zero when that is within CLOCK_TOLERANCE.

    The agent's own round-trip estimate (`clock_offset_ms`) is preferred: it does not grow with
    the time a batch spends in transit. Older agents send none; theirs is `received_at −
    sent_at`, where a slow link reads as a wrong clock once it passes the tolerance."""

    offset: timedelta

    @classmethod
    def of(
        cls, sent_at: datetime, received_at: datetime, measured: timedelta | None = None
    ) -> AgentClock:
        """The clock of the agent that sent a batch at sent_at, which we received at
        received_at, and which measured its offset from ours as `measured` (if it did)."""
        offset = received_at - sent_at if measured is None else measured
        return cls(offset if abs(offset) > CLOCK_TOLERANCE else timedelta(0))

    def correct(self, at: datetime) -> datetime | None:
        """A time the agent sent (already whole seconds), on our clock; None past the
        calendar's ends (such a time is outside every session's window)."""
        try:
            return whole_seconds(at + self.offset)
        except OverflowError:
            return None


def _sent_at(body: Mapping[str, object]) -> datetime:
    sent_at = parse_instant(body.get("sent_at"))
    if sent_at is None:
        raise BadSentAt("sent_at must be an ISO 8601 time with an offset")
    return sent_at


def _clock_offset(body: Mapping[str, object]) -> timedelta | None:
    """The agent's measured offset (server − agent), if it sent one."""
    if "clock_offset_ms" not in body:
        return None
    value = body["clock_offset_ms"]
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > MAX_CLOCK_OFFSET_MS:
        raise BadClockOffset("clock_offset_ms must be a whole number of milliseconds within a day")
    return timedelta(milliseconds=value)


def _clock(body: Mapping[str, object], received_at: datetime) -> AgentClock:
    """The batch's clock: sent_at is required even when the agent measured its offset."""
    sent_at = _sent_at(body)
    return AgentClock.of(sent_at, received_at, _clock_offset(body))


def _items(body: Mapping[str, object], name: str, limit: int) -> list[object]:
    items = body.get(name)
    if not isinstance(items, list):
        raise NotAList(name)
    if len(items) > limit:
        raise TooManyItems(limit)
    return items


def _session_public_id(value: object) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= MAX_SESSION_PUBLIC_ID:
        return value
    return None


# --- Check-ins ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckinEvent:
    """One well-formed check-in event: as the agent sent it, and its time on our clock."""

    event_id: str
    session_public_id: str
    member_no: str | None
    card_code: str | None  # exactly one of member_no and card_code is set
    kind: str
    source: str
    at: datetime  # as sent, truncated to the whole second
    at_corrected: datetime | None  # on our clock; None past the calendar's ends

    @property
    def member_code(self) -> str:
        """What was scanned or typed: the member_no or the card_code."""
        return self.member_no or self.card_code or ""


@dataclass(frozen=True)
class SentCheckin:
    """One item of a check-ins batch: as sent (kept for reviewers if it is rejected), its
    event_id when it has a well-formed one, and the event when the whole item is well formed."""

    payload: object
    event_id: str | None
    event: CheckinEvent | None


@dataclass(frozen=True)
class CheckinBatch:
    """A `POST checkins` body, every item parsed, in order."""

    received_at: datetime
    items: tuple[SentCheckin, ...]


def parse_checkin_batch(body: Mapping[str, object], received_at: datetime) -> CheckinBatch:
    """Every event of a batch parsed and corrected; raises BatchRefused when the batch itself
    is wrong (a malformed event only makes that event `invalid`)."""
    items = _items(body, "events", MAX_CHECKINS)
    clock = _clock(body, received_at)
    return CheckinBatch(
        received_at,
        tuple(SentCheckin(raw, event_id_of(raw), parse_checkin(raw, clock)) for raw in items),
    )


def event_id_of(raw: object) -> str | None:
    """The event's UUID in canonical form, if it has one."""
    if not isinstance(raw, Mapping):
        return None
    value = raw.get("event_id")
    if not isinstance(value, str) or not UUID_PATTERN.match(value):
        return None
    return value.lower()


def parse_checkin(raw: object, clock: AgentClock) -> CheckinEvent | None:
    """A well-formed event, or None (it is rejected as `invalid`)."""
    event_id = event_id_of(raw)
    if event_id is None or not isinstance(raw, Mapping):
        return None
    session_public_id = _session_public_id(raw.get("session_id"))
    kind, source = raw.get("kind"), raw.get("source")
    member_no, card_code = raw.get("member_no"), raw.get("card_code")
    sent = parse_instant(raw.get("at"))
    if session_public_id is None or sent is None:
        return None
    if kind not in CHECKIN_KINDS or source not in AGENT_CHECKIN_SOURCES:
        return None
    if not _optional_member_code(member_no) or not _optional_member_code(card_code):
        return None
    if (member_no is None) == (card_code is None):
        return None  # exactly one of the two identifies the member
    at = whole_seconds(sent)
    return CheckinEvent(
        event_id,
        session_public_id,
        member_no if isinstance(member_no, str) else None,
        card_code if isinstance(card_code, str) else None,
        str(kind),
        str(source),
        at,
        clock.correct(at),
    )


def _optional_member_code(value: object) -> bool:
    return value is None or (isinstance(value, str) and 0 < len(value) <= MAX_MEMBER_CODE)


# --- Stream samples -------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamReading:
    """One stream-health sample as the agent measured it, at its time on our clock."""

    at_corrected: datetime
    state: str
    bitrate_kbps: float | None
    fps: float | None
    loss_pct: float | None
    jitter_ms: float | None
    freezes: int | None
    frames_decoded: int | None


@dataclass(frozen=True)
class SampleBatch:
    """A `POST stream-stats` body: one session's samples, every one well formed."""

    session_public_id: str
    readings: tuple[StreamReading, ...]


def parse_sample_batch(body: Mapping[str, object], received_at: datetime) -> SampleBatch:
    """The samples of a batch parsed and corrected; raises BatchRefused when the batch or any
    sample is malformed (then nothing of it is stored)."""
    items = _items(body, "samples", MAX_SAMPLES)
    clock = _clock(body, received_at)
    session_public_id = _session_public_id(body.get("session_id"))
    if session_public_id is None:
        raise NoSession("session_id is required")
    readings = [parse_sample(raw, clock) for raw in items]
    bad = tuple(index for index, reading in enumerate(readings) if reading is None)
    if bad:
        raise MalformedSamples(bad)
    return SampleBatch(session_public_id, tuple(r for r in readings if r is not None))


def parse_sample(raw: object, clock: AgentClock) -> StreamReading | None:
    """A well-formed sample on our clock, or None."""
    if not isinstance(raw, Mapping):
        return None
    sent = parse_instant(raw.get("at"))
    state = raw.get("state")
    if sent is None or state not in STREAM_STATES:
        return None
    figures: dict[str, float | None] = {}
    for name in SAMPLE_FIGURES:
        value = raw.get(name)
        if value is None:
            figures[name] = None
            continue
        number = _figure(value)
        if number is None:
            return None
        figures[name] = min(number, SAMPLE_BOUNDS.get(name, number))
    counters = [figures[name] for name in SAMPLE_COUNTERS]
    if any(c is not None and (not c.is_integer() or c > MAX_COUNTER) for c in counters):
        return None
    at_corrected = clock.correct(whole_seconds(sent))
    if at_corrected is None:
        return None
    freezes, frames_decoded = (None if value is None else int(value) for value in counters)
    return StreamReading(
        at_corrected,
        str(state),
        figures["bitrate_kbps"],
        figures["fps"],
        figures["loss_pct"],
        figures["jitter_ms"],
        freezes,
        frames_decoded,
    )


def _figure(value: object) -> float | None:
    """A non-negative finite number as a float (a whole number beyond any float: infinity,
    past every bound), or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None  # NaN and Infinity are not JSON, but Python's encoder writes them
    if value < 0:
        return None
    try:
        return float(value)
    except OverflowError:
        return math.inf


# --- Hello and heartbeat --------------------------------------------------------------------


@dataclass(frozen=True)
class Hello:
    """What an agent says when it (re)connects."""

    agent_version: str
    hostname: str


def parse_hello(raw: Mapping[str, object]) -> tuple[Hello | None, v.Problems]:
    """A `POST hello` body, or the problems of its fields."""
    problems = v.Problems()
    version = v.text(raw, "agent_version", problems, max_len=64)
    hostname = v.text(raw, "hostname", problems, max_len=255)
    if version is None or hostname is None:
        return None, problems
    return Hello(version, hostname), problems


@dataclass(frozen=True)
class Heartbeat:
    """What an agent reports every heartbeat_s."""

    state: str
    session_public_id: str | None
    queue_depth: int
    agent_version: str
    ice_path: str | None = None  # ICE_PATHS; None when not receiving (or an older agent)


def parse_heartbeat(raw: Mapping[str, object]) -> tuple[Heartbeat | None, v.Problems]:
    """A `POST heartbeat` body, or the problems of its fields."""
    problems = v.Problems()
    state = v.choice(raw, "state", AGENT_STATES, problems)
    version = v.text(raw, "agent_version", problems, max_len=64)
    session_public_id = raw.get("session_id")
    if session_public_id is not None and (
        not isinstance(session_public_id, str) or len(session_public_id) > MAX_SESSION_PUBLIC_ID
    ):
        problems["session_id"] = "must be a session id or null"
    depth = raw.get("queue_depth")
    if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= MAX_COUNTER:
        problems["queue_depth"] = "must be a whole number of at least 0"
    path = (
        v.choice(raw, "ice_path", ICE_PATHS, problems) if raw.get("ice_path") is not None else None
    )
    if problems or state is None or version is None or not isinstance(depth, int):
        return None, problems
    return Heartbeat(
        state,
        session_public_id if isinstance(session_public_id, str) else None,
        depth,
        version,
        path,
    ), problems
