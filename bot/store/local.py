"""What the single-process stores (memory, TinyDB) share: the reminder index,
conversation states, the outbox with its indexes, retired case numbers, and
asyncio-based chat locks and singletons.

Backends call :meth:`LocalStore._apply` (holding ``self._mem``) with every
committed op, after it is durable, and implement ``_put_case`` /
``_del_case`` for their own case storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import threading
import time
from bisect import bisect_left, bisect_right, insort
from datetime import datetime, timedelta
from typing import Any, AsyncIterator, Optional

from bot.store import TimeLike, _norm_owner, clone_json, to_iso
from bot.store.base import OUTBOX_STATUSES, CaseStore, MessageNotFound, check_state_key

__all__ = ["LocalStore", "SortedKeys", "ReminderIndex", "json_bytes"]

#: Sorts after any id in a (time, id) key.
_TOP = "\U0010ffff"
#: Reminders copied per step; after _SLICE seconds the loop gets a turn.
_CHUNK = 100
_SLICE = 0.002
#: States per log line when many are stored at once.
_STATE_BATCH = 500
_FINAL = ("blocked", "parked")
#: Outbox fields the store sets; a caller's values are ignored.
_OWNED = frozenset(
    {"id", "status", "attempts", "created_at", "next_at", "lease_until", "sent_at", "last_error"}
)


def json_bytes(doc: Any) -> bytes:
    """Compact UTF-8 JSON."""
    try:
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: fall back to \u escapes
        return json.dumps(doc, separators=(",", ":")).encode("ascii")


class SortedKeys:
    """A sorted list of tuples: O(log n) search, ``upto`` in O(log n + k)."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: list = []

    def add(self, item: tuple) -> None:
        insort(self._items, item)

    def remove(self, item: tuple) -> None:
        i = bisect_left(self._items, item)
        if i < len(self._items) and self._items[i] == item:
            del self._items[i]

    def upto(self, first: str, limit: Optional[int] = None) -> list:
        """Items whose first element is <= ``first``, in order."""
        end = bisect_right(self._items, (first, _TOP))
        if limit is not None:
            end = min(end, limit)
        return self._items[:end]

    def __len__(self) -> int:
        return len(self._items)


class ReminderIndex:
    """Reminders by due time, overall and per owner."""

    def __init__(self) -> None:
        self._all = SortedKeys()
        self._by_owner: dict[str, SortedKeys] = {}
        self._rems: dict[tuple, tuple] = {}  # (cid, kind) -> (key, okey, rem)
        self._of_case: dict[str, list] = {}  # cid -> [(cid, kind)]

    def set_case(self, cid: str, okey: Optional[str], rems: Any) -> None:
        """Index the case's reminders (replacing what it had)."""
        self.drop_case(cid)
        if not rems:
            return
        names = []
        for r in rems:
            name = (cid, r["kind"])
            if name in self._rems:
                self._unindex(name)
            else:
                names.append(name)
            key = (r["due"], cid, r["kind"])
            self._all.add(key)
            if okey is not None:
                self._by_owner.setdefault(okey, SortedKeys()).add(key)
            self._rems[name] = (key, okey, r)
        self._of_case[cid] = names

    def drop_case(self, cid: str) -> None:
        for name in self._of_case.pop(cid, ()):
            self._unindex(name)

    def _unindex(self, name: tuple) -> None:
        key, okey, _ = self._rems.pop(name)
        self._all.remove(key)
        if okey is not None:
            keys = self._by_owner[okey]
            keys.remove(key)
            if not keys:
                del self._by_owner[okey]

    def due(self, now_iso: str, okey: Optional[str], limit: Optional[int]) -> list:
        keys = self._all if okey is None else self._by_owner.get(okey)
        return keys.upto(now_iso, limit) if keys is not None else []

    def get(self, key: tuple) -> Optional[dict]:
        hit = self._rems.get(key[1:])
        return hit[2] if hit is not None and hit[0] == key else None

    def __len__(self) -> int:
        return len(self._rems)


def _dt(value: TimeLike) -> datetime:
    return datetime.fromisoformat(to_iso(value))


