"""The tables: SQLAlchemy 2 typed models for every domain word of DESIGN.md."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, Hours, UTCDateTime
from server.domain.vocabulary import (
    ATTENDANCE_STATUSES,
    CHECKIN_KINDS,
    CHECKIN_SOURCES,
    MEMBER_CATEGORIES,
    ORG_LEVELS,
    PLAN_STATES,
    ROLES,
    SESSION_STATES,
    STREAM_STATES,
    VENUE_ROLES,
)


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


class Organization(Base):
    """A node of the organization tree: city › county › committee › branch."""

    __tablename__ = "organizations"
    __table_args__ = (CheckConstraint(_in("level", ORG_LEVELS), name="level"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    # Materialized path of ids, "/1/4/17/": a subtree is every path with this prefix.
    path: Mapped[str] = mapped_column(String(512), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Member(Base):
    """A trainee (党员); the category decides the yearly hour requirement."""

    __tablename__ = "members"
    __table_args__ = (
        CheckConstraint(_in("category", MEMBER_CATEGORIES), name="category"),
        Index("ix_members_org_id_member_no", "org_id", "member_no"),
        # Members per organization and category, read from the index alone (monthly reports).
        Index("ix_members_org_id_category", "org_id", "category"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_no: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="RESTRICT"))
    category: Mapped[str] = mapped_column(String(16))
    card_code: Mapped[str | None] = mapped_column(String(128), unique=True)
    # Self check-in's second factor: the ID number's last four digits, salted and hashed
    # (domain/self_checkin.py), never in clear; None: this member cannot check in by phone.
    id_last4_hash: Mapped[str | None] = mapped_column(String(160))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class User(Base):
    """A person who signs in; scoped to one organization subtree (or the whole tree)."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str | None] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id", ondelete="RESTRICT"))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApiToken(Base):
    """A personal API token (hu_…); only its digest is kept. It works until it expires or is
    revoked (domain/api_tokens)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(100), server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LoginSession(Base):
    """A signed-in browser; the cookie holds a random token, this row its digest."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class Venue(Base):
    """A room with an agent; the agent authenticates with the venue token (hv_…)."""

    __tablename__ = "venues"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    token_hint: Mapped[str] = mapped_column(String(16))
    token_rotated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    agent_last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    agent_state: Mapped[str | None] = mapped_column(String(16))
    agent_version: Mapped[str | None] = mapped_column(String(64))
    agent_hostname: Mapped[str | None] = mapped_column(String(255))
    agent_queue_depth: Mapped[int | None] = mapped_column(Integer)
    agent_session_id: Mapped[str | None] = mapped_column(String(32))
    # The ICE candidate pair its picture comes over (vocabulary.ICE_PATHS), None when not receiving.
    agent_ice_path: Mapped[str | None] = mapped_column(String(16))
    # Networks (comma-separated CIDRs) a phone must come from to check in here by itself;
    # None: any network (phones use their own 4G/5G).
    selfcheckin_networks: Mapped[str | None] = mapped_column(String(500))


