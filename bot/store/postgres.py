"""The PostgreSQL case store: several huqi processes on one database.

Selected by ``HUQI_DATABASE_URL=postgresql://...`` (see :func:`open_store`).
Same interface and semantics as the other backends; what differs is how
writes are serialised: not by an in-process lock but by the database, so
any number of workers can share it.

* A case write is one transaction: the case row is locked
  (``SELECT ... FOR UPDATE``), changed, written back; history events are
  rows of their own (``case_history``, INSERT only), reminders too
  (``reminders``, indexed on the due time).
* The outbox is claimed with ``FOR UPDATE SKIP LOCKED`` and a lease: two
  workers never claim the same message, and a dead worker's claim expires.
* ``chat_lock`` holds a session advisory lock (per key hash) on a
  connection from a separate small pool for the duration of the turn;
  ``singleton`` uses ``pg_try_advisory_lock``.  Returning such a connection
  to its pool runs ``pg_advisory_unlock_all()`` and a dead worker's
  connection closes, so a lock never outlives its holder.
* Connections are checked when taken from the pool, so a restarted server
  costs a reconnect, not an error; while it is down, calls raise
  :class:`StoreError` (``ping`` is how ``/healthz`` finds out).

The schema is created by ``huqi db migrate`` (:mod:`bot.store.migrations`);
opening refuses an outdated one with a line saying what to run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, AsyncIterator, Callable, Optional, Union

from bot.caseid import new_case_id
from bot.store import (
    CLOSED,
    DEFAULT_STATUS,
    CaseExists,
    CaseNotFound,
    StoreError,
    TimeLike,
    _norm_event,
    _norm_owner,
    _norm_reminder,
    _set_status,
    clone_json,
    lookup_id,
    matches,
    owner_key,
    prepare_filters,
    sort_key,
    time_before,
    to_iso,
)
from bot.store.base import OUTBOX_STATUSES, CaseStore, MessageNotFound, check_state_key, prepare_changes, prepare_new_case
from bot.store.migrations import SchemaOutdated, check_conn, safe_url

__all__ = ["PostgresStore", "SchemaOutdated"]

log = logging.getLogger("huqi.store")

#: Advisory lock namespaces (first key of the two-int form).
NS_CHAT = 0x68710001
NS_SINGLETON = 0x68710002

#: Outbox fields the store owns (columns); every other field is kept opaque in ``body``.
_OUTBOX_COLUMNS = ("id", "status", "attempts", "created_at", "next_at", "lease_until", "sent_at", "last_error")
_OUTBOX_SELECT = ", ".join(_OUTBOX_COLUMNS) + ", body"

# A case with its history and reminders, in one round trip.
_CASE_SELECT = """
SELECT c.doc,
       (SELECT coalesce(json_agg(h.event ORDER BY h.seq), '[]'::json)
          FROM case_history h WHERE h.case_id = c.id),
       (SELECT json_agg(r.data ORDER BY r.due, r.kind)
          FROM reminders r WHERE r.case_id = c.id)
  FROM cases c
