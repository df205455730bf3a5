"""How alembic runs our migrations: on the caller's connection when given one
(`Store.migrate`), else on `-x url=…` or `sqlalchemy.url` (the alembic command line)."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from integrations.store import make_engine, migrated_metadata

config = context.config
target_metadata = list(migrated_metadata)
if config.config_file_name and "connection" not in config.attributes:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    url = url or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("say which database: alembic … -x url=sqlite:///var/postvoice.db")
    return url


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (connection := config.attributes.get("connection")) is not None:
    _run(connection)
else:
    # From the alembic command line: one developer, one connection, alembic's own transaction.
    with make_engine(_url()).connect() as cli_connection:
        _run(cli_connection)