class TrainingSession(Base):
    """One run (期) of a class at a main venue with branch venues and a roster."""

    __tablename__ = "training_sessions"
    __table_args__ = (
        CheckConstraint(_in("state", SESSION_STATES), name="state"),
        CheckConstraint("ends_at > starts_at", name="window"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    topic_code: Mapped[str] = mapped_column(String(64), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    credit_hours: Mapped[Decimal] = mapped_column(Hours())
    state: Mapped[str] = mapped_column(String(16), default="scheduled")
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    main_venue_id: Mapped[int] = mapped_column(ForeignKey("venues.id", ondelete="RESTRICT"))
    # The class of a filed plan this session is a run of (None: outside any plan).
    plan_class_id: Mapped[int | None] = mapped_column(
        ForeignKey("plan_classes.id", ondelete="SET NULL"), index=True
    )
    # A make-up session (补学) plays the recording of this session (None: a live lesson).
    replay_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("training_sessions.id", ondelete="SET NULL"), index=True
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finalized_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SessionVenue(Base):
    """A venue taking part in a session, as its main venue or a branch."""

    __tablename__ = "session_venues"
    __table_args__ = (
        UniqueConstraint("session_id", "venue_id"),
        CheckConstraint(_in("role", VENUE_ROLES), name="role"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("training_sessions.id", ondelete="CASCADE"))
    venue_id: Mapped[int] = mapped_column(ForeignKey("venues.id", ondelete="RESTRICT"), index=True)
    role: Mapped[str] = mapped_column(String(8))
    # Written by finalization (ATTENDANCE.md §2): None until the session is finalized.
    expected: Mapped[int | None] = mapped_column(Integer)
    checked_in: Mapped[int | None] = mapped_column(Integer)
    up_seconds: Mapped[int | None] = mapped_column(Integer)


class RosterEntry(Base):
    """An expected member of a session and the venue they are assigned to."""

    __tablename__ = "roster_entries"
    __table_args__ = (UniqueConstraint("session_id", "member_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("training_sessions.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="RESTRICT"), index=True
    )
    venue_id: Mapped[int] = mapped_column(ForeignKey("venues.id", ondelete="RESTRICT"))


class CheckIn(Base):
    """One accepted scan or entry at a venue, unique by the agent's event UUID."""

    __tablename__ = "checkins"
    __table_args__ = (
        CheckConstraint(_in("kind", CHECKIN_KINDS), name="kind"),
        CheckConstraint(_in("source", CHECKIN_SOURCES), name="source"),
        Index("ix_checkins_session_id_member_id", "session_id", "member_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("training_sessions.id", ondelete="CASCADE"))
    venue_id: Mapped[int] = mapped_column(ForeignKey("venues.id", ondelete="RESTRICT"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(4))
    source: Mapped[str] = mapped_column(String(8))
    at_raw: Mapped[datetime] = mapped_column(UTCDateTime())
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    after_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    # A self check-in's phone (digest of its cookie) and what its reviewer should look at
    # (comma-separated, sorted: shared_phone, stream_down); None for every other source.
    phone_digest: Mapped[str | None] = mapped_column(String(64), index=True)
    review_flags: Mapped[str | None] = mapped_column(String(64))


class QuarantinedCheckIn(Base):
    """A rejected check-in event, kept with its reason for reviewers."""

    __tablename__ = "quarantined_checkins"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str | None] = mapped_column(String(64), index=True)
    venue_id: Mapped[int] = mapped_column(ForeignKey("venues.id", ondelete="RESTRICT"), index=True)
    session_ref: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BroadcastSpan(Base):
    """A time a session's broadcast was on air: from 开始直播 to 结束直播 (a republish within it
    is the same span); ended_at is None while it is on."""

    __tablename__ = "broadcast_spans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("training_sessions.id", ondelete="CASCADE"), index=True
    )
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Recording(Base):
    """A broadcast's recording: one WebM file under the recordings directory, from 开始直播 to
    结束直播 across every publisher (their time away listed as gaps, [start_s, end_s] pairs);
    the figures are filled in when the broadcast ends. `problem` says why it stopped early
    ("disk_full", "write_failed"); deleted_at marks a file removed (by hand or by retention)."""

    __tablename__ = "recordings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("training_sessions.id", ondelete="CASCADE"), index=True
    )
    file_name: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    gaps: Mapped[list[list[float]]] = mapped_column(JSON)
    problem: Mapped[str | None] = mapped_column(String(32))
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StreamSample(Base):
    """An agent's periodic stream-health reading for a session."""

    __tablename__ = "stream_samples"
    __table_args__ = (
        UniqueConstraint("session_id", "venue_id", "at"),
        CheckConstraint(_in("state", STREAM_STATES), name="state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("training_sessions.id", ondelete="CASCADE"))
    venue_id: Mapped[int] = mapped_column(ForeignKey("venues.id", ondelete="RESTRICT"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(8))
    bitrate_kbps: Mapped[float | None]
    fps: Mapped[float | None]
    loss_pct: Mapped[float | None]
    jitter_ms: Mapped[float | None]
    freezes: Mapped[int | None]
    frames_decoded: Mapped[int | None]
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Attendance(Base):
    """The computed result of one member in one session (ATTENDANCE.md)."""

    __tablename__ = "attendance"
    __table_args__ = (
        UniqueConstraint("session_id", "member_id"),
        CheckConstraint(_in("status", ATTENDANCE_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("training_sessions.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="RESTRICT"), index=True
    )
    assigned_venue_id: Mapped[int | None] = mapped_column(
        ForeignKey("venues.id", ondelete="RESTRICT")
    )
    venues: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str | None] = mapped_column(String(16))
    presence_seconds: Mapped[int] = mapped_column(Integer)
    verified_seconds: Mapped[int] = mapped_column(Integer)
    credit_hours: Mapped[Decimal] = mapped_column(Hours())
    flags: Mapped[list[str]] = mapped_column(JSON)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TrainingRecord(Base):
    """Credited hours a member earned from a session: the archive entry (培训档案)."""

    __tablename__ = "training_records"
    __table_args__ = (
        UniqueConstraint("member_id", "session_id"),
        Index("ix_training_records_member_id_year", "member_id", "year"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="RESTRICT"))
    session_id: Mapped[int] = mapped_column(
        ForeignKey("training_sessions.id", ondelete="CASCADE"), index=True
    )
    venue_id: Mapped[int | None] = mapped_column(ForeignKey("venues.id", ondelete="RESTRICT"))
    topic_code: Mapped[str] = mapped_column(String(64))
    year: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    credit_hours: Mapped[Decimal] = mapped_column(Hours())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AcceptedWalkIn(Base):
    """A walk-in from outside the session's organizations whose credit a reviewer whose scope
    holds the member accepted (finalization credits them from then on)."""

    __tablename__ = "accepted_walk_ins"
    __table_args__ = (UniqueConstraint("session_id", "member_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("training_sessions.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="RESTRICT"), index=True
    )
    accepted_by: Mapped[str] = mapped_column(String(100))
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditEntry(Base):
    """Append-only, hash-chained log entry; `id` is the chain position (1, 2, 3, …)."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64))
    # Canonical JSON text: the hash covers exactly what is stored.
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    # How `hash` was made (domain/audit_chain: 1 unkeyed, 2 keyed); entries from before keying
    # are 1.
    chain_version: Mapped[int] = mapped_column(Integer, server_default="1")


class ReportSnapshot(Base):
    """A monthly report (月报告) as generated at one moment: never rewritten, a regenerated one
    is a new version beside it."""

    __tablename__ = "report_snapshots"
    __table_args__ = (UniqueConstraint("org_id", "month", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="RESTRICT"))
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    version: Mapped[int] = mapped_column(Integer)
    generated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    generated_by: Mapped[str] = mapped_column(String(100))
    # The report's JSON text exactly as it was answered.
    figures: Mapped[str] = mapped_column(Text)
    # The audit trail's head when the report was kept (entries, last hash): a copy of the
    # anchor that `hetang audit verify` checks; none on reports kept before anchoring.
    audit_count: Mapped[int | None] = mapped_column(Integer)
    audit_head: Mapped[str | None] = mapped_column(String(64))


class Plan(Base):
    """An organization's training plan for a year (培训计划备案), reviewed by the level above:
    draft → filed → accepted | returned (with a comment; a returned plan is edited and refiled)."""

    __tablename__ = "plans"
    __table_args__ = (
        UniqueConstraint("org_id", "year"),
        CheckConstraint(_in("state", PLAN_STATES), name="state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="RESTRICT"))
    year: Mapped[int] = mapped_column(Integer, index=True)
    title: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), default="draft")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    filed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    filed_by: Mapped[str | None] = mapped_column(String(100))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reviewed_by: Mapped[str | None] = mapped_column(String(100))
    review_comment: Mapped[str | None] = mapped_column(Text)


class PlanClass(Base):
    """A class (班次) of a plan: its runs (期) and trainees, for whom, on what, in which months."""

    __tablename__ = "plan_classes"
    __table_args__ = (
        UniqueConstraint("plan_id", "code"),
        CheckConstraint("runs_planned >= 0", name="runs_planned"),
        CheckConstraint("trainees_planned >= 0", name="trainees_planned"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(64))  # unique within the plan, e.g. "C01"
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    runs_planned: Mapped[int] = mapped_column(Integer)
    trainees_planned: Mapped[int] = mapped_column(Integer)
    hours_per_run: Mapped[Decimal] = mapped_column(Hours())
    topics: Mapped[list[str]] = mapped_column(JSON)  # topic codes
    months: Mapped[list[int]] = mapped_column(JSON)  # 1..12
    target_categories: Mapped[list[str]] = mapped_column(JSON)  # member categories; [] = all
    target_org_codes: Mapped[list[str]] = mapped_column(JSON)  # subtrees; [] = the plan's own
    # Opens with the political-theory first lesson (政治理论首课).
    first_lesson: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WorkflowStep(Base):
    """One step of the standard ten-step class workflow: the city's list, which an admin may
    rename and reorder. `key` is fixed (templates hang on it); `name` None = the default name."""

    __tablename__ = "workflow_steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(32), unique=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str | None] = mapped_column(String(100))
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_by: Mapped[str | None] = mapped_column(String(100))


class ClassStep(Base):
    """Whether a class has done a workflow step, and who marked it when."""

    __tablename__ = "class_steps"
    __table_args__ = (UniqueConstraint("class_id", "step_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("plan_classes.id", ondelete="CASCADE"))
    step_key: Mapped[str] = mapped_column(String(32))
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    done_by: Mapped[str | None] = mapped_column(String(100))
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(Text)


class WebhookEndpoint(Base):
    """A receiver of signed event callbacks for an organization's subtree. Its signing secret is
    kept sealed (domain/webhook_secrets); after a rotation the previous one signs too until
    `previous_until`."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    secret: Mapped[str] = mapped_column(Text)
    secret_hint: Mapped[str] = mapped_column(String(16))
    previous_secret: Mapped[str | None] = mapped_column(Text)
    previous_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Since when every attempt failed (None after a success); disabled past the limit.
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    disabled_reason: Mapped[str | None] = mapped_column(String(32))


class WebhookDelivery(Base):
    """One event for one endpoint: the durable outbox row, written in the transaction of the
    change, and its delivery log. Rows with the same `order_key` (a session) go in id order."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "msg_id"),
        CheckConstraint(_in("status", ("pending", "delivered", "failed")), name="status"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_order", "endpoint_id", "order_key", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    msg_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[str] = mapped_column(Text)  # the body exactly as signed and sent
    order_key: Mapped[str | None] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(300))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
