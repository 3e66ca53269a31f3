"""Alembic environment of the `meta` schema: core/schema.py is the target, geoalchemy2 renders spatial types."""

from __future__ import annotations

import os
from typing import Any

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy import Connection, create_engine, pool
from sqlalchemy.schema import CreateSchema

from core.schema import SCHEMA, metadata


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Compare only the project's own schema (never public, PostGIS' tables or the data schemas)."""
    return name == SCHEMA if type_ == "schema" else True


def _configure(**kw: Any) -> None:
    """context.configure with the options of this project (version table in `meta`, geoalchemy2 helpers)."""
    cfg = context.config
    context.configure(
        target_metadata=metadata,
        version_table=cfg.get_main_option("version_table") or "alembic_version",
        version_table_schema=cfg.get_main_option("version_table_schema") or SCHEMA,
        include_schemas=True,
        include_name=include_name,
        include_object=alembic_helpers.include_object,
        render_item=alembic_helpers.render_item,
        process_revision_directives=alembic_helpers.writer,
        compare_server_default=True,
        **kw,
    )


def run_offline() -> None:
    """Emit the SQL instead of running it (`alembic upgrade --sql`)."""
    url = context.config.get_main_option("sqlalchemy.url") or "postgresql://"
    _configure(url=url, literal_binds=True)
    with context.begin_transaction():
        context.execute(CreateSchema(SCHEMA, if_not_exists=True))
        context.run_migrations()


def run_online(connection: Connection) -> None:
    """Run the migrations on a connection (its transaction, when it has one, is the caller's)."""
    connection.execute(CreateSchema(SCHEMA, if_not_exists=True))  # the version table lives there
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    given = context.config.attributes.get("connection")
    if given is not None:
        run_online(given)
    else:
        url = context.config.get_main_option("sqlalchemy.url") or os.environ["DATABASE_URL"]
        engine = create_engine(url, poolclass=pool.NullPool)
        with engine.begin() as conn:
            run_online(conn)
        engine.dispose()
