"""``huqi serve``: one asyncio loop, one aiohttp application — the Telegram bot, the staff's API, health.

The Telegram bot runs in webhook mode when ``HUQI_WEBHOOK_URL`` is set
(updates posted to this application, checked against the secret, handled
before the 200 goes back, so Telegram resends whatever was not handled) and
by long polling otherwise; the same handlers either way.  The outbox sender
and the reminder sweep run as background tasks.  SIGTERM/SIGINT stop taking
updates, let the turns in flight finish, and close the store.
"""
from __future__ import annotations

import asyncio
import gc
import hmac
import json
import logging
import signal
import sys
from datetime import datetime, timezone
from urllib.parse import urlsplit

from aiohttp import web

from bot import api, texts, webchat, workspace
from bot.appkeys import CLOCK, SETTINGS, STATUS, STORE
from bot.config import Settings
from bot.conversation import Conversations, turn_failed
from bot.sender import Sender
from bot.sweep import Sweeper

log = logging.getLogger("huqi.server")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_BODY_LIMIT = 1 << 20
SENDER = web.AppKey("sender", Sender)
TELEGRAM = web.AppKey("telegram", object)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def webhook_path(settings: Settings) -> str:
    return urlsplit(settings.webhook_url).path or "/" if settings.webhook_url else "/telegram/webhook"


async def healthz(request: web.Request) -> web.Response:
    store, status = request.app[STORE], request.app[STATUS]
    body: dict = {"bot": dict(status)}
    try:
        await store.ping()
        body["store"] = {"ok": True, "backend": type(store).__name__}
        body["outbox"] = await store.outbox_counts()
    except Exception as e:
        body["store"] = {"ok": False, "error": type(e).__name__}
        body["status"] = "unavailable"
        return web.json_response(body, status=503)
    body["status"] = "ok"
    return web.json_response(body)


async def webhook(request: web.Request) -> web.Response:
    """Telegram posts one update; the secret must match (constant-time) or nothing is processed."""
    settings = request.app[SETTINGS]
    given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "surrogatepass")
    if not settings.webhook_secret or not hmac.compare_digest(given, settings.webhook_secret.encode()):
        log.warning("webhook call with a wrong or missing secret refused")
        return web.json_response({"ok": False}, status=403)
    if request.content_length is not None and request.content_length > WEBHOOK_BODY_LIMIT:
        return web.json_response({"ok": False}, status=413)
    try:
        data = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        log.warning("webhook body is not JSON; ignored")
        return web.json_response({"ok": False}, status=400)
    tg = request.app[TELEGRAM]
    from bot.telegram import parse_update
    update = parse_update(data, tg.app.bot)
    if update is None:
        return web.json_response({"ok": True})          # unparseable: acknowledged, never retried
    failed: list = []
    token = turn_failed.set(failed)
    try:
        await tg.app.update_processor.process_update(update, tg.app.process_update(update))
    finally:
        turn_failed.reset(token)
    if failed:
        return web.json_response({"ok": False}, status=503)   # Telegram resends it
    return web.json_response({"ok": True})


class TelegramRunner:
    """The PTB application inside the aiohttp app: started and stopped with it."""

    def __init__(self, settings: Settings, store, clock, sender: Sender):
        from bot.telegram import TelegramBot, build_application

        self.settings = settings
        self.conversations = Conversations(store, "telegram", clock=clock,
                                           operator_chat_id=settings.operator_chat_id)
        self.adapter = TelegramBot(self.conversations, files_dir=settings.files_dir,
                                   max_file_bytes=settings.max_file_bytes)
        self.webhook = bool(settings.webhook_url)
        self.app = build_application(settings.telegram_token, self.adapter, base_url=settings.telegram_base_url,
                                     base_file_url=settings.telegram_file_url, webhook=self.webhook)
        sender.register("telegram", self.adapter.deliver_owner)
        if settings.operator_chat_id is not None:
            sender.operator = self.adapter.deliver_operator
        self.running = False

    async def start(self) -> None:
        from bot.telegram import UPDATES

        await self.app.initialize()
        await self.adapter.post_init(self.app)
        if self.webhook:
            await self.app.bot.set_webhook(self.settings.webhook_url, secret_token=self.settings.webhook_secret,
                                           allowed_updates=UPDATES)
        else:
            await self.app.bot.delete_webhook()
            await self.app.updater.start_polling(allowed_updates=UPDATES)
        await self.app.start()
        self.running = True

    async def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        if self.app.updater is not None and self.app.updater.running:
            await self.app.updater.stop()          # no new updates
        await self.app.stop()                      # the turns in flight finish
        await self.app.shutdown()


