"""The Telegram adapter: PTB handlers that feed the shared conversation and render its replies.

One conversation per Telegram user (owner ``{"messenger": "telegram",
"user_id": "<id>"}``), run by :class:`bot.conversation.Conversations`, so the
state lives in the store and a user's updates are handled one at a time and
in order, in polling and in webhook mode alike.  Only private chats.

Logging names user ids, event kinds and case numbers only: never message
text, file names, phone numbers or case content (see :mod:`bot.logsafe`).
"""
from __future__ import annotations

import asyncio
import io
import logging
import re
from datetime import timedelta

from telegram import BotCommand, InputFile, LinkPreviewOptions, Message, Update
from telegram.constants import ChatType
from telegram.request import HTTPXRequest
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError
from telegram.ext import (Application, ApplicationBuilder, BaseUpdateProcessor, CallbackQueryHandler, ContextTypes,
                          ExtBot, MessageHandler, filters)

from bot import files, texts
from bot.conversation import Conversations, turn_failed
from bot.store import StoreError
from bot.sender import Blocked, RetryLater
from bot.tg_render import CAPTION_LIMIT, button_value, file_event, keyboard, split_text, units

log = logging.getLogger("huqi.telegram")

MESSENGER = "telegram"
COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,64})(?:@\w+)?$")
UPDATES = ["message", "callback_query"]
CONCURRENT_UPDATES = 32    # turns in progress at once (different users; one user's in order)
FLOOD_WAIT_MAX = 30        # seconds a reply waits out Telegram's flood control; longer: give up
_sleep = asyncio.sleep
POOL_SIZE = 256            # connections to the Bot API for sending (PTB's builder default)
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


def retry_seconds(e: RetryAfter) -> float:
    import warnings
    with warnings.catch_warnings():             # PTB 22 warns that it will become a timedelta
        warnings.simplefilter("ignore")
        wait = e.retry_after
    return wait.total_seconds() if isinstance(wait, timedelta) else float(wait)


async def patiently(call):
    """``await call()``, waiting out Telegram's flood control twice at most."""
    for attempt in range(3):
        try:
            return await call()
        except RetryAfter as e:
            wait = retry_seconds(e)
            if attempt == 2 or wait > FLOOD_WAIT_MAX:
                raise
            await _sleep(wait)


