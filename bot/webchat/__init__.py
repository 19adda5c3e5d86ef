"""The mobile web chat at /chat: the shared conversation as a page, each user's messages kept with a sequence number.

One :class:`bot.conversation.Conversations` for the messenger ``"web"``
(owner ``{"messenger": "web", "user_id": <anonymous id>}``): the same engine,
session and store effects as Telegram.  Everything a user sees is appended
to a log kept in the user's record (``record["web"]["log"]``, older entries
in archive chunks), each entry numbered; the page asks for the entries after the last number it showed,
so a reconnect loses nothing and shows nothing twice.  Queued notifications
(the outbox sender's ``"web"`` deliverer) are appended to the same log.

Logging names user ids and event kinds only, never what users typed or sent.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import json
import logging
import re
import tempfile
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, unquote

import yaml
from aiohttp import web

from bot import files, ops, texts
from bot.appkeys import CLOCK, SETTINGS, STORE
from bot.conversation import Conversations
from bot.sender import Blocked
from bot.store import StoreError
from bot.webchat import identity, sms
from bot.webchat.mail import Mailer

log = logging.getLogger("huqi.webchat")

MESSENGER = "web"
HERE = Path(__file__).parent
STATIC = {"chat.js": "application/javascript", "chat.css": "text/css"}
LOG_KEEP = 200              # log entries in the record at most (a safety net; archiving keeps it near RECENT)
RECENT = 60                 # entries kept in the record (rewritten every turn); older ones go to archive chunks
CHUNK = 40                  # entries per archive chunk (written once)
CHUNKS_KEPT = 4             # archive chunks kept per user
TEXT_LIMIT = 2000           # characters of one typed message
VALUE_LIMIT = 512           # characters of a button value
JSON_LIMIT = 16 * 1024      # bytes of a JSON request body
POLL_SECONDS = 25.0         # a long poll answers at the latest after this
RECHECK_SECONDS = 5.0       # re-read the store while waiting (another worker may have written)
USER_RATE = 60              # requests per minute from one identity
CODE_TRIES = 5              # recovery code attempts per identity per 10 minutes (per address: 4x)
CMD = re.compile(r"^/([A-Za-z0-9_]{1,64})$")
EMAIL = re.compile(r"^[^@\s<>\"',;]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}$")
ACCEPT = "image/*,video/*,audio/*,.pdf,.doc,.docx,.xls,.xlsx,.ppt,.pptx,.txt,.zip"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@lru_cache(maxsize=1)
def T() -> dict:
    with open(HERE / "texts.yaml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def say(group: str, key: str, **values) -> str:
    return T()[group][key].format(**values)


class Refused(Exception):
    """A request answered with an error text for the page."""

    def __init__(self, status: int, key: str, **values):
        super().__init__(key)
        self.status, self.key, self.values = status, key, values


class WebChat:
    def __init__(self, settings, store, clock, sender=None):
        self.settings = settings
        self.store = store
        self.clock = clock
        self.secret = identity.load_secret(settings.cookie_secret, settings.data_dir)
        self.conv = Conversations(store, MESSENGER, clock=clock, operator_chat_id=settings.operator_chat_id)
        self.files_dir = settings.files_dir
        self.max_file_bytes = settings.max_file_bytes
        self.user_rate = identity.RateLimiter(USER_RATE)
        self.addr_rate = identity.RateLimiter(settings.web_address_rate)
        self.new_ids = identity.RateLimiter(max(10, settings.web_address_rate // 10))
        self.code_user = identity.RateLimiter(CODE_TRIES, 600)
        self.code_addr = identity.RateLimiter(CODE_TRIES * 4, 600)
        self.mailer = Mailer(settings.smtp_url) if settings.smtp_url else None
        self.sms = sms.load_sender(settings.sms_sender, settings)
        self.sms_user = identity.RateLimiter(3, 600)
        self.sms_phone = identity.RateLimiter(3, 3600)
        self.public_url = settings.public_url
        self._locks: dict[str, list] = {}
        self._waiters: dict[str, asyncio.Event] = {}
        self.closing = False
        if sender is not None:
            sender.register(MESSENGER, self.deliver_owner)

    # ── identity ────────────────────────────────────────────────────
    def user_of(self, request: web.Request) -> str | None:
        return identity.verify(self.secret, request.cookies.get(identity.COOKIE))

    def set_cookie(self, request: web.Request, response: web.StreamResponse, user_id: str) -> None:
        secure = request.secure or request.headers.get("X-Forwarded-Proto", "") == "https"
        response.set_cookie(identity.COOKIE, identity.sign(self.secret, user_id), max_age=2 * 365 * 86400,
                            path="/chat", httponly=True, samesite="Lax", secure=secure)

    def owner(self, user_id: str) -> dict:
        return self.conv.owner(user_id)

    def address(self, request: web.Request) -> str:
        return request.remote or "?"

    def check(self, request: web.Request, *, write: bool) -> str:
        """The caller's user id after the cookie, CSRF (for writes) and rate checks; Refused otherwise."""
        user_id = self.user_of(request)
        if user_id is None:
            raise Refused(401, "csrf")
        if write:
            origin = request.headers.get("Origin")
            if origin and origin != "null" and origin.split("://", 1)[-1] != request.host:
                raise Refused(403, "csrf")
            if not identity.csrf_ok(self.secret, user_id, request.headers.get("X-CSRF-Token")):
                raise Refused(403, "csrf")
        if write and not self.addr_rate.allow(self.address(request)):     # reads: many phones share an address
            raise Refused(429, "too_many")
        if not self.user_rate.allow(user_id):
            raise Refused(429, "too_many")
        return user_id

    # ── per-user order and wake-ups ─────────────────────────────────
    class _Lock:
        def __init__(self, chat: "WebChat", user_id: str):
            self.chat, self.user_id = chat, user_id

        async def __aenter__(self):
            entry = self.chat._locks.setdefault(self.user_id, [asyncio.Lock(), 0])
            entry[1] += 1
            self.entry = entry
            await entry[0].acquire()

        async def __aexit__(self, *exc):
            self.entry[0].release()
            self.entry[1] -= 1
            if not self.entry[1]:
                self.chat._locks.pop(self.user_id, None)

    def lock(self, user_id: str) -> "_Lock":
        """This process's per-user order (the store's chat_lock inside it orders across workers)."""
        return WebChat._Lock(self, user_id)

    def wake(self, user_id: str) -> None:
        event = self._waiters.pop(user_id, None)
        if event is not None:
            event.set()

    # ── the log ─────────────────────────────────────────────────────
    @staticmethod
    def web_of(record: dict) -> dict:
        web_ = record.setdefault("web", {})
        web_.setdefault("seq", 0)
        web_.setdefault("log", [])
        return web_

    @staticmethod
    def append(web_: dict, entry: dict) -> None:
        web_["seq"] += 1
        entry["seq"] = web_["seq"]
        web_["log"].append(entry)
        del web_["log"][:-LOG_KEEP]

    async def append_replies(self, user_id: str, web_: dict, replies: list[dict], **extra) -> None:
        for reply in replies:
            if "effect" in reply or reply.get("end"):
                continue
            entry: dict = {"from": "bot", "text": (reply.get("text") or "").strip(), **extra}
            if "file" in reply:
                entry["file"] = await self.keep_file(user_id, reply["file"])
            chips = [{"label": str(b["label"]), "value": str(b["value"])}
                     for row in reply.get("buttons") or [] for b in row]
            if chips:
                entry["buttons"] = chips
            if entry["text"] or "file" in entry or chips:
                self.append(web_, entry)
        await self.archive(user_id, web_)

    async def archive(self, user_id: str, web_: dict) -> None:
        """Move the oldest entries out of the record (rewritten each turn) into a chunk written once."""
        log_ = web_["log"]
        if len(log_) < RECENT:
            return
        old, web_["log"] = log_[:CHUNK], log_[CHUNK:]
        web_["chunks"] = int(web_.get("chunks") or 0) + 1
        key = f"weblog:{user_id}:{web_['chunks']}"
        await self.store.put_state(key, {"entries": old})
        kept = (web_.get("archive") or []) + [key]
        for gone in kept[:-CHUNKS_KEPT]:
            await self.store.delete_state(gone)
        web_["archive"] = kept[-CHUNKS_KEPT:]

    async def entries_after(self, web_: dict, after: int) -> list[dict]:
        """The log entries numbered above ``after``, from the archive chunks too when the page is that far behind."""
        log_ = web_.get("log") or []
        out = []
        if web_.get("archive") and (not log_ or log_[0]["seq"] > after + 1):
            for key in web_["archive"]:
                chunk = await self.store.get_state(key) or {}
                out += [e for e in chunk.get("entries") or [] if e["seq"] > after]
        return out + [e for e in log_ if e["seq"] > after]

    async def keep_file(self, user_id: str, f: dict) -> dict:
        """A file the conversation offers (the draft, a checklist), kept for download by this user only."""
        content = f.get("content")
        raw = content if isinstance(content, bytes) else str(content or "").encode("utf-8")
        fid = hashlib.sha256(str(f.get("name")).encode("utf-8") + b"\0" + raw).hexdigest()[:24]   # kept once
        if isinstance(content, bytes):
            body = {"b64": base64.b64encode(content).decode()}
        else:
            body = {"text": str(content or "")}
        name = str(f.get("name") or "huqi.txt")[:120]
        await self.store.put_state(f"webfile:{user_id}:{fid}", dict(body, name=name))
        return {"id": fid, "name": name}

    # ── turns ───────────────────────────────────────────────────────
    async def run_turn(self, user_id: str, event: dict | None, cid: str = "", echo: dict | None = None,
                       after: int = 0) -> None:
        """One event through the conversation; the user's own message and the replies appended to the log."""
        async with self.lock(user_id):
            if cid:
                record = await self.store.get_state(self.conv.key(user_id)) or {}
                if cid in (record.get("web") or {}).get("cids", []):
                    return                        # the same tap or message again (double tap, resend)
            said: dict = {}

            def resolve(record: dict, ev: dict) -> dict:
                if ev.get("type") == "button":          # echo the option's words as they were shown
                    shown = [b for e in reversed((record.get("web") or {}).get("log") or [])
                             for b in e.get("buttons") or []]
                    said["label"] = next((b["label"] for b in shown if b.get("value") == ev["value"]), None)
                return ev

            async def deliver(record: dict, replies: list[dict]) -> None:
                web_ = self.web_of(record)
                if after > int(web_.get("seen") or 0):
                    web_["seen"] = min(after, web_["seq"])     # what the page had shown when the user acted
                if cid:
                    web_["cids"] = (web_.get("cids", []) + [cid])[-30:]
                if echo is not None:
                    entry = dict(echo, **({"text": said["label"]} if said.get("label") else {}))
                    if cid:
                        entry["cid"] = cid
                    self.append(web_, entry)
                await self.append_replies(user_id, web_, replies)

            await self.conv.turn(user_id, event, deliver, resolve=resolve)
        self.wake(user_id)

    async def say_to(self, user_id: str, text: str) -> None:
        """A line from the service itself (a refused file) appended to the user's log."""
        async def deliver(record: dict, replies: list[dict]) -> None:
            await self.append_replies(user_id, self.web_of(record), replies)

        async with self.lock(user_id):
            await self.conv.notify(user_id, {"text": text}, deliver)
        self.wake(user_id)

    async def lang_of(self, user_id: str) -> str | None:
        record = await self.store.get_state(self.conv.key(user_id)) or {}
        return (record.get("state") or {}).get("lang")

    # ── queued notifications (the outbox sender) ────────────────────
    async def deliver_owner(self, msg: dict) -> None:
        user_id = str((msg.get("owner") or {}).get("user_id") or "")
        if not user_id or not all(c.isalnum() or c in "-_" for c in user_id):
            raise Blocked("not a web user id")
        key = self.conv.key(user_id)
        sent = False
        async with self.lock(user_id):
            record = await self.store.get_state(key) or {}
            if msg["id"] in (record.get("web") or {}).get("outbox", []):
                return                              # delivered before a crash: not shown twice

            async def deliver(record: dict, replies: list[dict]) -> None:
                nonlocal sent
                web_ = self.web_of(record)
                web_["outbox"] = (web_.get("outbox", []) + [msg["id"]])[-200:]
                await self.append_replies(user_id, web_, replies, news=True,
                                          **({"case_id": msg["case_id"]} if msg.get("case_id") else {}))
                sent = True

            if msg.get("event"):
                await self.conv.push(user_id, msg["event"], deliver)
            else:
                await self.conv.notify(user_id, {k: msg[k] for k in ("text", "buttons") if k in msg}, deliver)
            email = await self.mail_due(user_id) if sent and self.mailer is not None else None
        self.wake(user_id)
        if email:
            try:
                await self.mailer.send(email, say("mail", "subject"), say("mail", "body", link=self.link()))
            except Exception as e:                  # the page still shows it; e-mail is a courtesy
                log.warning("web user %s: notification e-mail failed: %s", user_id, type(e).__name__)

    async def mail_due(self, user_id: str) -> str | None:
        """The user's address if an e-mail should go out now: not again before they came back after the last."""
        key = self.conv.key(user_id)
        async with self.store.chat_lock(key):
            record = await self.store.get_state(key) or {}
            web_ = self.web_of(record)
            if not web_.get("email") or int(web_.get("seen") or 0) < int(web_.get("mailed") or 0):
                return None
            web_["mailed"] = web_["seq"]
            await self.store.put_state(key, record)
            return web_["email"]

    def close(self) -> None:
        """The service stops: open long polls answer now."""
        self.closing = True
        for user_id in list(self._waiters):
            self.wake(user_id)

    def link(self, request: web.Request | None = None) -> str:
        if self.public_url:
            return self.public_url.rstrip("/") + "/chat"
        if request is not None:
            return f"{request.scheme}://{request.host}/chat"
        return f"{self.settings.api_base}/chat"

    # ── routes ──────────────────────────────────────────────────────
    async def page(self, request: web.Request) -> web.Response:
        user_id = self.user_of(request)
        fresh = user_id is None
        if fresh:
            if not self.new_ids.allow(self.address(request)):
                return web.Response(status=429, text=say("errors", "too_many"), headers=SECURITY_HEADERS)
            user_id = identity.new_user_id()
        p = dict(T()["page"])
        errors = {f"error_{k}": v for k, v in T()["errors"].items()}
        try:
            lang = None if fresh else await self.lang_of(user_id)
        except (StoreError, OSError):
            lang = None                             # the page still loads; its requests will say what is wrong
        if lang == "hant":                          # a Traditional writer: the page too
            from knowledge.text import to_traditional
            p = {k: to_traditional(v) for k, v in p.items()}
            errors = {k: to_traditional(v) for k, v in errors.items()}
        boot = {"csrf": identity.csrf_token(self.secret, user_id), "maxBytes": self.max_file_bytes,
                "textLimit": TEXT_LIMIT, "texts": {**p, **errors},
                "mail": self.mailer is not None, "sms": self.sms is not None}
        tpl = (HERE / "static" / "chat.html").read_text(encoding="utf-8")
        body = tpl.replace("{{boot}}", html.escape(json.dumps(boot, ensure_ascii=False), quote=True))
        body = re.sub(r"\{\{(\w+)\}\}", lambda m: html.escape(str(p.get(m.group(1), ""))), body)
        body = body.replace("__ACCEPT__", ACCEPT)
        resp = web.Response(text=body, content_type="text/html", charset="utf-8",
                            headers=dict(SECURITY_HEADERS, **{"Cache-Control": "no-store"}))
        if fresh:
            self.set_cookie(request, resp, user_id)
        return resp

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC:
            raise web.HTTPNotFound()
        return web.Response(body=(HERE / "static" / name).read_bytes(), content_type=STATIC[name],
                            charset="utf-8", headers=dict(SECURITY_HEADERS, **{"Cache-Control": "no-cache"}))

    async def events(self, request: web.Request) -> web.Response:
        """The log entries after ``after``; with ``wait=1`` held open until there are some (long poll)."""
        user_id = self.check(request, write=False)
        after = _int(request.query.get("after"))
        wait = request.query.get("wait") == "1"
        key = self.conv.key(user_id)
        deadline = asyncio.get_running_loop().time() + POLL_SECONDS
        record = await self.store.get_state(key)
        if record is None or not (record.get("web") or {}).get("log") and "state" not in record:
            await self.run_turn(user_id, None, cid="greeting")        # first visit: the greeting
        while True:
            waiter = self._waiters.setdefault(user_id, asyncio.Event())
            record = await self.store.get_state(key) or {}
            web_ = record.get("web") or {}
            log_ = web_.get("log") or []
            new = await self.entries_after(web_, after)
            left = deadline - asyncio.get_running_loop().time()
            if new or not wait or left <= 0 or self.closing:
                break
            try:
                await asyncio.wait_for(waiter.wait(), min(left, RECHECK_SECONDS))
            except asyncio.TimeoutError:
                pass
        seen = int(web_.get("seen") or 0)
        body = {"messages": new, "last": int(web_.get("seq") or 0),
                "email": bool(web_.get("email"))}
        if after == 0:
            body["unseen"] = sum(1 for e in new if e.get("news") and e["seq"] > seen)
            body["seen"] = seen
        elif any(e.get("news") and seen < e["seq"] <= after for e in log_):
            await self.mark_seen(user_id, after)        # news the page has shown: seen (other entries: no write)
        return _json(body)

    async def mark_seen(self, user_id: str, seq: int) -> None:
        key = self.conv.key(user_id)
        async with self.store.chat_lock(key):
            record = await self.store.get_state(key) or {}
            web_ = self.web_of(record)
            if seq > int(web_.get("seen") or 0):
                web_["seen"] = min(seq, web_["seq"])
                await self.store.put_state(key, record)

    async def send(self, request: web.Request) -> web.Response:
        user_id = self.check(request, write=True)
        body = await _body(request)
        cid = str(body.get("cid") or "")[:64]
        after = _int(body.get("after"))
        if isinstance(body.get("value"), str) and body["value"]:
            value = body["value"]
            if len(value) > VALUE_LIMIT:
                raise Refused(400, "bad_request")
            event, echo = {"type": "button", "value": value}, {"from": "me", "text": value}
        elif body.get("command") == "cases":
            event, echo = {"type": "command", "name": "cases"}, {"from": "me", "text": T()["page"]["tab_cases"]}
        elif isinstance(body.get("text"), str):
            text = body["text"].replace("\x00", "").strip()
            if not text:
                raise Refused(400, "empty")
            if len(text) > TEXT_LIMIT:
                raise Refused(413, "too_long", limit=TEXT_LIMIT)
            event, echo = self.text_event(text), {"from": "me", "text": text}
        else:
            raise Refused(400, "bad_request")
        log.info("web user %s: %s", user_id, event["type"])
        await self.run_turn(user_id, event, cid, echo, after)
        return await self._since(user_id, after)

    def text_event(self, text: str) -> dict:
        m = CMD.match(text)
        if m:
            word = "/" + m.group(1).lower()
            commands = self.conv.engine.flow.commands
            name = next((n for n, words in commands.items() if word in words), m.group(1))
            return {"type": "command", "name": name}
        return {"type": "text", "text": text}

    async def _since(self, user_id: str, after: int) -> web.Response:
        record = await self.store.get_state(self.conv.key(user_id)) or {}
        web_ = record.get("web") or {}
        return _json({"messages": await self.entries_after(web_, after),
                      "last": int(web_.get("seq") or 0)})

    async def upload(self, request: web.Request) -> web.Response:
        """One evidence file (multipart field ``file``), read up to the limit, kept under its sha256."""
        user_id = self.check(request, write=True)
        cid = str(request.query.get("cid") or "")[:64]
        after = _int(request.query.get("after"))
        try:
            reader = await request.multipart()
            part = await reader.next()
            while part is not None and part.name != "file":
                part = await reader.next()
        except (ValueError, AssertionError, KeyError):
            raise Refused(400, "bad_request") from None
        if part is None:
            raise Refused(400, "no_file")
        name = _file_name(part.filename)
        mime = (part.headers.get("Content-Type") or "").split(";")[0].strip().lower() or None
        data = bytearray()
        too_big = False
        while chunk := await part.read_chunk(1 << 16):
            if len(data) + len(chunk) > self.max_file_bytes:
                too_big = True
                data.extend(chunk[: self.max_file_bytes + 1 - len(data)])
                break
            data.extend(chunk)
        size = len(data) if not too_big else max(request.content_length or 0, self.max_file_bytes + 1)
        refused = files.refusal(name, size, mime, self.max_file_bytes)
        if refused is None and not data:
            raise Refused(400, "no_file")
        if refused is not None:
            key, values = refused
            await self.say_to(user_id, texts.text(key, await self.lang_of(user_id), **values))
            log.info("web user %s: file refused (%s)", user_id, key)
            return await self._since(user_id, after)
        sha = await asyncio.to_thread(files.save, self.files_dir, bytes(data))
        event = {"type": "file", "name": name, "size": len(data), "mime": mime, "sha256": sha, "ref": sha}
        log.info("web user %s: file", user_id)
        await self.run_turn(user_id, event, cid, {"from": "me", "file_name": name}, after)
        return await self._since(user_id, after)

    async def download(self, request: web.Request) -> web.Response:
        user_id = self.check(request, write=False)
        fid = request.match_info["fid"]
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", fid):
            raise Refused(404, "not_found")
        kept = await self.store.get_state(f"webfile:{user_id}:{fid}")
        if not kept:
            raise Refused(404, "not_found")
        content = base64.b64decode(kept["b64"]) if "b64" in kept else kept.get("text", "").encode("utf-8")
        return _attachment(content, kept.get("name") or "huqi.txt", "text/plain; charset=utf-8")

    async def cases(self, request: web.Request) -> web.Response:
        user_id = self.check(request, write=False)
        found = await self.store.list(owner=self.owner(user_id))
        rows = [{"id": c["id"], "status": ops.status_label(c.get("status")), "type": ops.type_label(c.get("type")),
                 "platform": ops.platform_label(c.get("platform")), "updated": ops.local_time(c.get("updated_at"))}
                for c in reversed(found)]
        return _json({"cases": rows})

    async def own_case(self, request: web.Request) -> tuple[str, dict]:
        user_id = self.check(request, write=False)
        case = await self.store.get(request.match_info["case_id"], owner=self.owner(user_id))
        if case is None:                       # someone else's or none: the same answer
            raise Refused(404, "not_found")
        return user_id, case

    async def draft(self, request: web.Request) -> web.Response:
        _, case = await self.own_case(request)
        f = self.conv.engine.card.draft_file(case, stored=case)["file"]
        content = f["content"] if isinstance(f["content"], bytes) else str(f["content"]).encode("utf-8")
        return _attachment(content, f["name"], "text/plain; charset=utf-8")

    async def package(self, request: web.Request) -> web.StreamResponse:
        _, case = await self.own_case(request)
        with tempfile.TemporaryFile() as tmp:
            name = await ops.package(self.store, case["id"], files_dir=self.files_dir, now=self.clock(), out=tmp)
            tmp.seek(0)
            resp = web.StreamResponse(headers=dict(SECURITY_HEADERS, **_disposition(name),
                                                   **{"Content-Type": "application/zip",
                                                      "Cache-Control": "no-store"}))
            await resp.prepare(request)
            while block := await asyncio.to_thread(tmp.read, 1 << 16):
                await resp.write(block)
            await resp.write_eof()
            return resp

    async def make_code(self, request: web.Request) -> web.Response:
        """A new recovery code for this identity (the previous one stops working); shown once."""
        user_id = self.check(request, write=True)
        code = identity.new_code()
        key = self.conv.key(user_id)
        async with self.store.chat_lock(key):
            record = await self.store.get_state(key) or {}
            web_ = self.web_of(record)
            old = web_.get("code")
            if old:
                await self.store.delete_state(old)
            web_["code"] = identity.code_key(self.secret, identity.normalise_code(code))
            await self.store.put_state(web_["code"], {"user_id": user_id})
            await self.store.put_state(key, record)
        log.info("web user %s: recovery code made", user_id)
        return _json({"code": code})

    async def use_code(self, request: web.Request) -> web.Response:
        """Take on the identity a recovery code stands for (rate-limited per identity and per address)."""
        user_id = self.check(request, write=True)
        if not self.code_user.allow(user_id) or not self.code_addr.allow(self.address(request)):
            raise Refused(429, "too_many")
        body = await _body(request)
        code = identity.normalise_code(body.get("code") if isinstance(body.get("code"), str) else "")
        found = await self.store.get_state(identity.code_key(self.secret, code)) if code else None
        if not found or not found.get("user_id"):
            log.info("web user %s: wrong recovery code", user_id)
            raise Refused(400, "code_wrong")
        resp = _json({"ok": True, "csrf": identity.csrf_token(self.secret, found["user_id"])})
        self.set_cookie(request, resp, found["user_id"])
        log.info("web user %s: took on another identity by recovery code", user_id)
        return resp

    async def set_email(self, request: web.Request) -> web.Response:
        user_id = self.check(request, write=True)
        if self.mailer is None:
            return _json({"ok": False, "text": T()["page"]["email_off"]})
        body = await _body(request)
        email = body.get("email").strip() if isinstance(body.get("email"), str) else ""
        if email and not EMAIL.match(email):
            raise Refused(400, "email_bad")
        key = self.conv.key(user_id)
        async with self.store.chat_lock(key):
            record = await self.store.get_state(key) or {}
            web_ = self.web_of(record)
            if email:
                web_["email"] = email
            else:
                web_.pop("email", None)
            await self.store.put_state(key, record)
        return _json({"ok": True, "text": T()["page"]["email_saved" if email else "email_removed"]})

    async def update_web(self, user_id: str, change) -> dict:
        """Apply ``change(web part of the record)`` under the user's store lock; returns the web part."""
        key = self.conv.key(user_id)
        async with self.store.chat_lock(key):
            record = await self.store.get_state(key) or {}
            web_ = self.web_of(record)
            change(web_)
            await self.store.put_state(key, record)
        return web_

    async def phone_start(self, request: web.Request) -> web.Response:
        """Send a code to a mobile number (rate-limited per identity and per number)."""
        user_id = self.check(request, write=True)
        if self.sms is None:
            raise Refused(404, "sms_off")
        body = await _body(request)
        phone = sms.normalise_phone(body.get("phone"))
        if phone is None:
            raise Refused(400, "phone_bad")
        if not self.sms_user.allow(user_id) or not self.sms_phone.allow(sms.phone_key(self.secret, phone)):
            raise Refused(429, "too_many")
        code, challenge = sms.new_challenge(self.secret, phone, self.clock())
        await self.update_web(user_id, lambda w: w.__setitem__("sms", challenge))
        try:
            await self.sms.send(phone, say("sms", "code", code=code, minutes=sms.CODE_MINUTES))
        except Exception as e:
            log.warning("web user %s: SMS sending failed: %s", user_id, type(e).__name__)
            raise Refused(502, "sms_failed") from None
        log.info("web user %s: SMS code sent", user_id)
        return _json({"ok": True, "text": say("page", "phone_sent", masked=challenge["masked"],
                                              minutes=sms.CODE_MINUTES)})

    async def phone_confirm(self, request: web.Request) -> web.Response:
        """The code back: the number is bound to this identity, or, bound before, its identity taken on."""
        user_id = self.check(request, write=True)
        if self.sms is None:
            raise Refused(404, "sms_off")
        body = await _body(request)
        outcome: dict = {}

        def confirm(web_: dict) -> None:
            outcome["result"] = sms.check(self.secret, web_.get("sms"), body.get("code"), self.clock())
            outcome["challenge"] = web_.get("sms")
            if outcome["result"] == "ok":
                web_.pop("sms", None)

        await self.update_web(user_id, confirm)
        if outcome["result"] != "ok":
            raise Refused(400, "sms_wrong" if outcome["result"] == "wrong" else "sms_expired")
        challenge = outcome["challenge"]
        bound = await self.store.get_state(challenge["key"])
        if bound and bound.get("user_id") and bound["user_id"] != user_id:
            resp = _json({"ok": True, "switched": True, "text": say("page", "phone_switched"),
                          "csrf": identity.csrf_token(self.secret, bound["user_id"])})
            self.set_cookie(request, resp, bound["user_id"])
            log.info("web user %s: took on another identity by SMS", user_id)
            return resp
        await self.store.put_state(challenge["key"], {"user_id": user_id})
        await self.update_web(user_id, lambda w: w.__setitem__("phone", challenge["masked"]))
        log.info("web user %s: mobile number bound", user_id)
        return _json({"ok": True, "switched": False, "text": say("page", "phone_bound", masked=challenge["masked"])})

    async def qr(self, request: web.Request) -> web.Response:
        from bot.webchat.qr import qr_svg

        return web.Response(text=qr_svg(self.link(request)), content_type="image/svg+xml",
                            headers=dict(SECURITY_HEADERS, **{"Cache-Control": "no-cache"}))


