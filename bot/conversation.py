"""One user's turn as the service runs it: lock, stored state, session, store effects, announcements.

Every messenger adapter of ``huqi serve`` (Telegram, the web chat) calls
:meth:`Conversations.turn`; the adapter only turns its updates into engine
events and the replies into its own messages.  A user's turns run one at a
time and in order (the store's ``chat_lock``: an asyncio lock in one process,
an advisory lock across PostgreSQL workers); the state is read from the store
at the start of the turn and written back before the replies are sent, so a
worker that dies mid-turn leaves the last acknowledged state behind.

The record kept per user is ``{"state": engine state, ...adapter data}``
(the Telegram adapter keeps its callback table there).
"""
from __future__ import annotations

import contextvars
import logging
from datetime import datetime, timezone
from typing import Awaitable, Callable

from bot import satisfaction, texts
from bot.outbox import enqueue
from bot.session import Session
from dialogs.engine import Engine

log = logging.getLogger("huqi.conversation")

#: Set by a webhook request; a turn that could not reach the store marks it, and the request answers 503.
turn_failed: contextvars.ContextVar[list | None] = contextvars.ContextVar("turn_failed", default=None)

Render = Callable[[dict, list], Awaitable[None]]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Conversations:
    def __init__(self, store, messenger: str, engine: Engine | None = None,
                 clock: Callable[[], datetime] = utcnow, operator_chat_id: int | None = None):
        self.store = store
        self.messenger = messenger
        self.engine = engine or Engine()
        self.clock = clock
        self.operator_chat_id = operator_chat_id

    def key(self, user_id: str) -> str:
        return f"{self.messenger}:{user_id}"

    def owner(self, user_id: str) -> dict:
        return {"messenger": self.messenger, "user_id": str(user_id)}

    async def turn(self, user_id: str, event: dict | None, deliver: Render,
                   resolve: Callable[[dict, dict], dict] | None = None) -> None:
        """Handle one event (None: a first /start) and hand the replies to ``deliver(record, replies)``.

        ``deliver`` runs inside the user's lock, after the state is stored, so
        the next turn's replies cannot overtake this one's.
        """
        key = self.key(user_id)
        async with self.store.chat_lock(key):
            record = await self.store.get_state(key) or {}
            session = Session(self.engine, self.store, self.owner(user_id), state=record.get("state"),
                              clock=self.clock)
            before = (session.state.get("case") or {}).get("case_id")
            if resolve is not None and event is not None:
                event = resolve(record, event)
            replies = await self._replies(session, record, event)
            record["state"] = session.state
            saved = (session.state.get("case") or {}).get("case_id")
            if saved and saved != before:
                log.info("%s saved case %s", key, saved)
                await self.announce_new(saved)
            try:
                await deliver(record, replies)      # may add to the record (callback table)
            finally:
                await self.store.put_state(key, record)

    async def _replies(self, session: Session, record: dict, event: dict | None) -> list[dict]:
        lang = session.state.get("lang")
        if event is None:
            return session.start()
        if event.get("type") == "button" and satisfaction.parse(event.get("value")):
            return [await satisfaction.answer(self.store, session.owner, record, event["value"], self.clock(),
                                              lang)]
        if record.get("sat_comment"):
            if event.get("type") == "text" and (event.get("text") or "").strip():
                reply = await satisfaction.comment(self.store, session.owner, record, event["text"],
                                                   self.clock(), lang)
                if reply:
                    return [reply]
            record.pop("sat_comment", None)
        return await session.turn(event)

    async def push(self, user_id: str, event: dict, deliver: Render) -> None:
        """Feed a queued engine event (a reminder) into the user's conversation and deliver what it says.

        The state is stored only after delivery succeeded, so a failed
        delivery retried later does not find the event already applied.
        """
        key = self.key(user_id)
        async with self.store.chat_lock(key):
            record = await self.store.get_state(key) or {}
            session = Session(self.engine, self.store, self.owner(user_id), state=record.get("state"),
                              clock=self.clock)
            replies = await session.turn(event)
            record["state"] = session.state
            await deliver(record, replies)
            await self.store.put_state(key, record)

    async def notify(self, user_id: str, reply: dict, deliver: Render) -> None:
        """Deliver a queued message (text, optional buttons answered outside the engine), in the user's script."""
        key = self.key(user_id)
        async with self.store.chat_lock(key):
            record = await self.store.get_state(key) or {}
            if (record.get("state") or {}).get("lang") == "hant":
                reply = localise(reply)
            await deliver(record, [reply])
            await self.store.put_state(key, record)

    async def announce_new(self, case_id: str) -> None:
        """Tell the operators' chat about a new case (never the reporter's personal data)."""
        if self.operator_chat_id is None:
            return
        case = await self.store.get(case_id)
        if case is None:
            return
        await enqueue(self.store, kind="announce", chat_id=self.operator_chat_id, case_id=case_id,
                      text=texts.text("announce_new_case", **case_facts(case)), now=self.clock())


def localise(reply: dict) -> dict:
    from knowledge.text import to_traditional

    out = dict(reply, text=to_traditional(reply.get("text") or ""))
    if reply.get("buttons"):
        out["buttons"] = [[dict(b, label=to_traditional(b["label"])) for b in row] for row in reply["buttons"]]
    return out


def case_facts(case: dict) -> dict:
    """Type, platform, province and status of a case as operators read them (no personal data)."""
    from bot import ops

    unknown = texts.text("unknown")
    return {"case_id": case.get("id"), "type": ops.type_label(case.get("type")) or unknown,
            "platform": ops.platform_label(case.get("platform")) or unknown,
            "province": ops.province_label(case.get("province")) or unknown,
            "status": ops.status_label(case.get("status")) or unknown}
