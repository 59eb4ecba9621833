"""The run registry: every recorded run, its posterior and its decision plans.

A run is recorded whole or not at all. Its row (manifest, result, summary
columns) and its posterior NetCDF commit in **one database transaction**.
The posterior is stored as a blob in the database itself, content-addressed
by the sha256 of its bytes (identical posteriors are stored once), rather
than as a file beside the database because:

- a crash or ``kill -9`` between writing a file and inserting the row could
  leave a run pointing at a missing or half-written file, or an orphan file;
  inside one transaction neither can happen (the foreign key from
  ``runs.posterior_digest`` to ``posteriors`` is enforced);
- a team on PostgreSQL needs no shared filesystem: the URL is the registry.

SQLite is the default (one file under ``$XDG_DATA_HOME/wager``, created by
the first run recorded, never by a command that only reads); any SQLAlchemy
URL works, PostgreSQL for a team. ``WAGER_DB`` picks another one. How the
database is opened, locked, created and migrated lives in
``wager.workflow.registry_store``.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.dialects import postgresql, sqlite

from wager.workflow.registry_store import (
    RegistryError,
    RegistryInputError,
    check_creatable,
    database_errors,
    empty_database,
    ensure_schema,
    make_folder,
    mask,
    open_engine,
    parse_url,
    plans,
    posteriors,
    runs,
    sqlite_file,
    validations,
    writer,
)

__all__ = [
    "PlanRecord",
    "Registry",
    "RegistryError",
    "RegistryInputError",
    "RunRecord",
    "RunSummary",
    "as_url",
    "default_url",
]

LATEST = "latest"
RUN_STATUSES = ("decided", "blocked")
"""What a recorded run's ``status`` is: a decision was made, or a gate blocked it."""


@dataclass(frozen=True)
class RunRecord:
    """One recorded run: what was asked (manifest), what came out (result)
    and the posterior it was decided on (NetCDF bytes, by content address)."""

    run_id: str
    created_at: str
    manifest: dict
    result: dict
    posterior_digest: str
    posterior_bytes: bytes = field(repr=False)

    def netcdf(self) -> bytes:
        """The posterior as NetCDF bytes (``arviz.from_netcdf`` reads them)."""
        return self.posterior_bytes


@dataclass(frozen=True)
class RunSummary:
    """One row of ``wager runs list``: read from columns, never from the blob."""

    run_id: str
    created_at: str
    domain: str
    name: str | None
    status: str
    action: str | None
    engine: str | None
    identity_hash: str


@dataclass(frozen=True)
class PlanRecord:
    """A decision policy saved for a domain (and optionally a named spec)."""

    plan_id: str
    created_at: str
    domain: str
    name: str | None
    policy: dict
    policy_hash: str


def default_url() -> str:
    """The registry used when none is given.

    ``WAGER_DB`` (an SQLAlchemy URL or a file path) if set, else SQLite at
    ``$XDG_DATA_HOME/wager/registry.sqlite`` (``~/.local/share`` when unset).
    Nothing is created here: the folder comes with the first recorded run.
    """
    if "WAGER_DB" in os.environ:  # set but blank is bad input, not the default registry
        return as_url(os.environ["WAGER_DB"], "WAGER_DB")
    base = os.environ.get("XDG_DATA_HOME", "").strip() or str(Path.home() / ".local" / "share")
    return as_url(str(Path(base).expanduser() / "wager" / "registry.sqlite"))


def as_url(db: str, field: str = "--db") -> str:
    """A ``--db`` value as an SQLAlchemy URL: URLs pass through once they parse, a
    file path becomes an SQLite URL to its absolute path. An empty value or a
    malformed URL is bad input named by ``field``."""
    db = db.strip()
    if not db:
        raise RegistryInputError(field, "must be a database URL or a file path, got an empty string")
    if "://" in db:
        parse_url(db, field)
        file = sqlite_file(db)
        if file is not None and file.is_dir():
            raise RegistryInputError(field, f"is a folder, not an SQLite file: {file}")
        return db
    if db == ":memory:":
        return "sqlite://"
    path = Path(db).expanduser().resolve()
    if path.is_dir():
        raise RegistryInputError(field, f"is a folder, not an SQLite file: {path}")
    return "sqlite:///" + str(path)


