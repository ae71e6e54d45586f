"""Paper sign-in sheets as CSV: rows become check-in events with source "import"."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import datetime, tzinfo
from types import MappingProxyType
from zoneinfo import ZoneInfo

from venue_agent.outbox import NewEvent
from venue_agent.schedule import DEFAULT_TIMEZONE

# A time written without an offset is in the zone the server shows times in (the schedule's);
# this one when the caller knows none.
SHEET_TZ = ZoneInfo(DEFAULT_TIMEZONE)
# Re-importing the same sheet must not count anyone twice: a row's event_id is derived from it.
SHEET_NAMESPACE = uuid.UUID("5d4f2a7e-3b1c-4e7a-9a55-2f0c6b8d1e90")
HEADER_ALIASES = MappingProxyType(
    {
        "member_no": "member_no",
        "党员编号": "member_no",
        "编号": "member_no",
        "card_code": "card_code",
        "卡号": "card_code",
        "kind": "kind",
        "类型": "kind",
        "签到类型": "kind",
        "at": "at",
        "时间": "at",
        "签到时间": "at",
    }
)
KIND_ALIASES = MappingProxyType({"": "in", "in": "in", "out": "out", "签到": "in", "签退": "out"})
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M")


@dataclass(frozen=True)
class SheetProblem:
    """A bad row (line 1 is the header)."""

    line: int
    message: str


class SheetRejected(ValueError):
    """The sheet has bad rows; nothing of it was queued."""

    def __init__(self, problems: list[SheetProblem]) -> None:
        super().__init__(f"{len(problems)} bad rows")
        self.problems = problems


@dataclass(frozen=True)
class SheetRow:
    """One checked row of a sheet."""

    line: int
    code_field: str  # member_no | card_code
    member_code: str
    kind: str
    at: datetime


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else GB18030 as Excel in China saves it."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030", errors="replace")


def parse_time(raw: str, zone: tzinfo = SHEET_TZ) -> datetime | None:
    """ISO 8601 with an offset, or a wall-clock time in `zone`."""
    text = raw.strip()
    value: datetime | None = None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        for pattern in TIME_FORMATS:
            try:
                value = datetime.strptime(text, pattern)
                break
            except ValueError:
                continue
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def parse_sheet(data: bytes, zone: tzinfo = SHEET_TZ) -> list[SheetRow]:
    """Every row checked, times without an offset read in `zone`; raises SheetRejected listing
    all bad rows."""
    reader = csv.reader(io.StringIO(decode(data)))
    header = next(reader, None)
    if header is None:
        raise SheetRejected([SheetProblem(1, "文件是空的")])
    columns = [HEADER_ALIASES.get(name.strip().lower(), name.strip()) for name in header]
    if "member_no" not in columns and "card_code" not in columns:
        raise SheetRejected([SheetProblem(1, "缺少 member_no（党员编号）或 card_code（卡号）列")])
    if "at" not in columns:
        raise SheetRejected([SheetProblem(1, "缺少 at（签到时间）列")])
    rows: list[SheetRow] = []
    problems: list[SheetProblem] = []
    for index, values in enumerate(reader, start=2):
        if not any(value.strip() for value in values):
            continue
        raw = {column: value.strip() for column, value in zip(columns, values, strict=False)}
        row = _row(index, raw, problems, zone)
        if row is not None:
            rows.append(row)
    if problems:
        raise SheetRejected(problems)
    return rows


def _row(
    line: int, raw: dict[str, str], problems: list[SheetProblem], zone: tzinfo
) -> SheetRow | None:
    member_no, card_code = raw.get("member_no", ""), raw.get("card_code", "")
    code_field, member_code = ("member_no", member_no) if member_no else ("card_code", card_code)
    kind = KIND_ALIASES.get(raw.get("kind", "").lower())
    at = parse_time(raw.get("at", ""), zone)
    found = []
    if not member_code:
        found.append("没有党员编号或卡号")
    elif len(member_code) > 128:
        found.append("编号过长")
    if kind is None:
        found.append(f"类型应为 in 或 out，而不是 {raw.get('kind')!r}")
    if at is None:
        found.append(f"时间无法识别：{raw.get('at', '')!r}（例：2024-05-01 09:05）")
    if found or kind is None or at is None:
        problems.append(SheetProblem(line, "；".join(found)))
        return None
    return SheetRow(line, code_field, member_code, kind, at)


def sheet_events(session_public_id: str, rows: list[SheetRow], created_at: str) -> list[NewEvent]:
    """The rows as outbox events, each with an event_id derived from its content."""
    events = []
    for row in rows:
        at = row.at.isoformat(timespec="seconds")
        event_id = str(
            uuid.uuid5(
                SHEET_NAMESPACE,
                f"{session_public_id}|{row.code_field}|{row.member_code}|{row.kind}|{at}",
            )
        )
        payload = {
            "event_id": event_id,
            "session_id": session_public_id,
            row.code_field: row.member_code,
            "kind": row.kind,
            "at": at,
            "source": "import",
        }
        events.append(NewEvent(event_id, "checkin", session_public_id, payload, created_at))
    return events
