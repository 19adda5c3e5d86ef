"""The staff's operations over the case store, shared by the API, the CLI and the web workspace.

Every function takes the store and ``now`` from the caller and answers with
plain JSON-ready dicts in which personal data is masked (:func:`redact`).
Anything the caller did wrong raises :class:`OpsError` carrying a stable
``code``, an HTTP ``status`` and a Chinese message (texts in data/ops.yaml).
Every change is recorded in the case history with ``who`` (the token's name).
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import csv
import hashlib
import io
import json
import os
import re
import statistics
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Mapping, Optional

import yaml

from bot.cases_cli import redact

DATA_FILE = Path(__file__).parent / "data" / "ops.yaml"
MAX_DAYS = 100_000            # a filter/purge age beyond this is refused (datetime overflows past ~2.7M days)
MAX_PAGE = 500
DEFAULT_PAGE = 50
MAX_NOTE = 2000
MAX_FIELD = 200
MAX_MESSAGE = 3000
MAX_QUERY = 100
_SPLIT = re.compile("[,\uff0c\u3001]")  # a comma, a full-width comma or an enumeration comma
SUBMIT_STATUSES = ("submitted", "escalated")
MESSENGERS = ("telegram", "terminal", "web")
LOCAL_ZONE_NAME = "Asia/Shanghai"


def _local_zone():
    try:
        from zoneinfo import ZoneInfo
        return ZoneInfo(LOCAL_ZONE_NAME)
    except Exception:  # no tz database: China has had no DST since 1991
        return timezone(timedelta(hours=8), "CST")


LOCAL_ZONE = _local_zone()


class OpsError(Exception):
    """A request staff can correct: stable ``code``, HTTP ``status``, Chinese ``message``, extra ``details``."""

    def __init__(self, code: str, message: str, status: int = 400, **details: Any):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = details

    def as_json(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, **self.details}}


# --------------------------------------------------------------------------
# Texts and labels


@lru_cache(maxsize=1)
def texts() -> dict:
    with open(DATA_FILE, encoding="utf-8") as f:
        return yaml.safe_load(f)


def _sep() -> str:
    return texts()["separator"]


def _error_text(key: str, **values: Any) -> str:
    return texts()["errors"][key].format(**values).strip()


def _fail(code: str, status: int = 400, key: Optional[str] = None, details: Optional[dict] = None,
          **values: Any) -> OpsError:
    return OpsError(code, _error_text(key or code, **values), status, **(details or {}))


@dataclass
class _Ctx:
    """The lifecycle, the knowledge base and the lookups built from them."""
    lc: Any
    kb: Any
    platform_names: dict = field(default_factory=dict)   # lower name/alias/id -> platform id
    province_names: dict = field(default_factory=dict)   # name/alias/id -> province id
    spellings: dict = field(default_factory=dict)        # "platform"/"province" -> id -> [id, name, aliases]


@lru_cache(maxsize=1)
def _ctx() -> _Ctx:
    from dialogs.lifecycle import load_lifecycle
    from knowledge import knowledge

    kb = knowledge()
    ctx = _Ctx(load_lifecycle(), kb)
    for key, table, lookup in (("platform", kb.platforms, ctx.platform_names),
                               ("province", kb.provinces, ctx.province_names)):
        ctx.spellings[key] = {}
        for pid, p in table.items():
            names = [str(n).strip() for n in [pid, p.get("name")] + list(p.get("aliases") or []) if n]
            ctx.spellings[key][pid] = list(dict.fromkeys(names))
            for name in names:
                lookup.setdefault(name.lower(), pid)
    return ctx


def _values(raw: Any) -> list:
    """A stored field as a list of strings (platform/province may be a list)."""
    if raw is None or raw == "":
        return []
    if isinstance(raw, (list, tuple)):
        return [str(v) for v in raw if v not in (None, "")]
    return [str(raw)]


def platform_id(text: Any) -> Optional[str]:
    return _ctx().platform_names.get(str(text).strip().lower()) if text else None


def province_id(text: Any) -> Optional[str]:
    if not text:
        return None
    ctx = _ctx()
    found = ctx.province_names.get(str(text).strip().lower())
    if found:
        return found
    from knowledge.provinces import match_province
    return match_province(ctx.kb, str(text))


def platform_label(raw: Any) -> str:
    kb = _ctx().kb
    out = []
    for v in _values(raw):
        pid = platform_id(v)
        out.append(kb.platforms[pid]["name"] if pid else v)
    return _sep().join(dict.fromkeys(out))


def province_label(raw: Any) -> str:
    kb = _ctx().kb
    out = []
    for v in _values(raw):
        pid = _ctx().province_names.get(v.strip().lower())
        out.append(kb.provinces[pid]["name"] if pid else v)
    return _sep().join(dict.fromkeys(out))


def type_label(tid: Any) -> str:
    t = _ctx().kb.types.get(tid or "")
    return t["title"] if t else (str(tid) if tid else "")


def subtype_label(sid: Any) -> str:
    s = _ctx().kb.subtypes.get(sid or "")
    return s["title"] if s else (str(sid) if sid else "")


def status_label(status: Any) -> str:
    return _ctx().lc.label(status) if status else ""


def local_time(value: Any) -> str:
    """An ISO time as Beijing time, ``2026-11-05 16:00`` ("" if none or unreadable)."""
    dt = _parse_time(value)
    return dt.astimezone(LOCAL_ZONE).strftime("%Y-%m-%d %H:%M") if dt else ""


def _parse_time(value: Any) -> Optional[datetime]:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _iso(dt: datetime) -> str:
    from bot.store import to_iso
    return to_iso(dt)


def _one_line(value: Any) -> str:
    return " ".join(redact(value).split())


def enterprise_name(case: dict) -> str:
    ent = case.get("enterprise")
    if isinstance(ent, dict):
        ent = ent.get("name") or ent.get("title") or ""
    return _one_line(ent) if ent else ""


# --------------------------------------------------------------------------
# Filters


def parse_days(value: Any, code: str = "bad_days") -> int:
    """A whole number of days, 0..MAX_DAYS (OpsError otherwise, never OverflowError)."""
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        raise _fail(code, key="bad_days", value=_one_line(value)[:40], max=MAX_DAYS) from None
    if not 0 <= n <= MAX_DAYS:
        raise _fail(code, key="bad_days", value=_one_line(value)[:40], max=MAX_DAYS)
    return n


def _items(raw: Any) -> list[str]:
    """Filter values as typed: repeated, comma-separated (, or ,) or a list."""
    if raw is None:
        return []
    if isinstance(raw, (list, tuple)):
        parts = [p for r in raw for p in _items(r)]
    else:
        parts = [p.strip() for p in re.split(_SPLIT, str(raw))]
    return [p for p in parts if p]


def _bool(raw: Any) -> Optional[bool]:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        return raw
    s = str(raw).strip().lower()
    if s in ("1", "true", "yes", "y", "on") or s in texts()["filter_words"]["true"]:
        return True
    if s in ("0", "false", "no", "n", "off") or s in texts()["filter_words"]["false"]:
        return False
    raise _fail("bad_filter", key="bad_overdue", value=_one_line(raw)[:40])


def _type_id(text: str) -> Optional[str]:
    kb = _ctx().kb
    low = text.strip().lower()
    if low in kb.types:
        return low
    hits = [tid for tid, t in kb.types.items() if text == t["title"] or text in t["title"]]
    return hits[0] if len(hits) == 1 else None


def _subtype_id(text: str) -> Optional[str]:
    kb = _ctx().kb
    low = text.strip().lower()
    if low in kb.subtypes:
        return low
    hits = [sid for sid, s in kb.subtypes.items() if text == s["title"]]
    return hits[0] if len(hits) == 1 else None


def parse_filters(raw: Mapping[str, Any] | None, now: datetime) -> dict:
    """What staff typed (``status=已提交``, ``platform=小红书``, ``province=上海``, ``overdue=true``,
    ``messenger``, ``q``, ``older_than``/``newer_than`` days) as the filters :func:`select` applies.

    An unknown value raises OpsError ``bad_filter`` naming it (never an empty result)."""
    raw = raw or {}
    ctx = _ctx()
    lc, kb = ctx.lc, ctx.kb
    out: dict = {}
    statuses = []
    for s in _items(raw.get("status")):
        sid = lc.status_id(s)
        if sid is None:
            raise _fail("bad_filter", key="unknown_status", value=s,
                        choices=_sep().join(f"{k}({v.label})" for k, v in lc.statuses.items()))
        statuses.append(sid)
        statuses.extend(a for a, target in lc.aliases.items() if target == sid)
    if statuses:
        out["status"] = list(dict.fromkeys(statuses))
    types = []
    for t in _items(raw.get("type")):
        tid = _type_id(t)
        if tid is None:
            raise _fail("bad_filter", key="unknown_type", value=t,
                        choices=_sep().join(f"{k}({v['title']})" for k, v in kb.types.items()))
        types.append(tid)
    if types:
        out["type"] = types
    subtypes = []
    for t in _items(raw.get("subtype")):
        sid = _subtype_id(t)
        if sid is None:
            raise _fail("bad_filter", key="unknown_subtype", value=t)
        subtypes.append(sid)
    if subtypes:
        out["subtype"] = subtypes
    platforms: list = []
    for p in _items(raw.get("platform")):
        pid = platform_id(p)
        if pid is None:
            raise _fail("bad_filter", key="unknown_platform", value=p,
                        choices=_sep().join(v["name"] for v in kb.platforms.values()))
        platforms.append(pid)
    if platforms:
        out["platform"] = platforms
    provinces: list = []
    for p in _items(raw.get("province")):
        pid = province_id(p)
        if pid is None:
            raise _fail("bad_filter", key="unknown_province", value=p)
        provinces.append(pid)
    if provinces:
        out["province"] = provinces
    messengers = []
    for m in _items(raw.get("messenger")):
        if m.lower() not in MESSENGERS:
            raise _fail("bad_filter", key="unknown_messenger", value=m, choices=_sep().join(MESSENGERS))
        messengers.append(m.lower())
    if messengers:
        out["messenger"] = messengers
    overdue = _bool(raw.get("overdue")) if not isinstance(raw.get("overdue"), list) else \
        _bool((raw.get("overdue") or [None])[-1])
    if overdue is not None:
        out["overdue"] = overdue
    q = raw.get("q")
    if isinstance(q, list):
        q = q[-1] if q else None
    if q is not None and str(q).strip():
        q = str(q).strip()
        if len(q) > MAX_QUERY:
            raise _fail("bad_filter", key="bad_query", max=MAX_QUERY)
        out["q"] = q
    for key in ("older_than", "newer_than"):
        value = raw.get(key)
        if isinstance(value, list):
            value = value[-1] if value else None
        if value is not None and value != "":
            out[key] = _iso(now - timedelta(days=parse_days(value, "bad_filter")))
    return out


def _match_names(raw: Any, wanted: list, names: dict) -> bool:
    for v in _values(raw):
        if v in wanted or names.get(v.strip().lower()) in wanted:
            return True
    return False


def _name_has(case: dict, q: str) -> bool:
    """Does the enterprise name, as shown (masked), contain ``q``? Cheap test on the raw text first."""
    ent = case.get("enterprise")
    raw = (ent.get("name") or ent.get("title") or "") if isinstance(ent, dict) else ent
    if not raw or q not in " ".join(str(raw).lower().split()):
        return False
    return q in enterprise_name(case).lower()


def _matches(case: dict, f: dict, now: datetime, days: int) -> bool:
    ctx = _ctx()
    if "status" in f and (case.get("status") or "draft") not in f["status"]:
        return False
    if "type" in f and case.get("type") not in f["type"]:
        return False
    if "subtype" in f and case.get("subtype") not in f["subtype"]:
        return False
    if "platform" in f and not _match_names(case.get("platform"), f["platform"], ctx.platform_names):
        return False
    if "province" in f and not _match_names(case.get("province"), f["province"], ctx.province_names):
        return False
    if "messenger" in f and (case.get("owner") or {}).get("messenger") not in f["messenger"]:
        return False
    if "older_than" in f and not (case.get("created_at") or "") < f["older_than"]:
        return False
    if "newer_than" in f and not (case.get("created_at") or "") >= f["newer_than"]:
        return False
    if "overdue" in f and is_overdue(case, now, days) != f["overdue"]:
        return False
    if "q" in f:
        q = f["q"].lower()
        compact = re.sub(r"[\s_-]+", "", q)
        cid = str(case.get("id") or "").lower()
        if compact not in cid.replace("-", "") and not _name_has(case, q):
            return False
    return True


async def select(store, filters: dict, now: datetime, days: int) -> list[dict]:
    """Cases passing parsed ``filters``, oldest first (store order)."""
    kw: dict = {}
    if "status" in filters:
        kw["status"] = filters["status"]
    for key in ("type", "subtype"):
        if key in filters:
            kw[key] = filters[key]
    for key in ("platform", "province"):
        if key in filters:  # every spelling of these ids, so the store's index narrows the scan
            kw[key] = sorted({name for pid in filters[key] for name in _ctx().spellings[key][pid]})
    for key in ("older_than", "newer_than"):
        if key in filters:
            kw[key] = filters[key]
    cases = await store.list(**kw)
    if set(filters) <= set(kw) and getattr(store, "applies_filters", True):  # the store applied them all
        return cases
    return await _off_loop(len(cases), lambda: [c for c in cases if _matches(c, filters, now, days)])


OFF_LOOP_FROM = 2000  # cases; above this, pure work on the store's private copies runs in a thread


async def _off_loop(n: int, fn):
    """Run ``fn`` (pure work on private copies) in a thread when it is big, so the event loop keeps
    answering other users meanwhile."""
    return await asyncio.to_thread(fn) if n >= OFF_LOOP_FROM else fn()


# --------------------------------------------------------------------------
# Reading a case


def due_at(case: dict, days: int) -> Optional[str]:
    """When the case is next due for follow-up: its earliest reminder, else the
    last submission plus ``days`` (None when closed or not submitted)."""
    if (case.get("status") or "") == "closed":
        return None
    dues = [r.get("due") for r in case.get("reminders") or [] if isinstance(r, dict) and r.get("due")]
    if dues:
        return min(dues)
    if case.get("status") in SUBMIT_STATUSES:
        for e in reversed(case.get("history") or []):
            if isinstance(e, dict) and e.get("to") in SUBMIT_STATUSES:
                when = _parse_time(e.get("when"))
                return _iso(when + timedelta(days=days)) if when else None
    return None


def is_overdue(case: dict, now: datetime, days: int) -> bool:
    due = due_at(case, days)
    return bool(due) and due <= _iso(now)


def _age_days(case: dict, now: datetime) -> Optional[int]:
    created = _parse_time(case.get("created_at"))
    return max(0, (now - created).days) if created else None


def case_summary(case: dict, now: datetime, days: int) -> dict:
    """One row of the queue, personal data masked."""
    from dialogs.lifecycle import current_channel

    lc = _ctx().lc
    channel = current_channel(case)
    due = due_at(case, days)
    return {
        "id": case.get("id"),
        "status": lc.status_id(case.get("status") or "draft") or case.get("status"),
        "status_label": status_label(case.get("status") or "draft"),
        "type": case.get("type"),
        "type_label": type_label(case.get("type")),
        "subtype": case.get("subtype"),
        "subtype_label": subtype_label(case.get("subtype")),
        "platform": case.get("platform"),
        "platform_label": platform_label(case.get("platform")),
        "province": case.get("province"),
        "province_label": province_label(case.get("province")),
        "enterprise": enterprise_name(case),
        "messenger": (case.get("owner") or {}).get("messenger"),
        "channel": channel,
        "channel_label": lc.channel_label(channel) if channel else "",
        "created_at": case.get("created_at"),
        "updated_at": case.get("updated_at"),
        "closed_at": case.get("closed_at"),
        "age_days": _age_days(case, now),
        "due_at": due,
        "overdue": bool(due) and due <= _iso(now),
        "attachments": len([a for a in case.get("attachments") or [] if isinstance(a, dict)]),
        "satisfaction": _score(case),
    }


def _event_view(ev: dict) -> dict:
    lc = _ctx().lc
    out = {k: ev.get(k) for k in ("when", "who", "from", "to", "channel", "outcome", "reason", "kind")}
    out["from_label"] = lc.label(ev["from"]) if ev.get("from") else ""
    out["to_label"] = lc.label(ev["to"]) if ev.get("to") else ""
    out["channel_label"] = lc.channel_label(ev["channel"]) if ev.get("channel") else ""
    out["outcome_label"] = lc.outcomes.get(ev.get("outcome"), ev.get("outcome") or "")
    reason = ev.get("reason")
    out["reason_label"] = (lc.close_reasons.get(reason, reason) if ev.get("to") == "closed" else
                           _one_line(reason)) if reason else ""
    out["ref"] = _one_line(ev.get("ref")) if ev.get("ref") else None
    out["note"] = redact(ev.get("note")) if ev.get("note") else None
    if ev.get("message"):
        out["message"] = redact(ev["message"])
    return out


def attachment_view(a: dict, index: int) -> dict:
    return {"index": index, "name": _one_line(a.get("name") or "file"), "size": a.get("size"),
            "mime": a.get("mime"), "sha256": a.get("sha256"), "received_at": a.get("received_at"),
            "link": _one_line(a.get("link")) if a.get("link") else None, "stored": bool(a.get("path") or a.get("sha256"))}


def outbox_view(m: dict) -> dict:
    out = {k: m.get(k) for k in ("id", "kind", "status", "attempts", "created_at", "next_at", "sent_at",
                                 "last_error")}
    out["last_error"] = _one_line(m["last_error"]) if m.get("last_error") else None
    out["to"] = "owner" if m.get("owner") else "operators"
    if m.get("text"):
        out["text"] = redact(m["text"])
    return out


def _allowed(status: Any) -> list[dict]:
    lc = _ctx().lc
    try:
        return [{"to": to, "label": label} for to, label in zip(lc.allowed(status or "draft"),
                                                                 lc.allowed_labels(status or "draft"))]
    except ValueError:
        return []


def _score(case: dict) -> Optional[int]:
    sat = case.get("satisfaction")
    score = sat.get("score") if isinstance(sat, dict) else None
    return score if isinstance(score, int) and not isinstance(score, bool) and 1 <= score <= 5 else None


async def get_case(store, case_id: str) -> dict:
    case = await store.get(case_id) if isinstance(case_id, str) else None
    if case is None:
        raise _fail("not_found", 404, case_id=_one_line(case_id)[:40])
    return case


async def case_detail(store, case_id: str, *, now: datetime, days: int) -> dict:
    """The case (masked), its history, evidence files, outbox entries and what is possible next."""
    from dialogs.lifecycle import next_action, next_channel

    lc = _ctx().lc
    case = await get_case(store, case_id)
    view = case_summary(case, now, days)
    nxt = next_channel(case, lc)
    sat = case.get("satisfaction") if isinstance(case.get("satisfaction"), dict) else None
    view.update({
        "reporter_role": case.get("reporter_role"),
        "flags": list(case.get("flags") or []),
        "links": [_one_line(x) for x in case.get("links") or []],
        "description": redact(case.get("description")) if case.get("description") else "",
        "plan": [{"id": s.get("id"), "channel": s.get("channel"), "channel_label": lc.channel_label(s.get("channel")),
                  "kind": s.get("kind") or "do", "if": s.get("if")}
                 for s in case.get("plan") or [] if isinstance(s, dict)],
        "evidence": [{"id": e.get("id"), "title": _one_line(e.get("title") or e.get("id")),
                      "required": e.get("required", True), "provided": bool(e.get("provided"))}
                     for e in case.get("evidence") or [] if isinstance(e, dict)],
        "files": [attachment_view(a, i) for i, a in enumerate(case.get("attachments") or [])
                  if isinstance(a, dict)],
        "reminders": [{"kind": r.get("kind"), "due": r.get("due")} for r in case.get("reminders") or []
                      if isinstance(r, dict)],
        "next_channel": nxt.get("channel") if nxt and case.get("status") != "closed" else None,
        "next_channel_label": lc.channel_label(nxt["channel"]) if nxt and case.get("status") != "closed" else "",
        "next_action": next_action(case, lc) if lc.status_id(case.get("status") or "draft") else "",
        "allowed": _allowed(case.get("status")),
        "satisfaction_detail": {"score": _score(case), "comment": redact(sat.get("comment")) if sat.get("comment")
                                else None, "at": sat.get("at")} if sat else None,
        "history": [_event_view(e) for e in case.get("history") or [] if isinstance(e, dict)],
    })
    try:
        view["outbox"] = [outbox_view(m) for m in await store.outbox_list(case_id=case["id"])]
    except AttributeError:  # a store without an outbox
        view["outbox"] = []
    return view


#: Orders of the queue: a field, ``-`` in front for newest/latest first. Cases without a
#: follow-up date come after those with one.
SORTS = ("created", "-created", "updated", "-updated", "due", "-due")


def _sort_value(case: dict, field_: str, days: int) -> str:
    if field_ == "due":
        return due_at(case, days) or ""
    return case.get(f"{field_}_at") or ""


async def list_cases(store, filters: Mapping[str, Any] | None = None, *, now: datetime, days: int,
                     cursor: Optional[str] = None, limit: Optional[int] = DEFAULT_PAGE,
                     sort: str = "created") -> dict:
    """A page of case summaries in ``sort`` order (default oldest first):
    ``{"cases", "next_cursor", "total"}``.

    ``limit=None`` gives every match (the CLI); ``cursor`` is the previous page's
    ``next_cursor`` (for the same filters and sort)."""
    parsed = parse_filters(filters, now)
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise _fail("bad_filter", key="bad_limit", value=_one_line(limit)[:20], max=MAX_PAGE)
    sort = (sort or "created").strip()
    if sort not in SORTS:
        raise _fail("bad_filter", key="bad_sort", value=_one_line(sort)[:40], choices=_sep().join(SORTS))
    desc, field_ = sort.startswith("-"), sort.lstrip("-")
    after = _decode_cursor(cursor, sort) if cursor else None
    cases = await select(store, parsed, now, days)
    total = len(cases)

    def key(c: dict) -> tuple:
        value = _sort_value(c, field_, days)
        # (has no value, value, id): empty values last whichever the direction
        return (value == "") != desc, value, c.get("id") or ""

    cases.sort(key=key, reverse=desc)
    if after is not None:
        cases = [c for c in cases if (key(c) < after if desc else key(c) > after)]
    page = cases if limit is None else cases[:limit]
    more = limit is not None and len(cases) > limit
    return {"cases": [case_summary(c, now, days) for c in page], "total": total,
            "next_cursor": _encode_cursor(sort, key(page[-1])) if more and page else None}


def _encode_cursor(sort: str, key: tuple) -> str:
    raw = json.dumps([sort, *key], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: Any, sort: str) -> tuple:
    try:
        s = str(cursor)
        data = json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)).decode())
        if isinstance(data, list) and len(data) == 4 and data[0] == sort and isinstance(data[1], bool) \
                and all(isinstance(x, str) for x in data[2:]):
            return tuple(data[1:])
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        pass
    raise _fail("bad_cursor", key="bad_cursor")


# --------------------------------------------------------------------------
# Changing a case


def _text_field(body: Mapping, name: str, limit: int) -> Optional[str]:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _fail("bad_request", key="bad_field", field=name)
    value = value.strip()
    if len(value) > limit:
        raise _fail("bad_request", key="too_long", field=name, max=limit)
    return value or None


def _notify_text(case: dict, event: dict) -> str:
    from dialogs.lifecycle import next_action

    lc = _ctx().lc
    t = texts()["notify"]
    channel = lc.channel_label(event.get("channel")) if event.get("channel") else lc.reminder["unknown_channel"]
    what = texts()["status_words"].get(event["to"], "").format(channel=channel).strip()
    extra = ""
    if event.get("ref"):
        extra += t["extra_ref"].format(ref=event["ref"])
    if event.get("outcome"):
        extra += t["extra_outcome"].format(outcome=lc.outcomes.get(event["outcome"], event["outcome"]))
    if event.get("reason"):
        reason = lc.close_reasons.get(event["reason"], event["reason"]) if event["to"] == "closed" else event["reason"]
        extra += t["extra_reason"].format(reason=reason)
    return t["status"].format(case_id=case["id"], what=what, from_label=lc.label(event.get("from")),
                              to_label=lc.label(event["to"]), extra=extra,
                              next_action=next_action(case, lc)).strip()


async def _notify_owner(store, case: dict, kind: str, text: str, now: datetime) -> Optional[dict]:
    from bot.outbox import enqueue

    owner = case.get("owner")
    if not isinstance(owner, dict) or not owner.get("messenger") or owner.get("user_id") in (None, ""):
        return None
    return await enqueue(store, kind=kind, text=text, owner=owner, case_id=case["id"], now=now)


async def transition(store, case_id: str, to: Any, *, who: str, now: datetime, note: Optional[str] = None,
                     channel: Optional[str] = None, reference: Optional[str] = None,
                     outcome: Optional[str] = None, reason: Optional[str] = None,
                     days: Optional[int] = None) -> dict:
    """Change a case's status through the lifecycle, keep its reminder in step and
    notify the owner through the outbox. Refused: OpsError ``transition_refused``
    (409) with ``allowed`` (what is possible from here)."""
    from bot import reminders
    from bot.store import CaseNotFound
    from dialogs.lifecycle import TransitionRefused, next_action, record

    body = {"to": to, "note": note, "channel": channel, "reference": reference, "outcome": outcome,
            "reason": reason}
    to = _text_field(body, "to", MAX_FIELD)
    if to is None:
        raise _fail("bad_request", key="missing_to")
    note = _text_field(body, "note", MAX_NOTE)
    fields = {k: _text_field(body, k, MAX_FIELD) for k in ("channel", "reference", "outcome", "reason")}
    case = await get_case(store, case_id)
    days = days or default_days()
    async with store.chat_lock(f"case:{case['id']}"):  # two staff at once: one after the other
        case = await get_case(store, case["id"])
        try:
            updated = await record(store, case["id"], to, who=who, now=now, note=note, channel=fields["channel"],
                                   ref=fields["reference"], outcome=fields["outcome"], reason=fields["reason"])
        except TransitionRefused as e:
            raise OpsError("transition_refused", str(e), 409, status_now=case.get("status"),
                           allowed=_allowed(case.get("status"))) from None
        except CaseNotFound:
            raise _fail("not_found", 404, case_id=case["id"]) from None
        event = updated["history"][-1]
        rem = await reminders.after_transition(store, updated, now, days)
        msg = await _notify_owner(store, updated, "status", _notify_text(updated, event), now)
        from bot import satisfaction
        await satisfaction.ask_if_closed(store, updated, now)
    final = await get_case(store, updated["id"])
    return {"case": case_summary(final, now, days), "event": _event_view(event),
            "next_action": next_action(final, _ctx().lc),
            "reminder": rem.get("due") if rem else None, "notification": outbox_view(msg) if msg else None}


async def message_owner(store, case_id: str, text: Any, *, who: str, now: datetime) -> dict:
    """Queue a message from staff to the case's owner and record it in the history."""
    body = {"text": text}
    text = _text_field(body, "text", MAX_MESSAGE)
    if not text:
        raise _fail("bad_request", key="empty_message")
    case = await get_case(store, case_id)
    msg = await _notify_owner(store, case, "message",
                              texts()["notify"]["message"].format(case_id=case["id"], text=text).strip(), now)
    if msg is None:
        raise _fail("no_owner", 409, case_id=case["id"])
    event = {"when": _iso(now), "who": who, "kind": "message", "note": texts()["history"]["message_note"],
             "message": text, "outbox_id": msg["id"]}
    updated = await store.append_event(case["id"], event)
    return {"case_id": updated["id"], "event": _event_view(updated["history"][-1]), "notification": outbox_view(msg)}


