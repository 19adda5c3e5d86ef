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
        for effect in self.show(replies):
            if effect["effect"] == "save_case":
                case_id = await self._save(effect["case"])
                self.state, more = self.engine.handle(self.state, {"type": "saved", "case_id": case_id})
                self.show(more)

    async def _save(self, record: dict) -> str | None:
        if self.store is None:
            return None
        case = await self.store.create(dict(record, owner=self.owner))
        return case["id"]

    def _save_file(self, f: dict) -> str:
        if self.drafts_dir is None:
            return f"----- {f['name']} -----\n{f['content'].rstrip()}\n-----"
        self.drafts_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.drafts_dir / f["name"]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(f["content"])
        return f"[已保存: {path}]"


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
