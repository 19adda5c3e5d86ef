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

Beside the cases a store keeps conversation states (one small record per
chat), the notification outbox, and offers per-chat locks and singletons;
the interface is :class:`bot.store.base.CaseStore`.

Backends: ``open_store(dir)`` gives the durable TinyDB-backed store
(:mod:`bot.store.logged_tinydb`); ``open_store(None, backend="memory")`` gives
the in-memory reference implementation for tests.
"""

from __future__ import annotations

import logging
import os
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Optional, Union

from bot.caseid import normalize_case_id
from bot.store.lock import StoreLocked
from dialogs.model import StoreError, CaseNotFound, to_iso

__all__ = [
    "CaseStore",
    "MessageNotFound",
    "OUTBOX_STATUSES",
    "import_states_file",
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


def time_before(now: datetime, delta: timedelta) -> datetime:
    """``now - delta``, clamped to the representable range (a huge age such
    as ``--older-than 99999999`` days means "since ever", not an error)."""
    try:
        return now - delta
    except OverflowError:
        edge = datetime.min if delta > timedelta(0) else datetime.max
        return edge.replace(tzinfo=timezone.utc)


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
                value = time_before(now, value)
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


# The interface and the importer need the helpers above (import order matters).
from bot.store.base import OUTBOX_STATUSES, CaseStore, MessageNotFound  # noqa: E402
from bot.store.states_import import import_states_file  # noqa: E402