def warm() -> None:
    """Load what turns, sweeps and staff pages read (knowledge, lifecycle, texts, classifier) before
    serving, so no first request pays for parsing YAML on the event loop."""
    from bot import ops, texts as service_texts
    from knowledge import get_classifier

    ops.texts()
    ops._ctx()
    service_texts.raw("sorry")
    get_classifier()


def settle() -> None:
    """After start-up: what is loaded now (knowledge, the store's cases) is moved out of the
    garbage collector's reach, so a full collection does not scan it again and again (with 10,000
    cases such a scan held the loop for over 100 ms)."""
    gc.collect()
    gc.freeze()


def build_app(settings: Settings, store, *, clock=utcnow, start_telegram: bool = True) -> web.Application:
    """The whole service as an aiohttp application (its startup starts the bot and the background tasks)."""
    app = web.Application(client_max_size=WEBHOOK_BODY_LIMIT)
    app[STORE] = store
    app[SETTINGS] = settings
    app[CLOCK] = clock
    sender = Sender(store, clock)
    app[SENDER] = sender
    sweeper = Sweeper(store, clock, settings.sweep_minutes * 60, settings.operator_chat_id, on_queued=sender.wake)
    telegram = TelegramRunner(settings, store, clock, sender) if settings.telegram_token and start_telegram else None
    app[STATUS] = {"mode": "off" if telegram is None else ("webhook" if telegram.webhook else "polling"),
                   "running": False}
    app.router.add_get("/healthz", healthz)
    if telegram is not None:
        app[TELEGRAM] = telegram
        if telegram.webhook:
            app.router.add_post(webhook_path(settings), webhook)
    api.setup(app)
    workspace.setup(app)
    webchat.setup(app)

    async def startup(app: web.Application) -> None:
        await asyncio.to_thread(warm)
        settle()
        if telegram is not None:
            await telegram.start()
            app[STATUS]["running"] = True
        if sender.deliverers or sender.operator:      # staff side alone: messages wait for the bot
            sender.start()
        sweeper.start()

    async def shutdown(app: web.Application) -> None:
        if telegram is not None:
            await telegram.stop()
            app[STATUS]["running"] = False
        await sweeper.stop()
        await sender.stop()

    app.on_startup.append(startup)
    app.on_shutdown.append(shutdown)
    return app


async def serve(settings: Settings, store, *, clock=utcnow) -> int:
    """Run until SIGTERM/SIGINT; returns the exit status."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):       # from the start: a signal during start-up stops cleanly
        loop.add_signal_handler(sig, stop.set)
    app = build_app(settings, store, clock=clock)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    try:
        try:
            await runner.setup()          # starts the bot: a rejected token or no network fails here
            site = web.TCPSite(runner, settings.http_host, settings.http_port)
            await site.start()
        except OSError as e:
            print(texts.text("port_in_use", host=settings.http_host, port=settings.http_port, error=e.strerror),
                  file=sys.stderr)
            return 2
        url = f"http://{settings.http_host}:{settings.http_port}"
        mode = app[STATUS]["mode"]
        if mode == "off":
            print(texts.text("serve_no_token", url=url), flush=True)
        else:
            said = texts.text("mode_webhook", url=settings.webhook_url) if mode == "webhook" \
                else texts.text("mode_polling")
            print(texts.text("serve_started", mode=said, url=url), flush=True)
        await stop.wait()
        log.info("stopping: no new updates, finishing the turns in flight")
        return 0
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
