"""Result tables (SQLModel) and idempotent writes, on SQLite by default or any SQLAlchemy URL.

Every row's primary key is derived from what it describes (experiment, pair, agent,
feature, message number), so a task that is delivered twice writes the same row twice
instead of adding a second one. A database made by an earlier version gets the columns
added since (`add_missing_columns`), so its results stay readable and resumable.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, delete, event, inspect, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlmodel import Field, Session, SQLModel, create_engine, select

from .. import settings
from ..errors import UserError
from ..statuses import PairStatus

CHUNK = 500  # ids per IN (...) list: well under every database's limit on bound parameters


def now() -> datetime:
    return datetime.now(UTC)


class Experiment(SQLModel, table=True):
    name: str = Field(primary_key=True)
    setting: str  # "coop" or "solo"
    agent: str
    model: str | None = None
    backend: str = "local"
    git: bool = False
    messaging: bool = True
    dataset: str = ""
    artifacts: str | None = None  # the artifact store its artifacts go to (a folder or a URL)
    inputs: str | None = None  # the hash of the manifest of its travelling inputs (data/inputs.py), latest submit
    created_at: datetime = Field(default_factory=now)


class PairRun(SQLModel, table=True):
    id: str = Field(primary_key=True)  # "<experiment>|<pair key>"
    experiment: str = Field(index=True)
    repo: str
    task_id: int
    features: str  # "1,2"
    setting: str
    status: str = PairStatus.QUEUED  # a statuses.PairStatus
    merge_status: str | None = None  # clean, conflicts, missing_input, error
    merge_strategy: str | None = None  # naive, union
    patch_status: dict = Field(default_factory=dict, sa_column=Column(JSON))  # agent -> applied/skipped/failed
    both_passed: bool | None = None
    clean_success: bool | None = None
    error: str | None = Field(default=None, sa_column=Column(Text))
    error_kind: str | None = None  # infra, agent, input
    # why the team did not run together throughout (a teammate lost mid-run, or one agent ran after
    # the other had finished); None for an undisturbed pair
    disruption: str | None = Field(default=None, sa_column=Column(Text))
    submitted_at: datetime = Field(default_factory=now)
    finished_at: datetime | None = None

    # status and wait read an experiment's pairs by status
    __table_args__ = (Index("ix_pairrun_experiment_status", "experiment", "status"),)


class AgentRun(SQLModel, table=True):
    id: str = Field(primary_key=True)  # "<experiment>|<pair key>|<agent id>"
    experiment: str = Field(index=True)
    pair_id: str = Field(index=True)
    agent_id: str
    features: str
    agent: str
    model: str | None = None
    status: str  # Submitted, LimitsExceeded, Error, InfraError, ...
    error: str | None = Field(default=None, sa_column=Column(Text))
    patch: str = Field(default="", sa_column=Column(Text))
    steps: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    usage: dict = Field(default_factory=dict, sa_column=Column(JSON))
    # the known cost in USD of this run and its earlier attempts (what --max-cost sums, in SQL)
    cost_usd: float | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration: float = 0.0
    trajectory_path: str | None = None


class Evaluation(SQLModel, table=True):
    id: str = Field(primary_key=True)  # "<experiment>|<pair key>|<feature>"
    experiment: str = Field(index=True)
    pair_id: str = Field(index=True)
    feature: int
    passed: bool
    exit_code: int | None = None
    tests_passed: int = 0
    tests_failed: int = 0
    framework: str | None = None
    duration: float = 0.0
    timed_out: bool = False  # the test command was killed at the --test-timeout limit
    log_path: str | None = None


class MessageRow(SQLModel, table=True):
    __tablename__ = "message"
    id: str = Field(primary_key=True)  # "<experiment>|<pair key>|<seq>"
    experiment: str = Field(index=True)
    pair_id: str = Field(index=True)
    seq: int
    sender: str
    recipient: str
    body: str = Field(sa_column=Column(Text))
    sent_at: float


_engines: dict[str, Any] = {}
_lock = threading.Lock()


def engine(url: str):
    """One engine per URL per process, with its tables created."""
    with _lock:
        if url not in _engines:
            if url.startswith("sqlite"):
                eng = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60})

                @event.listens_for(eng, "connect")
                def _sqlite_pragmas(conn, _record):
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute("PRAGMA busy_timeout=60000")
            else:
                # bounded: every process (each prefork child) holds at most this many connections
                size = settings.get("db_pool_size")
                eng = create_engine(url, pool_pre_ping=True, pool_size=size, max_overflow=0, pool_timeout=120)
            try:
                SQLModel.metadata.create_all(eng)
                add_missing_columns(eng)
                add_missing_indexes(eng)
            except (SQLAlchemyError, ValueError) as exc:
                raise UserError(f"cannot open database {_redact(url)}: {_first_line(exc)}") from None
            _engines[url] = eng
        return _engines[url]


def add_missing_columns(eng) -> list[str]:
    """Add the columns a table of an earlier version lacks (as nullable columns); returns them as table.column."""
    added = []
    existing_tables = set(inspect(eng).get_table_names())
    for table in SQLModel.metadata.sorted_tables:
        if table.name not in existing_tables:
            continue
        have = {c["name"] for c in inspect(eng).get_columns(table.name)}
        for column in table.columns:
            if column.name in have:
                continue
            kind = column.type.compile(dialect=eng.dialect)
            try:
                with eng.begin() as conn:
                    conn.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'))
            except SQLAlchemyError:  # another process added it first
                if column.name not in {c["name"] for c in inspect(eng).get_columns(table.name)}:
                    raise
                continue
            added.append(f"{table.name}.{column.name}")
    return added


def add_missing_indexes(eng) -> list[str]:
    """Create the indexes a table of an earlier version lacks; returns their names."""
    added = []
    existing_tables = set(inspect(eng).get_table_names())
    for table in SQLModel.metadata.sorted_tables:
        if table.name not in existing_tables:
            continue
        have = {i["name"] for i in inspect(eng).get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in have:
                try:
                    index.create(eng, checkfirst=True)
                except SQLAlchemyError:  # another process made it first
                    continue
                added.append(index.name)
    return added


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<database url>"


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def upsert(url: str, *rows: SQLModel) -> None:
    """Insert or replace rows by primary key, in one transaction (retried on a write race): one
    INSERT ... ON CONFLICT a row on SQLite and PostgreSQL, else the ORM's merge (a read first)."""
    eng = engine(url)
    for attempt in range(5):
        try:
            if eng.dialect.name in _ON_CONFLICT:
                with eng.begin() as conn:
                    for row in rows:
                        table = type(row).__table__
                        values = {c.name: getattr(row, c.name) for c in table.columns}
                        conn.execute(_upsert_statement(eng.dialect.name, table), values)
            else:
                with Session(eng) as session:
                    for row in rows:
                        session.merge(row)
                    session.commit()
            return
        except (IntegrityError, OperationalError):
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))