def default_days() -> int:
    from bot.config import reminder_days
    return reminder_days()


async def purge(store, days: Any, *, now: datetime, dry_run: bool = False) -> dict:
    """Remove (or with ``dry_run`` only list) cases closed more than ``days`` days ago."""
    from bot.store import CLOSED, closed_time

    days = parse_days(days)
    cutoff = _iso(now - timedelta(days=days))
    old = [c for c in await store.list(status=CLOSED) if closed_time(c) < cutoff]
    rows = [{"id": c["id"], "closed_at": c.get("closed_at"), "type": c.get("type"),
             "platform_label": platform_label(c.get("platform"))} for c in old]
    if dry_run:
        return {"days": days, "cases": rows, "removed": []}
    removed = await store.purge(cutoff)
    return {"days": days, "cases": rows, "removed": list(removed)}


# --------------------------------------------------------------------------
# Statistics


def _counter_rows(counter: Counter, label, order: Optional[Iterable] = None) -> list[dict]:
    keys = list(order) if order is not None else [k for k, _ in counter.most_common()]
    return [{"key": k, "label": label(k), "count": counter[k]} for k in keys if counter[k]]


def _first(events: list, to: str, after: str = "") -> Optional[str]:
    for e in events:
        if e.get("to") == to and (e.get("when") or "") >= after:
            return e.get("when")
    return None


