"""Versioned schema migrations for the PostgreSQL store.

Each ``NNNN_name.sql`` file in this directory is one version; applied
versions are recorded in ``schema_migrations``.  :func:`migrate` applies the
missing ones in order, each in its own transaction, under an advisory lock
(two processes migrating at once wait for each other).  :func:`check_schema`
is what a server calls at start: it refuses a database that is not exactly at
:data:`LATEST`, with a line saying what to run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit, urlunsplit

from bot.store import StoreError

__all__ = ["LATEST", "SchemaOutdated", "available", "migrate", "check_schema", "schema_version", "safe_url"]

_DIR = Path(__file__).parent
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
#: Advisory lock key held while migrating ("huqi" in ASCII).
MIGRATE_LOCK = 0x68757169


class SchemaOutdated(StoreError):
    """The database schema is not the version this code needs."""


def available() -> list[tuple[int, str, str]]:
    """``(version, name, sql)`` of every migration, in order."""
    out = []
    for path in sorted(_DIR.iterdir()):
        m = _NAME.match(path.name)
        if m:
            out.append((int(m.group(1)), m.group(2), path.read_text(encoding="utf-8")))
    versions = [v for v, _, _ in out]
    if versions != list(range(1, len(out) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..n without gaps: {versions}")
    return out


LATEST = len(available())


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.rsplit("@", 1)
        user = netloc[0].split(":", 1)[0]
        return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))
    except ValueError:
        return "<database URL>"


async def schema_version(conn) -> int:
    """The highest applied version (0 for an empty database)."""
    cur = await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not (await cur.fetchone())[0]:
        return 0
    cur = await conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
    return (await cur.fetchone())[0]


async def migrate(url: str, target: Optional[int] = None) -> list[int]:
    """Bring the database to ``target`` (default :data:`LATEST`); returns
    the versions applied (empty if it was up to date)."""
    import psycopg

    target = LATEST if target is None else target
    if not 0 <= target <= LATEST:
        raise ValueError(f"no schema version {target} (latest is {LATEST})")
    applied = []
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATE_LOCK,))
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            current = await schema_version(conn)
            if current > LATEST:
                raise SchemaOutdated(_newer(current))
            for version, name, sql in available():
                if current < version <= target:
                    async with conn.transaction():
                        await conn.execute(sql)
                        await conn.execute(
                            "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name)
                        )
                    applied.append(version)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATE_LOCK,))
    return applied


def _newer(version: int) -> str:
    from bot import texts

    return texts.text("schema_newer", version=version, latest=LATEST)


async def check_conn(conn) -> int:
    """Raise :class:`SchemaOutdated` unless the schema is at :data:`LATEST`."""
    version = await schema_version(conn)
    if version < LATEST:
        from bot import texts

        raise SchemaOutdated(texts.text("schema_outdated", version=version, latest=LATEST))
    if version > LATEST:
        raise SchemaOutdated(_newer(version))
    return version


async def check_schema(url: str) -> int:
    """What ``huqi serve`` calls at start: the schema version, or
    :class:`SchemaOutdated` / :class:`StoreError` (database unreachable)
    with a one-line message."""
    import psycopg

    try:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=10) as conn:
            return await check_conn(conn)
    except psycopg.Error as e:
        from bot import texts

        raise StoreError(texts.text("db_connect_failed", url=safe_url(url), error=_first_line(e))) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