class Registry:
    """The runs and plans recorded in one database.

    Opening a database that exists connects and, on its first use by this
    wager, migrates its schema to the newest revision; an unreachable or
    malformed database raises ``RegistryError`` here rather than after
    inference has run. An SQLite file that does not exist yet is only checked
    to be creatable: ``create`` makes it, at the first write, and until then
    the registry reads as empty.
    """

    def __init__(self, url: str | None = None) -> None:
        self._url = as_url(url) if url is not None else default_url()
        self._engine = open_engine(self._url)
        self._writer = writer(self._engine)
        self._file = sqlite_file(self._url)
        self._created = False
        if self._file is not None and not self._file.exists():
            check_creatable(self._file, self._url)
            return
        try:
            self.create()
        except BaseException:
            self._engine.dispose()
            raise

    def create(self) -> None:
        """Create the database if it does not exist (an SQLite file and its
        folders) and bring its schema to the newest revision; once per registry.
        Every write calls it first."""
        if self._created:
            return
        if self._file is not None:
            make_folder(self._file.parent, self._url)
        ensure_schema(self._engine, self._url)
        self._created = True

    def _reader(self) -> sa.Engine:
        """Where reads go: the database, or, while its SQLite file does not exist,
        an empty database of the same tables (reading creates nothing)."""
        if not self._created and self._file is not None and not self._file.exists():
            return empty_database()
        self.create()  # another process created the file since this registry was opened
        return self._engine

    def _begin_write(self) -> Any:
        """A write transaction holding the write lock, on a database created if need be."""
        self.create()
        return self._writer.begin()

    @property
    def url(self) -> str:
        """The database URL, password masked."""
        return mask(self._url)

    def __repr__(self) -> str:
        return f"Registry({self.url!r})"

    # -- runs --------------------------------------------------------------

    def record(self, manifest: dict, result: dict, netcdf: bytes, run_id: str | None = None) -> RunRecord:
        """Record a run whole: posterior blob (stored once per sha256) and run
        row in one transaction, so a kill at any moment leaves either both or
        neither. Returns the record as stored."""
        columns = _summary_columns(manifest, result)
        manifest_text = _canonical_json(manifest, "manifest")
        result_text = _canonical_json(result, "result")
        if not isinstance(netcdf, (bytes, bytearray, memoryview)):
            raise RegistryError(f"netcdf: must be the posterior's NetCDF bytes, got {type(netcdf).__name__}")
        blob = bytes(netcdf)
        digest = hashlib.sha256(blob).hexdigest()
        if run_id is not None:
            _check_id(run_id, "run_id")
        created_at = _now()
        with database_errors(self._url, "recording a run"), self._begin_write() as conn:
            if run_id is None:
                run_id = _fresh_id(conn, runs.c.run_id)
            elif conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id == run_id)).first():
                raise RegistryError(f"run_id {run_id!r}: already recorded; run ids must be unique")
            # Skip sending the bytes when the posterior is already stored.
            if conn.execute(sa.select(posteriors.c.digest).where(posteriors.c.digest == digest)).first() is None:
                _insert_if_absent(conn, posteriors, {"digest": digest, "size": len(blob), "netcdf": blob})
            conn.execute(
                runs.insert().values(
                    run_id=run_id,
                    created_at=created_at,
                    manifest=manifest_text,
                    result=result_text,
                    posterior_digest=digest,
                    **columns,
                )
            )
        return RunRecord(
            run_id=run_id,
            created_at=created_at,
            manifest=json.loads(manifest_text),
            result=json.loads(result_text),
            posterior_digest=digest,
            posterior_bytes=blob,
        )

    def resolve(self, ref: str) -> str:
        """The full run id for ``ref``: a full id, a unique prefix or ``latest``."""
        with database_errors(self._url, "finding a run"), self._reader().connect() as conn:
            return _resolve(conn, runs.c.run_id, runs.c.created_at, ref, "run")

    def load(self, ref: str) -> RunRecord:
        """The run ``ref`` names (see ``resolve``), with its posterior bytes,
        checked against their content address."""
        with database_errors(self._url, "loading a run"), self._reader().connect() as conn:
            run_id = _resolve(conn, runs.c.run_id, runs.c.created_at, ref, "run")
            row = conn.execute(
                sa.select(runs.c.run_id, runs.c.created_at, runs.c.manifest, runs.c.result, runs.c.posterior_digest, posteriors.c.netcdf)
                .join(posteriors, posteriors.c.digest == runs.c.posterior_digest)
                .where(runs.c.run_id == run_id)
            ).one()
        blob = bytes(row.netcdf)
        if hashlib.sha256(blob).hexdigest() != row.posterior_digest:
            raise RegistryError(f"run {run_id!r}: stored posterior does not match its sha256 {row.posterior_digest}; the database is damaged")
        return RunRecord(
            run_id=row.run_id,
            created_at=row.created_at,
            manifest=json.loads(row.manifest),
            result=json.loads(row.result),
            posterior_digest=row.posterior_digest,
            posterior_bytes=blob,
        )

    def list(self, limit: int | None = 20, domain: str | None = None, status: str | None = None) -> list[RunSummary]:
        """Recorded runs, newest first, at most ``limit`` (``None``: all)."""
        query = sa.select(
            runs.c.run_id,
            runs.c.created_at,
            runs.c.domain,
            runs.c.name,
            runs.c.status,
            runs.c.action,
            runs.c.engine,
            runs.c.identity_hash,
        ).order_by(runs.c.created_at.desc(), runs.c.run_id.desc())
        if domain is not None:
            query = query.where(runs.c.domain == domain)
        if status is not None:
            query = query.where(runs.c.status == status)
        if limit is not None:
            if limit < 1:
                raise RegistryError(f"limit: must be at least 1 (or None for all), got {limit}")
            query = query.limit(limit)
        with database_errors(self._url, "listing runs"), self._reader().connect() as conn:
            return [RunSummary(**row._mapping) for row in conn.execute(query)]

    def runs_named(self, domain: str, name: str | None, before: str | None = None) -> int:
        """How many runs of exactly this ``domain`` and ``name`` are recorded (before ``before``, a
        ``created_at`` timestamp, when given): whether a plan came before the data."""
        query = sa.select(sa.func.count()).select_from(runs).where(runs.c.domain == domain, runs.c.name == name)
        if before is not None:
            query = query.where(runs.c.created_at < before)
        with database_errors(self._url, "counting runs"), self._reader().connect() as conn:
            return int(conn.execute(query).scalar_one())

    def count(self) -> int:
        """How many runs are recorded."""
        with database_errors(self._url, "counting runs"), self._reader().connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar_one())

    # -- plans -------------------------------------------------------------

    def record_plan(self, domain: str, name: str | None, policy: dict, policy_hash: str) -> PlanRecord:
        """Save a decision policy for ``domain`` (and spec ``name``)."""
        if not domain:
            raise RegistryError("domain: a plan needs the domain it applies to")
        policy_text = _canonical_json(policy, "policy")
        created_at = _now()
        with database_errors(self._url, "recording a plan"), self._begin_write() as conn:
            plan_id = _fresh_id(conn, plans.c.plan_id)
            conn.execute(
                plans.insert().values(
                    plan_id=plan_id, created_at=created_at, domain=domain, name=name, policy=policy_text, policy_hash=policy_hash
                )
            )
        return PlanRecord(plan_id, created_at, domain, name, json.loads(policy_text), policy_hash)

    def latest_plan(self, domain: str, name: str | None) -> PlanRecord | None:
        """The newest plan saved for exactly this ``domain`` and ``name``
        (``name=None`` matches plans saved without a name), or ``None``."""
        query = (
            sa.select(plans)
            .where(plans.c.domain == domain, plans.c.name == name)  # == None renders IS NULL
            .order_by(plans.c.created_at.desc(), plans.c.plan_id.desc())
            .limit(1)
        )
        with database_errors(self._url, "finding a plan"), self._reader().connect() as conn:
            row = conn.execute(query).first()
        return _plan(row) if row is not None else None

    def load_plan(self, ref: str) -> PlanRecord:
        """The plan ``ref`` names: a full id, a unique prefix or ``latest``."""
        with database_errors(self._url, "loading a plan"), self._reader().connect() as conn:
            plan_id = _resolve(conn, plans.c.plan_id, plans.c.created_at, ref, "plan")
            row = conn.execute(sa.select(plans).where(plans.c.plan_id == plan_id)).one()
        return _plan(row)

    # -- validations -------------------------------------------------------

    def record_validation(self, run_id: str, passed: bool, document: dict) -> str:
        """Keep the verdict of ``wager validate`` on run ``run_id``; returns its id."""
        text = _canonical_json(document, "validation")
        with database_errors(self._url, "recording a validation"), self._begin_write() as conn:
            run = _resolve(conn, runs.c.run_id, runs.c.created_at, run_id, "run")
            validation_id = _fresh_id(conn, validations.c.validation_id)
            conn.execute(
                validations.insert().values(validation_id=validation_id, run_id=run, created_at=_now(), passed=passed, document=text)
            )
        return validation_id

    def validations(self, run_id: str) -> list[dict]:
        """Every validation of run ``run_id``, newest first: ``{validation_id, created_at, passed, document}``."""
        query = (
            sa.select(validations)
            .where(validations.c.run_id == run_id)
            .order_by(validations.c.created_at.desc(), validations.c.validation_id.desc())
        )
        with database_errors(self._url, "loading validations"), self._reader().connect() as conn:
            rows = conn.execute(query).all()
        return [
            {"validation_id": r.validation_id, "created_at": r.created_at, "passed": bool(r.passed), "document": json.loads(r.document)}
            for r in rows
        ]

    # -- lifetime ----------------------------------------------------------

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def __enter__(self) -> "Registry":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc_value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _now() -> str:
    # Fixed width (always microseconds, always +00:00): text order is time order.
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _canonical_json(document: Any, what: str) -> str:
    """Sorted keys, no whitespace: the same document is the same text on any
    database. NaN and infinities are kept (Python's JSON dialect) because a
    failed gate may legitimately report R-hat = NaN."""
    if not isinstance(document, dict):
        raise RegistryError(f"{what}: must be a dict, got {type(document).__name__}")
    try:
        return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as error:
        raise RegistryError(f"{what}: must be JSON-serialisable ({error})") from None