def _int(raw) -> int:
    try:
        return max(0, int(raw))
    except (TypeError, ValueError):
        return 0


def _file_name(raw: str | None) -> str:
    name = raw or "file"
    if re.search(r"%[0-9A-Fa-f]{2}", name):           # some clients percent-encode non-ASCII names
        name = unquote(name, errors="replace")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable()).strip() or "file"
    return name[:80]


async def _body(request: web.Request) -> dict:
    if request.content_length is not None and request.content_length > JSON_LIMIT:
        raise Refused(413, "bad_request")
    raw = await request.content.read(JSON_LIMIT + 1)
    if len(raw) > JSON_LIMIT:
        raise Refused(413, "bad_request")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "bad_request") from None
    if not isinstance(body, dict):
        raise Refused(400, "bad_request")
    return body


def _json(body: dict, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False),
                             headers=dict(SECURITY_HEADERS, **{"Cache-Control": "no-store"}))


def _disposition(name: str) -> dict:
    ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "download"
    return {"Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"}


def _attachment(content: bytes, name: str, mime: str) -> web.Response:
    return web.Response(body=content, headers=dict(SECURITY_HEADERS, **_disposition(name),
                                                   **{"Content-Type": mime, "Cache-Control": "no-store"}))


@web.middleware
async def _errors(request: web.Request, handler):
    if not request.path.startswith("/chat"):
        return await handler(request)
    try:
        return await handler(request)
    except Refused as e:
        return _json({"error": e.key, "text": say("errors", e.key, **e.values)}, status=e.status)
    except (StoreError, OSError) as e:
        log.error("web chat: the store is unavailable: %s", type(e).__name__)
        return _json({"error": "store", "text": say("errors", "store")}, status=503)
    except web.HTTPException:
        raise
    except Exception as e:
        log.error("web chat: %s failed: %s", request.path, type(e).__name__)
        return _json({"error": "sorry", "text": say("errors", "sorry")}, status=500)


