"""The Telegram adapter: the same conversation as the terminal chat, on Telegram.

One :class:`~bot.session.Session` per Telegram user (owner ``{"messenger":
"telegram", "user_id": "<id>"}``); this module only turns updates into engine
events and replies into Telegram messages.  The sessions' plain-JSON states
are kept in ``<data dir>/telegram_states.json`` (mode 0600, replaced
atomically), so a restart continues every conversation where it was.

Button values travel as ``callback_data``; Telegram allows 64 bytes, so a
longer value is sent as ``b:<n>`` and looked up in a small per-user table kept
with the state.  Whatever comes back is handed to the engine as a button
event, and the engine refuses values it did not offer that user: forged data
reaches nobody's case.

Only private chats.  Reminders that are due are shown when the user writes and
sent by a sweep every few minutes (a plain asyncio task, no job-queue extra);
each reminder is shown once until it is answered or falls due again.

Logging names user ids, event kinds and case numbers only: never message
text, file names, phone numbers or case content.
"""
from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import sys
import tempfile
import time
import warnings
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

from telegram import (BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, LinkPreviewOptions,
                      Message, Update)
from telegram.constants import ChatType
from telegram.error import BadRequest, Forbidden, InvalidToken, RetryAfter, TelegramError
from telegram.ext import (Application, ApplicationBuilder, BaseUpdateProcessor, CallbackQueryHandler, ContextTypes,
                          MessageHandler, filters)

from bot import reminders
from bot.session import Session, utcnow
from dialogs.engine import Engine

log = logging.getLogger("huqi.telegram")

MESSENGER = "telegram"
STATES_FILE = "telegram_states.json"
STATES_VERSION = 1
TEXT_LIMIT = 4096          # characters (UTF-16 code units) in one message
CAPTION_LIMIT = 1024
CALLBACK_LIMIT = 64        # bytes of callback_data
LABEL_LIMIT = 60           # characters of a button label we show
TABLE_PREFIX = "b:"
TABLE_SIZE = 300           # long button values remembered per user
SWEEP_MINUTES = 15
NO_TEXT_PROMPT = "请选择："
SORRY = "抱歉，刚才出了点问题，请再发一次；也可以发送 /restart 重新开始。"
COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,64})(?:@\w+)?$")
MENU = [("start", "开始 / 重新开始"), ("cases", "我的案件"), ("faq", "政策问答"), ("help", "帮助"),
        ("back", "上一步"), ("restart", "重新开始"), ("cancel", "取消本次咨询")]
UPDATES = ["message", "callback_query"]
CONCURRENT_UPDATES = 32   # updates handled at once (different users; one user's in order)
FLOOD_WAIT_MAX = 30        # seconds we wait when Telegram says "retry after"; longer: give up
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


def sweep_minutes() -> float:
    """HUQI_REMINDER_SWEEP_MINUTES, default 15."""
    try:
        return max(0.01, float(os.environ.get("HUQI_REMINDER_SWEEP_MINUTES", SWEEP_MINUTES)))
    except ValueError:
        return SWEEP_MINUTES


def api_urls() -> tuple[str | None, str | None]:
    """HUQI_TELEGRAM_API_URL / HUQI_TELEGRAM_FILE_URL: a local Bot API server (or a test double)."""
    return os.environ.get("HUQI_TELEGRAM_API_URL") or None, os.environ.get("HUQI_TELEGRAM_FILE_URL") or None


