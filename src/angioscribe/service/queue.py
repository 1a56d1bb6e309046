"""The service's persistent job queue: one row per study, in SQLite or PostgreSQL.

A study moves RECEIVING (instances arriving) -> RECEIVED (complete: no new instance for the
stable wait, or `complete` on demand) -> ANALYSING (a worker claimed it) -> DRAFTED (results
written, being sent) -> SENT (every destination acknowledged them), or FAILED after
`max_attempts` failed attempts (`retry` starts it again). Every claim is an attempt, whether
it analyses the study or only sends what an earlier attempt drafted.

Every transition is one transaction that also sets `updated_at`, so a process killed at any
moment leaves each study in a state it can go on from: `recover` moves what a dead worker held
back to RECEIVED (or releases it for sending), counting the attempt, so a study that kills
workers ends FAILED instead of blocking the others. Each file a destination acknowledged is
marked in `stored` right after its C-STORE, and the destination in `sent_to` once it has them
all, so a restart sends only what was not acknowledged.

The table holds no patient identifier: only the StudyInstanceUID (the key), counts, times,
error texts (which name files by their UID paths), output paths, and the destinations (AE
titles and addresses, a FHIR endpoint's URL).

The same code runs on both databases. A claim selects with `FOR UPDATE SKIP LOCKED` on
PostgreSQL; SQLite ignores that clause, and every SQLite transaction here begins with
`BEGIN IMMEDIATE` (in WAL mode), which takes the write lock first, so two processes never
claim the same job on either database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Update

from angioscribe.errors import InputError

ERROR_CHARS = 2000  # the most of an error's text kept (its head: the exception and message)


class State(StrEnum):
    RECEIVING = "receiving"
    RECEIVED = "received"
    ANALYSING = "analysing"
    DRAFTED = "drafted"
    SENT = "sent"
    FAILED = "failed"


@dataclass
class Job:
    """One study's row. `outputs` are the files to send, `destinations` where they go (as
    "AET@HOST:PORT", or a FHIR endpoint's URL), `sent_to` the destinations that acknowledged
    them all, `stored` the file names each destination acknowledged so far; `worker` holds
    the job while it is analysed or sent, `not_before` delays its next attempt."""

    study_uid: str
    state: State
    instances: int
    attempts: int
    error: str | None
    created_at: datetime
    updated_at: datetime
    last_instance_at: datetime
    outputs: list[str] = field(default_factory=list)
    sent_to: list[str] = field(default_factory=list)
    destinations: list[str] = field(default_factory=list)
    stored: dict[str, list[str]] = field(default_factory=dict)
    worker: str | None = None
    not_before: datetime | None = None


metadata = MetaData()
jobs_table = Table(
    "angioscribe_jobs",
    metadata,
    Column("study_uid", String(64), primary_key=True),
    Column("state", String(16), nullable=False, index=True),
    Column("instances", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("last_instance_at", DateTime(timezone=True), nullable=False),
    Column("outputs", JSON, nullable=False),
    Column("sent_to", JSON, nullable=False),
    Column("destinations", JSON, nullable=False),
    Column("stored", JSON, nullable=False),
    Column("worker", String(64)),
    Column("not_before", DateTime(timezone=True)),
)
col = jobs_table.c


def utc_now() -> datetime:
    return datetime.now(UTC)


class JobQueue:
    """The queue at `url` ("sqlite:///path/queue.db" or "postgresql+psycopg://..."); its
    table is created when missing. `clock` gives the current time (tests move it)."""

    def __init__(self, url: str, clock: Callable[[], datetime] = utc_now) -> None:
        self.clock = clock
        self.engine = database_engine(url)
        metadata.create_all(self.engine)
        found = {column["name"] for column in inspect(self.engine).get_columns(jobs_table.name)}
        missing = [column.name for column in jobs_table.columns if column.name not in found]
        if missing:
            self.close()
            raise InputError(self.engine.url.render_as_string(hide_password=True),
                             f"the queue table {jobs_table.name} lacks the columns "
                             f"{', '.join(missing)}: it was made by another angioscribe "
                             "version (finish or move that queue, then start afresh)")

    def close(self) -> None:
        """Close the database connections (a process that goes on without the queue)."""
        self.engine.dispose()

    def record_instance(self, study_uid: str, path: Path) -> None:
        """One more instance of a study (stored at `path`; the queue keeps only the count):
        the study is RECEIVING. An instance for a study in any later state starts it over
        (attempts, error, outputs and sends cleared): its results no longer cover the whole
        study, so it is analysed again once complete and sent again to every destination (the
        objects keep their UIDs, so the new ones replace the old ones in a PACS)."""
        try:
            self._record_instance(study_uid)
        except IntegrityError:  # a concurrent first instance inserted the row: update it
            self._record_instance(study_uid)

    def _record_instance(self, study_uid: str) -> None:
        now = self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(select(col.state).where(col.study_uid == study_uid)
                               .with_for_update()).first()
            if row is None:
                conn.execute(jobs_table.insert().values(
                    study_uid=study_uid, state=State.RECEIVING, instances=1, attempts=0,
                    created_at=now, updated_at=now, last_instance_at=now, outputs=[],
                    sent_to=[], destinations=[], stored={}))
                return
            values: dict[str, Any] = {"state": State.RECEIVING,
                                      "instances": col.instances + 1,
                                      "last_instance_at": now, "updated_at": now}
            if row.state != State.RECEIVING:
                values.update(_fresh())
            conn.execute(_update(study_uid).values(values))

    def promote_stable(self, stable_seconds: float) -> list[str]:
        """Every RECEIVING study without a new instance for `stable_seconds` -> RECEIVED;
        returns their UIDs."""
        now = self.clock()
        with self.engine.begin() as conn:
            rows = conn.execute(
                update(jobs_table)
                .where(col.state == State.RECEIVING,
                       col.last_instance_at <= now - timedelta(seconds=stable_seconds))
                .values(state=State.RECEIVED, updated_at=now)
                .returning(col.study_uid))
            return sorted(row.study_uid for row in rows)

    def complete(self, study_uid: str) -> None:
        """A RECEIVING study is complete now, without waiting for the stable wait."""
        self._move(study_uid, {State.RECEIVING}, state=State.RECEIVED)

    def claim(self, worker: str) -> Job | None:
        """The next job for `worker`, oldest first, or None: a RECEIVED study (-> ANALYSING)
        or a DRAFTED one no worker holds (sending it again). Counts an attempt."""
        now = self.clock()
        claimable = (col.state == State.RECEIVED) | (
            (col.state == State.DRAFTED) & col.worker.is_(None))
        with self.engine.begin() as conn:
            row = conn.execute(
                select(col.study_uid, col.state)
                .where(claimable, col.not_before.is_(None) | (col.not_before <= now))
                .order_by(col.updated_at, col.study_uid)
                .limit(1)
                .with_for_update(skip_locked=True)).first()
            if row is None:
                return None
            study_uid = row.study_uid
            conn.execute(_update(study_uid).values(
                state=State.ANALYSING if row.state == State.RECEIVED else State.DRAFTED,
                worker=worker, attempts=col.attempts + 1, not_before=None,
                updated_at=now))
            return _job(conn, study_uid)

    def drafted(self, study_uid: str, objects: Sequence[Path],
                destinations: Sequence[str] = ()) -> None:
        """ANALYSING -> DRAFTED: `objects` written, to be sent to `destinations`; SENT at
        once when every destination has them already (none, or all acknowledged before a
        retry)."""
        with self.engine.begin() as conn:
            job = _held(conn, study_uid, {State.ANALYSING})
            conn.execute(_update(study_uid).values(
                outputs=[str(path) for path in objects],
                **self._sending(list(destinations), job.sent_to)))

    def sent(self, study_uid: str, destination: str) -> None:
        """`destination` acknowledged the DRAFTED study's objects; SENT when all have."""
        with self.engine.begin() as conn:
            job = _held(conn, study_uid, {State.DRAFTED})
            conn.execute(_update(study_uid).values(
                **self._sending(job.destinations, [*job.sent_to, destination])))

    def stored(self, study_uid: str, destination: str, file_name: str) -> None:
        """`destination` acknowledged one file of the DRAFTED study (its C-STORE succeeded)."""
        with self.engine.begin() as conn:
            job = _held(conn, study_uid, {State.DRAFTED})
            names = sorted({*job.stored.get(destination, []), file_name})
            conn.execute(_update(study_uid).values(stored={**job.stored, destination: names},
                                                   updated_at=self.clock()))

    def _sending(self, destinations: list[str], sent_to: list[str]) -> dict[str, Any]:
        """The values of a job that went to `sent_to` of its `destinations`."""
        done = set(destinations) <= set(sent_to)
        return {"destinations": destinations, "sent_to": sorted(set(sent_to)),
                "state": State.SENT if done else State.DRAFTED, "updated_at": self.clock(),
                **({"worker": None, "error": None} if done else {})}

    def fail(self, study_uid: str, error: str, max_attempts: int,
             retry_seconds: float = 0.0) -> None:
        """An attempt failed with `error`: FAILED once it was the `max_attempts`th, else
        back to where it is tried again (RECEIVED, or DRAFTED when only sending failed), not
        before `retry_seconds` from now. Nothing changes for a job no longer analysed or
        sent (a new instance started it over meanwhile)."""
        with self.engine.begin() as conn:
            job = _job(conn, study_uid, lock=True)
            if job is not None and job.state in (State.ANALYSING, State.DRAFTED):
                conn.execute(_update(study_uid).values(
                    self._after_failure(job, error, max_attempts, retry_seconds)))

    def _after_failure(self, job: Job, error: str, max_attempts: int,
                       retry_seconds: float) -> dict[str, Any]:
        now = self.clock()
        if job.attempts >= max_attempts:
            state = State.FAILED
        else:
            state = State.RECEIVED if job.state == State.ANALYSING else State.DRAFTED
        return {"state": state, "error": error[:ERROR_CHARS], "worker": None,
                "not_before": now + timedelta(seconds=retry_seconds), "updated_at": now}

    def retry(self, study_uid: str) -> None:
        """FAILED -> RECEIVED with its attempts reset. Destinations that acknowledged the
        study before are not sent to again."""
        self._move(study_uid, {State.FAILED}, state=State.RECEIVED, attempts=0, error=None,
                   not_before=None)

    def recover(self, worker: str | None = None, max_attempts: int = 3) -> list[str]:
        """The jobs a dead worker held (`worker`'s, or every worker's when None: call it
        before any worker starts): an attempt that failed, as in `fail`. Returns their UIDs."""
        held = col.state.in_([State.ANALYSING, State.DRAFTED]) & col.worker.is_not(None)
        if worker is not None:
            held &= col.worker == worker
        with self.engine.begin() as conn:
            uids = conn.execute(select(col.study_uid).where(held)).scalars().all()
            for study_uid in uids:
                job = _job(conn, study_uid)
                error = f"the worker stopped while the study was {job.state} (killed or crashed)"
                conn.execute(_update(study_uid).values(
                    self._after_failure(job, error, max_attempts, 0.0)))
        return sorted(uids)

    def jobs(self, state: State | None = None) -> list[Job]:
        """Every job (in `state` when given), oldest first."""
        query = select(jobs_table).order_by(col.created_at, col.study_uid)
        if state is not None:
            query = query.where(col.state == state)
        with self.engine.connect() as conn:
            return [_to_job(row) for row in conn.execute(query).mappings()]

    def counts(self) -> dict[State, int]:
        """How many jobs are in each state (every state, 0 included), counted by the
        database: for a health check that should not read every job."""
        query = select(col.state, func.count()).group_by(col.state)
        with self.engine.connect() as conn:
            counted = {state: count for state, count in conn.execute(query)}
        return {state: counted.get(state.value, 0) for state in State}

    def job(self, study_uid: str) -> Job | None:
        with self.engine.connect() as conn:
            return _job(conn, study_uid)

    def _move(self, study_uid: str, allowed: set[State], **values: Any) -> None:
        """Set `values` on a job in one of the `allowed` states; an InputError otherwise."""
        with self.engine.begin() as conn:
            moved = conn.execute(
                update(jobs_table)
                .where(col.study_uid == study_uid, col.state.in_(allowed))
                .values(updated_at=self.clock(), **values)).rowcount
            if not moved:
                raise _not_in(study_uid, _job(conn, study_uid), allowed)


