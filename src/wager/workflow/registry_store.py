"""The registry's database: how it is opened, configured and migrated.

``wager.workflow.registry`` says *what* is stored; this module says *how the
database behaves* so that what is stored stays whole:

- **SQLite** (the default): WAL journal, so readers never block the writer and
  a killed writer leaves only uncommitted frames that the next open discards.
  ``synchronous=FULL``: every commit is fsynced before ``record`` returns, so a
  run the CLI reported as recorded survives a power cut, not only a crash
  (NORMAL would be crash-safe in WAL mode but may lose the last commits on
  power loss; one fsync per run is cheap next to inference). Writes open with
  ``BEGIN IMMEDIATE`` and a 30 s busy timeout, so concurrent writers queue for
  the write lock instead of failing half way (a deferred transaction that
  upgrades to a writer gets SQLITE_BUSY without waiting). Foreign keys are
  enforced, so a run row can never point at a missing posterior.
- **PostgreSQL** (a team): transactional DDL; migrations hold a
  transaction-scoped advisory lock, one per schema.

An SQLite registry that does not exist yet is created (folders, file,
schema) by its first write, never by opening or reading it: opening only
checks that the file could be created (``check_creatable``), and until then
reads go to an empty in-memory database of the same schema
(``empty_database``), so ``wager runs list`` on a fresh machine says "no runs"
and leaves nothing behind.

Schema changes are Alembic revisions in ``migrations/``, run in code (no
``alembic.ini``). Opening an already-migrated database reads one version row
and never imports Alembic: the CLI opens the registry on every run. When the
database is behind, the upgrade runs in one transaction holding the write
lock (SQLite) or the advisory lock (PostgreSQL) and Alembic re-reads the
version inside it, so four processes opening a brand-new database at once
migrate it exactly once.
"""

from __future__ import annotations

import functools
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

from wager.errors import RegistryError, SpecError

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "wager_alembic_version"
# The newest revision in migrations/versions. Kept here so an up-to-date
# database is recognised without importing Alembic (~0.4 s); a test checks it
# against Alembic's own view of the scripts.
HEAD_REVISION = "0002"
SQLITE_BUSY_TIMEOUT_S = 30.0


class RegistryInputError(RegistryError, SpecError):
    """Bad input to the registry: a run reference that names no run (or several),
    a database URL that is not one. A ``RegistryError`` to the registry's callers,
    and bad input (exit 2, one line naming ``field``) at the command line."""


# The tables as of HEAD_REVISION, for queries. The migrations create them;
# these declarations must match the newest revision.
metadata = sa.MetaData()