"""


def _dumps(value: Any) -> str:
    # ASCII escapes keep any text (NUL, lone surrogates) storable as json.
    return json.dumps(value, separators=(",", ":"))


def _assemble(doc: dict, history: list, reminders: Optional[list]) -> dict:
    doc["history"] = history
    if reminders:
        doc["reminders"] = reminders
    return doc


def _columns(doc: dict) -> dict:
    """The indexed columns of a case row, from the full doc."""
    body = {k: v for k, v in doc.items() if k not in ("history", "reminders")}
    return {
        "id": doc["id"],
        "owner_key": owner_key(doc["owner"]),
        "status": doc["status"],
        "created_at": doc["created_at"],
        "updated_at": doc["updated_at"],
        "closed_at": doc.get("closed_at"),
        "doc": _dumps(body),
    }


def _outbox_row(row) -> dict:
    *cols, body = row
    msg = {"id": cols[0]}
    msg.update(body)
    msg.update(zip(_OUTBOX_COLUMNS, cols))
    return msg


class PostgresStore(CaseStore):
    """Case store in a PostgreSQL database (psycopg 3, async pools)."""

    def __init__(
        self,
        url: str,
        clock: Optional[Callable[[], datetime]] = None,
        *,
        pool_size: int = 10,
        lock_pool_size: int = 32,
        timeout: Optional[float] = None,
        **_ignored: Any,
    ):
        super().__init__(clock=clock)
        from psycopg_pool import AsyncConnectionPool

        if timeout is None:  # how long a call waits for the database before StoreError
            timeout = _env_seconds("HUQI_DATABASE_TIMEOUT", 10.0)

        self.url = url
        self._timeout = timeout
        self._pool = AsyncConnectionPool(
            url, min_size=1, max_size=pool_size, open=False, timeout=timeout,
            kwargs={"autocommit": True}, check=AsyncConnectionPool.check_connection,
            name="huqi", reconnect_timeout=0,
        )
        # Connections holding session advisory locks; unlocked on return.
        self._lock_pool = AsyncConnectionPool(
            url, min_size=0, max_size=lock_pool_size, open=False, timeout=timeout,
            kwargs={"autocommit": True}, check=AsyncConnectionPool.check_connection,
            reset=_unlock_all, name="huqi-locks", reconnect_timeout=0,
        )
        self._started = False
        self._start_lock = asyncio.Lock()
        self._chat_locks: dict[str, list] = {}
        self._state_write: dict[str, list] = {}

    # -- connections -------------------------------------------------------

    async def _start(self) -> None:
        self._check_open()
        if self._started:
            return
        async with self._start_lock:
            if self._started:
                return
            await self._pool.open(wait=False)
            await self._lock_pool.open(wait=False)
            async with self._conn() as conn:
                await check_conn(conn)
            self._started = True

    @asynccontextmanager
    async def _conn(self, timeout: Optional[float] = None) -> AsyncIterator[Any]:
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            async with self._pool.connection(timeout=timeout) as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout, psycopg.InterfaceError) as e:
            raise StoreError(_unavailable(self.url, e)) from e

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[Any]:
        await self._start()
        async with self._conn() as conn:
            async with conn.transaction():
                yield conn

    async def _fetchall(self, sql: str, params: Any = None) -> list:
        await self._start()
        async with self._conn() as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchall()

    # -- cases ---------------------------------------------------------------

    async def create(self, case: dict) -> dict:
        self._check_open()
        now = self._clock()
        doc, given_id, reminders = prepare_new_case(case, now)
        async with self._tx() as conn:
            for _ in range(20):
                cid = given_id or new_case_id(now)
                new = {"id": cid}  # id first: easier to read
                new.update(doc)
                cur = await conn.execute(_INSERT_CASE, dict(_columns(new), history_len=len(new["history"])))
                if await cur.fetchone():
                    break
                if given_id:
                    raise CaseExists(f"case {given_id} already exists")
            else:
                raise StoreError("no free case number found")
            await _insert_history(conn, cid, 0, new["history"])
            rems = [_norm_reminder(cid, r) for r in reminders]
            for rem in rems:
                await _upsert_reminder(conn, cid, new["owner"], rem)
            result = await _load(conn, cid)
        log.info("case %s created", cid)
        return result

    async def import_case(self, case: dict) -> bool:
        """Store a full case exactly as another store handed it out (for
        ``huqi db copy``); False (and nothing written) if the id exists."""
        self._check_open()
        doc = clone_json(case)
        history = doc.pop("history", None) or []
        reminders = doc.pop("reminders", None) or []
        doc["owner"] = _norm_owner(doc.get("owner"))
        doc.setdefault("status", DEFAULT_STATUS)
        async with self._tx() as conn:
            cur = await conn.execute(
                _INSERT_CASE, dict(_columns(dict(doc, history=[])), history_len=len(history))
            )
            if not await cur.fetchone():
                return False
            await _insert_history(conn, doc["id"], 0, history)
            for rem in reminders:
                await _upsert_reminder(conn, doc["id"], doc["owner"], _norm_reminder(doc["id"], rem))
        return True

    async def import_state(self, key: str, state: dict) -> bool:
        """Store a state unless the chat already has one (``huqi db copy``)."""
        self._check_open()
        check_state_key(key)
        if not isinstance(state, dict):
            raise TypeError("a conversation state must be a dict")
        async with self._tx() as conn:
            cur = await conn.execute(
                "INSERT INTO conversation_states (key, state) VALUES (%s, %s)"
                " ON CONFLICT (key) DO NOTHING RETURNING key",
                (key, _dumps(clone_json(state))),
            )
            return await cur.fetchone() is not None

    async def import_outbox(self, msg: dict) -> bool:
        """Store an outbox message with its id and state as another store
        handed it out (``huqi db copy``); False if that id exists."""
        self._check_open()
        mid = msg.get("id")
        if not isinstance(mid, str) or not mid.isdigit() or not 0 < int(mid) < 10**12:
            raise ValueError(f"cannot import outbox message id {mid!r}")
        status = msg.get("status")
        if status == "claimed" or status not in OUTBOX_STATUSES:
            status = "pending"  # a claim by the process the message came from is void
        body = clone_json({k: v for k, v in msg.items() if k not in _OUTBOX_COLUMNS})
        case_id = body.get("case_id")
        async with self._tx() as conn:
            cur = await conn.execute(
                "INSERT INTO outbox (seq, status, attempts, created_at, next_at, sent_at, last_error, case_id, body)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (seq) DO NOTHING RETURNING seq",
                (int(mid), status, int(msg.get("attempts") or 0), to_iso(msg["created_at"]),
                 to_iso(msg.get("next_at") or msg["created_at"]),
                 to_iso(msg["sent_at"]) if msg.get("sent_at") else None, msg.get("last_error"),
                 str(case_id) if case_id is not None else None, _dumps(body)),
            )
            added = await cur.fetchone() is not None
            # New messages get ids after every imported one.
            await conn.execute(
                "SELECT setval(pg_get_serial_sequence('outbox', 'seq'),"
                " greatest((SELECT max(seq) FROM outbox), 1))"
            )
        return added

    async def import_retired(self, ids: list) -> int:
        """Record numbers of cases purged elsewhere; returns how many were new."""
        self._check_open()
        ids = [i for i in ids if isinstance(i, str)]
        if not ids:
            return 0
        async with self._tx() as conn:
            cur = await conn.execute(
                "INSERT INTO retired_case_ids (id) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING", (ids,)
            )
            return cur.rowcount

    async def get(self, case_id: str, owner: Optional[dict] = None) -> Optional[dict]:
        self._check_open()
        cid = lookup_id(case_id)
        if cid is None:
            return None
        okey = owner_key(owner) if owner is not None else None
        await self._start()
        async with self._conn() as conn:
            doc = await _load(conn, cid)
        if doc is None or (okey is not None and not matches(doc, okey, {})):
            return None
        return doc

    async def list(
        self,
        owner: Optional[dict] = None,
        status: Any = None,
        *,
        limit: Optional[int] = None,
        **filters: Any,
    ) -> list:
        self._check_open()
        okey = owner_key(owner) if owner is not None else None
        prepared = prepare_filters(status, filters, self._clock())
        where, params = [], []
        if okey is not None:
            where.append("c.owner_key = %s")
            params.append(okey)
        wanted = prepared.get("status")
        if isinstance(wanted, str):
            where.append("c.status = %s")
            params.append(wanted)
        elif isinstance(wanted, tuple) and all(isinstance(s, str) for s in wanted):
            where.append("c.status = ANY(%s)")
            params.append(list(wanted))
        if "older_than" in prepared:
            where.append("c.created_at < %s")
            params.append(prepared["older_than"])
        if "newer_than" in prepared:
            where.append("c.created_at >= %s")
            params.append(prepared["newer_than"])
        sql = _CASE_SELECT + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY c.created_at, c.id"
        docs = []
        for doc, history, rems in await self._fetchall(sql, params):
            doc = _assemble(doc, history, rems)
            if matches(doc, okey, prepared):
                docs.append(doc)
                if limit is not None and len(docs) >= limit:
                    break
        docs.sort(key=sort_key)
        return docs

    async def update(self, case_id: str, changes: dict, owner: Optional[dict] = None) -> dict:
        self._check_open()
        ch0 = prepare_changes(changes)

        async def fn(conn, doc, history_len, now_iso):
            ch = dict(ch0)
            status = ch.pop("status", None) if "status" in ch else None
            closed_at = ch.pop("closed_at", None)
            doc.update(ch)
            if status is not None:
                _set_status(doc, status, closed_at or now_iso)
            elif closed_at and doc.get("status") == CLOSED:
                doc["closed_at"] = closed_at
            doc["updated_at"] = now_iso
            if "owner" in ch:
                await conn.execute(
                    "UPDATE reminders SET owner_key = %s WHERE case_id = %s", (owner_key(doc["owner"]), doc["id"])
                )
            return True, None

        result = await self._write_and_load(case_id, owner, fn)
        log.info("case %s updated (%d fields)", result["id"], len(changes))
        return result

    async def _write_and_load(self, case_id, owner, fn) -> dict:
        okey = owner_key(owner) if owner is not None else None
        cid = lookup_id(case_id)
        async with self._tx() as conn:
            row = None
            if cid is not None:
                cur = await conn.execute(
                    "SELECT doc, owner_key, history_len FROM cases WHERE id = %s FOR UPDATE", (cid,)
                )
                row = await cur.fetchone()
            if row is None or (okey is not None and row[1] != okey):
                raise CaseNotFound(case_id)
            doc, _, history_len = row
            now_iso = to_iso(self._clock())
            write, extra = await fn(conn, doc, history_len, now_iso)
            if write:
                await conn.execute(_UPDATE_CASE, _columns(dict(doc, history=[])))
            if extra == "no-load":
                return None
            return await _load(conn, cid)

    async def append_event(self, case_id: str, event: dict, owner: Optional[dict] = None) -> dict:
        self._check_open()
        ev0 = _norm_event(event, "")

        async def fn(conn, doc, history_len, now_iso):
            ev = dict(ev0)
            if not ev["when"]:
                ev["when"] = now_iso
            to = ev.get("to")
            if to is not None:
                ev.setdefault("from", doc.get("status"))
                _set_status(doc, to, now_iso)
            doc["updated_at"] = now_iso
            await _insert_history(conn, doc["id"], history_len, [ev])
            await conn.execute(
                "UPDATE cases SET history_len = history_len + 1 WHERE id = %s", (doc["id"],)
            )
            return True, None

        result = await self._write_and_load(case_id, owner, fn)
        log.info("case %s: event appended (history %d)", result["id"], len(result["history"]))
        return result

    async def set_reminder(
        self,
        case_id: str,
        due: TimeLike,
        kind: str = "follow_up",
        owner: Optional[dict] = None,
        **data: Any,
    ) -> dict:
        self._check_open()
        fields = dict(data, kind=kind, due=due)
        _norm_reminder("", fields)  # validate before touching the database
        out = {}

        async def fn(conn, doc, history_len, now_iso):
            rem = _norm_reminder(doc["id"], fields)
            await _upsert_reminder(conn, doc["id"], doc["owner"], rem)
            out["rem"] = rem
            return False, "no-load"

        await self._write_and_load(case_id, owner, fn)
        log.info("case %s: reminder %s set", out["rem"]["case_id"], kind)
        return clone_json(out["rem"])

    async def clear_reminder(
        self, case_id: str, kind: Optional[str] = None, owner: Optional[dict] = None
    ) -> int:
        self._check_open()
        out = {}

        async def fn(conn, doc, history_len, now_iso):
            if kind is None:
                cur = await conn.execute("DELETE FROM reminders WHERE case_id = %s", (doc["id"],))
            else:
                cur = await conn.execute(
                    "DELETE FROM reminders WHERE case_id = %s AND kind = %s", (doc["id"], kind)
                )
            out["n"] = cur.rowcount
            return False, "no-load"

        await self._write_and_load(case_id, owner, fn)
        return out["n"]

    async def _due(self, now_iso: str, okey: Optional[str], limit: Optional[int]) -> list:
        """Reminders due by ``now_iso`` through the index on (owner,) due."""
        sql, params = "SELECT data FROM reminders WHERE due <= %s", [now_iso]
        if okey is not None:
            sql += " AND owner_key = %s"
            params.append(okey)
        sql += " ORDER BY due, case_id, kind"
        if limit is not None:
            sql += " LIMIT %s"
            params.append(limit)
        return [r[0] for r in await self._fetchall(sql, params)]

    async def purge(self, closed_before: Union[TimeLike, timedelta]) -> list:
        self._check_open()
        if isinstance(closed_before, timedelta):
            closed_before = time_before(self._clock(), closed_before)
        cutoff = to_iso(closed_before)
        async with self._tx() as conn:
            cur = await conn.execute(
                "DELETE FROM cases WHERE status = %s AND coalesce(closed_at, updated_at) < %s RETURNING id",
                (CLOSED, cutoff),
            )
            ids = sorted(r[0] for r in await cur.fetchall())
            if ids:
                await conn.execute(
                    "INSERT INTO retired_case_ids (id) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING", (ids,)
                )
                # Messages about a purged case go with it (they quote it).
                await conn.execute("DELETE FROM outbox WHERE case_id = ANY(%s)", (ids,))
        log.info("purged %d closed cases", len(ids))
        return ids

    # -- conversation states ---------------------------------------------------

    async def get_state(self, key: str) -> Optional[dict]:
        self._check_open()
        check_state_key(key)
        rows = await self._fetchall("SELECT state FROM conversation_states WHERE key = %s", (key,))
        return rows[0][0] if rows else None

    async def put_state(self, key: str, state: dict) -> None:
        await self.put_states({key: state})

    async def put_states(self, states: dict) -> None:
        self._check_open()
        rows = []
        for key, state in states.items():
            check_state_key(key)
            if not isinstance(state, dict):
                raise TypeError("a conversation state must be a dict")
            rows.append((key, _dumps(clone_json(state))))
        if not rows:
            return
        async with self._state_locks([k for k, _ in rows]):
            async with self._tx() as conn:
                async with conn.cursor() as cur:
                    await cur.executemany(
                        "INSERT INTO conversation_states (key, state) VALUES (%s, %s)"
                        " ON CONFLICT (key) DO UPDATE SET state = excluded.state, updated_at = now()",
                        rows,
                    )

    async def delete_state(self, key: str) -> None:
        self._check_open()
        check_state_key(key)
        async with self._state_locks([key]):
            async with self._tx() as conn:
                await conn.execute("DELETE FROM conversation_states WHERE key = %s", (key,))

    @asynccontextmanager
    async def _state_locks(self, keys: list) -> AsyncIterator[None]:
        """Writes of one chat's state from this process land in the order
        they were called (taken before the first await; sorted: no deadlock)."""
        entries = []
        for key in sorted(set(keys)):
            entry = self._state_write.get(key)
            if entry is None:
                entry = self._state_write[key] = [asyncio.Lock(), 0]
            entry[1] += 1
            entries.append((key, entry))
        held = []
        try:
            for _, entry in entries:
                await entry[0].acquire()
                held.append(entry[0])
            yield
        finally:
            for lock in held:
                lock.release()
            for key, entry in entries:
                entry[1] -= 1
                if entry[1] == 0:
                    self._state_write.pop(key, None)

    async def count_states(self) -> int:
        self._check_open()
        return (await self._fetchall("SELECT count(*) FROM conversation_states"))[0][0]

    async def list_state_keys(self) -> list:
        """Every stored state's key (for ``huqi db copy`` and staff tools)."""
        self._check_open()
        return [r[0] for r in await self._fetchall("SELECT key FROM conversation_states ORDER BY key")]

    # -- outbox ------------------------------------------------------------------

    async def outbox_add(self, msg: dict, now: Optional[TimeLike] = None) -> dict:
        self._check_open()
        if not isinstance(msg, dict):
            raise TypeError("an outbox message must be a dict")
        body = clone_json({k: v for k, v in msg.items() if k not in _OUTBOX_COLUMNS})
        if body.get("owner") is not None:
            body["owner"] = _norm_owner(body["owner"])
        for f in ("case_id", "chat_id"):
            if body.get(f) is not None and (isinstance(body[f], bool) or not isinstance(body[f], (str, int))):
                raise ValueError(f"outbox message {f} must be a string")
        now_iso = to_iso(now if now is not None else self._clock())
        next_at = to_iso(msg["next_at"]) if msg.get("next_at") else now_iso
        case_id = body.get("case_id")
        async with self._tx() as conn:
            cur = await conn.execute(
                "INSERT INTO outbox (status, attempts, created_at, next_at, case_id, body)"
                " VALUES ('pending', 0, %s, %s, %s, %s) RETURNING " + _OUTBOX_SELECT,
                (now_iso, next_at, str(case_id) if case_id is not None else None, _dumps(body)),
            )
            return _outbox_row(await cur.fetchone())

    async def outbox_claim(self, now: TimeLike, limit: int = 50, lease_seconds: float = 60) -> list:
        self._check_open()
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError("limit must be a non-negative int")
        now_dt = datetime.fromisoformat(to_iso(now))
        now_iso = to_iso(now_dt)
        lease = to_iso(now_dt + timedelta(seconds=lease_seconds))
        async with self._tx() as conn:
            cur = await conn.execute(
                "WITH c AS (SELECT seq FROM outbox"
                "   WHERE (status = 'pending' AND next_at <= %(now)s)"
                "      OR (status = 'claimed' AND lease_until <= %(now)s)"
                "   ORDER BY seq LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
                " UPDATE outbox o SET status = 'claimed', lease_until = %(lease)s"
                " FROM c WHERE o.seq = c.seq RETURNING " + ", ".join("o." + c for c in _OUTBOX_COLUMNS) + ", o.body",
                {"now": now_iso, "lease": lease, "limit": max(0, int(limit))},
            )
            msgs = [_outbox_row(r) for r in await cur.fetchall()]
        msgs.sort(key=lambda m: m["id"])
        return msgs

    async def _outbox_set(self, msg_id: str, sql: str, params: tuple) -> None:
        self._check_open()
        if not isinstance(msg_id, str):
            raise MessageNotFound(msg_id)
        async with self._tx() as conn:
            cur = await conn.execute(sql + " WHERE id = %s", params + (msg_id,))
            if cur.rowcount == 0:
                raise MessageNotFound(msg_id)

    async def outbox_sent(self, msg_id: str, now: TimeLike) -> None:
        await self._outbox_set(
            msg_id, "UPDATE outbox SET status = 'sent', sent_at = %s, lease_until = NULL", (to_iso(now),)
        )

    async def outbox_retry(self, msg_id: str, next_at: TimeLike, error: str) -> None:
        await self._outbox_set(
            msg_id,
            "UPDATE outbox SET status = 'pending', attempts = attempts + 1, next_at = %s,"
            " last_error = %s, lease_until = NULL",
            (to_iso(next_at), str(error)),
        )

    async def outbox_fail(self, msg_id: str, status: str, error: str) -> None:
        if status not in ("blocked", "parked"):
            raise ValueError(f"outbox_fail status must be 'blocked' or 'parked', not {status!r}")
        await self._outbox_set(
            msg_id,
            "UPDATE outbox SET status = %s, last_error = %s, lease_until = NULL, attempts = attempts + 1",
            (status, str(error)),
        )

    async def outbox_get(self, msg_id: str) -> Optional[dict]:
        self._check_open()
        if not isinstance(msg_id, str):
            return None
        rows = await self._fetchall("SELECT " + _OUTBOX_SELECT + " FROM outbox WHERE id = %s", (msg_id,))
        return _outbox_row(rows[0]) if rows else None

    async def outbox_list(
        self, case_id: Optional[str] = None, status: Optional[str] = None, limit: Optional[int] = None
    ) -> list:
        self._check_open()
        if status is not None and status not in OUTBOX_STATUSES:
            raise ValueError(f"unknown outbox status {status!r}")
        where, params = [], []
        if case_id is not None:
            where.append("case_id = %s")
            params.append(str(case_id))
        if status is not None:
            where.append("status = %s")
            params.append(status)
        sql = "SELECT " + _OUTBOX_SELECT + " FROM outbox"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT %s"
            params.append(max(0, int(limit)))
        return [_outbox_row(r) for r in await self._fetchall(sql, params)]

    async def outbox_counts(self) -> dict:
        self._check_open()
        counts = dict.fromkeys(OUTBOX_STATUSES, 0)
        for status, n in await self._fetchall("SELECT status, count(*) FROM outbox GROUP BY status"):
            counts[status] = n
        return counts

    # -- locks and health ----------------------------------------------------------

    @asynccontextmanager
    async def chat_lock(self, key: str) -> AsyncIterator[None]:
        """One turn per chat at a time, across every worker on the database."""
        self._check_open()
        entry = self._chat_locks.get(key)
        if entry is None:
            entry = self._chat_locks[key] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            async with entry[0]:  # in-process first: waiters hold no connection
                await self._start()
                async with self._locked_conn() as conn:
                    await conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (NS_CHAT, key))
                    try:
                        yield
                    finally:
                        await _unlock(conn, NS_CHAT, key)
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                self._chat_locks.pop(key, None)

    @asynccontextmanager
    async def singleton(self, name: str) -> AsyncIterator[bool]:
        """True if this worker holds ``name`` (e.g. the reminder sweep); never waits for another."""
        self._check_open()
        cm, conn, got = None, None, False
        try:
            await self._start()
            cm = self._locked_conn(timeout=min(self._timeout, 2.0))
            conn = await cm.__aenter__()
            try:
                cur = await conn.execute(
                    "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (NS_SINGLETON, name)
                )
                got = bool((await cur.fetchone())[0])
            except BaseException as e:
                held, cm = cm, None
                await held.__aexit__(type(e), e, e.__traceback__)  # StoreError for a database error
                raise
        except StoreError as e:
            log.warning("singleton %s: %s", name, e)
        try:
            yield got
        finally:
            if cm is not None:
                if got:
                    await _unlock(conn, NS_SINGLETON, name)
                await cm.__aexit__(None, None, None)

    @asynccontextmanager
    async def _locked_conn(self, timeout: Optional[float] = None) -> AsyncIterator[Any]:
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            async with self._lock_pool.connection(timeout=timeout) as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout, psycopg.InterfaceError) as e:
            raise StoreError(_unavailable(self.url, e)) from e

    async def ping(self) -> None:
        self._check_open()
        await self._start()
        async with self._conn(timeout=min(self._timeout, 3.0)) as conn:
            await conn.execute("SELECT 1")

    # -- lifecycle -------------------------------------------------------------------

    async def _shutdown(self) -> None:
        await self._lock_pool.close()
        await self._pool.close()

    # The primitives of the embedded backends do not apply: every public
    # coroutine above talks to the database directly.
    def _load(self, case_id):  # pragma: no cover
        raise NotImplementedError

    def _has(self, case_id):  # pragma: no cover
        raise NotImplementedError

    def _commit(self, ops):  # pragma: no cover
        raise NotImplementedError

    def _detach(self, doc):  # pragma: no cover
        raise NotImplementedError

    def _select(self, okey, filters):  # pragma: no cover
        raise NotImplementedError

    def _closed_before(self, cutoff_iso):  # pragma: no cover
        raise NotImplementedError

    async def _run_write(self, fn):  # pragma: no cover
        raise NotImplementedError


