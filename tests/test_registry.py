"""The run registry: a run is recorded whole or not at all, concurrent
writers lose nothing, and every recorded run loads back byte for byte.

The database tests run on SQLite (a temp file) and on PostgreSQL (a fresh
schema per test at ``WAGER_TEST_POSTGRES_URL``, default the local server);
PostgreSQL tests skip, visibly, only when the server cannot be reached.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
import sqlalchemy as sa

from wager.errors import SpecError
from wager.workflow.registry import Registry, RegistryError, RegistryInputError, as_url, default_url
from wager.workflow.registry_store import HEAD_REVISION, MIGRATIONS, VERSION_TABLE

POSTGRES_URL = os.environ.get("WAGER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SRC = str(Path(__file__).resolve().parents[1] / "src")


def manifest(key: str, domain: str = "ab", name: str | None = "checkout") -> dict:
    return {"identity_hash": hashlib.sha256(key.encode()).hexdigest(), "identity": {"domain": domain, "name": name}, "seed": 7}


def result(status: str = "decided", action: str | None = "ship") -> dict:
    return {"status": status, "action": action, "inference": {"engine": "exact"}, "gates": {"passed": status == "decided"}}


# -- databases ------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'registry.sqlite'}"


@pytest.fixture
def postgresql_url() -> Iterator[str]:
    """A URL whose connections live in a fresh schema (Alembic's version
    table included), dropped afterwards: tests never share tables."""
    schema = f"wager_test_{secrets.token_hex(6)}"
    admin = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as error:
        admin.dispose()
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} unreachable: {str(error.orig).splitlines()[0]}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(f"{request.param}_url")


# -- record and load ------------------------------------------------------


def test_a_recorded_run_loads_back_identical_by_id_prefix_and_latest(db_url: str) -> None:
    with Registry(db_url) as registry:
        first = registry.record(manifest("one"), result(), b"CDF\x01 fake posterior one")
        second = registry.record(manifest("two"), result("blocked", None), b"CDF\x01 fake posterior two", run_id="abc123def456")

        loaded = registry.load(first.run_id)
        assert loaded.manifest == manifest("one")
        assert loaded.result == result()
        assert loaded.netcdf() == b"CDF\x01 fake posterior one"
        assert loaded.posterior_digest == hashlib.sha256(b"CDF\x01 fake posterior one").hexdigest()
        assert loaded == first

        assert registry.resolve(first.run_id[:5]) == first.run_id
        assert registry.load("abc1").run_id == "abc123def456"
        assert registry.resolve("latest") == second.run_id
        assert registry.count() == 2


def test_an_unknown_or_ambiguous_reference_names_the_reference(db_url: str) -> None:
    with Registry(db_url) as registry:
        with pytest.raises(RegistryError, match="'latest'.*no runs"):
            registry.load("latest")
        registry.record(manifest("a"), result(), b"a", run_id="aa0001")
        registry.record(manifest("b"), result(), b"b", run_id="aa0002")
        with pytest.raises(RegistryError, match="'aa'.*several runs.*aa0001, aa0002"):
            registry.load("aa")
        with pytest.raises(RegistryError, match="no run .*'ff'"):
            registry.resolve("ff")
        with pytest.raises(RegistryError, match="'aa0001'.*already recorded"):
            registry.record(manifest("c"), result(), b"c", run_id="aa0001")
        with pytest.raises(RegistryError, match="manifest.identity_hash"):
            registry.record({"identity": {"domain": "ab"}}, result(), b"c")
        assert registry.count() == 2


def test_list_is_newest_first_and_filters_on_domain_and_status(sqlite_url: str) -> None:
    with Registry(sqlite_url) as registry:
        ids = [
            registry.record(manifest("1"), result(), b"1").run_id,
            registry.record(manifest("2", domain="forecast", name=None), result(), b"2").run_id,
            registry.record(manifest("3"), result("blocked", None), b"3").run_id,
        ]
        rows = registry.list()
        assert [row.run_id for row in rows] == ids[::-1]
        assert rows[0].status == "blocked" and rows[0].action is None and rows[0].engine == "exact"
        assert rows[1].domain == "forecast" and rows[1].name is None
        assert rows[2].identity_hash == manifest("1")["identity_hash"]
        assert [row.run_id for row in registry.list(limit=1)] == [ids[2]]
        assert [row.run_id for row in registry.list(domain="ab")] == [ids[2], ids[0]]
        assert [row.run_id for row in registry.list(domain="ab", status="decided")] == [ids[0]]


def test_a_real_arviz_posterior_round_trips_through_the_registry(tmp_path: Path, sqlite_url: str) -> None:
    az = pytest.importorskip("arviz")
    import numpy as np

    draws = np.random.default_rng(1).normal(size=(2, 50))
    written = tmp_path / "posterior.nc"
    az.from_dict(posterior={"x": draws}).to_netcdf(str(written))
    netcdf = written.read_bytes()

    with Registry(sqlite_url) as registry:
        run_id = registry.record(manifest("arviz"), result(), netcdf).run_id
    with Registry(sqlite_url) as registry:  # a fresh connection, as `wager runs show` would
        stored = registry.load(run_id).netcdf()

    assert stored == netcdf
    reread = tmp_path / "reread.nc"
    reread.write_bytes(stored)
    idata = az.from_netcdf(str(reread))
    assert idata.posterior["x"].shape == (2, 50)
    np.testing.assert_array_equal(idata.posterior["x"].values, draws)


def test_identical_posteriors_are_stored_once(db_url: str) -> None:
    with Registry(db_url) as registry:
        first = registry.record(manifest("one"), result(), b"same bytes")
        second = registry.record(manifest("two"), result(), b"same bytes")
        third = registry.record(manifest("three"), result(), b"other bytes")
        assert first.posterior_digest == second.posterior_digest != third.posterior_digest
        assert registry.load(second.run_id).netcdf() == b"same bytes"
    assert table_count(db_url, "posteriors") == 2
    assert table_count(db_url, "runs") == 3


# -- plans ----------------------------------------------------------------


def test_plans_round_trip_and_the_latest_is_per_domain_and_name(db_url: str) -> None:
    with Registry(db_url) as registry:
        assert registry.latest_plan("ab", "checkout") is None
        old = registry.record_plan("ab", "checkout", {"actions": ["ship", "hold"], "margin": 0.01}, "h1")
        new = registry.record_plan("ab", "checkout", {"actions": ["ship", "hold"], "margin": 0.02}, "h2")
        unnamed = registry.record_plan("ab", None, {"margin": 0.0}, "h3")

        assert registry.latest_plan("ab", "checkout") == new
        assert registry.latest_plan("ab", None) == unnamed
        assert registry.latest_plan("forecast", None) is None
        assert registry.load_plan(old.plan_id) == old
        assert registry.load_plan(old.plan_id[:6]).policy == {"actions": ["ship", "hold"], "margin": 0.01}
        assert registry.load_plan("latest") == unnamed
        with pytest.raises(RegistryError, match="^PLAN: no plan has the id or id prefix 'zz'"):
            registry.load_plan("zz")


# -- crash safety ---------------------------------------------------------

# Records runs with 6 MB posteriors (a write takes tens of milliseconds)
# until killed, announcing each attempt on stdout before it starts.
RECORD_UNTIL_KILLED = r"""
import os, sys
from wager.workflow.registry import Registry
url, attempt = sys.argv[1], sys.argv[2]
registry = Registry(url)
i = 0
while True:
    blob = os.urandom(6_000_000)
    key = f"{attempt}-{i}"
    print(f"writing {key}", flush=True)
    registry.record({"identity_hash": key, "identity": {"domain": "ab", "name": key}}, {"status": "decided", "action": "ship"}, blob)
    print(f"done {key}", flush=True)
    i += 1
