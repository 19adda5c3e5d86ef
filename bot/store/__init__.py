"""The case store: where huqi keeps every report it helps with.

A case is a plain JSON dict.  The store knows these fields; everything else
(enterprise, type, platform, links, plan, evidence, ...) is opaque to it:

``id``          case number (``HQ-2611-7K3Q``, see :mod:`bot.caseid`)
``owner``       ``{"messenger": "telegram"|"terminal", "user_id": "..."}``
``status``      str; ``"closed"`` is special (``closed_at``, :meth:`purge`)
``created_at``, ``updated_at``, ``closed_at``   ISO-8601 UTC strings
``history``     list of events (when, who, from, to, channel, ref, note);
                append-only: :meth:`CaseStore.append_event` is the only way in
``reminders``   list of ``{"case_id", "kind", "due", ...}``, one per kind,
                managed with :meth:`set_reminder` / :meth:`clear_reminder`

All methods are coroutines.  Every document handed out is a private deep copy:
mutating it never changes the store.  Write operations are serialised, so any
number of concurrent tasks can update the same case without losing a write.

Ownership: when ``owner`` is passed, a case owned by someone else behaves
exactly like a case that does not exist (``get`` returns ``None``, writes
raise :class:`CaseNotFound`), so a case number typed by a stranger reveals
nothing.  Operators pass ``owner=None``.

Times: methods accept aware ``datetime`` objects (naive ones are taken as
UTC) or ISO-8601 strings; the store keeps canonical UTC strings
(``2026-11-05T08:30:00+00:00``) so they sort and compare as text.

Backends: ``open_store(dir)`` gives the durable TinyDB-backed store
(:mod:`bot.store.logged_tinydb`); ``open_store(None, backend="memory")`` gives
the in-memory reference implementation for tests.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from abc import ABC, abstractmethod
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Optional, Union

from bot.caseid import new_case_id, normalize_case_id
from bot.store.lock import StoreLocked

__all__ = [
    "CaseStore",
    "open_store",
    "default_data_dir",
    "StoreError",
    "CaseNotFound",
    "CaseExists",
    "StoreClosed",
    "StoreCorrupt",
    "StoreLocked",
    "CLOSED",
    "owner_key",
    "to_iso",
]

log = logging.getLogger("huqi.store")

CLOSED = "closed"
DEFAULT_STATUS = "new"
#: Fields ``update()`` refuses: history is append-only, the id is the key,
#: reminders have their own methods.
PROTECTED_FIELDS = frozenset({"id", "history", "reminders"})
#: Fields holding times; normalised to canonical UTC strings on the way in.
TIME_FIELDS = ("created_at", "updated_at", "closed_at")
#: Ids given by callers (imports, tests) must be safe as file keys.
_CUSTOM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")

TimeLike = Union[datetime, str]


class StoreError(Exception):
    """Base class of case store errors."""


class CaseNotFound(StoreError, KeyError):
    """No such case, or it belongs to someone else (indistinguishable)."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep it plain
        return f"case {self.args[0]} not found" if self.args else "case not found"


class CaseExists(StoreError):
    """``create()`` was given an id that is already taken."""


class StoreClosed(StoreError):
    """The store has been closed."""


class StoreCorrupt(StoreError):
    """A data file is damaged beyond the torn last log line we repair."""


