"""Decoded cases kept between pages, refreshed by what changed in the store, and statistics per change.

The TinyDB store holds every case as encoded JSON and decodes all of them on
each ``list()``; a queue page over 10,000 cases would spend most of its time
there. :class:`CaseCache` keeps the decoded documents and re-decodes only the
records the store replaced since the last page (each write puts a new record
object). Stores without that in-memory record table (memory, PostgreSQL) are
simply listed. The documents are shared: callers must not change them.
"""
from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any, Awaitable, Callable, Optional

from aiohttp import web

from bot.store import sort_key


class CaseCache:
    def __init__(self) -> None:
        self._decoded: dict = {}          # case id -> (record, document)
        self._ordered: list = []
        self._gen = 0                     # bumped whenever a case is added, changed or removed
        self._lock = asyncio.Lock()
        self._results: dict = {}          # (name, generation, key) -> value, for the last generation

    @staticmethod
    def _records(store) -> Optional[dict]:
        records, guard = getattr(store, "_docs", None), getattr(store, "_mem", None)
        if not isinstance(records, dict) or guard is None or not hasattr(guard, "__enter__"):
            return None
        with guard:
            return dict(records)

    def _refresh(self, records: dict) -> bool:
        changed = False
        old = self._decoded
        fresh: dict = {}
        for cid, rec in records.items():
            seen = old.get(cid)
            if seen is not None and seen[0] is rec:
                fresh[cid] = seen
            else:
                fresh[cid] = (rec, json.loads(rec[1]))
                changed = True
        if changed or len(fresh) != len(old):
            self._decoded = fresh
            self._ordered = sorted((d for _, d in fresh.values()), key=sort_key)
            self._gen += 1
            self._results.clear()
            return True
        return False

    async def cases(self, store) -> tuple[list[dict], Optional[int]]:
        """Every case, oldest first, and a generation number (None: not cached, listed afresh)."""
        records = self._records(store)
        if records is None:
            return await store.list(), None
        async with self._lock:
            await asyncio.to_thread(self._refresh, records)
            return self._ordered, self._gen

    async def remembered(self, name: str, gen: Optional[int], key: Any, compute: Callable[[], Awaitable]) -> Any:
        """``await compute()`` once per (name, generation, key); every time when not cached."""
        k = (name, gen, key)
        if gen is not None and k in self._results:
            return self._results[k]
        value = await compute()
        if gen is not None and gen == self._gen:
            if len(self._results) > 256:
                self._results.clear()
            self._results[k] = value
        return value


class Listed:
    """A read-only stand-in store for :func:`bot.ops.select` over already listed cases."""

    def __init__(self, cases: list[dict]):
        self._cases = cases

    async def list(self, **_: Any) -> list[dict]:
        return self._cases        # ops.select re-checks every filter on each case


CACHE = web.AppKey("workspace_cache", CaseCache)


def minute(now: datetime) -> str:
    """Results that depend on the time (overdue) are kept for at most the current minute."""
    return now.strftime("%Y%m%d%H%M")

