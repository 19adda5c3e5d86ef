"""One-time import of the old ``telegram_states.json`` into the store's
conversation states (then renamed ``.imported``); an unreadable file is set
aside as ``.damaged`` and never stops huqi from starting."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any, Optional

from bot.store.base import check_state_key

__all__ = ["import_states_file", "STATES_VERSION"]

log = logging.getLogger("huqi.store")

STATES_VERSION = 1
MESSENGER = "telegram"


class _Damaged(Exception):
    pass


def _read(path: Path) -> Optional[dict]:
    """The file's ``users`` dict; None if there is no file; _Damaged if it
    cannot be read as a states file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:  # a directory at the path, permissions, I/O error
        raise _Damaged(type(exc).__name__) from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _Damaged(type(exc).__name__) from None
    users = data.get("users") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("v") != STATES_VERSION or not isinstance(users, dict):
        raise _Damaged("unexpected layout")
    return users


def _set_aside(path: Path, suffix: str) -> Optional[Path]:
    """Rename ``path`` to ``path + suffix`` (numbered if taken)."""
    target = path.with_name(path.name + suffix)
    n = 1
    while os.path.lexists(target):
        target = path.with_name(f"{path.name}{suffix}.{n}")
        n += 1
    try:
        os.replace(path, target)
    except OSError as exc:
        log.error("could not rename %s (%s)", path.name, type(exc).__name__)
        return None
    try:
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass
    return target


def _clean_tmp(path: Path) -> int:
    """Delete leftovers of interrupted rewrites (``.<name>.*.tmp``): they
    hold whole conversations."""
    removed = 0
    try:
        leftovers = list(path.parent.glob(f".{path.name}.*.tmp"))
    except OSError:
        return 0
    for tmp in leftovers:
        try:
            if tmp.is_file() and not tmp.is_symlink():
                tmp.unlink()
                removed += 1
        except OSError:
            pass
    if removed:
        log.info("removed %d leftover temporary copies of %s", removed, path.name)
    return removed


def _states_of(users: dict) -> dict:
    states: dict[str, Any] = {}
    for user_id, record in users.items():
        if not isinstance(record, dict):
            continue
        try:
            states[check_state_key(f"{MESSENGER}:{user_id}")] = record
        except ValueError:
            continue
    return states


async def import_states_file(store, path) -> int:
    """Import ``path`` (the old ``{"v": 1, "users": {user_id: record}}``
    file) as states ``"telegram:<user_id>"``, once: afterwards the file is
    renamed ``<name>.imported``.  States already in the store are kept (they
    are newer).  Returns how many states were imported; 0 when there is no
    file, or when it is unreadable (it is then renamed ``<name>.damaged``).
    Logs only the file's name."""
    path = Path(path)
    await asyncio.to_thread(_clean_tmp, path)
    try:
        users = await asyncio.to_thread(_read, path)
    except _Damaged as why:
        aside = await asyncio.to_thread(_set_aside, path, ".damaged")
        log.warning(
            "conversation states file %s is unreadable (%s); set aside as %s, starting afresh",
            path.name, why, aside.name if aside else "-",
        )
        return 0
    if users is None:
        return 0
    states = _states_of(users)
    new = {k: v for k, v in states.items() if await store.get_state(k) is None}
    await store.put_states(new)
    aside = await asyncio.to_thread(_set_aside, path, ".imported")
    log.info(
        "imported %d conversation states from %s (now %s)",
        len(new), path.name, aside.name if aside else "-",
    )
    return len(new)
