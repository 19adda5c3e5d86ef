"""The terminal chat: the same conversation as on Telegram, with numbered buttons."""
from __future__ import annotations

import asyncio
import getpass
import os
import sys
from pathlib import Path
from typing import IO

from dialogs.engine import Engine

QUIT = ("/quit", "/exit", "/q")


class TerminalChat:
    def __init__(self, engine: Engine, out: IO[str], store=None, drafts_dir: Path | None = None,
                 user_id: str | None = None):
        self.engine = engine
        self.out = out
        self.store = store
        self.drafts_dir = drafts_dir
        self.owner = {"messenger": "terminal", "user_id": user_id or _user()}
        self.state: dict = {}
        self.numbered: list[str] = []   # button values of the last turn, 1-based

    def show(self, replies: list[dict]) -> list[dict]:
        """Print replies; return the effects the adapter must carry out."""
        effects, numbered = [], []
        for r in replies:
            if "effect" in r:
                effects.append(r)
                continue
            if r.get("text"):
                self.out.write(r["text"].rstrip() + "\n")
            if "file" in r:
                self.out.write(self._save_file(r["file"]) + "\n")
            for row in r.get("buttons") or []:
                for b in row:
                    numbered.append(b["value"])
                    self.out.write(f"  {len(numbered)}. {b['label']}\n")
            self.out.write("\n")
        if numbered:
            self.numbered = numbered
        self.out.flush()
        return effects

    def event_for(self, line: str) -> dict:
        text = line.strip()
        if text.isdigit() and 1 <= int(text) <= len(self.numbered):
            return {"type": "button", "value": self.numbered[int(text) - 1]}
        if text.startswith("/") and " " not in text:
            return {"type": "command", "name": text[1:]}
        return {"type": "text", "text": line}

    async def turn(self, event: dict | None) -> None:
        if event is None:
            self.state, replies = self.engine.start()
        else:
            self.state, replies = self.engine.handle(self.state, event)
        effects = self.show(replies)
        while effects:
            answer = await self._carry_out(effects.pop(0))
            if answer:
                self.state, more = self.engine.handle(self.state, answer)
                effects.extend(self.show(more))

    async def _carry_out(self, effect: dict) -> dict | None:
        """Do what the engine asked of the store; return the event that answers it."""
        kind = effect.get("effect")
        if kind == "save_case":
            return {"type": "saved", "case_id": await self._save(effect["case"])}
        if self.store is None:
            return {"type": "saved", "case_id": None}
        if kind == "list_cases":
            cases = await self.store.list(owner=self.owner)
            cases.sort(key=lambda c: c.get("updated_at") or "", reverse=True)
            return {"type": "cases", "cases": cases}
        if kind == "get_case":
            return {"type": "case", "case": await self.store.get(effect["case_id"], owner=self.owner)}
        if kind == "transition":
            from dialogs.lifecycle import TransitionRefused, record

            from bot import reminders
            from bot.config import reminder_days
            from bot.store import CaseNotFound
            kw = {k: effect[k] for k in ("channel", "ref", "outcome", "reason") if effect.get(k)}
            try:
                case = await record(self.store, effect["case_id"], effect["to"], owner=self.owner,
                                    who=self._who(), now=_now(), **kw)
            except (TransitionRefused, CaseNotFound) as e:
                return {"type": "transitioned", "case": await self.store.get(effect["case_id"], owner=self.owner),
                        "error": str(e)}
            await reminders.after_transition(self.store, case, _now(), reminder_days(), owner=self.owner)
            return {"type": "transitioned", "case": await self.store.get(case["id"], owner=self.owner)}
        if kind in ("mark_evidence", "add_attachment", "add_links"):
            return await self._update(effect)
        if kind == "snooze":
            from bot import reminders
            from bot.config import reminder_days
            await reminders.snooze(self.store, effect["case_id"], reminder_days(), _now(), owner=self.owner)
            return {"type": "snoozed", "days": reminder_days()}
        return None

    async def _update(self, effect: dict) -> dict:
        """Evidence marked as provided, a file or links added to a saved case."""
        case = await self.store.get(effect["case_id"], owner=self.owner)
        if case is None:
            return {"type": "case", "case": None}
        answer = {"type": "updated"}
        if effect["effect"] == "mark_evidence":
            evidence = [dict(e, provided=True) if e.get("id") == effect["item"] else e
                        for e in case.get("evidence") or []]
            changes = {"evidence": evidence}
        elif effect["effect"] == "add_attachment":
            attachment = dict(effect["attachment"], received_at=_now().isoformat(timespec="seconds"))
            changes = {"attachments": list(case.get("attachments") or []) + [attachment]}
            answer["attachment"] = attachment.get("name")
        else:
            links = list(case.get("links") or [])
            links += [link for link in effect["links"] if link not in links]
            changes = {"links": links}
            answer["links"] = True
        answer["case"] = await self.store.update(case["id"], changes, owner=self.owner)
        return answer

    async def due_reminders(self) -> None:
        """Reminders due for this user are shown when the chat starts."""
        if self.store is None:
            return
        from bot import reminders
        for case, _rem in await reminders.due(self.store, _now()):
            if case.get("owner") == self.owner:
                reply = reminders.reminder_message(case, now=_now())
                self.state, more = self.engine.handle(self.state, {"type": "reminder", "case_id": case["id"],
                                                                   "reply": reply})
                self.show(more)

    async def _save(self, record: dict) -> str | None:
        if self.store is None:
            return None
        created = {"when": _now().isoformat(timespec="seconds"), "who": self._who(), "from": None,
                   "to": record.get("status", "draft"), "note": "保存为案件"}
        case = await self.store.create(dict(record, owner=self.owner, history=[created]))
        return case["id"]

    def _who(self) -> str:
        return f"{self.owner['messenger']}:{self.owner['user_id']}"

    def _save_file(self, f: dict) -> str:
        if self.drafts_dir is None:
            return f"----- {f['name']} -----\n{f['content'].rstrip()}\n-----"
        self.drafts_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.drafts_dir / f["name"]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(f["content"])
        return f"[已保存: {path}]"


def _now():
    from datetime import datetime, timezone
    return datetime.now(timezone.utc)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "local"


async def run(inp: IO[str] = sys.stdin, out: IO[str] = sys.stdout, store=None,
              drafts_dir: Path | None = None) -> int:
    chat = TerminalChat(Engine(), out, store=store, drafts_dir=drafts_dir)
    interactive = inp.isatty()
    await chat.turn(None)
    await chat.due_reminders()
    while True:
        if interactive:
            out.write("> ")
            out.flush()
        line = await asyncio.to_thread(inp.readline) if interactive else inp.readline()
        if not line:
            break
        if line.strip().lower() in QUIT:
            chat.show([{"text": chat.engine.flow.text("bye")}])
            break
        await chat.turn(chat.event_for(line.rstrip("\r\n")))
    return 0
