"""Alembic environment for the run registry.

wager runs migrations programmatically (``wager.workflow.registry_store``): it
builds the Alembic ``Config`` in code and hands over a connection that is
already inside the transaction holding the migration lock, so the version
check and the upgrade happen under one lock. No ``alembic.ini`` is needed at
runtime.

For a maintainer, ``alembic -x url=sqlite:///path.sqlite upgrade head`` (with
``script_location`` pointing here) also works: without a handed-over
connection this file opens one from the ``url`` argument.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from wager.workflow.registry_store import VERSION_TABLE

config = context.config


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: pass -x url=... or set sqlalchemy.url")
    return url


def run_migrations_offline() -> None:
    """Emit the SQL instead of running it (``alembic upgrade head --sql``)."""
    context.configure(url=_url(), literal_binds=True, version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        # wager's own path: the caller owns the transaction (and the lock).
        context.configure(connection=connection, version_table=VERSION_TABLE)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url())
    try:
        with engine.begin() as conn:
            context.configure(connection=conn, version_table=VERSION_TABLE)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