def days_to_action(case: dict) -> Optional[float]:
    """Days from the first submission to the first action taken after it (None if either is missing)."""
    events = [e for e in case.get("history") or [] if isinstance(e, dict)]
    sub = _first(events, "submitted")
    act = _first(events, "action_taken", sub or "") if sub else None
    a, b = _parse_time(sub), _parse_time(act)
    if not a or not b:
        return None
    return max(0.0, (b - a).total_seconds() / 86400)


def _month(value: Any) -> Optional[str]:
    dt = _parse_time(value)
    return dt.astimezone(LOCAL_ZONE).strftime("%Y-%m") if dt else None


def compute_stats(cases: list[dict], now: datetime, days: int) -> dict:
    """Counts by type, sub-type, platform, province, status and month; median days from
    submission to action; overdue count; satisfaction."""
    lc = _ctx().lc
    unknown = texts()["unknown"]
    by = {k: Counter() for k in ("status", "type", "subtype", "platform", "province", "month")}
    waits, scores, comments, overdue = [], Counter(), 0, 0
    for c in cases:
        by["status"][lc.status_id(c.get("status") or "draft") or str(c.get("status"))] += 1
        by["type"][c.get("type") or ""] += 1
        by["subtype"][c.get("subtype") or ""] += 1
        for key, names in (("platform", _ctx().platform_names), ("province", _ctx().province_names)):
            vals = _values(c.get(key)) or [""]
            for v in dict.fromkeys(names.get(v.strip().lower(), v) for v in vals):
                by[key][v] += 1
        by["month"][_month(c.get("created_at")) or ""] += 1
        d = days_to_action(c)
        if d is not None:
            waits.append(d)
        if is_overdue(c, now, days):
            overdue += 1
        score = _score(c)
        if score:
            scores[score] += 1
            if (c.get("satisfaction") or {}).get("comment"):
                comments += 1
    kb = _ctx().kb
    n_scores = sum(scores.values())
    return {
        "total": len(cases),
        "by_status": _counter_rows(by["status"], lambda k: status_label(k) or unknown,
                                   [s for s in lc.statuses] + [k for k in by["status"] if k not in lc.statuses]),
        "by_type": _counter_rows(by["type"], lambda k: type_label(k) or unknown),
        "by_subtype": _counter_rows(by["subtype"], lambda k: subtype_label(k) or unknown),
        "by_platform": _counter_rows(by["platform"], lambda k: kb.platforms[k]["name"] if k in kb.platforms
                                     else (k or unknown)),
        "by_province": _counter_rows(by["province"], lambda k: kb.provinces[k]["name"] if k in kb.provinces
                                     else (k or unknown)),
        "by_month": _counter_rows(by["month"], lambda k: k or unknown, sorted(by["month"])),
        "median_days_to_action": round(statistics.median(waits), 1) if waits else None,
        "actions_measured": len(waits),
        "overdue": overdue,
        "satisfaction": {"count": n_scores,
                         "average": round(sum(k * v for k, v in scores.items()) / n_scores, 2) if n_scores else None,
                         "scores": {str(k): scores[k] for k in range(1, 6)},
                         "comments": comments},
    }