class LocalStore(CaseStore):
    """The parts of a single-process store that do not depend on the disk."""

    def __init__(self, clock=None):
        super().__init__(clock=clock)
        # Guards the in-memory state: the event loop reads, a writer thread
        # (TinyDB) applies committed ops.
        self._mem = threading.Lock()
        self._rem_index = ReminderIndex()
        self._retired_ids: set = set()
        self._states: dict[str, bytes] = {}
        self._outbox: dict[str, dict] = {}  # id -> message (replaced, never mutated)
        self._ob_pending = SortedKeys()  # (next_at, id)
        self._ob_claimed = SortedKeys()  # (lease_until, id)
        self._ob_case: dict[str, list] = {}  # case_id -> ids in order
        self._ob_counts = dict.fromkeys(OUTBOX_STATUSES, 0)
        self._ob_next = 1
        self._chat_locks: dict[str, list] = {}
        self._singletons: set = set()

    # -- applying committed ops (caller holds self._mem) ----------------------

    def _apply(self, ops: list) -> None:
        for op, key, value in ops:
            if op == "put":
                self._put_case(key, value)
            elif op == "del":
                self._del_case(key)
                self._rem_index.drop_case(key)
                self._retired_ids.add(key)
            elif op == "state":
                if value is None:
                    self._states.pop(key, None)
                else:
                    self._states[key] = value
            elif op == "outbox":
                self._apply_outbox(key, value)
            else:
                raise ValueError(op)

    def _apply_outbox(self, mid: str, msg: Optional[dict]) -> None:
        old = self._outbox.get(mid)
        if old is not None:
            self._ob_unindex(old)
        if msg is None:
            if old is not None:
                del self._outbox[mid]
                ids = self._ob_case.get(old.get("case_id"))
                if ids is not None:
                    ids.remove(mid)
                    if not ids:
                        del self._ob_case[old["case_id"]]
            return
        self._outbox[mid] = msg
        self._ob_index(msg)
        if old is None:
            if isinstance(msg.get("case_id"), str):
                self._ob_case.setdefault(msg["case_id"], []).append(mid)
            if mid.isdigit() and int(mid) >= self._ob_next:
                self._ob_next = int(mid) + 1

    def _ob_index(self, msg: dict) -> None:
        status = msg["status"]
        self._ob_counts[status] = self._ob_counts.get(status, 0) + 1
        if status == "pending":
            self._ob_pending.add((msg["next_at"], msg["id"]))
        elif status == "claimed":
            self._ob_claimed.add((msg["lease_until"], msg["id"]))

    def _ob_unindex(self, msg: dict) -> None:
        status = msg["status"]
        self._ob_counts[status] -= 1
        if status == "pending":
            self._ob_pending.remove((msg["next_at"], msg["id"]))
        elif status == "claimed":
            self._ob_claimed.remove((msg["lease_until"], msg["id"]))

    def _release_claims(self) -> int:
        """Claimed -> pending (claims of a process that is gone)."""
        claimed = [m for m in self._outbox.values() if m["status"] == "claimed"]
        for m in claimed:
            m = dict(m, status="pending", lease_until=None)
            self._apply_outbox(m["id"], m)
        return len(claimed)

    def _put_case(self, cid: str, doc: Any) -> None:
        raise NotImplementedError

    def _del_case(self, cid: str) -> None:
        raise NotImplementedError

    def _retired(self, case_id: str) -> bool:
        return case_id in self._retired_ids

    def _purge_ops(self, ids: list) -> list:
        with self._mem:
            return [("outbox", mid, None) for cid in ids for mid in self._ob_case.get(cid, ())]

    # -- reminders -----------------------------------------------------------

    async def _due(self, now_iso: str, okey: Optional[str], limit: Optional[int]) -> list:
        with self._mem:
            keys = self._rem_index.due(now_iso, okey, limit)
        out: list = []
        started = time.perf_counter()
        for i in range(0, len(keys), _CHUNK):
            if time.perf_counter() - started > _SLICE:
                await asyncio.sleep(0)  # let others run
                started = time.perf_counter()
            with self._mem:
                rems = [self._rem_index.get(k) for k in keys[i : i + _CHUNK]]
            out += [clone_json(r) for r in rems if r is not None]
        return out

    # -- conversation states -------------------------------------------------

    async def get_state(self, key: str) -> Optional[dict]:
        self._check_open()
        check_state_key(key)
        blob = self._states.get(key)
        return json.loads(blob) if blob is not None else None

    async def put_state(self, key: str, state: dict) -> None:
        await self.put_states({key: state})

    async def put_states(self, states: dict) -> None:
        self._check_open()
        blobs = []
        for key, state in states.items():
            check_state_key(key)
            if not isinstance(state, dict):
                raise TypeError("a conversation state must be a dict")
            blobs.append(("state", key, json_bytes(clone_json(state))))
        for i in range(0, len(blobs), _STATE_BATCH):
            chunk = blobs[i : i + _STATE_BATCH]
            await self._write(lambda chunk=chunk: self._commit(chunk))

    async def delete_state(self, key: str) -> None:
        self._check_open()
        check_state_key(key)

        def write() -> None:
            if key in self._states:
                self._commit([("state", key, None)])

        await self._write(write)

    async def count_states(self) -> int:
        self._check_open()
        return len(self._states)

    # -- outbox --------------------------------------------------------------

    async def outbox_add(self, msg: dict, now: Optional[TimeLike] = None) -> dict:
        self._check_open()
        if not isinstance(msg, dict):
            raise TypeError("an outbox message must be a dict")
        now_iso = to_iso(now if now is not None else self._clock())
        new = clone_json({k: v for k, v in msg.items() if k not in _OWNED})
        if new.get("owner") is not None:
            new["owner"] = _norm_owner(new["owner"])
        for f in ("case_id", "chat_id"):
            if new.get(f) is not None and not isinstance(new[f], (str, int)):
                raise ValueError(f"outbox message {f} must be a string")
        new.update(
            status="pending",
            attempts=0,
            created_at=now_iso,
            next_at=to_iso(msg["next_at"]) if msg.get("next_at") else now_iso,
            lease_until=None,
            sent_at=None,
            last_error=None,
        )

        def write() -> dict:
            mid = f"{self._ob_next:012d}"
            doc = {"id": mid}
            doc.update(new)
            doc["id"] = mid
            self._commit([("outbox", mid, doc)])
            return clone_json(doc)

        return await self._write(write)

    async def outbox_claim(self, now: TimeLike, limit: int = 50, lease_seconds: float = 60) -> list:
        self._check_open()
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError("limit must be a non-negative int")
        now_dt = _dt(now)
        now_iso = to_iso(now_dt)
        lease_iso = to_iso(now_dt + timedelta(seconds=float(lease_seconds)))

        def write() -> list:
            with self._mem:
                ready = self._ob_pending.upto(now_iso) + self._ob_claimed.upto(now_iso)
                ids = heapq.nsmallest(limit, (k[1] for k in ready))
                claimed = [dict(self._outbox[mid], status="claimed", lease_until=lease_iso) for mid in ids]
            if claimed:
                self._commit([("outbox", m["id"], m) for m in claimed])
            return [clone_json(m) for m in claimed]

        return await self._write(write)

    async def _ob_change(self, msg_id: str, **fields: Any) -> None:
        self._check_open()

        def write() -> None:
            old = self._outbox.get(msg_id) if isinstance(msg_id, str) else None
            if old is None:
                raise MessageNotFound(msg_id)
            new = dict(old, **fields)
            if "attempts" in fields:
                new["attempts"] = int(old.get("attempts") or 0) + 1
            self._commit([("outbox", msg_id, new)])

        await self._write(write)

    async def outbox_sent(self, msg_id: str, now: TimeLike) -> None:
        await self._ob_change(msg_id, status="sent", sent_at=to_iso(now), lease_until=None)

    async def outbox_retry(self, msg_id: str, next_at: TimeLike, error: str) -> None:
        await self._ob_change(
            msg_id, status="pending", next_at=to_iso(next_at), lease_until=None,
            last_error=str(error), attempts=1,
        )

    async def outbox_fail(self, msg_id: str, status: str, error: str) -> None:
        if status not in _FINAL:
            raise ValueError(f"outbox_fail status must be one of {_FINAL}, not {status!r}")
        await self._ob_change(msg_id, status=status, lease_until=None, last_error=str(error), attempts=1)

    async def outbox_get(self, msg_id: str) -> Optional[dict]:
        self._check_open()
        msg = self._outbox.get(msg_id) if isinstance(msg_id, str) else None
        return clone_json(msg) if msg is not None else None

    async def outbox_list(
        self, case_id: Optional[str] = None, status: Optional[str] = None, limit: Optional[int] = None
    ) -> list:
        self._check_open()
        if status is not None and status not in OUTBOX_STATUSES:
            raise ValueError(f"unknown outbox status {status!r}")
        with self._mem:
            if case_id is not None:
                msgs = [self._outbox[mid] for mid in self._ob_case.get(case_id, ())]
            else:
                msgs = list(self._outbox.values())
        out: list = []
        started = time.perf_counter()
        for i, m in enumerate(msgs):
            if i % _CHUNK == 0 and time.perf_counter() - started > _SLICE:
                await asyncio.sleep(0)  # a long list: let others run
                started = time.perf_counter()
            if status is None or m["status"] == status:
                out.append(clone_json(m))
                if limit is not None and len(out) >= limit:
                    break
        return out

    async def outbox_counts(self) -> dict:
        self._check_open()
        with self._mem:
            return {s: self._ob_counts.get(s, 0) for s in OUTBOX_STATUSES}

    # -- locks and health ----------------------------------------------------

    @contextlib.asynccontextmanager
    async def chat_lock(self, key: str) -> AsyncIterator[None]:
        entry = self._chat_locks.get(key)
        if entry is None:
            entry = self._chat_locks[key] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            async with entry[0]:  # asyncio.Lock wakes waiters first come, first served
                yield
        finally:
            entry[1] -= 1
            if not entry[1] and self._chat_locks.get(key) is entry:
                del self._chat_locks[key]

    @contextlib.asynccontextmanager
    async def singleton(self, name: str) -> AsyncIterator[bool]:
        if name in self._singletons:
            yield False
            return
        self._singletons.add(name)
        try:
            yield True
        finally:
            self._singletons.discard(name)

    async def ping(self) -> None:
        self._check_open()
        self._ping()

    def _ping(self) -> None:
        """Raise StoreError if the backing storage is unusable."""
