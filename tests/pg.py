"""A real, throw-away PostgreSQL server for the tests and benches.

``cluster()`` starts one cluster per process (initdb in a temporary
directory, a free port, the unix socket inside that directory, no TCP) and
stops it at exit.  A watchdog process stops it too if this process dies
without running its exit handlers (SIGKILL), so no server is left behind.

PostgreSQL refuses to run as root: when we are root, the cluster is created
and run by an unprivileged ``huqi-pg`` user (created if missing).

The binaries are looked up on the PATH, then in Debian's
``/usr/lib/postgresql/<version>/bin``.  Only if none exist does
:func:`require_cluster` skip, saying so.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from typing import Optional

PG_USER = "huqi-pg"
SUPERUSER = "postgres"


def find_bindir() -> Optional[str]:
    """The directory holding initdb, pg_ctl and postgres, or None."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return os.path.dirname(os.path.realpath(on_path))
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(d, "pg_ctl")) and os.path.exists(os.path.join(d, "initdb")):
            return d
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ensure_user() -> None:
    try:
        import pwd

        pwd.getpwnam(PG_USER)
    except KeyError:
        done = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
            capture_output=True, text=True,
        )
        if done.returncode != 0:
            try:
                pwd.getpwnam(PG_USER)  # another process created it meanwhile
            except KeyError:
                raise RuntimeError(f"cannot create the {PG_USER} user to run PostgreSQL: {done.stderr.strip()}")


_WATCHDOG = r"""
import os, shutil, subprocess, sys
sys.stdin.read()          # returns when the parent exits, however it exits
cmd = sys.argv[1:-1]
subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
shutil.rmtree(sys.argv[-1], ignore_errors=True)
"""


class Cluster:
    """One running PostgreSQL server in a temporary directory."""

    def __init__(self, bindir: str, durable: bool = False, max_connections: int = 300):
        self.bindir = bindir
        self.durable = durable
        self.max_connections = max_connections
        self.root = tempfile.mkdtemp(prefix="huqi-pg-")
        os.chmod(self.root, 0o755)
        self.datadir = os.path.join(self.root, "data")
        self.sockdir = os.path.join(self.root, "sock")
        self.port = _free_port()
        self._as_user: list[str] = []
        self._watchdog: Optional[subprocess.Popen] = None
        self.running = False

    def _run(self, *args: str, **kw) -> subprocess.CompletedProcess:
        cmd = self._as_user + [os.path.join(self.bindir, args[0]), *args[1:]]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)

    def start(self) -> "Cluster":
        os.makedirs(self.sockdir)
        if os.geteuid() == 0:
            _ensure_user()
            shutil.chown(self.root, PG_USER)
            shutil.chown(self.sockdir, PG_USER)
            self._as_user = ["runuser", "-u", PG_USER, "--"]
        self._run("initdb", "-D", self.datadir, "-U", SUPERUSER, "--auth=trust",
                  "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")
        opts = [
            f"-p {self.port}", "-c listen_addresses=''", f"-k {self.sockdir}",
            f"-c max_connections={self.max_connections}", "-c shared_buffers=64MB",
        ]
        if not self.durable:
            opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self.start_server(opts)
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, *self._as_user,
             os.path.join(self.bindir, "pg_ctl"), "stop", "-D", self.datadir, "-m", "immediate",
             self.root],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        return self

    def start_server(self, opts: Optional[list] = None) -> None:
        if opts is not None:
            self._opts = " ".join(opts)
        self._run("pg_ctl", "start", "-D", self.datadir, "-w", "-t", "60",
                  "-l", os.path.join(self.root, "server.log"), "-o", self._opts)
        self.running = True

    def stop_server(self, mode: str = "fast") -> None:
        """Stop the server (keeping its data): ``start_server()`` brings it back."""
        if self.running:
            self._run("pg_ctl", "stop", "-D", self.datadir, "-m", mode, "-w")
            self.running = False

    def destroy(self) -> None:
        try:
            self.stop_server("immediate")
        except (subprocess.CalledProcessError, OSError):
            pass
        shutil.rmtree(self.root, ignore_errors=True)
        if self._watchdog is not None:
            try:
                self._watchdog.stdin.close()
                self._watchdog.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
            self._watchdog = None

    # -- databases -------------------------------------------------------

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@/{dbname}?host={self.sockdir}&port={self.port}"

    def create_database(self, name: Optional[str] = None) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = name or "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


_CLUSTER: Optional[Cluster] = None


def cluster() -> Optional[Cluster]:
    """The process's cluster (started on first use), or None without binaries."""
    global _CLUSTER
    if _CLUSTER is None:
        bindir = find_bindir()
        if bindir is None:
            return None
        _CLUSTER = Cluster(bindir).start()
        atexit.register(_CLUSTER.destroy)
    return _CLUSTER


def require_cluster() -> Cluster:
    """The cluster, or skip the test if PostgreSQL is not installed."""
    import pytest

    c = cluster()
    if c is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found on PATH "
                    "or in /usr/lib/postgresql/*/bin")
    return c


_TABLES = "cases, case_history, reminders, retired_case_ids, conversation_states, outbox"
_MIGRATED: set = set()


async def database(name: str = "huqi_test") -> str:
    """URL of a migrated database on the cluster, emptied of data; skips the
    test without PostgreSQL.  One database per name and process: the first
    call creates and migrates it, later calls truncate its tables."""
    import psycopg

    from bot.store.migrations import migrate

    c = require_cluster()
    url = c.url(name)
    if name not in _MIGRATED:
        c.create_database(name)
        await migrate(url)
        _MIGRATED.add(name)
    else:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE")
    return url