# ── persisted states ────────────────────────────────────────────────
class StateFile:
    """``{"v": 1, "users": {user_id: record}}`` in one JSON file, replaced atomically.

    A record is ``{"state": engine state, "buttons": {n: value}, "next": n,
    "reminded": ["case|kind|due", ...]}``.
    """

    def __init__(self, path: Path):
        self.path = Path(path)

    def load(self) -> dict[str, dict]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(raw)
            users = data["users"]
            if data.get("v") != STATES_VERSION or not isinstance(users, dict):
                raise ValueError("unexpected layout")
            return {str(k): v for k, v in users.items() if isinstance(v, dict)}
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            os.replace(self.path, aside)
            log.warning("conversation states unreadable (%s); moved to %s, starting afresh",
                        type(e).__name__, aside.name)
            return {}

    def write(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        try:
            dfd = os.open(self.path.parent, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(dfd)
        except OSError:
            pass
        finally:
            os.close(dfd)


# ── rendering helpers ───────────────────────────────────────────────
def _units(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Pieces of at most ``limit`` units, broken at a line end where possible."""
    chunks = []
    while _units(text) > limit:
        cut, units = 0, 0
        for i, ch in enumerate(text):       # the longest prefix that fits
            units += 2 if ord(ch) > 0xFFFF else 1
            if units > limit:
                break
            cut = i + 1
        nl = text.rfind("\n", 0, cut)
        if nl > cut // 2:
            cut = nl + 1
        chunks.append(text[:cut].rstrip("\n"))
        text = text[cut:]
    if text.strip():
        chunks.append(text)
    return [c for c in chunks if c.strip()]


def label_of(label: str) -> str:
    label = " ".join(str(label).split())
    return label if len(label) <= LABEL_LIMIT else label[: LABEL_LIMIT - 1] + "…"


def callback_data(record: dict, value: str) -> str:
    """What goes into ``callback_data`` for a button value (at most 64 bytes)."""
    if len(value.encode("utf-8")) <= CALLBACK_LIMIT and not value.startswith(TABLE_PREFIX):
        return value
    table = record.setdefault("buttons", {})
    for key, known in table.items():
        if known == value:
            return TABLE_PREFIX + key
    n = int(record.get("next") or 0) + 1
    record["next"] = n
    table[str(n)] = value
    for key in list(table)[: max(0, len(table) - TABLE_SIZE)]:
        del table[key]
    return f"{TABLE_PREFIX}{n}"


def button_value(record: dict, data: str) -> str:
    """The button value behind ``callback_data``; unknown data is passed on for the engine to refuse."""
    if data.startswith(TABLE_PREFIX):
        return (record.get("buttons") or {}).get(data[len(TABLE_PREFIX):], data)
    return data


_sleep = asyncio.sleep


async def _patiently(call: Callable):
    """``await call()``, waiting out Telegram's flood control twice at most."""
    for attempt in range(3):
        try:
            return await call()
        except RetryAfter as e:
            with warnings.catch_warnings():             # PTB 22 warns that it will become a timedelta
                warnings.simplefilter("ignore")
                wait = e.retry_after
            wait = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
            if attempt == 2 or wait > FLOOD_WAIT_MAX:
                raise
            await _sleep(wait)


def file_event(message: Message) -> dict | None:
    """A document, photo, video or recording as the engine's file event (not downloaded)."""
    if message.document:
        d = message.document
        return _file(d, d.file_name or "file", d.mime_type)
    if message.photo:
        p = message.photo[-1]                     # the largest size
        return _file(p, f"photo_{p.file_unique_id}.jpg", "image/jpeg")
    if message.video:
        v = message.video
        return _file(v, v.file_name or f"video_{v.file_unique_id}.mp4", v.mime_type or "video/mp4")
    if message.video_note:
        v = message.video_note
        return _file(v, f"video_note_{v.file_unique_id}.mp4", "video/mp4")
    if message.audio:
        a = message.audio
        return _file(a, a.file_name or f"audio_{a.file_unique_id}", a.mime_type)
    if message.voice:
        v = message.voice
        return _file(v, f"voice_{v.file_unique_id}.ogg", v.mime_type or "audio/ogg")
    return None


def _file(f, name: str, mime: str | None) -> dict:
    return {"type": "file", "name": name, "size": f.file_size or 0, "ref": f.file_id, "mime": mime,
            "sha256": None}


class PerUserUpdates(BaseUpdateProcessor):
    """Different users' updates at the same time, each user's one after another in arrival order.

    PTB's default handles every update in turn, so one user's long result
    card would hold up everyone; plain concurrency could answer a user's
    second message before the first.  Tasks reach the per-user lock in the
    order the updates arrived, and asyncio locks are FIFO.
    """

    def __init__(self, max_concurrent_updates: int = CONCURRENT_UPDATES):
        super().__init__(max_concurrent_updates)
        self._users: dict[object, list] = {}          # key -> [lock, tasks using it]

    async def do_process_update(self, update: object, coroutine) -> None:
        user = update.effective_user if isinstance(update, Update) else None
        key = user.id if user else None
        entry = self._users.setdefault(key, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                await coroutine
        finally:
            entry[1] -= 1
            if not entry[1]:
                self._users.pop(key, None)

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


# ── the adapter ─────────────────────────────────────────────────────
class TelegramBot:
    """Sessions, their persisted states, the handlers and the reminder sweep."""

    def __init__(self, store, data_dir: Path | str, engine: Engine | None = None,
                 clock: Callable[[], datetime] = utcnow, sweep_every: float | None = None,
                 owns_store: bool = False):
        self.engine = engine or Engine()
        self.store = store
        self.clock = clock
        self.owns_store = owns_store
        self.sweep_every = 60 * sweep_minutes() if sweep_every is None else sweep_every
        self.states = StateFile(Path(data_dir) / STATES_FILE)
        self.users: dict[str, dict] = self.states.load()
        self.sessions: dict[str, Session] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._save_lock = asyncio.Lock()
        self._sweeper: asyncio.Task | None = None

    # sessions and states
    def session(self, user_id: str) -> Session:
        s = self.sessions.get(user_id)
        if s is None:
            state = (self.users.get(user_id) or {}).get("state")
            s = Session(self.engine, self.store, {"messenger": MESSENGER, "user_id": user_id},
                        state=state, clock=self.clock)
            self.sessions[user_id] = s
        return s

    def _lock(self, user_id: str) -> asyncio.Lock:
        return self._locks.setdefault(user_id, asyncio.Lock())

    async def save(self) -> None:
        async with self._save_lock:
            for user_id, s in self.sessions.items():
                if user_id in self.users:
                    self.users[user_id]["state"] = s.state
            text = json.dumps({"v": STATES_VERSION, "users": self.users}, ensure_ascii=False)
            await asyncio.to_thread(self.states.write, text)

    # Telegram wiring
    def install(self, app: Application) -> None:
        private = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
        app.add_handler(CallbackQueryHandler(self.on_button))
        app.add_handler(MessageHandler(private, self.on_message))
        app.add_error_handler(self.on_error)

    async def post_init(self, app: Application) -> None:
        try:
            await app.bot.set_my_commands([BotCommand(c, d) for c, d in MENU])
        except TelegramError as e:
            log.warning("could not set the command menu: %s", e)
        self.start_sweeper(app.bot)

    async def post_shutdown(self, app: Application) -> None:
        await self.stop_sweeper()
        try:
            await self.save()
        finally:
            if self.owns_store and self.store is not None:
                await self.store.close()

    # handlers
    async def on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or user.is_bot:
            return
        event = self.event_for(message)
        first_start = event == {"type": "command", "name": "start"} and str(user.id) not in self.users
        await self.handle(context.bot, str(user.id), message.chat_id, None if first_start else event)

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        try:
            await query.answer()
        except TelegramError as e:
            log.warning("user %s: could not answer a button press: %s", query.from_user.id, e)
        chat = update.effective_chat
        if (chat is not None and chat.type != ChatType.PRIVATE) or query.from_user.is_bot:
            return
        if not isinstance(query.data, str):
            return
        user_id = str(query.from_user.id)
        await self.handle(context.bot, user_id, chat.id if chat else query.from_user.id,
                          {"type": "button", "data": query.data})

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        user = update.effective_user if isinstance(update, Update) else None
        log.error("error handling an update from user %s: %s", user.id if user else None,
                  type(context.error).__name__, exc_info=context.error)

    def event_for(self, message: Message) -> dict:
        """The engine event for an incoming message."""
        if message.text is not None:
            text = message.text
            m = COMMAND.match(text.strip().split(maxsplit=1)[0]) if text.strip() else None
            if m:
                word = "/" + m.group(1).lower()
                name = next((n for n, words in self.engine.flow.commands.items() if word in words), m.group(1))
                return {"type": "command", "name": "start" if word == "/start" else name}
            return {"type": "text", "text": text}
        return file_event(message) or {"type": "text", "text": ""}

    async def handle(self, bot, user_id: str, chat_id: int, event: dict | None) -> None:
        """One user event (None: the first /start): reminders first, then the turn, then save."""
        async with self._lock(user_id):
            record = self.users.setdefault(user_id, {})
            session = self.session(user_id)
            before = (session.state.get("case") or {}).get("case_id")
            kind = "start" if event is None else event["type"]
            log.info("user %s: %s", user_id, kind)
            earlier = list(record.get("reminded") or [])
            try:
                if event is None:
                    replies = session.start() + await self.fresh_reminders(session, record)
                else:
                    if event["type"] == "button":
                        event = {"type": "button", "value": button_value(record, event["data"])}
                    replies = await self.fresh_reminders(session, record) + await session.turn(event)
                record["state"] = session.state
                saved = (session.state.get("case") or {}).get("case_id")
                if saved and saved != before:
                    log.info("user %s saved case %s", user_id, saved)
                await self.send(bot, chat_id, record, replies)
            except TelegramError as e:
                record["reminded"] = earlier           # reminders may not have arrived: the sweep tries again
                log.warning("user %s: Telegram refused a reply: %s", user_id, e)
            except Exception:
                log.exception("user %s: the turn failed", user_id)
                try:
                    await bot.send_message(chat_id, SORRY)
                except TelegramError:
                    pass
            finally:
                record["state"] = session.state
                await self.save()

    async def send(self, bot, chat_id: int, record: dict, replies: list[dict]) -> None:
        """Each reply as a message (split if long) with its buttons, or as a document."""
        for reply in replies:
            markup = self.keyboard(record, reply.get("buttons"))
            text = (reply.get("text") or "").strip()
            if "file" in reply:
                f = reply["file"]
                caption = text if text and _units(text) <= CAPTION_LIMIT else None
                if text and caption is None:
                    for chunk in split_text(text):
                        await _patiently(lambda c=chunk: bot.send_message(chat_id, c,
                                                                          link_preview_options=NO_PREVIEW))
                content = str(f.get("content", "")).encode("utf-8")
                name = str(f.get("name") or "huqi.txt")
                await _patiently(lambda: bot.send_document(chat_id, InputFile(io.BytesIO(content), filename=name),
                                                           caption=caption, reply_markup=markup))
                continue
            if not text:
                if markup is None:
                    continue
                text = NO_TEXT_PROMPT
            chunks = split_text(text) or [NO_TEXT_PROMPT]
            for i, chunk in enumerate(chunks):
                last = i == len(chunks) - 1
                await _patiently(lambda c=chunk, m=(markup if last else None): bot.send_message(
                    chat_id, c, reply_markup=m, link_preview_options=NO_PREVIEW))

    def keyboard(self, record: dict, buttons) -> InlineKeyboardMarkup | None:
        rows = [[InlineKeyboardButton(label_of(b["label"]), callback_data=callback_data(record, str(b["value"])))]
                for row in buttons or [] for b in row]
        return InlineKeyboardMarkup(rows) if rows else None

    # reminders
    async def fresh_reminders(self, session: Session, record: dict) -> list[dict]:
        """The user's due reminders not shown yet (each is shown once per due time)."""
        if self.store is None:
            return []
        due = [(c, r) for c, r in await reminders.due(self.store, self.clock())
               if c.get("owner") == session.owner]
        keys = {f"{c['id']}|{r.get('kind')}|{r.get('due')}" for c, r in due}
        shown = set(record.get("reminded") or []) & keys
        fresh = {k.split("|", 1)[0] for k in keys - shown}
        record["reminded"] = sorted(keys)
        if not fresh:
            return []
        out = []
        for reply in await session.due_reminders():
            about = {parsed[1] for row in reply.get("buttons") or [] for b in row
                     if (parsed := reminders.parse_reminder_value(b.get("value")))}
            if not about or about & fresh:
                out.append(reply)
        return out

    async def sweep(self, bot) -> int:
        """Send due reminders to their owners; returns how many users were reminded."""
        if self.store is None:
            return 0
        owners = set()
        for case, _rem in await reminders.due(self.store, self.clock()):
            owner = case.get("owner") or {}
            if owner.get("messenger") == MESSENGER and re.fullmatch(r"-?\d+", str(owner.get("user_id", ""))):
                owners.add(str(owner["user_id"]))
        reminded = 0
        for user_id in sorted(owners):
            async with self._lock(user_id):
                record = self.users.setdefault(user_id, {})
                session = self.session(user_id)
                earlier = list(record.get("reminded") or [])
                replies = await self.fresh_reminders(session, record)
                record["state"] = session.state
                if not replies:
                    continue
                try:
                    await self.send(bot, int(user_id), record, replies)
                except (Forbidden, BadRequest) as e:       # blocked the bot, chat gone: do not retry
                    log.info("user %s: reminder not delivered: %s", user_id, e)
                    continue
                except TelegramError as e:                 # network: try again next sweep
                    record["reminded"] = earlier
                    log.warning("user %s: reminder not delivered, will retry: %s", user_id, e)
                    continue
                reminded += 1
                log.info("user %s: reminded of %s", user_id,
                         ", ".join(sorted({k.split("|", 1)[0] for k in record["reminded"]})))
        if owners:
            await self.save()
        return reminded

    def start_sweeper(self, bot) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.create_task(self._sweep_forever(bot), name="huqi-reminder-sweep")

    async def stop_sweeper(self) -> None:
        task, self._sweeper = self._sweeper, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _sweep_forever(self, bot) -> None:
        while True:
            try:
                await self.sweep(bot)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reminder sweep failed")
            await asyncio.sleep(self.sweep_every)


def build_application(token: str, adapter: TelegramBot, *, base_url: str | None = None,
                      base_file_url: str | None = None) -> Application:
    """The PTB Application with the adapter's handlers (``base_url``: a local Bot API server or a fake)."""
    builder = (ApplicationBuilder().token(token).concurrent_updates(PerUserUpdates())
               .post_init(adapter.post_init).post_shutdown(adapter.post_shutdown))
    if base_url:
        builder = builder.base_url(base_url)
    if base_file_url:
        builder = builder.base_file_url(base_file_url)
    app = builder.build()
    adapter.install(app)
    return app


class RedactingFormatter(logging.Formatter):
    """Log lines with the bot token blanked out (PTB names it when Telegram rejects it)."""

    def __init__(self, secret: str, fmt: str):
        super().__init__(fmt)
        self.secret = secret

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace(self.secret, "<token>")


def _setup_logging(token: str) -> None:
    logging.basicConfig(level=logging.INFO)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(RedactingFormatter(token, "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("httpx").setLevel(logging.WARNING)     # its request lines carry the bot token


def run(token: str, directory: Path) -> int:
    """``huqi telegram``: long polling until SIGINT/SIGTERM, the case store open throughout."""
    import asyncio as _asyncio

    from bot.store import StoreError, StoreLocked, open_store

    _setup_logging(token)
    try:
        store = open_store(directory)
    except StoreLocked as e:
        print(f"案件库正被另一个 huqi 进程使用,请先停止它 / the case store is in use by another process: {e}",
              file=sys.stderr)
        return 3
    except (StoreError, OSError) as e:
        print(f"案件库打不开 / cannot open the case store: {e}", file=sys.stderr)
        return 2
    base_url, base_file_url = api_urls()
    adapter = TelegramBot(store, directory, owns_store=True)
    app = build_application(token, adapter, base_url=base_url, base_file_url=base_file_url)
    status = 0
    try:
        app.run_polling(allowed_updates=UPDATES)
    except InvalidToken:
        print("Telegram 拒绝了这个令牌 / Telegram rejected the bot token (HUQI_TELEGRAM_TOKEN)", file=sys.stderr)
        status = 2
    except TelegramError as e:
        print(f"连不上 Telegram / cannot reach Telegram: {e}", file=sys.stderr)
        status = 1
    finally:
        if not store.closed:
            _asyncio.run(store.close())
    return status
