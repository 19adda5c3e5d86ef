"""Reminders: ask the user about a report that has had no news for a while.

After a case is submitted (or escalated) huqi schedules a ``no_news``
reminder ``days`` later (``HUQI_REMINDER_DAYS``, default 7: huqi's own
interval, not a legal time limit).  When it is due the bot sends
:func:`reminder_message`; the buttons answer ``rem:done:<id>`` (the channel
acted), ``rem:wait:<id>`` (still in progress: :func:`snooze`) or
``rem:none:<id>`` (no response: escalate to the next channel of the plan).

Reminders live in the case store (``store.set_reminder``), so they survive
restarts; a reminder stays scheduled until it is cleared or rescheduled, so a
crash between sending and answering re-sends rather than loses it.

Every function takes ``now`` from the caller (an aware datetime, naive = UTC,
or an ISO string): tests and the scheduler control the clock.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Optional, Union

from bot.store import CLOSED, to_iso

__all__ = [
    "KIND",
    "ACTIONS",
    "schedule_after_submit",
    "after_transition",
    "due",
    "snooze",
    "clear",
    "reminder_message",
    "parse_reminder_value",
]

KIND = "no_news"
#: Button actions: done = the channel acted, wait = still in progress, none = no response.
ACTIONS = ("done", "wait", "none")
_SUBMIT = ("submitted", "escalated")

TimeLike = Union[datetime, str]


def _dt(value: TimeLike) -> datetime:
    return datetime.fromisoformat(to_iso(value))


def _days(days: Any) -> int:
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"days must be a positive whole number, got {days!r}")
    return days


def _last_submission(case: dict) -> Optional[dict]:
    for e in reversed(case.get("history") or []):
        if isinstance(e, dict) and e.get("to") in _SUBMIT:
            return e
    return None


async def schedule_after_submit(store, case_id: str, days: int, now: TimeLike, *,
                                owner: Optional[dict] = None) -> dict:
    """Schedule the case's ``no_news`` reminder ``days`` after ``now``.

    Replaces any earlier one (one reminder per kind).  The reminder records
    the channel the case was last sent to and the interval, for the message.
    Raises the store's ``CaseNotFound`` for an unknown case.
    """
    days = _days(days)
    start = _dt(now)
    case = await store.get(case_id, owner=owner)
    sub = _last_submission(case) if case else None
    return await store.set_reminder(
        case_id, start + timedelta(days=days), KIND, owner=owner,
        days=days, set_at=to_iso(start), channel=(sub or {}).get("channel"))


async def after_transition(store, case: dict, now: TimeLike, days: int, *,
                           owner: Optional[dict] = None) -> Optional[dict]:
    """Keep the reminder in step with a status change just recorded.

    Entering ``submitted``/``escalated`` schedules a fresh reminder (returned);
    any other status clears it (the report is answered, or the case closed).
    """
    if case.get("status") in _SUBMIT:
        return await schedule_after_submit(store, case["id"], days, now, owner=owner)
    await store.clear_reminder(case["id"], KIND, owner=owner)
    return None


async def due(store, now: TimeLike, owner: Optional[dict] = None) -> list:
    """``(case, reminder)`` pairs for every reminder due at ``now`` (of ``owner``'s cases
    when given, found through the store's index), earliest first.

    Reminders left on closed cases are cleared and not returned.
    """
    out = []
    for rem in await store.due_reminders(now, owner=owner):
        case = await store.get(rem["case_id"])
        if case is None:
            continue
        if case.get("status") == CLOSED:
            await store.clear_reminder(case["id"], rem["kind"])
            continue
        out.append((case, rem))
    return out


async def snooze(store, case_id: str, days: int, now: TimeLike, *, kind: str = KIND,
                 owner: Optional[dict] = None) -> dict:
    """Ask again ``days`` after ``now`` (the "仍在处理" answer); keeps the
    reminder's data and counts the snoozes."""
    days = _days(days)
    start = _dt(now)
    case = await store.get(case_id, owner=owner)
    old = next((r for r in (case or {}).get("reminders") or [] if r.get("kind") == kind), {})
    data = {k: v for k, v in old.items() if k not in ("case_id", "kind", "due")}
    data.setdefault("days", days)
    data["snoozed"] = int(data.get("snoozed") or 0) + 1
    data["snoozed_at"] = to_iso(start)
    return await store.set_reminder(case_id, start + timedelta(days=days), kind, owner=owner, **data)


async def clear(store, case_id: str, *, owner: Optional[dict] = None) -> int:
    """Remove the case's ``no_news`` reminder; returns how many were removed."""
    return await store.clear_reminder(case_id, KIND, owner=owner)


def reminder_message(case: dict, lifecycle=None, *, now: Optional[TimeLike] = None,
                     days: Optional[int] = None) -> dict:
    """The reply the bot sends when the case's reminder is due.

    ``{"text": ..., "buttons": [[{"label", "value": "rem:<action>:<id>"}], ...]}``.
    The age counts whole days from the last submission to ``now`` (default:
    the reminder's due time); the interval shown is the reminder's own
    (default ``days``, then ``HUQI_REMINDER_DAYS``).
    """
    if lifecycle is None:
        from dialogs.lifecycle import load_lifecycle

        lifecycle = load_lifecycle()
    rem = next((r for r in case.get("reminders") or [] if r.get("kind") == KIND), {})
    sub = _last_submission(case)
    if days is None:
        days = rem.get("days")
    if not isinstance(days, int) or isinstance(days, bool) or days < 1:
        from bot.config import reminder_days

        days = reminder_days()
    start = (sub or {}).get("when") or rem.get("set_at") or case.get("created_at")
    end = now if now is not None else rem.get("due")
    age = days
    if start and end:
        age = max(0, (_dt(end) - _dt(start)).days)
    channel = (sub or {}).get("channel") or rem.get("channel")
    cid = case.get("id", "")
    r = lifecycle.reminder
    text = r["text"].format(case_id=cid, age=age, channel=lifecycle.channel_label(channel), days=days).strip()
    buttons = [[{"label": b["label"], "value": f"rem:{b['action']}:{cid}"}] for b in r["buttons"]]
    return {"text": text, "buttons": buttons}


def parse_reminder_value(value: Any) -> Optional[tuple]:
    """``"rem:wait:HQ-2611-7K3Q"`` -> ``("wait", "HQ-2611-7K3Q")``; None if not a reminder answer."""
    if not isinstance(value, str):
        return None
    parts = value.strip().split(":", 2)
    if len(parts) != 3 or parts[0] != "rem" or parts[1] not in ACTIONS or not parts[2]:
        return None
    return parts[1], parts[2]