posteriors = sa.Table(
    "posteriors",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("netcdf", sa.LargeBinary, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("identity_hash", sa.String(128), nullable=False),
    sa.Column("domain", sa.String(64), nullable=False),
    sa.Column("name", sa.String(256)),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("action", sa.String(256)),
    sa.Column("engine", sa.String(64)),
    sa.Column("manifest", sa.Text, nullable=False),
    sa.Column("result", sa.Text, nullable=False),
    sa.Column("posterior_digest", sa.String(64), sa.ForeignKey("posteriors.digest"), nullable=False),
)

plans = sa.Table(
    "plans",
    metadata,
    sa.Column("plan_id", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("domain", sa.String(64), nullable=False),
    sa.Column("name", sa.String(256)),
    sa.Column("policy", sa.Text, nullable=False),
    sa.Column("policy_hash", sa.String(128), nullable=False),
)

validations = sa.Table(
    "validations",
    metadata,
    sa.Column("validation_id", sa.String(64), primary_key=True),
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("document", sa.Text, nullable=False),
)


def mask(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe to print)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: nothing we can parse to mask
        return url


def reason(error: BaseException) -> str:
    """The driver's one-line explanation of ``error``, without SQLAlchemy's
    statement dump and background links."""
    inner = getattr(error, "orig", None) or error
    text = str(inner).strip() or type(inner).__name__
    return text.splitlines()[0]


@contextmanager
def database_errors(url: str, doing: str) -> Iterator[None]:
    """Turn driver errors into one ``RegistryError`` naming the database."""
    try:
        yield
    except exc.SQLAlchemyError as error:
        raise RegistryError(f"registry {mask(url)}: {doing} failed: {reason(error)}") from None


def parse_url(url: str, field: str) -> sa.URL:
    """``url`` parsed; a malformed one is bad input named by ``field`` (``--db``, ``WAGER_DB``).

    The URL itself is not echoed, only the parser's reason: one that does not parse cannot be masked.
    A database kind SQLAlchemy does not know (``foo://``) is bad input too; a known kind whose
    driver is not installed is the environment's (``open_engine``).
    """
    try:
        parsed = make_url(url)
    except (exc.ArgumentError, ValueError) as error:
        raise RegistryInputError(
            field, f"not a database URL (e.g. sqlite:///path.sqlite or postgresql+psycopg://user@host/db) or a file path: {reason(error)}"
        ) from None
    try:
        parsed.get_dialect()
    except exc.NoSuchModuleError:
        raise RegistryInputError(field, f"unknown database kind {parsed.drivername!r} (e.g. sqlite, postgresql+psycopg)") from None
    return parsed


def open_engine(url: str) -> Engine:
    """An engine for ``url`` (parsed by ``parse_url``), configured for safe concurrent recording.

    Raises ``RegistryError`` for an unknown database kind or a missing driver
    (nothing is contacted, and no SQLite file is created, yet).
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    kwargs: dict[str, Any] = {}
    if backend == "sqlite":
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
    else:
        kwargs["pool_pre_ping"] = True  # a long-lived service outlives server restarts
        if backend == "postgresql" and "connect_timeout" not in parsed.query:
            kwargs["connect_args"] = {"connect_timeout": 10}
    try:
        engine = sa.create_engine(parsed, **kwargs)
    except exc.NoSuchModuleError:
        raise RegistryError(f"registry {mask(url)}: unknown database kind {parsed.drivername!r}") from None
    except ImportError as error:
        hint = " (pip install 'wager[postgres]')" if backend == "postgresql" else ""
        raise RegistryError(f"registry {mask(url)}: database driver not installed: {error.name or error}{hint}") from None
    except exc.ArgumentError as error:
        raise RegistryError(f"registry {mask(url)}: {reason(error)}") from None
    if backend == "sqlite":
        _configure_sqlite(engine)
    return engine


def sqlite_file(url: str) -> Path | None:
    """The file an SQLite URL names; ``None`` for other databases, in-memory ones and ``file:`` URIs."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def check_creatable(path: Path, url: str) -> None:
    """Refuse now, before any work, an SQLite file that its first write could not create."""
    problem = why_not_creatable(path)
    if problem is not None:
        raise RegistryError(f"registry {mask(url)}: {problem}")


def why_not_creatable(path: Path) -> str | None:
    """Why a file could not be created at ``path``, folders included (``None``: it
    could): it is a folder or another file that is not a regular one (a device such as
    /dev/null, a pipe), or the nearest folder that exists on its path is not a folder or
    refuses a new file (tried: permissions alone miss read-only file systems and /proc).
    A link to a regular file is written through. Also used for the files the CLI writes
    (``--out``, ``--junit``, the reports folder)."""
    if path.is_dir():
        return f"is a directory: {path}"
    if path.exists() and not path.resolve().is_file():
        return f"is not a regular file: {path}"
    target = path.resolve() if path.is_symlink() else path
    existing = target.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return f"cannot create the folder {target.parent}: {existing} is not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"cannot create {path}: the folder {existing} is not writable"
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        return f"cannot create {path}: the folder {existing} refuses new files ({error.strerror or error})"
    return None


def make_folder(folder: Path, url: str) -> None:
    """Create the folder an SQLite file lives in (SQLite will not)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RegistryError(f"registry {mask(url)}: cannot create the folder {folder}: {error.strerror or error}") from None


@functools.cache
def empty_database() -> Engine:
    """An in-memory database holding the registry's tables and no rows: what a
    registry that does not exist yet reads as. One connection, shared by threads
    (it is only read)."""
    engine = sa.create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    metadata.create_all(engine)
    return engine


def writer(engine: Engine) -> Engine:
    """The same engine, whose transactions take the write lock up front
    (SQLite ``BEGIN IMMEDIATE``; other databases lock rows as they write)."""
    return engine.execution_options(wager_begin="IMMEDIATE")


def _use_wal(cursor: Any) -> None:
    """Switch a database to write-ahead logging, waiting out other processes.

    The switch needs the database to itself, and SQLite answers "database is
    locked" at once, without its busy handler, while another connection holds
    a lock (several processes opening a brand-new registry together). Retry
    until the busy timeout has passed.
    """
    import sqlite3
    import time

    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    delay = 0.005
    while True:
        try:
            mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
            if mode.lower() not in ("wal", "memory"):
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling issues BEGIN lazily and never
        # IMMEDIATE; switch it off and emit BEGIN ourselves (SQLAlchemy's
        # documented recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            _use_wal(cursor)
            cursor.execute("PRAGMA synchronous = FULL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get("wager_begin", "")
        connection.exec_driver_sql(f"BEGIN {mode}".strip())


def schema_revision(connection: Connection) -> str | None:
    """The Alembic revision the database is at; ``None`` for a new database."""
    if not sa.inspect(connection).has_table(VERSION_TABLE):
        return None
    return connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def ensure_schema(engine: Engine, url: str) -> None:
    """Bring the database to ``HEAD_REVISION``; cheap when it already is.

    Connecting happens here, so an unreachable server surfaces as a
    ``RegistryError`` naming the URL.
    """
    with database_errors(url, "connecting"):
        with engine.connect() as connection:
            if schema_revision(connection) == HEAD_REVISION:
                return
    try:
        _upgrade(engine)
    except exc.SQLAlchemyError as error:
        # A database without a migration lock (neither SQLite nor
        # PostgreSQL) can lose a race to another process migrating it; that
        # is only a failure if the other process did not finish the job.
        failure: BaseException | None = error
    else:
        failure = None
    with database_errors(url, "reading the schema revision"):
        with engine.connect() as connection:
            found = schema_revision(connection)
    if found == HEAD_REVISION:
        return
    if failure is not None:
        raise RegistryError(f"registry {mask(url)}: migrating the schema failed: {reason(failure)}") from None
    raise RegistryError(
        f"registry {mask(url)}: schema revision {found!r} is not one this wager knows "
        f"(newest known: {HEAD_REVISION!r}); was the database written by a newer wager?"
    )


def _upgrade(engine: Engine) -> None:
    from alembic import command
    from alembic.config import Config
    from alembic.util import CommandError

    config = Config()
    # ConfigParser interpolation: a literal % in the path must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    with writer(engine).begin() as connection:
        if engine.dialect.name == "postgresql":
            # Serialise migrations per schema; released at commit.
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtext('wager.registry'), hashtext(coalesce(current_schema(), '')))")
            )
        config.attributes["connection"] = connection
        try:
            command.upgrade(config, "head")
        except CommandError:
            # An unknown revision (a newer wager wrote this database): nothing
            # was changed; the caller reads the revision and explains.
            return
