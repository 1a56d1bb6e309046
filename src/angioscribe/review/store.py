"""The review store: users, sessions, draft versions, scores, signatures, the audit trail, and
the failed log-ins and locks that throttle password guessing (policy in `throttle.py`).

One SQL database (SQLAlchemy Core): `review.sqlite` beside a results folder's analysis.json, or
the service's own database, where the `review_*` tables sit beside the job queue's. Every
change and its audit entry (who, when, what before, what after) are written in the same
transaction, so the trail can never miss a change that happened. A signed version is never
altered: an edit after signing is a new version, which needs its own signature.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from angioscribe.errors import InputError

# The queue's engine: SQLite with WAL, a busy timeout and BEGIN IMMEDIATE (no lost updates).
from angioscribe.service.queue import as_utc, database_engine

ROLES = ("reader", "admin")
SESSION_IDLE = timedelta(hours=8)  # a session unused this long is over (log in again)

metadata = MetaData()
users_table = Table(
    "review_users", metadata,
    Column("name", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("salt", LargeBinary(32), nullable=False),
    Column("password_hash", LargeBinary(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
sessions_table = Table(
    "review_sessions", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user", String(64), nullable=False, index=True),
    Column("csrf", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
)
versions_table = Table(
    "review_versions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("study", String(128), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("texts", JSON, nullable=False),
    Column("findings", JSON, nullable=False),
    Column("author", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("signed_by", String(64)),
    Column("signed_at", DateTime(timezone=True)),
    UniqueConstraint("study", "version"),
)
scores_table = Table(
    "review_scores", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item", String(128), nullable=False, index=True),
    Column("user", String(64), nullable=False),
    Column("overall", Float, nullable=False),
    Column("errors", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
audit_table = Table(
    "review_audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("user", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("item", String(128), nullable=False, index=True),
    Column("before", JSON),
    Column("after", JSON),
    Column("detail", Text),
)

# Log-in throttling: one row per failed log-in and key ("user:NAME", "address:HOST"), kept only
# while it may still count; a key's lock ends at `until`. The audit trail is the record.
login_failures_table = Table(
    "review_login_failures", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(128), nullable=False, index=True),
    Column("at", DateTime(timezone=True), nullable=False),
)
login_locks_table = Table(
    "review_login_locks", metadata,
    Column("key", String(128), primary_key=True),
    Column("until", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class User:
    name: str
    role: str
    salt: bytes
    password_hash: bytes

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class Session:
    """A logged-in browser: its user and role, and the CSRF token its forms must carry."""

    user: str
    role: str
    csrf: str


@dataclass(frozen=True)
class Version:
    """One saved text of a study's drafts (`texts`: language -> text) with what the parser
    read in each (`findings`: language -> `ParsedReport.to_dict()`)."""

    study: str
    version: int
    texts: dict[str, str]
    findings: dict[str, Any]
    author: str
    created_at: datetime
    signed_by: str | None
    signed_at: datetime | None

    @property
    def signed(self) -> bool:
        return self.signed_by is not None


@dataclass(frozen=True)
class Score:
    """One reader's score of a study or blinded draft: overall 0-10 and the five error counts."""

    item: str
    user: str
    overall: float
    errors: dict[str, int]
    created_at: datetime


@dataclass(frozen=True)
class LoginLock:
    """A user name or address ("user:NAME", "address:HOST") refused log-ins until `until`."""

    key: str
    until: datetime


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    user: str
    action: str
    item: str
    before: Any
    after: Any
    detail: str | None


def token_hash(token: str) -> str:
    """Sessions are kept by the hash of their token: a copy of the database opens no session."""
    return hashlib.sha256(token.encode()).hexdigest()