def _summary_columns(manifest: dict, result: dict) -> dict[str, Any]:
    """The columns ``list`` reads, so listing never parses JSON or blobs."""
    if not isinstance(manifest, dict) or not isinstance(result, dict):
        raise RegistryError("manifest, result: must be dicts")
    identity = manifest.get("identity")
    identity_hash = manifest.get("identity_hash")
    if not isinstance(identity_hash, str) or not identity_hash:
        raise RegistryError("manifest.identity_hash: is required (a non-empty string)")
    if not isinstance(identity, dict) or not identity.get("domain"):
        raise RegistryError("manifest.identity.domain: is required")
    status = result.get("status")
    if not isinstance(status, str) or not status:
        raise RegistryError(f"result.status: is required (one of {', '.join(RUN_STATUSES)})")
    inference = result.get("inference") or manifest.get("inference") or {}
    engine = inference.get("engine") if isinstance(inference, dict) else None
    return {
        "identity_hash": identity_hash,
        "domain": str(identity["domain"]),
        "name": identity.get("name"),
        "status": status,
        "action": result.get("action"),
        "engine": engine if engine is None else str(engine),
    }


def _check_id(run_id: str, what: str) -> None:
    if not isinstance(run_id, str) or not run_id or len(run_id) > 64 or run_id == LATEST:
        raise RegistryError(f"{what}: must be a non-empty string of at most 64 characters other than 'latest', got {run_id!r}")
    if not all(c.isalnum() or c in "-_." for c in run_id):
        raise RegistryError(f"{what}: may hold only letters, digits, '-', '_' and '.', got {run_id!r}")


