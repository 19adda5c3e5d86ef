"""The notification outbox: every message huqi sends on its own initiative is queued here first.

A queued message (see the store's outbox methods) carries either an
``owner`` (the user of a case, on the messenger that owns it) or a
``chat_id`` (the operators' chat), a ``kind`` (status, message, reminder,
satisfaction, announce) and what to show: ``text`` and optional ``buttons``
(rows of ``{"label", "value"}``), or an engine ``event`` the sender feeds to
the owner's conversation so the buttons it offers are ones the engine will
accept.  The sender (:mod:`bot.sender`) delivers it.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


async def enqueue(store, *, kind: str, text: str | None = None, owner: dict | None = None,
                  chat_id: int | None = None, case_id: str | None = None, buttons: list | None = None,
                  event: dict | None = None, now: datetime | None = None, **extra: Any) -> dict:
    """Queue one message for the sender; returns the stored message (with its id)."""
    if (owner is None) == (chat_id is None):
        raise ValueError("a message goes to exactly one of owner or chat_id")
    if text is None and event is None:
        raise ValueError("a message needs text or an engine event")
    msg: dict[str, Any] = {"kind": kind}
    if owner is not None:
        msg["owner"] = {"messenger": owner["messenger"], "user_id": str(owner["user_id"])}
    else:
        msg["chat_id"] = chat_id
    for key, value in (("case_id", case_id), ("text", text), ("buttons", buttons), ("event", event)):
        if value is not None:
            msg[key] = value
    msg.update(extra)
    return await store.outbox_add(msg, now=now or utcnow())
