"""The reminder sweep: due reminders become outbox messages, once per due time.

Reminders are found through the store's index on the due time; each one
queued is marked with the due time it was queued for, so a sweep sends
nothing twice and a reminder snoozed to a new time is sent again then.  The
owner gets the reminder with its buttons (已处理 / 仍在处理 / 没回应); the
operators' chat, when configured, hears of the overdue case.  Across several
workers the sweep runs in one of them at a time (``store.singleton``).
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from bot import reminders, texts
from bot.background import Background
from bot.conversation import case_facts
from bot.outbox import enqueue

log = logging.getLogger("huqi.sweep")

YIELD_EVERY = 10       # reminders handled between two returns to the event loop


async def sweep(store, now: datetime, operator_chat_id: int | None = None) -> int:
    """Queue every due reminder not queued yet; returns how many were queued."""
    async with store.singleton("reminder-sweep") as mine:
        if not mine:
            return 0
        queued = 0
        for i, rem in enumerate(await store.due_reminders(now)):
            if i % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)
            if rem.get("queued") == rem["due"]:
                continue
            case = await store.get(rem["case_id"])
            if case is None:
                continue
            if case.get("status") == "closed":
                await store.clear_reminder(case["id"], rem["kind"])
                continue
            if case.get("owner"):
                reply = reminders.reminder_message(case, now=now)
                await enqueue(store, kind="reminder", owner=case["owner"], case_id=case["id"],
                              event={"type": "reminder", "case_id": case["id"], "reply": reply}, now=now)
            if operator_chat_id is not None:
                days = rem.get("days") or ""
                await enqueue(store, kind="announce", chat_id=operator_chat_id, case_id=case["id"], now=now,
                              text=texts.text("announce_overdue", days=days, **case_facts(case)))
            data = {k: v for k, v in rem.items() if k not in ("case_id", "kind", "due")}
            await store.set_reminder(case["id"], rem["due"], rem["kind"], queued=rem["due"],
                                     **{k: v for k, v in data.items() if k != "queued"})
            queued += 1
        if queued:
            log.info("reminder sweep queued %d", queued)
        return queued


class Sweeper(Background):
    """Runs :func:`sweep` every ``every`` seconds as a background task."""

    task_name = "huqi-reminder-sweep"

    def __init__(self, store, clock, every: float, operator_chat_id: int | None = None, on_queued=None):
        self.store, self.clock, self.every = store, clock, every
        self.operator_chat_id = operator_chat_id
        self.on_queued = on_queued

    async def _run(self) -> None:
        while True:
            try:
                if await sweep(self.store, self.clock(), self.operator_chat_id) and self.on_queued:
                    self.on_queued()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("reminder sweep failed: %s", type(e).__name__)
            await asyncio.sleep(self.every)