_ON_CONFLICT = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}


@cache
def _upsert_statement(dialect: str, table):
    """INSERT ... ON CONFLICT (primary key) DO UPDATE every other column, for one table."""
    stmt = _ON_CONFLICT[dialect](table)
    keys = [c.name for c in table.primary_key.columns]
    return stmt.on_conflict_do_update(
        index_elements=keys, set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    )


def get(url: str, model: type[SQLModel], key: str):
    with Session(engine(url)) as session:
        return session.get(model, key)


def query(url: str, model: type[SQLModel], **where) -> list:
    with Session(engine(url)) as session:
        stmt = select(model)
        for name, value in where.items():
            stmt = stmt.where(getattr(model, name) == value)
        return list(session.exec(stmt).all())


def column_map(url: str, model: type[SQLModel], value: str, **where) -> dict[str, Any]:
    """{primary key: one column's value} of the rows matching `where`, in one query (no rows loaded)."""
    stmt = select(model.id, getattr(model, value))
    for name, wanted in where.items():
        stmt = stmt.where(getattr(model, name) == wanted)
    with Session(engine(url)) as session:
        return dict(session.execute(stmt).all())


def columns(url: str, model: type[SQLModel], names: tuple[str, ...], **where) -> list[tuple]:
    """Some columns of the rows matching `where`, as tuples, in one query (no objects built)."""
    stmt = select(*(getattr(model, n) for n in names))
    for name, wanted in where.items():
        stmt = stmt.where(getattr(model, name) == wanted)
    with Session(engine(url)) as session:
        return [tuple(r) for r in session.execute(stmt).all()]  # rows, even of a single column


def total(url: str, model: type[SQLModel], column: str, **where) -> float:
    """SUM(column) over the rows matching `where` (0 when none), computed by the database."""
    from sqlalchemy import func

    stmt = select(func.coalesce(func.sum(getattr(model, column)), 0.0))
    for name, wanted in where.items():
        stmt = stmt.where(getattr(model, name) == wanted)
    with Session(engine(url)) as session:
        return float(session.exec(stmt).one())


def _chunks(values: list, size: int = CHUNK):
    for i in range(0, len(values), size):
        yield values[i : i + size]


def delete_rows(url: str, model: type[SQLModel], column: str, values: list[str]) -> None:
    """Delete the rows whose `column` is one of `values`, without loading them (a statement per chunk)."""
    with Session(engine(url)) as session:
        for chunk in _chunks(list(values)):
            session.exec(delete(model).where(getattr(model, column).in_(chunk)))
        session.commit()


def replace_all(url: str, rows: list[SQLModel]) -> None:
    """Write rows of one table, replacing any with the same primary key: a delete and a bulk insert per
    chunk, in one transaction (retried on a write race)."""
    if not rows:
        return
    model = type(rows[0])
    for attempt in range(5):
        try:
            with Session(engine(url)) as session:
                for chunk in _chunks(rows):
                    session.exec(delete(model).where(model.id.in_([r.id for r in chunk])))
                    session.execute(model.__table__.insert(), [r.model_dump() for r in chunk])
                session.commit()
            return
        except (IntegrityError, OperationalError):
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))


def delete_experiment(url: str, name: str) -> None:
    """Delete an experiment and every row of it, without loading them."""
    with Session(engine(url)) as session:
        for model in (MessageRow, Evaluation, AgentRun, PairRun):
            session.exec(delete(model).where(model.experiment == name))
        session.exec(delete(Experiment).where(Experiment.name == name))
        session.commit()


def dumps(data: Any) -> str:
    return json.dumps(data, sort_keys=True, default=str)
