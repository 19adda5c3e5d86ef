"""The abstract case store: what a case is, implemented once over a few
storage primitives, plus the interface of states, outbox, locks and health
that every backend implements (see :mod:`bot.store` for the data model)."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from datetime import datetime, timedelta
from typing import Any, AsyncContextManager, Callable, Iterable, Optional, Union

from bot.caseid import new_case_id
from bot.store import (
    CLOSED,
    DEFAULT_STATUS,
    PROTECTED_FIELDS,
    TIME_FIELDS,
    CaseExists,
    CaseNotFound,
    StoreClosed,
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
    utcnow,
)

__all__ = ["CaseStore", "MessageNotFound", "OUTBOX_STATUSES", "check_state_key"]

log = logging.getLogger("huqi.store")

#: Every status an outbox message can have; "blocked" and "parked" are final.
OUTBOX_STATUSES = ("pending", "claimed", "sent", "blocked", "parked")


class MessageNotFound(StoreError, KeyError):
    """No outbox message with this id."""

    def __str__(self) -> str:
        return f"outbox message {self.args[0]} not found" if self.args else "outbox message not found"


class _NoChange(Exception):
    """Raised by a change function: nothing to write, return ``value``."""

    def __init__(self, value: Any):
        self.value = value


def check_state_key(key: Any) -> str:
    """State keys are short printable strings without quotes or backslashes
    (``"telegram:12345"``); ValueError otherwise."""
    if (
        not isinstance(key, str)
        or not 0 < len(key) <= 200
        or any(c in key for c in '"\\') or not key.isprintable() or key != key.strip()
    ):
        raise ValueError(f"bad conversation state key: {key!r}")
    return key


def _sorted_reminders(rems: list) -> list:
    return sorted(rems, key=lambda r: (r["due"], r["kind"]))


class CaseStore(ABC):
    """The case store interface, with the case semantics implemented once.

    Backends implement the storage primitives (``_load``, ``_has``,
    ``_commit``, ``_select``, ``_due``, ``_closed_before``, ``_run_write``,
    ``_shutdown``) and the abstract state / outbox / lock / health methods;
    the public coroutines below are what the rest of huqi uses.
    """

    def __init__(self, clock: Optional[Callable[[], datetime]] = None):
        self._clock = clock or utcnow
        self._alock = asyncio.Lock()
        self._closed = False

    # -- cases ---------------------------------------------------------------

    async def create(self, case: dict) -> dict:
        """Store a new case; assigns ``id`` (if missing), ``created_at``,
        ``updated_at``, default ``status`` ("new") and ``history`` ([]).
        Raises :class:`CaseExists` if the given id is taken (or was used by
        a purged case: numbers are never issued twice)."""
        self._check_open()
        now = self._clock()
        doc, given_id, reminders = prepare_new_case(case, now)

        def taken(cid: str) -> bool:
            return self._has(cid) or self._retired(cid)

        def write() -> dict:
            if given_id is None:
                cid = new_case_id(now, taken)
            elif taken(given_id):
                raise CaseExists(f"case {given_id} already exists")
            else:
                cid = given_id
            new = {"id": cid}  # id first: easier to read in the files
            new.update(doc)
            new["id"] = cid
            rems = [_norm_reminder(cid, r) for r in reminders]
            if rems:
                new["reminders"] = _sorted_reminders(rems)
            self._commit([("put", cid, new)])
            return self._detach(new)

        result = await self._write(write)
        log.info("case %s created", result["id"])
        return result

    async def get(self, case_id: str, owner: Optional[dict] = None) -> Optional[dict]:
        """The case, or None if there is none (or it is not ``owner``'s).
        Typed variants of the number (``hq 2611 7k3q``) are accepted."""
        self._check_open()
        cid = lookup_id(case_id)
        if cid is None:
            return None
        okey = owner_key(owner) if owner is not None else None
        doc = self._load(cid)
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
        """Cases matching every filter, oldest first.

        ``status`` and any other field (``type``, ``platform``, ``province``,
        ``subtype`` ...) match by equality; a list/tuple/set means "any of";
        a list-valued field matches if it contains the value.
        ``older_than`` / ``newer_than`` (datetime, ISO string, or timedelta
        before now) compare ``created_at``: created before / at-or-after.
        """
        self._check_open()
        okey = owner_key(owner) if owner is not None else None
        prepared = prepare_filters(status, filters, self._clock())
        if self.select_in_thread:          # decoding thousands of cases must not hold the event loop
            docs = await asyncio.to_thread(self._matching, okey, prepared)
        else:
            docs = self._matching(okey, prepared)
        return docs[:limit] if limit is not None else docs

    #: True where _select is safe in a worker thread (it takes the backend's own lock) and costly.
    select_in_thread = False

    def _matching(self, okey: Optional[str], prepared: dict) -> list:
        docs = [d for d in self._select(okey, prepared) if matches(d, okey, prepared)]
        docs.sort(key=sort_key)
        return docs

    async def update(self, case_id: str, changes: dict, owner: Optional[dict] = None) -> dict:
        """Set non-history fields; returns the updated case.

        Refuses ``id``, ``history`` (use :meth:`append_event`) and
        ``reminders`` (use :meth:`set_reminder`).  Changing ``status`` to
        "closed" sets ``closed_at``; leaving "closed" removes it.
        """
        self._check_open()
        ch = prepare_changes(changes)

        def change(doc: dict, now_iso: str) -> dict:
            fields = dict(ch)
            status = fields.pop("status", None)
            closed_at = fields.pop("closed_at", None)
            doc.update(fields)
            if status is not None:
                _set_status(doc, status, closed_at or now_iso)
            elif closed_at and doc.get("status") == CLOSED:
                doc["closed_at"] = closed_at
            doc["updated_at"] = now_iso
            return doc

        result = await self._modify(case_id, owner, change)
        log.info("case %s updated (%d fields)", result["id"], len(changes))
        return result

    async def append_event(self, case_id: str, event: dict, owner: Optional[dict] = None) -> dict:
        """Append ``event`` to the case history; returns the updated case.

        ``when`` defaults to now.  If the event has ``to`` the case status
        becomes ``to`` (and ``from`` defaults to the previous status).
        """
        self._check_open()
        ev0 = _norm_event(event, "")  # validate early, before queueing

        def change(doc: dict, now_iso: str) -> dict:
            ev = dict(ev0)
            if not ev["when"]:
                ev["when"] = now_iso
            to = ev.get("to")
            if to is not None:
                ev.setdefault("from", doc.get("status"))
                _set_status(doc, to, now_iso)
            history = doc.get("history")
            if not isinstance(history, list):
                history = []
            history.append(ev)
            doc["history"] = history
            doc["updated_at"] = now_iso
            return doc

        result = await self._modify(case_id, owner, change)
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
        """Schedule (or reschedule) the case's reminder of this ``kind``.
        Extra keyword data is stored with it.  Returns the reminder."""
        self._check_open()
        fields = dict(data, kind=kind, due=due)
        _norm_reminder("", fields)  # validate before queueing

        def change(doc: dict, now_iso: str) -> dict:
            rem = _norm_reminder(doc["id"], fields)
            rems = [r for r in doc.get("reminders") or [] if r.get("kind") != kind]
            rems.append(rem)
            doc["reminders"] = _sorted_reminders(rems)
            return clone_json(rem)

        rem = await self._modify(case_id, owner, change, detach=False)
        log.info("case %s: reminder %s set", rem["case_id"], kind)
        return rem

    async def clear_reminder(
        self, case_id: str, kind: Optional[str] = None, owner: Optional[dict] = None
    ) -> int:
        """Remove the case's reminder of ``kind`` (all of them if None).
        Returns how many were removed."""
        self._check_open()

        def change(doc: dict, now_iso: str) -> int:
            rems = doc.get("reminders") or []
            keep = [r for r in rems if kind is not None and r.get("kind") != kind]
            removed = len(rems) - len(keep)
            if not removed:
                raise _NoChange(0)
            if keep:
                doc["reminders"] = keep
            else:
                doc.pop("reminders", None)
            return removed

        return await self._modify(case_id, owner, change, detach=False)

    async def due_reminders(
        self,
        now: Optional[TimeLike] = None,
        owner: Optional[dict] = None,
        limit: Optional[int] = None,
    ) -> list:
        """Reminders due at or before ``now`` (default: the store's clock),
        earliest first (then by case id and kind), only ``owner``'s if given,
        at most ``limit``.  Found through an index on the due time, never a
        scan of the cases.  They stay scheduled until cleared, so a crash
        between sending and clearing re-sends rather than loses one."""
        self._check_open()
        now_iso = to_iso(now if now is not None else self._clock())
        okey = owner_key(owner) if owner is not None else None
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValueError("limit must be a non-negative int")
        return await self._due(now_iso, okey, limit)

    async def purge(self, closed_before: Union[TimeLike, timedelta]) -> list:
        """Delete closed cases whose ``closed_at`` is before the cutoff (a
        time, or a timedelta before now), with their outbox messages.  Open
        cases are never purged.  Returns the removed ids, sorted."""
        self._check_open()
        if isinstance(closed_before, timedelta):
            closed_before = time_before(self._clock(), closed_before)
        cutoff = to_iso(closed_before)

        def write() -> list:
            ids = sorted(self._closed_before(cutoff))
            if ids:
                self._commit([("del", cid, None) for cid in ids] + self._purge_ops(ids))
            return ids

        async with self._alock:
            ids = await self._run_write(write)
            if ids:
                await self._after_purge()
        log.info("purged %d closed cases", len(ids))
        return ids

    # -- conversation states (one small record per chat) ---------------------

    @abstractmethod
    async def get_state(self, key: str) -> Optional[dict]:
        """The chat's state (a private copy), or None."""

    @abstractmethod
    async def put_state(self, key: str, state: dict) -> None:
        """Replace the chat's state; the cost does not depend on how many
        states are stored."""

    async def put_states(self, states: dict) -> None:
        """Store many states at once (imports); backends may batch."""
        for key, state in states.items():
            await self.put_state(key, state)

    @abstractmethod
    async def delete_state(self, key: str) -> None:
        """Forget the chat's state (no error if there is none)."""

    @abstractmethod
    async def count_states(self) -> int:
        """How many chats have a stored state."""

    # -- notification outbox -------------------------------------------------

    @abstractmethod
    async def outbox_add(self, msg: dict, now: Optional[TimeLike] = None) -> dict:
        """Queue a message: status pending, attempts 0, ``next_at`` =
        ``msg["next_at"]`` or now; returns it with its assigned ``id``."""

    @abstractmethod
    async def outbox_claim(self, now: TimeLike, limit: int = 50, lease_seconds: float = 60) -> list:
        """Pending messages due by ``now`` plus claimed ones whose lease
        expired, oldest id first, marked claimed until now + lease.  Two
        concurrent claimers never get the same message."""

    @abstractmethod
    async def outbox_sent(self, msg_id: str, now: TimeLike) -> None:
        """Delivered: status sent, ``sent_at``."""

    @abstractmethod
    async def outbox_retry(self, msg_id: str, next_at: TimeLike, error: str) -> None:
        """Back to pending at ``next_at``; attempts += 1; ``last_error``."""

    @abstractmethod
    async def outbox_fail(self, msg_id: str, status: str, error: str) -> None:
        """Final failure: ``status`` "blocked" or "parked"; attempts += 1."""

    @abstractmethod
    async def outbox_get(self, msg_id: str) -> Optional[dict]:
        """The message, or None."""

    @abstractmethod
    async def outbox_list(
        self, case_id: Optional[str] = None, status: Optional[str] = None, limit: Optional[int] = None
    ) -> list:
        """Messages (of a case, with a status), oldest id first."""

    @abstractmethod
    async def outbox_counts(self) -> dict:
        """``{status: n}`` for every status in :data:`OUTBOX_STATUSES`."""

    # -- locks and health ----------------------------------------------------

    @abstractmethod
    def chat_lock(self, key: str) -> AsyncContextManager[None]:
        """One chat's turns one at a time, in the order they asked."""

    @abstractmethod
    def singleton(self, name: str) -> AsyncContextManager[bool]:
        """Yields True if this worker holds ``name`` (e.g. "reminder-sweep")
        for the block, False if another holds it; never waits."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise :class:`StoreError` if the store is unusable."""

    # -- life cycle ----------------------------------------------------------

    async def close(self) -> None:
        """Flush and release everything.  Idempotent."""
        if self._closed:
            return
        async with self._alock:
            if self._closed:
                return
            await self._shutdown()
            self._closed = True

    async def __aenter__(self) -> "CaseStore":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- helpers -------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("the case store is closed")

    def _load_owned(self, cid: Optional[str], okey: Optional[str], typed: Any) -> dict:
        doc = self._load(cid) if cid is not None else None
        if doc is None or (okey is not None and not matches(doc, okey, {})):
            raise CaseNotFound(typed)
        return doc

    async def _write(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` in the writer, serialised with every other write."""
        async with self._alock:
            self._check_open()
            return await self._run_write(fn)

    async def _modify(
        self,
        case_id: Any,
        owner: Optional[dict],
        change: Callable[[dict, str], Any],
        detach: bool = True,
    ) -> Any:
        """The read-modify-write of one case: load it (owner checked), let
        ``change(doc, now_iso)`` edit it, commit it.  Returns what ``change``
        returns (detached if it is the doc); ``change`` raises
        :class:`_NoChange` to write nothing."""
        okey = owner_key(owner) if owner is not None else None
        cid = lookup_id(case_id)

        def write() -> Any:
            doc = self._load_owned(cid, okey, case_id)
            try:
                result = change(doc, to_iso(self._clock()))
            except _NoChange as nc:
                return nc.value
            self._commit([("put", doc["id"], doc)])
            return self._detach(doc) if detach and result is doc else result

        return await self._write(write)

    def _retired(self, case_id: str) -> bool:
        """Was the id used by a case since purged?  (Never issued again.)"""
        return False

    def _purge_ops(self, ids: list) -> list:
        """Extra ops committed with a purge (e.g. the cases' outbox)."""
        return []

    # -- backend primitives --------------------------------------------------

    @abstractmethod
    def _load(self, case_id: str) -> Optional[dict]:
        """A private deep copy of the stored case, or None."""

    @abstractmethod
    def _has(self, case_id: str) -> bool:
        """Is the id taken?"""

    @abstractmethod
    def _commit(self, ops: list) -> None:
        """Durably apply ``[("put", id, doc) | ("del", id, None), ...]``
        atomically.  Runs inside ``_run_write``; owns the docs passed."""

    @abstractmethod
    def _detach(self, doc: dict) -> dict:
        """A copy of a just-committed doc that the caller may keep."""

    @abstractmethod
    def _select(self, okey: Optional[str], filters: dict) -> Iterable[dict]:
        """Private copies of (at least) all cases matching; the caller
        re-checks with :func:`matches`."""

    @abstractmethod
    async def _due(self, now_iso: str, okey: Optional[str], limit: Optional[int]) -> list:
        """Copies of reminders with ``due <= now_iso`` (of owner ``okey``),
        sorted by (due, case_id, kind), at most ``limit``."""

    @abstractmethod
    def _closed_before(self, cutoff_iso: str) -> list:
        """Ids of closed cases with ``closed_at < cutoff_iso``."""

    @abstractmethod
    async def _run_write(self, fn: Callable[[], Any]) -> Any:
        """Run a read-modify-write function, serialised with all others."""

    async def _after_purge(self) -> None:
        """Hook: make purged data physically unrecoverable."""

    @abstractmethod
    async def _shutdown(self) -> None:
        """Flush and release resources."""


def prepare_new_case(case: Any, now: datetime) -> tuple:
    """Validate and normalise a new case as :meth:`CaseStore.create` and every backend do:
    ``(doc without id, given id or None, reminders to add)``."""
    if not isinstance(case, dict):
        raise TypeError("a case must be a dict")
    now_iso = to_iso(now)
    doc = clone_json(
        {k: v for k, v in case.items() if k not in TIME_FIELDS and k not in ("reminders", "history")}
    )
    for f in TIME_FIELDS:
        if case.get(f) is not None:
            doc[f] = to_iso(case[f])
    doc["owner"] = _norm_owner(case.get("owner"))
    given_id = case.get("id")
    if given_id is not None:
        if not isinstance(given_id, str):
            raise ValueError("case id must be a string")
        given_id = lookup_id(given_id)
        if given_id is None:
            raise ValueError(f"malformed case id: {case.get('id')!r}")
    doc.pop("id", None)
    doc.setdefault("created_at", now_iso)
    doc.setdefault("updated_at", now_iso)
    status = doc.get("status") or DEFAULT_STATUS
    closed_at = doc.pop("closed_at", None)
    doc["status"] = DEFAULT_STATUS
    _set_status(doc, status, closed_at or now_iso)
    history = case.get("history") or []
    if not isinstance(history, list):
        raise TypeError("history must be a list of events")
    doc["history"] = [_norm_event(ev, now_iso) for ev in history]
    reminders = case.get("reminders") or []
    if not isinstance(reminders, list):
        raise TypeError("reminders must be a list")
    for r in reminders:
        _norm_reminder("", r)
    return doc, given_id, reminders


def prepare_changes(changes: Any) -> dict:
    """Validate and normalise ``update()``'s changes as every backend does (times canonical, owner
    checked; history and reminders refused)."""
    if not isinstance(changes, dict):
        raise TypeError("changes must be a dict")
    refused = sorted(PROTECTED_FIELDS & set(changes))
    if refused:
        raise ValueError(
            f"update() cannot change {', '.join(refused)}: history is append-only "
            "(append_event), reminders have set_reminder/clear_reminder"
        )
    ch = clone_json({k: v for k, v in changes.items() if k not in TIME_FIELDS})
    for f in TIME_FIELDS:
        if f in changes and changes[f] is not None:
            ch[f] = to_iso(changes[f])
    if "owner" in ch:
        ch["owner"] = _norm_owner(ch["owner"])
    return ch
