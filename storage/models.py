"""The database schema: people and their roles, cases and their timeline, photos, the outbox."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSON}


class Person(Base):
    """Anyone who talks to the bot: resident, volunteer, chief, officer, supervisor, admin."""

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    username: Mapped[str | None] = mapped_column(String(100))
    language: Mapped[str] = mapped_column(String(8), default="zh")
    language_chosen: Mapped[bool] = mapped_column(Boolean, default=False)
    unreachable: Mapped[bool] = mapped_column(Boolean, default=False)
    banned: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    # Set by /forget: name and username are cleared and no longer stored (bot/domain/forget.py).
    forgotten_at: Mapped[datetime | None]

    roles: Mapped[list[Role]] = relationship(
        back_populates="person",
        cascade="all, delete-orphan",
        lazy="selectin",
        foreign_keys="Role.person_id",
    )


class Role(Base):
    """A role a person holds, within a scope: a lane, a street office or a department."""

    __tablename__ = "roles"
    __table_args__ = (UniqueConstraint("person_id", "role", "scope", name="uq_role_scope"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(20))
    scope: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    created_by: Mapped[int | None] = mapped_column(ForeignKey("people.id"))

    person: Mapped[Person] = relationship(back_populates="roles", foreign_keys=[person_id])


class Case(Base):
    """A reported street problem; its current state. The history lives in `CaseEvent`."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_state_street", "state", "street_id"),
        Index("ix_cases_reporter", "reporter_id", "created_at"),
        Index("ix_cases_category_created", "category_id", "created_at"),
        # KPIs and the digest (migration 0006): a street office's cases.
        Index("ix_cases_street_created", "street_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(20), default="chat")
    category_id: Mapped[str | None] = mapped_column(String(64))
    category_confidence: Mapped[float | None] = mapped_column(Float)
    lane_id: Mapped[str | None] = mapped_column(String(64))
    street_id: Mapped[str | None] = mapped_column(String(64))
    department_id: Mapped[str | None] = mapped_column(String(64))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    rating: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    response_due_at: Mapped[datetime | None]
    resolve_due_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]

    photos: Mapped[list[Photo]] = relationship(
        back_populates="case", order_by="Photo.id", lazy="selectin"
    )
    events: Mapped[list[CaseEvent]] = relationship(
        back_populates="case", order_by="CaseEvent.id", lazy="raise"
    )


class CaseEvent(Base):
    """One change of a case: append-only, the case's auditable timeline."""

    __tablename__ = "case_events"
    __table_args__ = (
        Index("ix_case_events_case", "case_id", "id"),
        # KPIs and the digest (migration 0006): events in a window of days, and one case's
        # events of a kind (its first accept, a reopen after a fix).
        Index("ix_case_events_created_action", "created_at", "action"),
        Index("ix_case_events_case_action", "case_id", "action", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    action: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    photo_id: Mapped[int | None] = mapped_column(ForeignKey("photos.id"))
    data: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]

    case: Mapped[Case] = relationship(back_populates="events")


class Photo(Base):
    """A stripped image stored under MEDIA_DIR by its content hash."""

    __tablename__ = "photos"
    __table_args__ = (Index("ix_photos_sha256", "sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10), default="before")
    file_id: Mapped[str | None] = mapped_column(String(256))
    file_unique_id: Mapped[str | None] = mapped_column(String(128))
    path: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    phash: Mapped[str | None] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]

    case: Mapped[Case] = relationship(back_populates="photos")


class CaseCounter(Base):
    """The last case number handed out on a (district-local) day."""

    __tablename__ = "case_counters"

    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class OutboxMessage(Base):
    """A Bot API call to make, written in the same transaction as the change that causes it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_pending", "status", "next_attempt_at"),
        Index("ix_outbox_chat", "chat_id", "id"),
        Index("ix_outbox_ref", "ref"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    method: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict[str, Any]]
    ref: Mapped[str | None] = mapped_column(String(64))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    claimed_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)


class CategoryLabel(Base):
    """A person's choice or correction of a case's category: training data for the classifier."""

    __tablename__ = "category_labels"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    category_id: Mapped[str] = mapped_column(String(64))
    previous_category_id: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(20))  # triage | correction
    labelled_by: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[datetime]


class Deadline(Base):
    """A time-driven step for a case (reminder, escalation, rating close), done exactly once.

    Sweeps claim due rows with a conditional UPDATE in the same transaction as their effects,
    so several bot processes can sweep side by side without doing any step twice.
    """

    __tablename__ = "deadlines"
    __table_args__ = (
        Index("ix_deadlines_due", "done_at", "due_at"),
        Index("ix_deadlines_case", "case_id", "kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(24))
    due_at: Mapped[datetime]
    done_at: Mapped[datetime | None]
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)


class FsmState(Base):
    """A conversation's state and draft (a half-finished report survives a restart)."""

    __tablename__ = "fsm_states"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    state: Mapped[str | None] = mapped_column(String(100))
    data: Mapped[dict[str, Any] | None]
    updated_at: Mapped[datetime]


class ProcessedUpdate(Base):
    """A Telegram update whose effects are committed: it is never applied twice."""

    __tablename__ = "processed_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    processed_at: Mapped[datetime]


class Open311Client(Base):
    """A system that may use the Open311 API with its own key (see bot/open311/keys.py).

    The key is `<key_id>.<secret>`: `key_id` finds the row, the secret is kept only as a
    salted scrypt hash. `can_write` False limits the client to reading; `exact_location` lets
    it read cases' points as stored instead of on the district's grid (migration 0007).
    """

    __tablename__ = "open311_clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    key_id: Mapped[str] = mapped_column(String(16), unique=True)
    key_salt: Mapped[str] = mapped_column(String(64))
    key_hash: Mapped[str] = mapped_column(String(200))
    can_write: Mapped[bool] = mapped_column(Boolean, default=True)
    exact_location: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Ban(Base):
    """A ban by an admin, and its lifting: who, when and why (`Person.banned` is the state)."""

    __tablename__ = "bans"
    __table_args__ = (Index("ix_bans_person", "person_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    banned_by: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    lifted_at: Mapped[datetime | None]
    lifted_by: Mapped[int | None] = mapped_column(ForeignKey("people.id"))


class DigestRun(Base):
    """A scheduled daily digest to one person: at most one per person and reported day.

    The process whose INSERT … ON CONFLICT DO NOTHING adds the row is the one that sends, in the
    same transaction as the digest's outbox messages (bot/jobs/digests.py); any other process's
    insert does nothing. `created_at` is the moment its figures are as of (recompute with it to
    check them); `sent_at` when its messages went to the outbox. On-demand digests add no row.
    """

    __tablename__ = "digest_runs"
    __table_args__ = (UniqueConstraint("person_id", "day", name="uq_digest_runs_person_day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)  # the local day reported on (yesterday)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class RoleChange(Base):
    """Every grant and removal of a role, append-only: whose, which, by whom, how and when.

    `changed_by` is the admin who did it in the chat; NULL from the shell, where `via` names the
    operating-system user (`cli:root`).
    """

    __tablename__ = "role_changes"
    __table_args__ = (Index("ix_role_changes_person", "person_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    change: Mapped[str] = mapped_column(String(10))  # granted | removed
    role: Mapped[str] = mapped_column(String(20))
    scope: Mapped[str | None] = mapped_column(String(64))
    changed_by: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    via: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime]