async def stats(store, filters: Mapping[str, Any] | None = None, *, now: datetime, days: int) -> dict:
    cases = await select(store, parse_filters(filters, now), now, days)
    return await _off_loop(len(cases), lambda: compute_stats(cases, now, days))


# --------------------------------------------------------------------------
# CSV export


def export_rows(cases: list[dict], now: datetime, days: int) -> list[dict]:
    """One dict per case, keyed by the column ids of ops.yaml's export_columns, values as people read them."""
    from dialogs.lifecycle import current_channel

    lc = _ctx().lc
    t = texts()
    rows = []
    for c in cases:
        history = [e for e in c.get("history") or [] if isinstance(e, dict)]
        last = _event_view(history[-1]) if history else None
        channel = current_channel(c)
        due = due_at(c, days)
        rows.append({
            "id": c.get("id", ""),
            "status": status_label(c.get("status") or "draft"),
            "type": type_label(c.get("type")),
            "subtype": subtype_label(c.get("subtype")),
            "platform": platform_label(c.get("platform")),
            "province": province_label(c.get("province")),
            "enterprise": enterprise_name(c),
            "reporter_role": t["reporter_roles"].get(c.get("reporter_role"), c.get("reporter_role") or ""),
            "flags": "; ".join(str(f) for f in c.get("flags") or []),
            "links": " ".join(_one_line(x) for x in c.get("links") or []),
            "channel": lc.channel_label(channel) if channel else "",
            "messenger": (c.get("owner") or {}).get("messenger") or "",
            "created_at": local_time(c.get("created_at")),
            "updated_at": local_time(c.get("updated_at")),
            "closed_at": local_time(c.get("closed_at")),
            "due_at": local_time(due),
            "overdue": t["yes_no"]["yes" if due and due <= _iso(now) else "no"],
            "attachments": len([a for a in c.get("attachments") or [] if isinstance(a, dict)]),
            "satisfaction": _score(c) or "",
            "last_event": _event_line(last) if last else "",
        })
    return rows