# --------------------------------------------------------------------------
# SQL helpers

_INSERT_CASE = (
    "INSERT INTO cases (id, owner_key, status, created_at, updated_at, closed_at, history_len, doc)"
    " SELECT %(id)s, %(owner_key)s, %(status)s, %(created_at)s, %(updated_at)s, %(closed_at)s,"
    " %(history_len)s, %(doc)s WHERE NOT EXISTS (SELECT 1 FROM retired_case_ids WHERE id = %(id)s)"
    " ON CONFLICT (id) DO NOTHING RETURNING id"
)
_UPDATE_CASE = (
    "UPDATE cases SET owner_key = %(owner_key)s, status = %(status)s, created_at = %(created_at)s,"
    " updated_at = %(updated_at)s, closed_at = %(closed_at)s, doc = %(doc)s WHERE id = %(id)s"
)


async def _unlock_all(conn) -> None:
    await conn.execute("SELECT pg_advisory_unlock_all()")


async def _unlock(conn, ns: int, key: str) -> None:
    """Release now (the pool's reset would do it later, in the background);
    if that fails, close the connection: its locks go with the session."""
    import psycopg

    try:
        await conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (ns, key))
    except psycopg.Error as e:
        log.warning("advisory unlock failed (%s): connection closed instead", type(e).__name__)
        await conn.close()
    except asyncio.CancelledError:
        await conn.close()
        raise


async def _load(conn, cid: str) -> Optional[dict]:
    cur = await conn.execute(_CASE_SELECT + " WHERE c.id = %s", (cid,))
    row = await cur.fetchone()
    return _assemble(*row) if row else None


async def _insert_history(conn, cid: str, start: int, events: list) -> None:
    if events:
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO case_history (case_id, seq, event) VALUES (%s, %s, %s)",
                [(cid, start + i, _dumps(ev)) for i, ev in enumerate(events)],
            )


async def _upsert_reminder(conn, cid: str, owner: dict, rem: dict) -> None:
    await conn.execute(
        "INSERT INTO reminders (case_id, kind, due, owner_key, data) VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT (case_id, kind) DO UPDATE SET due = excluded.due, owner_key = excluded.owner_key,"
        " data = excluded.data",
        (cid, rem["kind"], rem["due"], owner_key(owner), _dumps(rem)),
    )


def _unavailable(url: str, exc: BaseException) -> str:
    from bot import texts

    return texts.text("db_unavailable", url=safe_url(url), error=type(exc).__name__)


def _env_seconds(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name) or default)
    except ValueError:
        return default
    return value if 0 < value <= 3600 else default
