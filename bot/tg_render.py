"""Turning engine replies into Telegram messages: text splitting, labels, keyboards, callback data.

Button values travel as ``callback_data``; Telegram allows 64 bytes, so a
longer value is sent as ``b:<n>`` and looked up in a small per-user table kept
with the user's record.  Whatever comes back is handed to the engine as a
button event, and the engine refuses values it did not offer that user.
"""
from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message

TEXT_LIMIT = 4096          # characters (UTF-16 code units) in one message
CAPTION_LIMIT = 1024
CALLBACK_LIMIT = 64        # bytes of callback_data
LABEL_LIMIT = 60           # characters of a button label we show
TABLE_PREFIX = "b:"
TABLE_SIZE = 300           # long button values remembered per user


def units(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Pieces of at most ``limit`` units, broken at a line end where possible."""
    chunks = []
    while units(text) > limit:
        cut, used = 0, 0
        for i, ch in enumerate(text):       # the longest prefix that fits
            used += 2 if ord(ch) > 0xFFFF else 1
            if used > limit:
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


def keyboard(record: dict, buttons) -> InlineKeyboardMarkup | None:
    """Inline keyboard for a reply's button rows, one button a row (labels stay readable on a phone)."""
    rows = [[InlineKeyboardButton(label_of(b["label"]), callback_data=callback_data(record, str(b["value"])))]
            for row in buttons or [] for b in row]
    return InlineKeyboardMarkup(rows) if rows else None


def file_event(message: Message) -> dict | None:
    """A document, photo, video or recording as the engine's file event (not yet downloaded)."""
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