def _event_line(ev: dict) -> str:
    parts = [local_time(ev.get("when")), ev.get("who") or ""]
    if ev.get("to"):
        parts.append(f"{ev['from_label']}→{ev['to_label']}")
    for key in ("channel_label", "ref", "outcome_label", "reason_label", "note"):
        if ev.get(key):
            parts.append(_one_line(ev[key]))
    return " ".join(p for p in parts if p)


def to_csv(rows: list[dict]) -> str:
    """CSV text with the BOM (Excel reads it as UTF-8) and Chinese column labels."""
    columns = texts()["export_columns"]
    buf = io.StringIO()
    buf.write("\ufeff")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(columns.values())
    for r in rows:
        w.writerow([r.get(k, "") for k in columns])
    return buf.getvalue()


async def export_csv(store, filters: Mapping[str, Any] | None = None, *, now: datetime, days: int) -> tuple[str, int]:
    """(CSV text starting with the BOM, number of cases)."""
    cases = await select(store, parse_filters(filters, now), now, days)
    return await _off_loop(len(cases), lambda: to_csv(export_rows(cases, now, days))), len(cases)


# --------------------------------------------------------------------------
# The evidence package


_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


def _safe_name(name: Any, index: int) -> str:
    base = _UNSAFE_NAME.sub("_", str(name or "file")).strip(" .") or "file"
    return f"{index + 1:02d}_{base[:100]}"