"""


def wait_for_backends_to_end(url: str, application_name: str, timeout: float = 30.0) -> None:
    """Block until the server has finished every connection named ``application_name``
    (a killed client's backend ends when the server notices the closed socket)."""
    engine = sa.create_engine(url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as conn:
                alive = conn.execute(
                    sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"), {"name": application_name}
                ).scalar_one()
            if alive == 0:
                return
            assert time.monotonic() < deadline, f"{alive} backends of killed writers still alive after {timeout} s"
            time.sleep(0.05)
    finally:
        engine.dispose()


def test_a_writer_killed_mid_record_leaves_only_whole_runs(db_url: str) -> None:
    with Registry(db_url) as registry:
        registry.create()  # migrated up front: every kill lands in record()
    delays = [0.0, 0.015, 0.04, 0.08]
    attempted: list[str] = []  # runs whose record() had started when the kill came
    committed: list[str] = []  # runs whose record() returned
    # On PostgreSQL a COMMIT the child sent just before dying still lands after it
    # is dead; its connections carry a name so the test waits for them to end.
    tag = f"wager_killed_{secrets.token_hex(4)}"
    child_url = f"{db_url}&application_name={tag}" if db_url.startswith("postgresql") else db_url
    for attempt, delay in enumerate(delays):
        child = subprocess.Popen(
            [sys.executable, "-c", RECORD_UNTIL_KILLED, child_url, str(attempt)],
            stdout=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        watchdog = threading.Timer(60, child.kill)
        watchdog.start()
        try:
            # Let one run finish, then kill the second one `delay` after it starts.
            for line in child.stdout:
                kind, key = line.split()
                (attempted if kind == "writing" else committed).append(key)
                if line.startswith("writing") and key.endswith("-1"):
                    break
            time.sleep(delay)
            os.kill(child.pid, signal.SIGKILL)
            for line in child.stdout:  # whatever it printed before dying
                kind, key = line.split()
                (attempted if kind == "writing" else committed).append(key)
        finally:
            watchdog.cancel()
            child.wait()
        assert child.returncode == -signal.SIGKILL
    if db_url.startswith("postgresql"):
        wait_for_backends_to_end(db_url, tag)

    with Registry(db_url) as registry:
        listed = registry.list(limit=None)
        names = {row.name for row in listed}
        for row in listed:
            record = registry.load(row.run_id)
            assert hashlib.sha256(record.netcdf()).hexdigest() == record.posterior_digest
            assert len(record.netcdf()) == 6_000_000
        assert registry.count() == len(listed)
    assert set(committed) <= names <= set(attempted)
    assert len(committed) >= len(delays)  # every attempt finished its first run
    # At least one kill landed before its run committed (else nothing was tested).
    assert names < set(attempted)
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        orphans = conn.execute(
            sa.text("SELECT count(*) FROM runs LEFT JOIN posteriors ON posteriors.digest = runs.posterior_digest WHERE posteriors.digest IS NULL")
        ).scalar_one()
        if engine.dialect.name == "sqlite":
            assert conn.execute(sa.text("PRAGMA integrity_check")).scalar_one() == "ok"
    engine.dispose()
    assert orphans == 0


# -- concurrency ----------------------------------------------------------

# Waits for the start file so that all workers open the brand-new database
# (and race to migrate it) at the same moment, then records 25 runs. Every
# fifth posterior is the same bytes in every worker: concurrent inserts of one
# content address.
RECORD_25 = r"""
import os, sys, time
from wager.workflow.registry import Registry
url, worker, start = sys.argv[1], sys.argv[2], sys.argv[3]
print("ready", flush=True)
while not os.path.exists(start):
    time.sleep(0.002)
with Registry(url) as registry:
    for i in range(25):
        blob = b"shared posterior" if i % 5 == 0 else f"posterior {worker}-{i}".encode()
        registry.record({"identity_hash": f"{worker}-{i}", "identity": {"domain": "ab", "name": worker}}, {"status": "decided", "action": "ship"}, blob)
"""


def test_four_processes_recording_at_once_into_a_new_database_lose_nothing(db_url: str, tmp_path: Path) -> None:
    start = tmp_path / "start"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", RECORD_25, db_url, f"w{n}", str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        for n in range(4)
    ]
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready"
    start.touch()
    for worker in workers:
        _, stderr = worker.communicate(timeout=120)
        assert worker.returncode == 0, stderr

    with Registry(db_url) as registry:
        listed = registry.list(limit=None)
        assert registry.count() == 100
        assert len({row.run_id for row in listed}) == 100
        assert {row.identity_hash for row in listed} == {f"w{n}-{i}" for n in range(4) for i in range(25)}
        for row in listed:
            record = registry.load(row.run_id)
            assert hashlib.sha256(record.netcdf()).hexdigest() == record.posterior_digest
    assert table_count(db_url, "posteriors") == 1 + 4 * 20
    assert schema_revision(db_url) == HEAD_REVISION


# -- schema migrations ----------------------------------------------------


def test_a_new_database_is_migrated_to_the_alembic_head(db_url: str) -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head == HEAD_REVISION  # the constant that lets an open skip Alembic
    with Registry(db_url) as registry:
        registry.create()
    assert schema_revision(db_url) == head


def test_opening_a_migrated_database_does_not_run_alembic_again(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import alembic.command

    with Registry(db_url) as registry:
        registry.create()

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("upgrade ran on an up-to-date database")

    monkeypatch.setattr(alembic.command, "upgrade", refuse)
    started = time.perf_counter()
    Registry(db_url).close()
    assert time.perf_counter() - started < 1.0


def test_a_database_from_a_newer_wager_is_refused_by_name(sqlite_url: str) -> None:
    with Registry(sqlite_url) as registry:
        registry.create()
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(RegistryError, match="revision '9999'.*newer wager"):
        Registry(sqlite_url)


# -- where the registry is ------------------------------------------------


def test_default_url_follows_wager_db_then_xdg_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WAGER_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_url() == f"sqlite:///{tmp_path / 'data' / 'wager' / 'registry.sqlite'}"
    assert not (tmp_path / "data").exists()  # made by the first recorded run

    monkeypatch.setenv("WAGER_DB", str(tmp_path / "team.sqlite"))
    assert default_url() == f"sqlite:///{tmp_path / 'team.sqlite'}"
    monkeypatch.setenv("WAGER_DB", "postgresql+psycopg://me@db.example/wager")
    assert default_url() == "postgresql+psycopg://me@db.example/wager"
    assert as_url("sqlite:///x.sqlite") == "sqlite:///x.sqlite"


def test_a_bad_or_unreachable_database_is_one_error_naming_the_masked_url() -> None:
    with pytest.raises(RegistryError, match=r"postgresql\+psycopg://me:\*\*\*@127.0.0.1:1/db: connecting failed") as raised:
        Registry("postgresql+psycopg://me:secret@127.0.0.1:1/db")
    assert "secret" not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_a_malformed_database_url_is_bad_input_named_by_where_it_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    for url in ("postgresql+psycopg://nobody@[::1/x", "://"):
        with pytest.raises(RegistryInputError, match="^--db: not a database URL") as raised:
            Registry(url)
        assert isinstance(raised.value, SpecError) and raised.value.field == "--db"
    with pytest.raises(RegistryInputError, match="^--db: unknown database kind 'nosuchdb'"):
        Registry("nosuchdb://x")  # a kind SQLAlchemy does not know: a typo, not a missing driver
    monkeypatch.setenv("WAGER_DB", "://")
    with pytest.raises(RegistryInputError, match="^WAGER_DB: not a database URL"):
        Registry()


def test_an_unknown_reference_is_bad_input_naming_the_argument(sqlite_url: str) -> None:
    with Registry(sqlite_url) as registry:
        registry.record(manifest("a"), result(), b"a", run_id="aa0001")
        for ref in ("", "ff", "latest-but-not"):
            with pytest.raises(SpecError) as raised:
                registry.load(ref)
            assert raised.value.field == "RUN"
        with pytest.raises(SpecError, match="^PLAN: 'latest' names no plan"):
            registry.load_plan("latest")


# -- a registry is created by its first write, never by reading it ---------


def test_opening_and_reading_a_registry_that_does_not_exist_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "team" / "wager" / "registry.sqlite"
    with Registry(str(path)) as registry:
        assert registry.list() == [] and registry.count() == 0
        assert registry.latest_plan("ab", "checkout") is None
        assert registry.validations("aa0001") == []
        with pytest.raises(RegistryError, match="'latest' names no run: the registry has no runs yet"):
            registry.load("latest")
        with pytest.raises(RegistryError, match="no run has the id or id prefix 'aa'"):
            registry.resolve("aa")
    assert list(tmp_path.iterdir()) == []


def test_the_first_write_creates_the_folders_the_file_and_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "team" / "wager" / "registry.sqlite"
    with Registry(str(path)) as registry:
        plan = registry.record_plan("ab", "checkout", {"margin": 0.01}, "h1")
        assert registry.latest_plan("ab", "checkout") == plan
    assert schema_revision(f"sqlite:///{path}") == HEAD_REVISION
    with Registry(str(path)) as reader:  # a second process reads what the first wrote
        assert reader.load_plan("latest") == plan


def test_a_registry_created_by_another_process_after_opening_is_read(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite"
    with Registry(str(path)) as reader, Registry(str(path)) as writer:
        assert reader.count() == 0
        run_id = writer.record(manifest("a"), result(), b"a").run_id
        assert reader.resolve("latest") == run_id


def test_a_registry_whose_file_could_not_be_created_is_refused_at_open(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file where the registry's folder should be")
    with pytest.raises(RegistryError, match=r"cannot create the folder .*taken/sub: .*taken is not a folder") as raised:
        Registry(str(tmp_path / "taken" / "sub" / "registry.sqlite"))
    assert not isinstance(raised.value, SpecError)  # the environment, not the input: exit 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


# -- helpers --------------------------------------------------------------


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    return env


def table_count(url: str, table: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
    finally:
        engine.dispose()


def schema_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()
    finally:
        engine.dispose()


def test_a_database_at_the_first_revision_is_upgraded_and_keeps_its_runs(db_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = sa.create_engine(db_url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")  # what the first wager with a registry created
    assert schema_revision(db_url) == "0001"
    digest = hashlib.sha256(b"x").hexdigest()
    with engine.begin() as connection:  # one run written under revision 0001
        connection.execute(sa.text("INSERT INTO posteriors (digest, size, netcdf) VALUES (:d, 1, :b)"), {"d": digest, "b": b"x"})
        connection.execute(sa.text(
            "INSERT INTO runs (run_id, created_at, identity_hash, domain, name, status, action, engine, manifest, result, posterior_digest) "
            "VALUES ('0123456789ab', '2026-11-25T00:00:00.000000+00:00', 'h', 'ab', 'old', 'decided', 'ship B', 'exact', '{}', '{}', :d)"
        ), {"d": digest})
    engine.dispose()
    with Registry(db_url) as registry:
        assert schema_revision(db_url) == HEAD_REVISION
        assert registry.load("0123").result == {}
        validation_id = registry.record_validation("0123", True, {"checks": []})
        assert [v["validation_id"] for v in registry.validations("0123456789ab")] == [validation_id]


def test_a_validation_of_an_unknown_run_is_refused(db_url: str) -> None:
    with Registry(db_url) as registry:
        with pytest.raises(RegistryError, match="nope"):
            registry.record_validation("nope", True, {})