def _fresh_id(conn: sa.Connection, column: sa.Column) -> str:
    """12 random hex characters not yet used (48 bits: a collision is
    unlikely but not impossible over millions of runs, so check)."""
    while True:
        candidate = secrets.token_hex(6)
        if conn.execute(sa.select(column).where(column == candidate)).first() is None:
            return candidate


def _insert_if_absent(conn: sa.Connection, table: sa.Table, values: dict[str, Any]) -> None:
    """Insert unless the primary key exists, safe against a concurrent
    inserter of the same key (identical content, so either copy will do)."""
    dialect = conn.dialect.name
    if dialect in ("sqlite", "postgresql"):
        module = sqlite if dialect == "sqlite" else postgresql
        conn.execute(module.insert(table).values(**values).on_conflict_do_nothing())
        return
    try:
        with conn.begin_nested():
            conn.execute(table.insert().values(**values))
    except exc.IntegrityError:
        pass


def _resolve(conn: sa.Connection, id_column: sa.Column, time_column: sa.Column, ref: str, what: str) -> str:
    """The one id ``ref`` names: itself, the only id it is a prefix of, or the newest
    (``latest``). A reference that names none or several is bad input, named by the
    argument that took it (``RUN``, ``PLAN``)."""
    field = what.upper()
    ref = (ref or "").strip()
    if not ref:
        raise RegistryInputError(field, "must be a full id, a unique prefix or 'latest', got an empty string")
    if ref == LATEST:
        found = conn.execute(sa.select(id_column).order_by(time_column.desc(), id_column.desc()).limit(1)).scalar()
        if found is None:
            raise RegistryInputError(field, f"'latest' names no {what}: the registry has no {what}s yet")
        return found
    if conn.execute(sa.select(id_column).where(id_column == ref)).first() is not None:
        return ref
    matches = list(conn.execute(sa.select(id_column).where(id_column.startswith(ref, autoescape=True)).order_by(id_column).limit(3)).scalars())
    if not matches:
        raise RegistryInputError(field, f"no {what} has the id or id prefix {ref!r}")
    if len(matches) > 1:
        shown = ", ".join(matches[:2]) + (", ..." if len(matches) > 2 else "")
        raise RegistryInputError(field, f"{ref!r} is a prefix of several {what}s ({shown}); give more characters")
    return matches[0]


def _plan(row: sa.Row) -> PlanRecord:
    return PlanRecord(
        plan_id=row.plan_id,
        created_at=row.created_at,
        domain=row.domain,
        name=row.name,
        policy=json.loads(row.policy),
        policy_hash=row.policy_hash,
    )
