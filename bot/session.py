"""One user's conversation: the engine's turns, with its store effects carried out.

Every messenger adapter (terminal, Telegram, a web chat) keeps a Session per
user and only renders replies (shapes: dialogs/engine.py); reading and writing
cases happens here, always with the user as owner, so nobody reaches another
user's case. A store failure (StoreError, OSError) never escapes a turn: the
user reads one sentence, the conversation is back where it was, and the same
button can be pressed again. ``state["shown"]`` keeps the options of the
turn, in order, so a typed number means what the user sees.
"""
from __future__ import annotations

from datetime import datetime
from typing import Callable

from bot import reminders, satisfaction
from bot.store import lookup_id
from bot.config import reminder_days
from dialogs.engine import Engine
from dialogs.lifecycle import TransitionRefused, record
from dialogs.model import CaseNotFound, StoreError, utcnow


class Session:
    def __init__(self, engine: Engine, store, owner: dict, state: dict | None = None,
                 clock: Callable[[], datetime] = utcnow):
        self.engine = engine
        self.store = store
        self.owner = owner
        self.state = state or {}
        self.clock = clock

    @property
    def who(self) -> str:
        return f"{self.owner['messenger']}:{self.owner['user_id']}"

    def start(self) -> list[dict]:
        self.state, replies = self.engine.start()
        return replies

    async def turn(self, event: dict) -> list[dict]:
        """The replies to show for one user event, effects carried out.

        A store failure (disk full, store closed, ...) is answered with one
        sentence and the conversation goes back to where it was before the
        event, so the same button can be pressed again.
        """
        before = self.state
        self.state, replies = self.engine.handle(self.state, event)
        try:
            replies = await self._settle(replies)
        except (StoreError, OSError):
            self.state, replies = self.engine.handle(before, {"type": "store_failed"})
        shown = [{"label": b["label"], "value": b["value"]} for r in replies for row in r.get("buttons") or []
                 for b in row]
        if shown:
            self.state["shown"] = shown    # numbers typed next refer to every option of this turn, in order
        return replies

    async def _settle(self, replies: list[dict]) -> list[dict]:
        shown, pending = [], list(replies)
        while pending:
            reply = pending.pop(0)
            if "effect" not in reply:
                shown.append(reply)
                continue
            answer = await self._carry_out(reply)
            if answer:
                self.state, more = self.engine.handle(self.state, answer)
                pending[:0] = more
        return shown

    async def due_reminders(self) -> list[dict]:
        """This user's reminders that are due, as replies (shown when the user comes back)."""
        if self.store is None:
            return []
        shown = []
        now = self.clock()
        try:
            due = await reminders.due(self.store, now, owner=self.owner)
        except (StoreError, OSError):
            return []          # the reminder stays due: it is asked again next time
        for case, _rem in due:
            if case.get("owner") == self.owner:
                reply = reminders.reminder_message(case, now=now)
                shown += await self.turn({"type": "reminder", "case_id": case["id"], "reply": reply})
        return shown

    async def _carry_out(self, effect: dict) -> dict | None:
        """Do what the engine asked of the store; return the event that answers it."""
        kind = effect.get("effect")
        if self.store is None:
            return {"type": "saved", "case_id": None}
        if kind == "save_case":
            return {"type": "saved", "case_id": await self._save(effect["case"])}
        if kind == "list_cases":
            cases = await self.store.list(owner=self.owner)
            cases.sort(key=lambda c: c.get("updated_at") or "", reverse=True)
            return {"type": "cases", "cases": cases}
        if kind == "get_case":
            return {"type": "case", "case": await self.store.get(effect["case_id"], owner=self.owner)}
        if kind == "transition":
            return await self._transition(effect)
        if kind in ("mark_evidence", "add_attachment", "add_links", "set_contact"):
            return await self._update(effect)
        if kind == "snooze":
            await reminders.snooze(self.store, effect["case_id"], reminder_days(), self.clock(), owner=self.owner)
            return {"type": "snoozed", "days": reminder_days()}
        return None

    async def _save(self, record_: dict) -> str:
        created = {"when": self.clock().isoformat(timespec="seconds"), "who": self.who, "from": None,
                   "to": record_.get("status", "draft"), "note": self.engine.flow.text("history_saved")}
        case = await self.store.create(dict(record_, owner=self.owner, history=[created]))
        return case["id"]

    async def _transition(self, effect: dict) -> dict:
        kw = {k: effect[k] for k in ("channel", "ref", "outcome", "reason") if effect.get(k)}
        try:
            # the same per-case lock as staff changes (bot.ops): the lifecycle's check and the write
            # happen together, also across workers
            async with self.store.chat_lock(f"case:{lookup_id(effect['case_id']) or effect['case_id']}"):
                case = await record(self.store, effect["case_id"], effect["to"], owner=self.owner,
                                    who=self.who, now=self.clock(), **kw)
        except (TransitionRefused, CaseNotFound) as e:
            return {"type": "transitioned", "case": await self.store.get(effect["case_id"], owner=self.owner),
                    "error": str(e)}
        await reminders.after_transition(self.store, case, self.clock(), reminder_days(), owner=self.owner)
        await satisfaction.ask_if_closed(self.store, case, self.clock())
        return {"type": "transitioned", "case": await self.store.get(case["id"], owner=self.owner)}

    async def _update(self, effect: dict) -> dict:
        """Evidence marked as provided, a file or links added to a saved case."""
        case = await self.store.get(effect["case_id"], owner=self.owner)
        if case is None:
            return {"type": "case", "case": None}
        answer = {"type": "updated"}
        if effect["effect"] == "mark_evidence":
            items = set(effect.get("items") or [effect.get("item")])
            evidence = [dict(e, provided=True) if e.get("id") in items else e
                        for e in case.get("evidence") or []]
            changes = {"evidence": evidence}
        elif effect["effect"] == "set_contact":     # personal data: kept on the case, never logged
            changes = {"reporter_name": effect.get("reporter_name"), "contact": effect.get("contact"),
                       "evidence": [dict(e, provided=True) if e.get("id") == "reporter_contact" else e
                                    for e in case.get("evidence") or []]}
            answer["contact"] = True
        elif effect["effect"] == "add_attachment":
            attachment = dict(effect["attachment"], received_at=self.clock().isoformat(timespec="seconds"))
            changes = {"attachments": list(case.get("attachments") or []) + [attachment]}
            answer["attachment"] = attachment.get("name")
        else:
            links = list(case.get("links") or [])
            links += [link for link in effect["links"] if link not in links]
            changes = {"links": links}
            answer["links"] = True
        answer["case"] = await self.store.update(case["id"], changes, owner=self.owner)
        return answer