WEBCHAT = web.AppKey("webchat", WebChat)


def chat_link(request: web.Request) -> str:
    """The link to the web chat to print or post (HUQI_PUBLIC_URL, else the address this request came to)."""
    return request.app[WEBCHAT].link(request)


def setup(app: web.Application) -> WebChat:
    """Add /chat and its API to the service; the outbox sender delivers ``"web"`` owners' messages here."""
    from bot.server import SENDER

    chat = WebChat(app[SETTINGS], app[STORE], app[CLOCK], app.get(SENDER))
    app[WEBCHAT] = chat

    async def stopping(_app: web.Application) -> None:
        chat.close()

    app.on_shutdown.append(stopping)
    app.middlewares.append(_errors)
    r = app.router
    r.add_get("/chat", chat.page)
    r.add_get("/chat/", chat.page)
    r.add_get("/chat/static/{name}", chat.static)
    r.add_get("/chat/qr.svg", chat.qr)
    r.add_get("/chat/api/events", chat.events)
    r.add_post("/chat/api/send", chat.send)
    r.add_post("/chat/api/upload", chat.upload)
    r.add_get("/chat/api/file/{fid}", chat.download)
    r.add_get("/chat/api/cases", chat.cases)
    r.add_get("/chat/cases/{case_id}/draft", chat.draft)
    r.add_get("/chat/cases/{case_id}/package", chat.package)
    r.add_post("/chat/api/code", chat.make_code)
    r.add_post("/chat/api/restore", chat.use_code)
    r.add_post("/chat/api/email", chat.set_email)
    r.add_post("/chat/api/phone", chat.phone_start)
    r.add_post("/chat/api/phone/confirm", chat.phone_confirm)
    return chat