def _resolve(files_dir: Path, rel: Any, sha256: Any = None) -> Optional[Path]:
    """The attachment's file inside files_dir: its relative path, or where its sha256 names it
    (see bot.files); None for a path leading outside it."""
    if not isinstance(rel, str) or not rel:
        from bot import files
        try:
            return files.path_for(files_dir, sha256) if isinstance(sha256, str) else None
        except ValueError:
            return None
    root = Path(files_dir).resolve()
    path = (root / rel).resolve()
    try:
        path.relative_to(root)
    except ValueError:
        return None
    return path


def write_package(case: dict, files_dir: Path, now: datetime, out: BinaryIO) -> None:
    """Write the zip to ``out``: the report draft, every evidence file and a manifest
    (blocking: run it in a thread; files are streamed, never held in memory whole)."""
    from knowledge import knowledge
    from knowledge.drafting import draft_filename, draft_report

    t = texts()
    cols = t["package"]["manifest_columns"]
    folder = "evidence"
    draft_name = draft_filename(case)
    manifest_name = "manifest.csv"
    manifest = io.StringIO()
    manifest.write("\ufeff")
    w = csv.writer(manifest, lineterminator="\r\n")
    w.writerow(cols.values())
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(draft_name, draft_report(knowledge(), case).encode("utf-8"))
        for i, a in enumerate(case.get("attachments") or []):
            if not isinstance(a, dict):
                continue
            name = _safe_name(a.get("name"), i)
            path = _resolve(files_dir, a.get("path"), a.get("sha256"))
            note, sha, size = "", a.get("sha256") or "", a.get("size")
            if path is None or not path.is_file():
                note, stored = t["errors"]["missing_file"], ""
            else:
                digest = hashlib.sha256()
                with open(path, "rb") as f, z.open(f"{folder}/{name}", "w", force_zip64=True) as out:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        digest.update(block)
                        out.write(block)
                stored, size = f"{folder}/{name}", os.path.getsize(path)
                if sha and digest.hexdigest() != sha:
                    note = t["errors"]["changed_file"]
                sha = digest.hexdigest()
            row = {"file": stored, "name": a.get("name") or "", "size": size if size is not None else "",
                   "mime": a.get("mime") or "", "sha256": sha, "received_at": local_time(a.get("received_at")),
                   "link": a.get("link") or "", "note": note}
            w.writerow([row[k] for k in cols])
        z.writestr(manifest_name, manifest.getvalue().encode("utf-8"))
        z.writestr("README.txt", t["package"]["readme"].format(
            case_id=case.get("id"), generated_at=local_time(now), draft_name=draft_name,
            manifest_name=manifest_name, folder=folder).encode("utf-8"))


def package_filename(case: dict) -> str:
    safe = re.sub(r"[^A-Za-z0-9-]+", "-", str(case.get("id") or "")).strip("-")[:40]
    return f"huqi-evidence-{safe or 'case'}.zip"


async def package(store, case_id: str, *, files_dir: Path, now: datetime, out: BinaryIO) -> str:
    """Write the case's evidence package (a zip) to ``out``; returns its file name."""
    case = await get_case(store, case_id)
    await asyncio.to_thread(write_package, case, Path(files_dir), now, out)
    return package_filename(case)
