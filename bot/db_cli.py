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

__all__ = ["register", "copy_store"]

EXIT_USAGE = 2
EXIT_STORE = 3


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``huqi db ...`` to the ``huqi`` command's subparsers."""
    db = subparsers.add_parser(
        "db", help="PostgreSQL: migrate the schema, copy an embedded store into it",
        description="PostgreSQL 数据库工具 / database tools (HUQI_DATABASE_URL).")
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
        raise _Fail("没有数据库地址 / no database: give --url/--to or set HUQI_DATABASE_URL", EXIT_USAGE)
    if not url.startswith(("postgresql://", "postgres://")):
        raise _Fail("数据库地址应以 postgresql:// 开头 / the database URL must start with postgresql://", EXIT_USAGE)
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
            raise _Fail(f"无法迁移数据库 / cannot migrate {safe_url(url)}: {_line(e)}") from None
        raise
    if applied:
        print(f"数据库结构已升级到第 {LATEST} 版 / schema migrated to version {LATEST} "
              f"(applied {', '.join(map(str, applied))})")
    else:
        print(f"数据库结构已是第 {LATEST} 版 / schema already at version {LATEST}")
    return 0


async def _copy(args) -> int:
    from bot.store import StoreError, StoreLocked, open_store

    url = _url(args.url)
    src = args.src or os.environ.get("HUQI_DATA_DIR")
    if not src:
        raise _Fail("没有数据目录 / no data directory: give --from or set HUQI_DATA_DIR", EXIT_USAGE)
    if not Path(src).is_dir():
        raise _Fail(f"数据目录不存在 / no such data directory: {src}", EXIT_USAGE)
    try:
        source = open_store(src, backend="tinydb")
    except StoreLocked as e:
        raise _Fail(f"数据目录正被另一个 huqi 进程使用 (pid {e.pid or '?'})，请先停止它再复制。\n"
                    f"{src} is in use by another huqi process; stop it first.") from None
    except (StoreError, OSError) as e:
        raise _Fail(f"无法打开数据目录 / cannot open {src}: {e}") from None
    try:
        target = open_store(None, backend="postgres", url=url)
        try:
            counts = await copy_store(source, target)
        except StoreError as e:
            raise _Fail(f"复制中断 / copy stopped: {e}\n已复制的不会重复，修复后再运行一次即可 / "
                        "what was copied stays; run it again once fixed.") from None
        finally:
            await target.close()
    finally:
        await source.close()
    labels = {"cases": "案件 / cases", "states": "对话状态 / conversation states",
              "outbox": "通知 / outbox messages", "retired": "已用过的案件编号 / retired case numbers"}
    for key, label in labels.items():
        copied, present = counts[key]
        print(f"{label}: {copied} copied, {present} already there")
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