class UserOrderedUpdates(BaseUpdateProcessor):
    """Each user's updates one after another in arrival order, different users at once.

    The user's place in line is taken *before* a slot: a chat with a backlog
    of hundreds of updates waits on its own lock and holds one slot at most,
    so it delays only itself.  PTB's own semaphore is set wide; the real bound
    on concurrent turns is ``slots``.
    """

    def __init__(self, slots: int = CONCURRENT_UPDATES):
        super().__init__(1 << 20)
        self._slots = asyncio.Semaphore(slots)
        self._users: dict[object, list] = {}          # key -> [lock, waiting tasks]

    async def do_process_update(self, update: object, coroutine) -> None:
        user = update.effective_user if isinstance(update, Update) else None
        key = user.id if user else None
        entry = self._users.setdefault(key, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                async with self._slots:
                    await coroutine
        finally:
            entry[1] -= 1
            if not entry[1]:
                self._users.pop(key, None)

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


class TolerantBot(ExtBot):
    """An ExtBot whose getUpdates skips an update PTB cannot parse instead of fetching it forever.

    The update's id is logged, never its content.
    """

    async def _post(self, endpoint: str, data=None, *args, **kwargs):
        result = await super()._post(endpoint, data, *args, **kwargs)
        if endpoint != "getUpdates" or not isinstance(result, list):
            return result
        kept = []
        for raw in result:
            try:
                Update.de_json(raw, self)
            except Exception:
                update_id = raw.get("update_id") if isinstance(raw, dict) else None
                log.warning("skipped update %s: it could not be parsed", update_id)
                if not isinstance(update_id, int):
                    continue
                raw = {"update_id": update_id}      # an empty update: the offset moves past it
            kept.append(raw)
        return kept


def parse_update(data: object, bot) -> Update | None:
    """A webhook body as an Update, or None (logged by id only) when it is not one."""
    try:
        update = Update.de_json(data, bot) if isinstance(data, dict) else None
    except Exception:
        update = None
    if update is None:
        log.warning("skipped webhook update %s: it could not be parsed",
                    data.get("update_id") if isinstance(data, dict) else "?")
    return update


class TelegramBot:
    """The handlers, the evidence downloads and the delivery of queued notifications."""

    def __init__(self, conversations: Conversations, files_dir=None, max_file_bytes: int = 20 * 2**20):
        self.conversations = conversations
        self.store = conversations.store
        self.files_dir = files_dir
        self.max_file_bytes = max_file_bytes
        self.bot = None

    # wiring
    def install(self, app: Application) -> None:
        private = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
        app.add_handler(CallbackQueryHandler(self.on_button))
        app.add_handler(MessageHandler(private, self.on_message))
        app.add_error_handler(self.on_error)

    async def post_init(self, app: Application) -> None:
        self.bot = app.bot
        menu = [BotCommand(c, d) for c, d in texts.raw("telegram_menu")]
        try:
            await app.bot.set_my_commands(menu)
        except TelegramError as e:
            log.warning("could not set the command menu: %s", type(e).__name__)

    # handlers
    async def on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or user.is_bot:
            return
        event = self.event_for(message)
        if event["type"] == "file":
            event = await self.fetch_file(context.bot, message.chat_id, event)
            if event is None:
                return
        user_id = str(user.id)
        if event == {"type": "command", "name": "start"} and await self.store.get_state(
                self.conversations.key(user_id)) is None:
            event = None                                    # a first /start: the greeting
        await self.handle(context.bot, user_id, message.chat_id, event)

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        try:
            await query.answer()
        except TelegramError as e:
            log.warning("user %s: could not answer a button press: %s", query.from_user.id, type(e).__name__)
        chat = update.effective_chat
        if (chat is not None and chat.type != ChatType.PRIVATE) or query.from_user.is_bot:
            return
        if not isinstance(query.data, str):
            return
        await self.handle(context.bot, str(query.from_user.id), chat.id if chat else query.from_user.id,
                          {"type": "button", "data": query.data})

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        user = update.effective_user if isinstance(update, Update) else None
        failed = turn_failed.get()
        if failed is not None and isinstance(context.error, (StoreError, OSError)):
            failed.append(user.id if user else None)       # webhook: answer 503, Telegram resends
        log.error("error handling an update from user %s: %s", user.id if user else None,
                  type(context.error).__name__)

    def event_for(self, message: Message) -> dict:
        """The engine event for an incoming message."""
        if message.text is not None:
            text = message.text
            m = COMMAND.match(text.strip().split(maxsplit=1)[0]) if text.strip() else None
            if m:
                word = "/" + m.group(1).lower()
                commands = self.conversations.engine.flow.commands
                name = next((n for n, words in commands.items() if word in words), m.group(1))
                return {"type": "command", "name": "start" if word == "/start" else name}
            return {"type": "text", "text": text}
        return file_event(message) or {"type": "text", "text": ""}

    async def fetch_file(self, bot, chat_id: int, event: dict) -> dict | None:
        """Download an evidence file into the files directory; None (user told why) if refused."""
        name = str(event.get("name") or "file")[:80]
        refused = files.refusal(name, event.get("size"), event.get("mime"), self.max_file_bytes)
        if refused is None and self.files_dir is not None:
            try:
                tg_file = await bot.get_file(event["ref"])
                data = bytes(await tg_file.download_as_bytearray())
            except TelegramError as e:
                log.warning("chat %s: file download failed: %s", chat_id, type(e).__name__)
                refused = ("file_download_failed", {"name": name})
            else:
                refused = files.refusal(name, len(data), event.get("mime"), self.max_file_bytes)
                if refused is None:
                    event = dict(event, size=len(data),
                                 sha256=await asyncio.to_thread(files.save, self.files_dir, data),
                                 received_at=self.conversations.clock().isoformat(timespec="seconds"))
        if refused is None:
            return event
        key, values = refused
        state = await self.store.get_state(self.conversations.key(str(chat_id))) or {}
        lang = (state.get("state") or {}).get("lang")
        await patiently(lambda: bot.send_message(chat_id, texts.text(key, lang, **values)))
        return None

    async def handle(self, bot, user_id: str, chat_id: int, event: dict | None) -> None:
        """One user event through the conversation, the replies sent in order."""
        log.info("user %s: %s", user_id, "start" if event is None else event["type"])

        async def deliver(record: dict, replies: list[dict]) -> None:
            await self.send(bot, chat_id, record, replies)

        if event is not None and event["type"] == "button":
            event = {"type": "button", "value": event["data"]}
        try:
            await self.conversations.turn(user_id, event, deliver, resolve=self.resolve_button)
        except (StoreError, OSError) as e:
            log.error("user %s: the store is unavailable: %s", user_id, type(e).__name__)
            failed = turn_failed.get()
            if failed is not None:
                failed.append(user_id)             # webhook: answer 503, Telegram resends the update
                return
            try:
                await bot.send_message(chat_id, texts.text("store_unavailable"))
            except TelegramError:
                pass
        except TelegramError as e:
            log.warning("user %s: Telegram refused a reply: %s", user_id, type(e).__name__)
        except Exception as e:
            log.error("user %s: the turn failed: %s", user_id, type(e).__name__)
            try:
                await bot.send_message(chat_id, texts.text("sorry"))
            except TelegramError:
                pass

    @staticmethod
    def resolve_button(record: dict, event: dict) -> dict:
        """A button's callback data back to the value it stands for (the per-user table)."""
        if event.get("type") == "button":
            return dict(event, value=button_value(record, event["value"]))
        return event

    async def send(self, bot, chat_id: int, record: dict, replies: list[dict], *, wait: bool = True) -> None:
        """Each reply as a message (split if long) with its buttons, or as a document."""
        call = patiently if wait else (lambda f: f())
        for reply in replies:
            markup = keyboard(record, reply.get("buttons"))
            text = (reply.get("text") or "").strip()
            if "file" in reply:
                f = reply["file"]
                caption = text if text and units(text) <= CAPTION_LIMIT else None
                if text and caption is None:
                    for chunk in split_text(text):
                        await call(lambda c=chunk: bot.send_message(chat_id, c, link_preview_options=NO_PREVIEW))
                content = f["content"] if isinstance(f.get("content"), bytes) else \
                    str(f.get("content", "")).encode("utf-8")
                name = str(f.get("name") or "huqi.txt")
                await call(lambda: bot.send_document(chat_id, InputFile(io.BytesIO(content), filename=name),
                                                     caption=caption, reply_markup=markup))
                continue
            if not text:
                if markup is None:
                    continue
                text = texts.text("no_text_prompt")
            chunks = split_text(text) or [texts.text("no_text_prompt")]
            for i, chunk in enumerate(chunks):
                last = i == len(chunks) - 1
                await call(lambda c=chunk, m=(markup if last else None): bot.send_message(
                    chat_id, c, reply_markup=m, link_preview_options=NO_PREVIEW))

    # queued notifications (the outbox sender calls these)
    async def deliver_owner(self, msg: dict) -> None:
        """Deliver a queued message to a case's owner (an engine event goes through the conversation)."""
        user_id = str(msg["owner"]["user_id"])
        if not re.fullmatch(r"-?\d+", user_id):
            raise Blocked("not a Telegram user id")
        bot = self._bot()
        chat_id = int(user_id)

        async def deliver(record: dict, replies: list[dict]) -> None:
            await self.send(bot, chat_id, record, replies, wait=False)

        with translate_errors():
            if msg.get("event"):
                await self.conversations.push(user_id, msg["event"], deliver)
            else:
                await self.conversations.notify(user_id, {k: msg[k] for k in ("text", "buttons") if k in msg},
                                                deliver)

    async def deliver_operator(self, msg: dict) -> None:
        bot = self._bot()
        with translate_errors():
            for chunk in split_text(msg.get("text") or ""):
                await bot.send_message(msg["chat_id"], chunk, link_preview_options=NO_PREVIEW)

    def _bot(self):
        if self.bot is None:
            raise RuntimeError("the Telegram bot is not started")
        return self.bot


class translate_errors:
    """Telegram's answers as the sender's: 403 → Blocked, 429 → RetryLater, others re-raised."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if isinstance(exc, Forbidden):
            raise Blocked(type(exc).__name__) from exc
        if isinstance(exc, BadRequest) and "chat not found" in str(exc).lower():
            raise Blocked(type(exc).__name__) from exc
        if isinstance(exc, RetryAfter):
            raise RetryLater(retry_seconds(exc)) from exc
        return False


def build_application(token: str, adapter: TelegramBot, *, base_url: str | None = None,
                      base_file_url: str | None = None, webhook: bool = False) -> Application:
    """The PTB Application with the adapter's handlers; ``webhook``: no updater (updates are fed in)."""
    bot = TolerantBot(token, base_url=base_url or "https://api.telegram.org/bot",
                      base_file_url=base_file_url or "https://api.telegram.org/file/bot",
                      request=HTTPXRequest(connection_pool_size=POOL_SIZE),
                      get_updates_request=HTTPXRequest(connection_pool_size=1, read_timeout=30))
    builder = ApplicationBuilder().bot(bot).concurrent_updates(UserOrderedUpdates()).post_init(adapter.post_init)
    if webhook:
        builder = builder.updater(None)
    app = builder.build()
    adapter.install(app)
    return app
