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
        self._rows: dict = {}             # case id -> (document, days, tally.Row)
        self._all_rows = None             # ((generation, days), rows of every case in order)
        self._totals = None               # (days, tally.Totals over every case), kept up to date

    @staticmethod
    def _records(store) -> Optional[dict]:
        records, guard = getattr(store, "_docs", None), getattr(store, "_mem", None)
        if not isinstance(records, dict) or guard is None or not hasattr(guard, "__enter__"):
            return None
        with guard:
            return dict(records)

    def _refresh(self, records: dict) -> bool:
        old = self._decoded
        replaced: dict = {}                  # case id -> its new document, for cases already in order
        added: list = []
        changes: list = []                   # (old document or None, new document or None)
        fresh: dict = {}
        resort = False
        for cid, rec in records.items():
            seen = old.get(cid)
            if seen is not None and seen[0] is rec:
                fresh[cid] = seen
                continue
            doc = json.loads(rec[1])
            fresh[cid] = (rec, doc)
            changes.append((seen[1] if seen is not None else None, doc))
            if seen is None:
                added.append(doc)
            elif sort_key(seen[1]) != sort_key(doc):
                resort = True
            else:
                replaced[cid] = doc
        removed = len(old) + len(added) != len(fresh)
        if not (resort or replaced or added or removed):
            return False
        if removed:
            changes += [(d, None) for cid, (_, d) in old.items() if cid not in fresh]
        self._update_totals(changes)
        self._decoded = fresh
        added.sort(key=sort_key)
        last = sort_key(self._ordered[-1]) if self._ordered else None
        if resort or removed or (added and last is not None and sort_key(added[0]) <= last):
            self._ordered = sorted((d for _, d in fresh.values()), key=sort_key)
        else:                                # the same order: swap the changed, append the new
            ordered = [replaced.get(d.get("id"), d) for d in self._ordered] if replaced else list(self._ordered)
            self._ordered = ordered + added
        self._gen += 1
        self._results.clear()
        return True

    async def cases(self, store) -> tuple[list[dict], Optional[int]]:
        """Every case, oldest first, and a generation number (None: not cached, listed afresh)."""
        records = self._records(store)
        if records is None:
            return await store.list(), None
        async with self._lock:
            await asyncio.to_thread(self._refresh, records)
            return self._ordered, self._gen

    def _row(self, doc: dict, days: int):
        from bot.workspace.tally import row

        seen = self._rows.get(doc.get("id"))
        if seen is not None and seen[0] is doc and seen[1] == days:
            return seen[2]
        return row(doc, days)

    def _update_totals(self, changes: list) -> None:
        from bot.workspace.tally import row

        if self._totals is None:
            return
        days, totals = self._totals
        for old, new in changes:
            before = self._row(old, days) if old is not None else None
            after = None
            if new is not None:
                after = row(new, days)
                self._rows[new.get("id")] = (new, days, after)
            elif old is not None:
                self._rows.pop(old.get("id"), None)
            totals.change(before, after)

    async def overall(self, days: int, now: datetime) -> tuple[dict, Any]:
        """(statistics, cases per (month, type)) over every case, from the running totals.
        Call :meth:`cases` first: the totals follow what it read."""
        from bot.workspace.tally import Totals

        async with self._lock:
            if self._totals is None or self._totals[0] != days:
                rows = await asyncio.to_thread(self._rows_of, self._ordered, days)
                self._totals = (days, await asyncio.to_thread(Totals, rows))
            totals = self._totals[1]
            return totals.stats(now), +totals.cells

    def _rows_of(self, cases: list[dict], days: int) -> list:
        from bot.workspace.tally import row

        out = []
        known = self._rows
        for c in cases:
            cid = c.get("id")
            seen = known.get(cid)
            if seen is not None and seen[0] is c and seen[1] == days:
                out.append(seen[2])
            else:
                r = row(c, days)
                known[cid] = (c, days, r)
                out.append(r)
        if len(known) > 2 * max(len(self._decoded), len(cases)) + 1000:      # cases removed meanwhile
            live = {c.get("id") for c in cases} | set(self._decoded)
            self._rows = {k: v for k, v in known.items() if k in live}
        return out

    async def rows(self, cases: list[dict], days: int) -> list:
        """One :class:`bot.workspace.tally.Row` per case, read again only for cases that changed."""
        async with self._lock:
            if cases is self._ordered:       # every case: kept per generation
                key = (self._gen, days)
                if self._all_rows is None or self._all_rows[0] != key:
                    self._all_rows = (key, await asyncio.to_thread(self._rows_of, cases, days))
                return self._all_rows[1]
            return await asyncio.to_thread(self._rows_of, cases, days)

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

    applies_filters = False       # ops.select must check every filter itself

    def __init__(self, cases: list[dict]):
        self._cases = cases

    async def list(self, **_: Any) -> list[dict]:
        return self._cases


CACHE = web.AppKey("workspace_cache", CaseCache)


def minute(now: datetime) -> str:
    """Results that depend on the time (overdue) are kept for at most the current minute."""
    return now.strftime("%Y%m%d%H%M")

