"""The terminal chat: the same conversation as on Telegram, with numbered buttons."""
from __future__ import annotations

import asyncio
import getpass
import os
import sys
from pathlib import Path
from typing import IO

from bot.session import Session
from dialogs.engine import Engine

QUIT = ("/quit", "/exit", "/q")


class TerminalChat:
    def __init__(self, engine: Engine, out: IO[str], store=None, drafts_dir: Path | None = None,
                 user_id: str | None = None):
        self.out = out
        self.drafts_dir = drafts_dir
        self.session = Session(engine, store, {"messenger": "terminal", "user_id": user_id or _user()})
        self.numbered: list[str] = []   # button values of the last turn, 1-based

    def show(self, replies: list[dict]) -> bool:
        """Print the replies; False once the user has ended the conversation."""
        numbered = []
        ended = False
        for r in replies:
            if r.get("end"):
                ended = True
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
        return not ended

    def event_for(self, line: str) -> dict:
        text = line.strip()
        if text.isdigit() and 1 <= int(text) <= len(self.numbered):
            return {"type": "button", "value": self.numbered[int(text) - 1]}
        if text.startswith("/") and " " not in text:
            return {"type": "command", "name": text[1:]}
        return {"type": "text", "text": line}

    async def turn(self, event: dict | None) -> bool:
        return self.show(self.session.start() if event is None else await self.session.turn(event))

    def _save_file(self, f: dict) -> str:
        if self.drafts_dir is None:
            return f"----- {f['name']} -----\n{f['content'].rstrip()}\n-----"
        self.drafts_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.drafts_dir / f["name"]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(f["content"])
        return self.session.engine.say(self.session.state, "file_saved_at", path=path)


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
    chat.show(await chat.session.due_reminders())
    while True:
        if interactive:
            out.write("> ")
            out.flush()
        line = await asyncio.to_thread(inp.readline) if interactive else inp.readline()
        if not line:
            break
        event = chat.event_for(line.rstrip("\r\n"))
        if line.strip().lower() in QUIT:
            event = {"type": "command", "name": "quit"}
        if not await chat.turn(event):
            break
    return 0