# --------------------------------------------------------------------------
# Small helpers shared by the backends


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def to_iso(value: TimeLike) -> str:
    """Canonical UTC ISO-8601 string (seconds precision) for a time."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"not an ISO-8601 time: {value!r}") from None
    if not isinstance(value, datetime):
        raise TypeError(f"expected datetime or ISO string, got {type(value).__name__}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="seconds")


def owner_key(owner: Any) -> str:
    """``"telegram:12345"`` for an owner dict; ValueError if malformed."""
    if not isinstance(owner, dict):
        raise ValueError("owner must be a dict with 'messenger' and 'user_id'")
    messenger, user_id = owner.get("messenger"), owner.get("user_id")
    if not isinstance(messenger, str) or not messenger:
        raise ValueError("owner['messenger'] must be a non-empty string")
    if isinstance(user_id, bool) or not isinstance(user_id, (str, int)) or user_id == "":
        raise ValueError("owner['user_id'] must be a non-empty string or int")
    return f"{messenger}:{user_id}"


def _norm_owner(owner: Any) -> dict:
    owner_key(owner)  # validates
    owner = dict(owner)
    owner["user_id"] = str(owner["user_id"])
    return owner


def lookup_id(case_id: Any) -> Optional[str]:
    """The key to look a typed case number up by (None: cannot exist)."""
    if not isinstance(case_id, str):
        return None
    canonical = normalize_case_id(case_id)
    if canonical:
        return canonical
    case_id = case_id.strip()
    return case_id if _CUSTOM_ID.match(case_id) else None


def clone_json(value: Any) -> Any:
    """Deep copy of a JSON tree; TypeError for anything JSON cannot hold.

    Several times faster than ``copy.deepcopy`` and makes both backends
    refuse the same inputs (tuples become lists, as JSON would make them).
    """
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"JSON object keys must be strings, got {type(k).__name__}")
            out[k] = clone_json(v)
        return out
    if isinstance(value, (list, tuple)):
        return [clone_json(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"{type(value).__name__} is not JSON data")


def field_matches(actual: Any, wanted: Any) -> bool:
    """Filter semantics shared by every backend.

    ``wanted`` a tuple/list/set: any of them; ``actual`` a list: contains.
    """
    if isinstance(wanted, (tuple, list, set, frozenset)):
        return any(field_matches(actual, w) for w in wanted)
    if isinstance(actual, list):
        return wanted in actual
    return actual == wanted


def prepare_filters(status: Any, filters: dict, now: datetime) -> dict:
    """Validate ``list()`` filters into the form :func:`matches` expects."""
    out: dict = {}
    if status is not None:
        out["status"] = _freeze(status)
    for key, value in filters.items():
        if key in ("older_than", "newer_than"):
            if value is None:
                continue
            if isinstance(value, timedelta):
                value = now - value
            out[key] = to_iso(value)
        elif key in ("id", "history", "reminders", "owner"):
            raise ValueError(f"cannot filter on {key!r}")
        else:
            out[key] = _freeze(value)
    return out


def _freeze(value: Any) -> Any:
    if isinstance(value, (list, tuple, set, frozenset)):
        return tuple(value)
    return value


def matches(doc: dict, okey: Optional[str], filters: dict) -> bool:
    """Does ``doc`` pass the owner key and prepared filters?"""
    if okey is not None:
        try:
            if owner_key(doc.get("owner")) != okey:
                return False
        except ValueError:
            return False
    for key, wanted in filters.items():
        if key == "older_than":
            if not (doc.get("created_at") or "") < wanted:
                return False
        elif key == "newer_than":
            if not (doc.get("created_at") or "") >= wanted:
                return False
        elif not field_matches(doc.get(key), wanted):
            return False
    return True


def sort_key(doc: dict):
    return (doc.get("created_at") or "", doc.get("id") or "")


def _norm_event(event: Any, now_iso: str) -> dict:
    if not isinstance(event, dict):
        raise TypeError("an event must be a dict")
    ev = dict(event)
    when = ev.get("when")
    ev["when"] = to_iso(when) if when is not None else now_iso
    ev = clone_json(ev)
    to = ev.get("to")
    if to is not None and (not isinstance(to, str) or not to):
        raise ValueError("event['to'] must be a non-empty status string")
    return ev


def _norm_reminder(case_id: str, rem: Any) -> dict:
    if not isinstance(rem, dict):
        raise TypeError("a reminder must be a dict")
    kind = rem.get("kind")
    if not isinstance(kind, str) or not kind:
        raise ValueError("reminder['kind'] must be a non-empty string")
    if rem.get("due") is None:
        raise ValueError("reminder['due'] is required")
    out = clone_json({k: v for k, v in rem.items() if k != "due"})
    out["due"] = to_iso(rem["due"])
    out["case_id"] = case_id
    return out


def _set_status(doc: dict, status: str, now_iso: str) -> None:
    """Change status keeping the invariant: closed_at set iff status closed."""
    if not isinstance(status, str) or not status:
        raise ValueError("status must be a non-empty string")
    was_closed = doc.get("status") == CLOSED
    doc["status"] = status
    if status == CLOSED:
        if not was_closed or not doc.get("closed_at"):
            doc["closed_at"] = now_iso
    else:
        doc.pop("closed_at", None)


# --------------------------------------------------------------------------
# The interface


class CaseStore(ABC):
    """The case store interface, with the case semantics implemented once.

    Backends implement the storage primitives (``_load``, ``_has``,
    ``_commit``, ``_select``, ``_due``, ``_closed_before``, ``_run_write``,
    ``_shutdown``); the public coroutines below define what a case is and
    are what the rest of huqi uses.
    """

    def __init__(self, clock: Optional[Callable[[], datetime]] = None):
        self._clock = clock or utcnow
        self._alock = asyncio.Lock()
        self._closed = False

    # -- public interface --------------------------------------------------

    async def create(self, case: dict) -> dict:
        """Store a new case; assigns ``id`` (if missing), ``created_at``,
        ``updated_at``, default ``status`` ("new") and ``history`` ([]).
        Raises :class:`CaseExists` if the given id is taken."""
        self._check_open()
        if not isinstance(case, dict):
            raise TypeError("a case must be a dict")
        now = self._clock()
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
            _norm_reminder("", r)  # validate before queueing

        def write() -> dict:
            if given_id is None:
                cid = new_case_id(now, self._has)
            elif self._has(given_id):
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

        async with self._alock:
            result = await self._run_write(write)
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
        docs = [d for d in self._select(okey, prepared) if matches(d, okey, prepared)]
        docs.sort(key=sort_key)
        return docs[:limit] if limit is not None else docs

    async def update(self, case_id: str, changes: dict, owner: Optional[dict] = None) -> dict:
        """Set non-history fields; returns the updated case.

        Refuses ``id``, ``history`` (use :meth:`append_event`) and
        ``reminders`` (use :meth:`set_reminder`).  Changing ``status`` to
        "closed" sets ``closed_at``; leaving "closed" removes it.
        """
        self._check_open()
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
        okey = owner_key(owner) if owner is not None else None
        cid = lookup_id(case_id)

        def write() -> dict:
            doc = self._load_owned(cid, okey, case_id)
            now_iso = to_iso(self._clock())
            status = ch.pop("status", None) if "status" in ch else None
            closed_at = ch.pop("closed_at", None)
            doc.update(ch)
            if status is not None:
                _set_status(doc, status, closed_at or now_iso)
            elif closed_at and doc.get("status") == CLOSED:
                doc["closed_at"] = closed_at
            doc["updated_at"] = now_iso
            self._commit([("put", doc["id"], doc)])
            return self._detach(doc)

        async with self._alock:
            result = await self._run_write(write)
        log.info("case %s updated (%d fields)", result["id"], len(changes))
        return result

    async def append_event(self, case_id: str, event: dict, owner: Optional[dict] = None) -> dict:
        """Append ``event`` to the case history; returns the updated case.

        ``when`` defaults to now.  If the event has ``to`` the case status
        becomes ``to`` (and ``from`` defaults to the previous status).
        """
        self._check_open()
        okey = owner_key(owner) if owner is not None else None
        cid = lookup_id(case_id)
        ev0 = _norm_event(event, "")  # validate early, before queueing

        def write() -> dict:
            doc = self._load_owned(cid, okey, case_id)
            now_iso = to_iso(self._clock())
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
            self._commit([("put", doc["id"], doc)])
            return self._detach(doc)

        async with self._alock:
            result = await self._run_write(write)
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
        okey = owner_key(owner) if owner is not None else None
        cid = lookup_id(case_id)
        fields = dict(data, kind=kind, due=due)

        def write() -> dict:
            doc = self._load_owned(cid, okey, case_id)
            rem = _norm_reminder(doc["id"], fields)
            rems = [r for r in doc.get("reminders") or [] if r.get("kind") != kind]
            rems.append(rem)
            doc["reminders"] = _sorted_reminders(rems)
            self._commit([("put", doc["id"], doc)])
            return clone_json(rem)

        async with self._alock:
            rem = await self._run_write(write)
        log.info("case %s: reminder %s set", rem["case_id"], kind)
        return rem

    async def clear_reminder(
        self, case_id: str, kind: Optional[str] = None, owner: Optional[dict] = None
    ) -> int:
        """Remove the case's reminder of ``kind`` (all of them if None).
        Returns how many were removed."""
        self._check_open()
        okey = owner_key(owner) if owner is not None else None
        cid = lookup_id(case_id)

        def write() -> int:
            doc = self._load_owned(cid, okey, case_id)
            rems = doc.get("reminders") or []
            keep = [r for r in rems if kind is not None and r.get("kind") != kind]
            removed = len(rems) - len(keep)
            if removed:
                if keep:
                    doc["reminders"] = keep
                else:
                    doc.pop("reminders", None)
                self._commit([("put", doc["id"], doc)])
            return removed

        async with self._alock:
            return await self._run_write(write)

    async def due_reminders(self, now: Optional[TimeLike] = None) -> list:
        """Reminders due at or before ``now`` (default: the store's clock),
        earliest first.  They stay scheduled until cleared, so a crash
        between sending and clearing re-sends rather than loses one."""
        self._check_open()
        now_iso = to_iso(now if now is not None else self._clock())
        rems = self._due(now_iso)
        rems.sort(key=lambda r: (r["due"], r["case_id"], r["kind"]))
        return rems

    async def purge(self, closed_before: Union[TimeLike, timedelta]) -> list:
        """Delete closed cases whose ``closed_at`` is before the cutoff (a
        time, or a timedelta before now).  Open cases are never purged.
        Returns the removed ids, sorted."""
        self._check_open()
        if isinstance(closed_before, timedelta):
            closed_before = self._clock() - closed_before
        cutoff = to_iso(closed_before)

        def write() -> list:
            ids = sorted(self._closed_before(cutoff))
            if ids:
                self._commit([("del", cid, None) for cid in ids])
            return ids

        async with self._alock:
            ids = await self._run_write(write)
            if ids:
                await self._after_purge()
        log.info("purged %d closed cases", len(ids))
        return ids

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

    # -- helpers -----------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("the case store is closed")

    def _load_owned(self, cid: Optional[str], okey: Optional[str], typed: Any) -> dict:
        doc = self._load(cid) if cid is not None else None
        if doc is None or (okey is not None and not matches(doc, okey, {})):
            raise CaseNotFound(typed)
        return doc

    # -- backend primitives ------------------------------------------------

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
    def _due(self, now_iso: str) -> list:
        """Copies of reminders with ``due <= now_iso``."""

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


def _sorted_reminders(rems: list) -> list:
    return sorted(rems, key=lambda r: (r["due"], r["kind"]))


def closed_time(doc: dict) -> str:
    """When a closed case was closed (falls back to updated_at)."""
    return doc.get("closed_at") or doc.get("updated_at") or ""


def default_data_dir() -> str:
    """``$HUQI_DATA_DIR`` or ``./data``."""
    return os.environ.get("HUQI_DATA_DIR") or os.path.join(".", "data")


def open_store(
    data_dir: Optional[str] = None,
    backend: Optional[str] = None,
    **options: Any,
) -> CaseStore:
    """Open the case store.

    ``backend="tinydb"`` (default): durable store in ``data_dir`` (created
    with mode 0700; default :func:`default_data_dir`), locked against other
    processes (:class:`StoreLocked`).  Options: ``clock``, ``compact_every``
    (log entries between snapshots), ``compact_bytes``, ``compact_on_close``.
    ``backend="memory"``: nothing on disk; ``data_dir`` is ignored.
    ``backend="postgres"`` (the default when ``HUQI_DATABASE_URL`` is set):
    :mod:`bot.store.postgres` at ``url=`` or ``$HUQI_DATABASE_URL``.
    """
    if backend is None:
        backend = "postgres" if os.environ.get("HUQI_DATABASE_URL") else "tinydb"
    if backend == "postgres":
        from bot.store.postgres import PostgresStore

        return PostgresStore(options.pop("url", None) or os.environ.get("HUQI_DATABASE_URL", ""), **options)
    if backend == "memory":
        from bot.store.memory import MemoryStore

        return MemoryStore(clock=options.get("clock"))
    if backend in ("tinydb", "logged_tinydb"):
        from bot.store.logged_tinydb import LoggedTinyDBStore

        return LoggedTinyDBStore(data_dir if data_dir is not None else default_data_dir(), **options)
    raise ValueError(f"unknown case store backend {backend!r} (tinydb, memory, postgres)")
