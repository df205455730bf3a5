"""Databases for the store's tests: a SQLite file, and a real PostgreSQL server.

The PostgreSQL server (Debian's `postgresql`, see `tests/pg.py`) is started once per test
session on a loopback port; each test gets its own empty database on it. Without the server
binaries the PostgreSQL tests are skipped, except under CI (`CI` set), where they fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.pg import PostgresServer, PostgresUnavailable


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session."""
    try:
        server = PostgresServer.start()
    except PostgresUnavailable as error:
        _unavailable(str(error))
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres: PostgresServer) -> Iterator[str]:
    """A fresh, empty PostgreSQL database of its own."""
    url = postgres.create_database()
    yield url
    postgres.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """The URL of an empty database: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    return request.getfixturevalue("pg_url")