def _update(study_uid: str) -> Update:
    return update(jobs_table).where(col.study_uid == study_uid)


def _fresh() -> dict[str, Any]:
    """The values of a study that starts over: nothing tried, drafted or sent yet."""
    return {"attempts": 0, "error": None, "outputs": [], "sent_to": [], "destinations": [],
            "stored": {},
            "worker": None, "not_before": None}


def _not_in(study_uid: str, job: Job | None, allowed: set[State]) -> InputError:
    if job is None:
        return InputError(study_uid, "no such study in the queue")
    expected = " or ".join(sorted(allowed))
    return InputError(study_uid, f"the study is {job.state}, not {expected}")


def _held(conn: Connection, study_uid: str, allowed: set[State]) -> Job:
    """The job, locked for this transaction, when it is in one of the `allowed` states."""
    job = _job(conn, study_uid, lock=True)
    if job is None or job.state not in allowed:
        raise _not_in(study_uid, job, allowed)
    return job


def _job(conn: Connection, study_uid: str, lock: bool = False) -> Job | None:
    """The job's row (with `lock`, locked until the transaction ends: PostgreSQL's FOR
    UPDATE; SQLite's transactions hold the whole database already)."""
    query = select(jobs_table).where(col.study_uid == study_uid)
    row = conn.execute(query.with_for_update() if lock else query).mappings().first()
    return None if row is None else _to_job(row)


def _to_job(row: Mapping[str, Any]) -> Job:
    values = {key: as_utc(value) if isinstance(value, datetime) else value
              for key, value in row.items()}
    return Job(**{**values, "state": State(row["state"])})


def as_utc(value: datetime) -> datetime:
    """A stored time as UTC: SQLite gives it back without its time zone."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def database_engine(url: str) -> Engine:
    """An engine for `url` (the queue's, and the review store's when it shares the service's
    database); for SQLite, the database's folder is created, WAL journal, a
    busy timeout instead of "database is locked", and `BEGIN IMMEDIATE` transactions."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver's own BEGIN off: ours below
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
