"""A fake Telegram Bot API server for the tests and the benches: real HTTP on 127.0.0.1, no network.

It answers what PTB calls, records every call, serves queued updates to
getUpdates, serves files for getFile, records setWebhook and can post updates
to a webhook the way Telegram does (with the secret header).  Failures (403,
429, 5xx) are injected per method with ``failures``.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import time

import aiohttp
from aiohttp import web

TOKEN = "123456:TEST-token"


class FakeTelegram:
    """Just enough of the Bot API for PTB, recording (method, params) of every call."""

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []
        self.updates: list[dict] = []
        self._ids = itertools.count(1)
        self._message_ids = itertools.count(100)
        self._new = asyncio.Event()
        self.hold: dict[int, asyncio.Event] = {}                # chat id -> sendMessage waits for it
        self.failures: dict[str, list[tuple[int, dict]]] = {}   # method -> [(status, error body)]
        self.chat_failures: dict[int, list[tuple[int, dict]]] = {}   # chat id -> [(status, error body)]
        self.files: dict[str, bytes] = {}                     # file_id -> content served by getFile
        self.webhook: dict | None = None                        # the last setWebhook parameters
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        await self.runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    async def post_webhook(self, url: str, update: dict, secret: str | None) -> int:
        """Post one update as Telegram does; returns the HTTP status the bot answered."""
        update = dict(update, update_id=next(self._ids))
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json=update, headers=headers) as resp:
                await resp.read()
                return resp.status

    # updates
    def push(self, update: dict) -> dict:
        update = dict(update, update_id=next(self._ids))
        self.updates.append(update)
        self._new.set()
        return update

    # recorded calls
    def called(self, method: str) -> list[dict]:
        return [p for m, p in self.calls if m == method]

    def sent(self, chat_id: int, since: int = 0) -> list[dict]:
        """sendMessage/sendDocument calls to a chat after call number ``since``."""
        return [dict(p, method=m) for m, p in self.calls[since:]
                if m in ("sendMessage", "sendDocument") and str(p.get("chat_id")) == str(chat_id)]

    async def wait_for(self, predicate, timeout: float = 5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = predicate()
            if result:
                return result
            await asyncio.sleep(0.01)
        raise AssertionError(f"timed out; calls: {[m for m, _ in self.calls]}")

    # the API
    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        self.calls.append((method, params))
        chat = params.get("chat_id")
        queue = self.failures.get(method) or (self.chat_failures.get(int(chat)) if str(chat).lstrip("-").isdigit()
                                               else None)
        if queue:
            status, body = queue.pop(0)
            return web.json_response({"ok": False, "error_code": status} | body, status=status)
        result = await getattr(self, f"api_{method}", self.api_default)(params)
        if result is None:
            return web.json_response({"ok": False, "error_code": 400, "description": "Bad Request: not found"},
                                     status=400)
        return web.json_response({"ok": True, "result": result})

    async def _params(self, request: web.Request) -> dict:
        if request.content_type == "application/json":
            return await request.json()
        params = {}
        for key, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                params[key] = {"filename": value.filename, "content": value.file.read()}
            else:
                params[key] = value
        return params

    async def api_default(self, params):
        return True

    async def api_getMe(self, params):
        return {"id": 999, "is_bot": True, "first_name": "huqi", "username": "huqi_test_bot",
                "can_join_groups": False, "can_read_all_group_messages": False, "supports_inline_queries": False}

    async def api_getUpdates(self, params):
        offset = int(params.get("offset") or 0)
        wait = min(float(params.get("timeout") or 0), 0.2)
        ready = [u for u in self.updates if u["update_id"] >= offset]
        if not ready and wait > 0:
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), wait)
            except asyncio.TimeoutError:
                pass
            ready = [u for u in self.updates if u["update_id"] >= offset]
        return ready

    def _message(self, params, **extra):
        return {"message_id": next(self._message_ids), "date": int(time.time()),
                "chat": {"id": int(params["chat_id"]), "type": "private", "first_name": "U"},
                "from": {"id": 999, "is_bot": True, "first_name": "huqi"}} | extra

    async def api_sendMessage(self, params):
        gate = self.hold.get(int(params["chat_id"]))
        if gate is not None:
            await gate.wait()
        return self._message(params, text=params.get("text", ""))

    async def api_setWebhook(self, params):
        self.webhook = dict(params)
        return True

    async def api_deleteWebhook(self, params):
        self.webhook = None
        return True

    async def api_getFile(self, params):
        file_id = params.get("file_id")
        if file_id not in self.files:
            return None
        return {"file_id": file_id, "file_unique_id": f"U-{file_id}", "file_size": len(self.files[file_id]),
                "file_path": f"documents/{file_id}"}

    async def _file(self, request: web.Request) -> web.Response:
        file_id = request.match_info["path"].split("/", 1)[-1]
        if file_id not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[file_id])

    async def api_sendDocument(self, params):
        doc = params.get("document") or {}
        return self._message(params, document={"file_id": "DOC", "file_unique_id": "DOCU",
                                               "file_name": doc.get("filename") if isinstance(doc, dict) else None})


# ── updates as Telegram sends them ──────────────────────────────────
_msg_ids = itertools.count(1)
_update_ids = itertools.count(1)


def _user(uid: int) -> dict:
    return {"id": uid, "is_bot": False, "first_name": f"U{uid}", "language_code": "zh-hans"}


def _chat(uid: int, kind: str = "private") -> dict:
    return {"id": uid, "type": kind, "first_name": f"U{uid}"} if kind == "private" else \
        {"id": -uid, "type": kind, "title": "group"}


def text_update(uid: int, text: str, chat: str = "private") -> dict:
    message = {"message_id": next(_msg_ids), "date": int(time.time()), "chat": _chat(uid, chat),
               "from": _user(uid), "text": text}
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {"message": message}


def document_update(uid: int, name: str, size: int, mime: str = "image/png") -> dict:
    return {"message": {"message_id": next(_msg_ids), "date": int(time.time()), "chat": _chat(uid),
                        "from": _user(uid), "caption": "证据",
                        "document": {"file_id": f"FILE-{name}", "file_unique_id": "U1", "file_name": name,
                                     "mime_type": mime, "file_size": size}}}


def photo_update(uid: int) -> dict:
    sizes = [{"file_id": f"P{i}", "file_unique_id": f"PU{i}", "width": w, "height": w, "file_size": w * 10}
             for i, w in enumerate((90, 320, 1280))]
    return {"message": {"message_id": next(_msg_ids), "date": int(time.time()), "chat": _chat(uid),
                        "from": _user(uid), "photo": sizes}}


def button_update(uid: int, data: str) -> dict:
    return {"callback_query": {"id": f"cq{next(_msg_ids)}", "from": _user(uid), "chat_instance": "ci",
                               "data": data,
                               "message": {"message_id": next(_msg_ids), "date": int(time.time()),
                                           "chat": _chat(uid), "from": {"id": 999, "is_bot": True,
                                                                        "first_name": "huqi"},
                                           "text": "…"}}}


def keyboard(call: dict) -> list[dict]:
    markup = call.get("reply_markup")
    if not markup:
        return []
    markup = json.loads(markup) if isinstance(markup, str) else markup
    return [b for row in markup["inline_keyboard"] for b in row]


def texts(calls: list[dict]) -> str:
    return "\n".join(c.get("text") or c.get("caption") or "" for c in calls)
