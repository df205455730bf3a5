"""A throwaway PostgreSQL server for tests: Debian's binaries, a fresh cluster, a loopback port.

PostgreSQL refuses to run as root, so when the tests run as root the cluster belongs to the
`postgres` system user (Debian's package creates it) and every server command runs through
`runuser`. The cluster lives in a private temporary directory and is deleted on `stop()`.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from harness.target import free_port

__all__ = ["PostgresServer", "PostgresUnavailable", "find_bindir"]

SUPERUSER = "postvoice"
_SERVICE_USER = "postgres"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine, or the server would not start."""


def find_bindir() -> Path | None:
    """Where `initdb` and `pg_ctl` are: Debian's versioned folder (newest first), or PATH."""
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    for folder in versions:
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(os.path.realpath(initdb)).parent
    return None


def _service_account() -> pwd.struct_passwd:
    """The unprivileged user a root test run starts PostgreSQL as (created if missing)."""
    try:
        return pwd.getpwnam(_SERVICE_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                _SERVICE_USER,
            ],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(_SERVICE_USER)


@dataclass
class PostgresServer:
    """One running PostgreSQL cluster; `create_database()` hands out empty databases."""

    bindir: Path
    root: Path
    port: int
    run_as: str | None = None
    _stopped: bool = field(default=False, repr=False)

    @classmethod
    def start(cls, bindir: Path | None = None) -> PostgresServer:
        """initdb a cluster in a temporary directory and start it on a free loopback port."""
        bindir = bindir or find_bindir()
        if bindir is None:
            raise PostgresUnavailable(
                "PostgreSQL server binaries (initdb, pg_ctl) not found in "
                "/usr/lib/postgresql/*/bin or on PATH: install Debian's `postgresql` "
                "(make test-deps)"
            )
        root = Path(tempfile.mkdtemp(prefix="postvoice-pg-"))
        run_as = None
        if os.geteuid() == 0:
            account = _service_account()
            os.chown(root, account.pw_uid, account.pw_gid)
            run_as = account.pw_name
        server = cls(bindir, root, free_port(), run_as)
        atexit.register(server.stop)
        try:
            server._initdb()
            server._pg_ctl_start()
        except (subprocess.CalledProcessError, OSError) as error:
            log = server.root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            server.stop()
            detail = getattr(error, "stderr", "") or ""
            raise PostgresUnavailable(
                f"PostgreSQL did not start: {error}\n{detail}\n{tail}"
            ) from error
        return server

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        return subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)

    def _initdb(self) -> None:
        self._run(
            "initdb",
            "-D", str(self.root / "data"),
            "-U", SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )  # fmt: skip

    def _pg_ctl_start(self) -> None:
        # Durability settings off: the tests kill processes, never the machine.
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._run(
            "pg_ctl", "-D", str(self.root / "data"), "-l", str(self.root / "server.log"),
            "-w", "-t", "60", "-o", options, "start",
        )  # fmt: skip

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of `database` on this server (psycopg 3)."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        import psycopg

        dsn = f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; its URL."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by `create_database`, closing its connections."""
        name = url.rsplit("/", 1)[-1]
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the server and delete the cluster."""
        if self._stopped:
            return
        self._stopped = True
        if (self.root / "data" / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
