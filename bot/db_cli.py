"""``huqi db``: the PostgreSQL database's schema, and moving an embedded
installation onto it.

    huqi db migrate [--url URL]
    huqi db copy --from DIR --to URL

``URL`` defaults to ``HUQI_DATABASE_URL``, ``DIR`` to ``HUQI_DATA_DIR``.
``copy`` reads the embedded store (stop huqi first: it holds the directory)
and writes whatever the database does not have yet: cases with their history
and reminders, conversation states, outbox messages (with their ids), and
the numbers of purged cases (never issued again).  Running it twice copies
nothing twice.  Counts are printed at the end.

Exit codes: 0 done; 2 bad arguments; 3 a store or the database cannot be used.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from bot import texts

__all__ = ["register", "copy_store"]

EXIT_USAGE = 2
EXIT_STORE = 3


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``huqi db ...`` to the ``huqi`` command's subparsers."""
    db = subparsers.add_parser(
        "db", help="PostgreSQL: migrate the schema, copy an embedded store into it",
        description=texts.text("db_cli_description"))
    sub = db.add_subparsers(dest="db_command", metavar="{migrate,copy}")

    p = sub.add_parser("migrate", help="create or upgrade the schema to this version of huqi")
    p.add_argument("--url", help="database URL (default: HUQI_DATABASE_URL)")
    p.set_defaults(func=lambda a: _run(_migrate(a)))

    p = sub.add_parser("copy", help="copy an embedded (TinyDB) store into the database; safe to repeat")
    p.add_argument("--from", dest="src", metavar="DIR", help="data directory (default: HUQI_DATA_DIR)")
    p.add_argument("--to", dest="url", metavar="URL", help="database URL (default: HUQI_DATABASE_URL)")
    p.set_defaults(func=lambda a: _run(_copy(a)))

    def usage(args) -> int:
        db.print_usage(sys.stderr)
        return EXIT_USAGE

    db.set_defaults(func=usage)
    return db


class _Fail(Exception):
    def __init__(self, message: str, code: int = EXIT_STORE):
        super().__init__(message)
        self.code = code


def _run(coro) -> int:
    try:
        return asyncio.run(coro)
    except _Fail as e:
        print(str(e), file=sys.stderr)
        return e.code


def _url(given) -> str:
    url = given or os.environ.get("HUQI_DATABASE_URL")
    if not url:
        raise _Fail(texts.text("db_no_url"), EXIT_USAGE)
    if not url.startswith(("postgresql://", "postgres://")):
        raise _Fail(texts.text("db_bad_url"), EXIT_USAGE)
    return url


async def _migrate(args) -> int:
    from bot.store import StoreError
    from bot.store.migrations import LATEST, migrate, safe_url

    url = _url(args.url)
    try:
        applied = await migrate(url)
    except StoreError as e:
        raise _Fail(str(e)) from None
    except Exception as e:  # psycopg errors: unreachable, no rights, ...
        if type(e).__module__.startswith("psycopg"):
            raise _Fail(texts.text("db_migrate_failed", url=safe_url(url), error=_line(e))) from None
        raise
    if applied:
        print(texts.text("db_migrated", version=LATEST, applied=", ".join(map(str, applied))))
    else:
        print(texts.text("db_up_to_date", version=LATEST))
    return 0


async def _copy(args) -> int:
    from bot.store import StoreError, StoreLocked, open_store

    url = _url(args.url)
    src = args.src or os.environ.get("HUQI_DATA_DIR")
    if not src:
        raise _Fail(texts.text("db_no_dir_given"), EXIT_USAGE)
    if not Path(src).is_dir():
        raise _Fail(texts.text("db_no_dir", path=src), EXIT_USAGE)
    try:
        source = open_store(src, backend="tinydb")
    except StoreLocked as e:
        raise _Fail(texts.text("db_dir_locked", pid=e.pid or "?", path=src)) from None
    except (StoreError, OSError) as e:
        raise _Fail(texts.text("db_dir_unreadable", path=src, error=e)) from None
    try:
        target = open_store(None, backend="postgres", url=url)
        try:
            counts = await copy_store(source, target)
        except StoreError as e:
            raise _Fail(texts.text("db_copy_stopped", error=e)) from None
        finally:
            await target.close()
    finally:
        await source.close()
    for key in ("cases", "states", "outbox", "retired"):
        copied, present = counts[key]
        print(texts.text("db_copy_count", label=texts.text(f"db_label_{key}"), copied=copied, present=present))
    return 0


async def copy_store(source, target) -> dict:
    """Copy what ``target`` (PostgreSQL) lacks from ``source`` (an embedded
    store); ``{kind: (copied, already_there)}``."""
    counts = {}
    n = seen = 0
    for case in await source.list():
        seen += 1
        n += await target.import_case(case)
    counts["cases"] = (n, seen - n)
    n = seen = 0
    for key in sorted(getattr(source, "_states", {})):  # the embedded stores keep states in memory
        state = await source.get_state(key)
        if state is not None:
            seen += 1
            n += await target.import_state(key, state)
    counts["states"] = (n, seen - n)
    n = seen = 0
    for msg in await source.outbox_list():
        seen += 1
        n += await target.import_outbox(msg)
    counts["outbox"] = (n, seen - n)
    retired = sorted(getattr(source, "_retired_ids", ()))
    n = await target.import_retired(retired)
    counts["retired"] = (n, len(retired) - n)
    return counts


def _line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