class ReviewStore:
    """The review tables at `url` ("sqlite:///path/review.sqlite" or the service's database
    URL), created when missing. `clock` gives the current time (tests move it)."""

    def __init__(self, url: str, clock: Any = None) -> None:
        self.clock = clock or (lambda: datetime.now(UTC))
        self.engine = database_engine(url)
        metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # --- users and sessions ------------------------------------------------------------------

    def put_user(self, name: str, role: str, salt: bytes, password_hash: bytes,
                 by: str) -> None:
        """Add a user, or set an existing user's role and password (audited, no password)."""
        if role not in ROLES:
            raise InputError(name, f"role {role!r} is not one of {', '.join(ROLES)}")
        with self.engine.begin() as conn:
            before = self._user(conn, name)
            values = {"role": role, "salt": salt, "password_hash": password_hash}
            if before is None:
                conn.execute(users_table.insert().values(name=name, created_at=self.clock(),
                                                         **values))
            else:
                conn.execute(users_table.update().where(users_table.c.name == name)
                             .values(**values))
                conn.execute(sessions_table.delete().where(sessions_table.c.user == name))
            self._audit(conn, by, "user.add" if before is None else "user.update", f"user:{name}",
                        {"role": before.role} if before else None, {"role": role})

    def remove_user(self, name: str, by: str) -> None:
        """Remove a user and end their sessions (audited). What they wrote and signed stays,
        under their name: a signature is a record, not an account."""
        with self.engine.begin() as conn:
            before = self._user(conn, name)
            if before is None:
                raise InputError(name, "no such user")
            conn.execute(users_table.delete().where(users_table.c.name == name))
            conn.execute(sessions_table.delete().where(sessions_table.c.user == name))
            self._audit(conn, by, "user.remove", f"user:{name}", {"role": before.role}, None)

    def user(self, name: str) -> User | None:
        with self.engine.connect() as conn:
            return self._user(conn, name)

    def users(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(users_table).order_by(users_table.c.name)).mappings()
            return [_user(row) for row in rows]

    def start_session(self, token: str, user: User, csrf: str) -> None:
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(sessions_table.insert().values(
                token_hash=token_hash(token), user=user.name, csrf=csrf, created_at=now,
                last_seen=now))
            self._audit(conn, user.name, "login", f"user:{user.name}", None, None)

    def session(self, token: str) -> Session | None:
        """The live session of `token` (its idle time renewed), or None."""
        now = self.clock()
        key = token_hash(token)
        with self.engine.begin() as conn:
            row = conn.execute(
                select(sessions_table, users_table.c.role)
                .join(users_table, users_table.c.name == sessions_table.c.user)
                .where(sessions_table.c.token_hash == key)).mappings().first()
            if row is None:
                return None
            if now - as_utc(row["last_seen"]) > SESSION_IDLE:
                conn.execute(sessions_table.delete().where(sessions_table.c.token_hash == key))
                return None
            conn.execute(sessions_table.update().where(sessions_table.c.token_hash == key)
                         .values(last_seen=now))
            return Session(row["user"], row["role"], row["csrf"])

    def end_session(self, token: str) -> None:
        with self.engine.begin() as conn:
            row = conn.execute(select(sessions_table.c.user)
                               .where(sessions_table.c.token_hash == token_hash(token))).first()
            conn.execute(sessions_table.delete()
                         .where(sessions_table.c.token_hash == token_hash(token)))
            if row is not None:
                self._audit(conn, row.user, "logout", f"user:{row.user}", None, None)

    # --- log-in throttling ---------------------------------------------------------------------

    def login_lock(self, keys: Sequence[str]) -> LoginLock | None:
        """The live lock on any of `keys` that ends last, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(login_locks_table)
                .where(login_locks_table.c.key.in_(keys)
                       & (login_locks_table.c.until > self.clock()))
                .order_by(login_locks_table.c.until.desc())).mappings().first()
        return None if row is None else LoginLock(row["key"], as_utc(row["until"]))

    def record_login_failure(self, name: str, limits: Mapping[str, int], window: timedelta,
                             lock: timedelta, detail: str) -> list[LoginLock]:
        """Count a failed log-in tried as `name` against each key of `limits` (key -> the
        failures within `window` that lock it for `lock`), audited with the locks it set in
        one transaction. A lock uses up its key's failures, so the count starts again after
        it; failures older than the window are dropped, as they can no longer count."""
        now = self.clock()
        locks = []
        with self.engine.begin() as conn:
            conn.execute(login_failures_table.delete()
                         .where(login_failures_table.c.at <= now - window))
            conn.execute(login_failures_table.insert(),
                         [{"key": key, "at": now} for key in limits])
            self._audit(conn, name, "login.failed", f"user:{name}", None, None, detail)
            for key, limit in limits.items():
                failures = conn.execute(select(func.count()).where(
                    login_failures_table.c.key == key)).scalar_one()
                if failures >= limit:
                    locks.append(self._lock(conn, name, LoginLock(key, now + lock), failures))
        return locks

    def clear_login_failures(self, key: str) -> None:
        """Forget `key`'s failures (a successful log-in: only failures in a row count)."""
        with self.engine.begin() as conn:
            conn.execute(login_failures_table.delete().where(login_failures_table.c.key == key))

    def unlock(self, key: str, by: str) -> LoginLock | None:
        """End `key`'s lock and forget its failures (audited); the live lock ended, or None."""
        with self.engine.begin() as conn:
            row = conn.execute(select(login_locks_table).where(
                (login_locks_table.c.key == key)
                & (login_locks_table.c.until > self.clock()))).mappings().first()
            conn.execute(login_locks_table.delete().where(login_locks_table.c.key == key))
            conn.execute(login_failures_table.delete().where(login_failures_table.c.key == key))
            ended = None if row is None else LoginLock(key, as_utc(row["until"]))
            self._audit(conn, by, "login.unlock", key,
                        None if ended is None else {"locked_until": ended.until.isoformat()},
                        None)
            return ended

    def _lock(self, conn: Connection, name: str, lock: LoginLock, failures: int) -> LoginLock:
        conn.execute(login_locks_table.delete().where(login_locks_table.c.key == lock.key))
        conn.execute(login_locks_table.insert().values(key=lock.key, until=lock.until))
        conn.execute(login_failures_table.delete()
                     .where(login_failures_table.c.key == lock.key))
        self._audit(conn, name, "login.locked", lock.key, None,
                    {"locked_until": lock.until.isoformat()}, f"{failures} failed log-ins")
        return lock

    # --- draft versions and signatures -------------------------------------------------------

    def versions(self, study: str) -> list[Version]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(versions_table).where(versions_table.c.study == study)
                                .order_by(versions_table.c.version)).mappings()
            return [_version(row) for row in rows]

    def latest(self, study: str) -> Version | None:
        versions = self.versions(study)
        return versions[-1] if versions else None

    def add_version(self, study: str, texts: Mapping[str, str], findings: Mapping[str, Any],
                    author: str, before: Mapping[str, str]) -> Version:
        """Save `texts` as the study's next version; `before` is the text it replaces (the
        previous version's, or the machine drafts'), kept in the audit entry. Two saves at
        once cannot both take the same number: the later one is refused (InputError)."""
        try:
            with self.engine.begin() as conn:
                number = 1 + (conn.execute(
                    select(versions_table.c.version).where(versions_table.c.study == study)
                    .order_by(versions_table.c.version.desc())).scalar() or 0)
                conn.execute(versions_table.insert().values(
                    study=study, version=number, texts=dict(texts), findings=dict(findings),
                    author=author, created_at=self.clock()))
                self._audit(conn, author, "draft.edit", study, dict(before),
                            {"version": number, **texts})
                return self._version(conn, study, number)
        except IntegrityError:
            raise InputError(study, "another version was saved at the same time") from None

    def sign(self, study: str, version: int, user: str, detail: str | None = None) -> Version:
        """Sign `version` of the study; it must be the latest and not signed yet."""
        with self.engine.begin() as conn:
            latest = conn.execute(
                select(versions_table.c.version).where(versions_table.c.study == study)
                .order_by(versions_table.c.version.desc())).scalar()
            if latest != version:
                raise InputError(study, f"version {version} is not the latest ({latest})")
            # only an unsigned row is updated: of two signatures at once, one wins
            signed = conn.execute(versions_table.update().where(
                (versions_table.c.study == study) & (versions_table.c.version == version)
                & versions_table.c.signed_by.is_(None))
                .values(signed_by=user, signed_at=self.clock()))
            if signed.rowcount != 1:
                raise InputError(study, f"version {version} is already signed by "
                                        f"{self._version(conn, study, version).signed_by}")
            self._audit(conn, user, "sign", study, {"version": version, "signed": False},
                        {"version": version, "signed": True}, detail)
            return self._version(conn, study, version)

    def note(self, user: str, action: str, item: str, detail: str) -> None:
        """An audit entry for something done outside the store (a signed report sent)."""
        with self.engine.begin() as conn:
            self._audit(conn, user, action, item, None, None, detail)

    # --- scores and audit ----------------------------------------------------------------------

    def add_score(self, item: str, user: str, overall: float, errors: Mapping[str, int]) -> None:
        """Record a reader's score; a later score of the same item by the same reader counts."""
        with self.engine.begin() as conn:
            before = self._score(conn, item, user)
            conn.execute(scores_table.insert().values(
                item=item, user=user, overall=overall, errors=dict(errors),
                created_at=self.clock()))
            self._audit(conn, user, "score", item,
                        _score_values(before) if before else None,
                        {"overall": overall, **errors})

    def score(self, item: str, user: str) -> Score | None:
        with self.engine.connect() as conn:
            return self._score(conn, item, user)

    def scores(self, item: str) -> list[Score]:
        """Each reader's latest score of `item`."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(scores_table).where(scores_table.c.item == item)
                                .order_by(scores_table.c.id)).mappings()
            latest = {row["user"]: _score_row(row) for row in rows}
        return sorted(latest.values(), key=lambda s: s.user)

    def audit(self, item: str | None = None) -> list[AuditEntry]:
        query = select(audit_table).order_by(audit_table.c.id)
        if item is not None:
            query = query.where(audit_table.c.item == item)
        with self.engine.connect() as conn:
            return [AuditEntry(as_utc(r["at"]), r["user"], r["action"], r["item"], r["before"],
                               r["after"], r["detail"]) for r in conn.execute(query).mappings()]

    # --- helpers -------------------------------------------------------------------------------

    def _audit(self, conn: Connection, user: str, action: str, item: str, before: Any,
               after: Any, detail: str | None = None) -> None:
        conn.execute(audit_table.insert().values(at=self.clock(), user=user, action=action,
                                                 item=item, before=before, after=after,
                                                 detail=detail))

    @staticmethod
    def _user(conn: Connection, name: str) -> User | None:
        row = conn.execute(select(users_table).where(users_table.c.name == name)).mappings()
        found = row.first()
        return None if found is None else _user(found)

    @staticmethod
    def _version(conn: Connection, study: str, number: int) -> Version:
        row = conn.execute(select(versions_table).where(
            (versions_table.c.study == study) & (versions_table.c.version == number))).mappings()
        return _version(row.one())

    @staticmethod
    def _score(conn: Connection, item: str, user: str) -> Score | None:
        row = conn.execute(select(scores_table).where(
            (scores_table.c.item == item) & (scores_table.c.user == user))
            .order_by(scores_table.c.id.desc())).mappings().first()
        return None if row is None else _score_row(row)


def _user(row: Mapping[str, Any]) -> User:
    return User(row["name"], row["role"], bytes(row["salt"]), bytes(row["password_hash"]))


def _version(row: Mapping[str, Any]) -> Version:
    signed_at = row["signed_at"]
    return Version(row["study"], row["version"], dict(row["texts"]), dict(row["findings"]),
                   row["author"], as_utc(row["created_at"]), row["signed_by"],
                   None if signed_at is None else as_utc(signed_at))


def _score_row(row: Mapping[str, Any]) -> Score:
    return Score(row["item"], row["user"], float(row["overall"]), dict(row["errors"]),
                 as_utc(row["created_at"]))


def _score_values(score: Score) -> dict[str, Any]:
    return {"overall": score.overall, **score.errors}
