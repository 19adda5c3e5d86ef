"""The workspace's pages: sign-in, the queue, a case (with its two forms), statistics and downloads."""
from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
from datetime import datetime
from pathlib import Path
from typing import Optional
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiDict

from bot import ops
from bot.appkeys import CLOCK, SETTINGS, STORE
from bot.workspace import PREFIX, TEMPLATES, charts, message, tally, texts
from bot.workspace.cache import CACHE, Listed, minute
from bot.workspace.auth import (SESSIONS, Session, clear_cookie, client_address, csrf_ok, current,
                                set_cookie)

log = logging.getLogger("huqi.workspace")

PAGE = 50
MAX_FORM = 64 * 1024
FILTER_KEYS = ("status", "type", "platform", "province", "overdue", "q")


def render(request: web.Request, name: str, context: dict, status: int = 200) -> web.Response:
    return aiohttp_jinja2.render_template(name, request, context, status=status, app_key=TEMPLATES)


def _now(request: web.Request) -> datetime:
    return request.app[CLOCK]()


def _days(request: web.Request) -> int:
    return request.app[SETTINGS].reminder_days or ops.default_days()


def _to_login(request: web.Request, expired: bool = False) -> web.HTTPSeeOther:
    query = {"next": request.path_qs} if request.method == "GET" else {}
    if expired:
        query["expired"] = "1"
    return web.HTTPSeeOther(PREFIX + "/login" + ("?" + urlencode(query) if query else ""))


def signed_in(handler):
    """The page needs a live session (else to the sign-in page); the handler gets it."""
    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        session, expired = current(request)
        if session is None:
            raise _to_login(request, expired)
        return await handler(request, session)
    return wrapped


def changes(handler):
    """A POST that changes something: a live session, an operator's role and the session's CSRF token."""
    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        form = await _form(request)
        session, expired = current(request)
        if session is None:
            if expired:
                raise _to_login(request, expired)
            return _refuse(request, 403, message("csrf"))
        if not csrf_ok(session, form.get("csrf")):
            return _refuse(request, 403, message("csrf"))
        if not session.can_change:
            return _refuse(request, 403, message("viewer"))
        return await handler(request, session, form)
    return wrapped


async def _form(request: web.Request):
    """The posted form; an unreadable one (bad encoding, malformed) reads as empty."""
    if request.content_length is not None and request.content_length > MAX_FORM:
        raise web.HTTPRequestEntityTooLarge(MAX_FORM, request.content_length)
    try:
        return await request.post()
    except (UnicodeDecodeError, ValueError, AssertionError):
        return MultiDict()


def _refuse(request: web.Request, status: int, text: str) -> web.Response:
    from bot.workspace import error_page
    return error_page(request, status, text)


def _base(session: Optional[Session], **more) -> dict:
    return {"session": session, **more}


# --------------------------------------------------------------------------
# Sign-in and sign-out


def _safe_next(raw: object) -> str:
    s = str(raw or "")
    if s.startswith(PREFIX + "/") and not s.startswith("//") and "\\" not in s and "\n" not in s and "\r" not in s:
        return s
    return PREFIX + "/cases"


async def home(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther(PREFIX + "/cases")


async def login_form(request: web.Request) -> web.Response:
    session, expired = current(request)
    if session is not None:
        raise web.HTTPSeeOther(_safe_next(request.query.get("next")))
    note = message("expired") if expired or request.query.get("expired") else (
        message("signed_out") if request.query.get("bye") else None)
    return render(request, "login.html", _base(None, note=note, error=None, next=_safe_next(
        request.query.get("next")), enabled=request.app[SETTINGS].api_enabled))


async def login(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    form = await _form(request)
    nxt = _safe_next(form.get("next"))
    if not settings.api_enabled:
        return render(request, "login.html", _base(None, note=None, error=message("disabled"), next=nxt,
                                                   enabled=False), status=404)
    sessions = request.app[SESSIONS]
    raw = form.get("token")
    presented = raw.strip() if isinstance(raw, str) else ""
    token = settings.token_named(presented) if presented else None
    if token is None:
        await sessions.failed(client_address(request))
        error = message("wrong_token") if presented else message("empty_token")
        return render(request, "login.html", _base(None, note=None, error=error, next=nxt, enabled=True),
                      status=401)
    sessions.succeeded(client_address(request))
    log.info("workspace sign-in by %s (%s)", token.name, token.role)
    sessions.close(request.cookies.get("huqi_ops"))          # a fresh id on every sign-in
    session = sessions.open(token.name, token.role)
    resp = web.HTTPSeeOther(nxt)
    set_cookie(request, resp, session)
    raise resp


async def logout(request: web.Request) -> web.Response:
    """Sign out (any role; the CSRF token still needed, so no other site signs staff out)."""
    form = await _form(request)
    session, _ = current(request)
    if session is not None:
        if not csrf_ok(session, form.get("csrf")):
            return _refuse(request, 403, message("csrf"))
        request.app[SESSIONS].close(session.sid)
    resp = web.HTTPSeeOther(PREFIX + "/login?bye=1")
    clear_cookie(request, resp)
    raise resp


# --------------------------------------------------------------------------
# The queue


@functools.lru_cache(maxsize=1)
def choices() -> dict:
    """The filter forms' options: (id, label) pairs."""
    ctx = ops._ctx()
    lc, kb = ctx.lc, ctx.kb
    return {
        "status": [(k, v.label) for k, v in lc.statuses.items()],
        "type": [(k, v["title"]) for k, v in kb.types.items()],
        "platform": [(k, v["name"]) for k, v in kb.platforms.items()],
        "province": [(k, v["name"]) for k, v in kb.provinces.items()],
        "overdue": list(texts()["overdue_choices"].items()),
        "channel": list(lc.channels.items()),
        "outcome": list(lc.outcomes.items()),
    }


def _filter_values(request: web.Request) -> dict:
    return {k: request.query.get(k, "").strip()[:ops.MAX_QUERY + 1] for k in FILTER_KEYS}


def _sort_keys(now: datetime, days: int) -> dict:
    lc = ops._ctx().lc
    order = {s: i for i, s in enumerate(lc.statuses)}
    far = "9999"
    return {
        "due": lambda c: ops.due_at(c, days) or far,
        "age": lambda c: c.get("created_at") or "",
        "id": lambda c: c.get("id") or "",
        "status": lambda c: order.get(lc.status_id(c.get("status") or "draft") or "", 99),
        "type": lambda c: ops.type_label(c.get("type")),
        "platform": lambda c: ops.platform_label(c.get("platform")),
        "province": lambda c: ops.province_label(c.get("province")),
        "updated": lambda c: c.get("updated_at") or "",
    }


def _channels(case: dict) -> list[dict]:
    """Each channel's track as people read it."""
    from dialogs.lifecycle import tracks

    lc = ops._ctx().lc
    out = []
    for ch, t in sorted(tracks(case).items(), key=lambda kv: kv[1].get("order", 0)):
        out.append({"channel": ch, "channel_label": lc.channel_label(ch), "status": t.get("status"),
                    "status_label": lc.label(t.get("status")) if t.get("status") else "",
                    "ref": ops._one_line(t.get("ref")) if t.get("ref") else "",
                    "outcome_label": lc.outcomes.get(t.get("outcome"), t.get("outcome") or ""),
                    "updated_at": ops.local_time(t.get("updated_at"))})
    return out


def _query(values: dict, **change) -> str:
    merged = {k: v for k, v in {**values, **change}.items() if v not in (None, "")}
    return "?" + urlencode(merged) if merged else ""


async def _ordered(request: web.Request, parsed: dict, key, sort_id: tuple, desc: bool) -> list[dict]:
    """The matching cases in the asked order (kept until the store changes or the minute ends)."""
    now, days = _now(request), _days(request)
    cache = request.app[CACHE]
    everything, gen = await cache.cases(request.app[STORE])

    async def compute() -> list[dict]:
        found = await ops.select(Listed(everything), parsed, now, days) if parsed else everything
        if sort_id[0] == "due":           # the follow-up dates are kept per case
            rows = await cache.rows(found, days)
            order = await asyncio.to_thread(sorted, range(len(found)), key=lambda i: rows[i].due or "9999",
                                            reverse=desc)
            return [found[i] for i in order]
        return await asyncio.to_thread(sorted, found, key=key, reverse=desc)
    return await cache.remembered("queue", gen, (json.dumps(parsed, sort_keys=True), sort_id, minute(now)),
                                  compute)


@signed_in
async def queue(request: web.Request, session: Session) -> web.Response:
    now, days = _now(request), _days(request)
    values = _filter_values(request)
    sort = request.query.get("sort", "due")
    desc = sort.startswith("-")
    keys = _sort_keys(now, days)
    if sort.lstrip("-") not in keys:
        sort, desc = "due", False
    try:
        page = max(1, int(request.query.get("page", "1")))
    except ValueError:
        page = 1
    error, cases = None, []
    try:
        parsed = ops.parse_filters({k: v for k, v in values.items() if v}, now)
    except ops.OpsError as e:
        error = e.message
    else:
        cases = await _ordered(request, parsed, keys[sort.lstrip("-")], (sort.lstrip("-"), desc), desc)
    pages = max(1, math.ceil(len(cases) / PAGE))
    page = min(page, pages)
    rows = []
    for c in cases[(page - 1) * PAGE: page * PAGE]:
        row = ops.case_summary(c, now, days)
        row["tracks"] = _channels(c)
        row["due_local"] = ops.local_time(row["due_at"])
        rows.append(row)
    base = {**values, "sort": ("-" if desc else "") + sort.lstrip("-")}
    sort_links = {k: _query(base, sort=("-" + k if sort.lstrip("-") == k and not desc else k), page=None)
                  for k in keys}
    return render(request, "cases.html", _base(
        session, active="cases", rows=rows, total=len(cases), page=page, pages=pages, values=values, choices=choices(),
        error=error, sort=sort.lstrip("-"), desc=desc, sort_links=sort_links,
        prev_link=_query(base, page=page - 1) if page > 1 else None,
        next_link=_query(base, page=page + 1) if page < pages else None,
        export_link=PREFIX + "/export.csv" + _query(values)), status=400 if error else 200)


# --------------------------------------------------------------------------
# A case


def _option_value(p: dict) -> str:
    value = p["to"]
    if p.get("channel"):
        value += "@" + p["channel"]
    if p.get("reason"):
        value += "#" + p["reason"]
    return value


def _draft(case: dict) -> str:
    from knowledge import knowledge
    from knowledge.drafting import draft_report
    try:
        return ops.redact(draft_report(knowledge(), case))   # masked like the rest of the page
    except Exception:   # a case too incomplete for a draft still shows its page
        return ""


async def _case_context(request: web.Request, session: Session) -> dict:
    from dialogs.lifecycle import possible_transitions

    store, now, days = request.app[STORE], _now(request), _days(request)
    number = request.match_info["number"]
    detail = await ops.case_detail(store, number, now=now, days=days)
    raw = await ops.get_case(store, number)
    options = [{"value": _option_value(p), "label": p["label"]} for p in possible_transitions(raw, ops._ctx().lc)]
    for ev in detail["history"]:
        ev["when_local"] = ops.local_time(ev.get("when"))
    for m in detail["outbox"]:
        m["created_local"] = ops.local_time(m.get("created_at"))
        m["sent_local"] = ops.local_time(m.get("sent_at"))
    return _base(session, active="cases", case=detail, tracks=_channels(raw), options=options, draft=_draft(raw),
                 choices=choices(), due_local=ops.local_time(detail["due_at"]), done=None, error=None,
                 form={}, msg_form={})


@signed_in
async def case_page(request: web.Request, session: Session) -> web.Response:
    ctx = await _case_context(request, session)
    done = request.query.get("done")
    if done in ("status", "status_no_owner", "message"):
        ctx["done"] = message("done_" + done)
    return render(request, "case.html", ctx)


def _field(form, name: str) -> Optional[str]:
    value = form.get(name)
    return value if isinstance(value, str) else None


async def _wake_sender(request: web.Request) -> None:
    from bot.server import SENDER
    sender = request.app.get(SENDER)
    if sender is not None:
        sender.wake()


@changes
async def change_status(request: web.Request, session: Session, form) -> web.Response:
    from dialogs.lifecycle import possible_transitions

    store, now, days = request.app[STORE], _now(request), _days(request)
    number = request.match_info["number"]
    raw = await ops.get_case(store, number)
    chosen = _field(form, "to") or ""
    option = next((p for p in possible_transitions(raw, ops._ctx().lc) if _option_value(p) == chosen), None)
    typed = {k: _field(form, k) or "" for k in ("to", "note", "channel", "reference", "outcome")}
    error, status = None, 409
    if option is None:
        error = message("not_possible")
    else:
        try:
            result = await ops.transition(store, raw["id"], option["to"], who=session.name, now=now, days=days,
                                          note=typed["note"] or None,
                                          channel=option.get("channel") or typed["channel"] or None,
                                          reference=typed["reference"] or None,
                                          outcome=typed["outcome"] or None, reason=option.get("reason"))
        except ops.OpsError as e:
            error, status = e.message, e.status
    if error is not None:
        ctx = await _case_context(request, session)
        ctx.update(error=error, form=typed)
        return render(request, "case.html", ctx, status=status)
    await _wake_sender(request)
    done = "status" if result.get("notification") else "status_no_owner"
    raise web.HTTPSeeOther(f"{PREFIX}/cases/{raw['id']}?done={done}#timeline")


@changes
async def send_message(request: web.Request, session: Session, form) -> web.Response:
    store, now = request.app[STORE], _now(request)
    number = request.match_info["number"]
    text = _field(form, "text") or ""
    try:
        result = await ops.message_owner(store, number, text, who=session.name, now=now)
    except ops.OpsError as e:
        if e.status == 404:
            raise
        ctx = await _case_context(request, session)
        ctx.update(error=e.message, msg_form={"text": text})
        return render(request, "case.html", ctx, status=e.status)
    await _wake_sender(request)
    raise web.HTTPSeeOther(f"{PREFIX}/cases/{result['case_id']}?done=message#outbox")


@signed_in
async def export_csv(request: web.Request, session: Session) -> web.Response:
    """The queue's matching cases as the API's CSV export (same columns, same filters)."""
    now, days = _now(request), _days(request)
    values = _filter_values(request)
    text, _ = await ops.export_csv(request.app[STORE], {k: v for k, v in values.items() if v}, now=now, days=days)
    name = f"huqi-cases-{now.astimezone(ops.LOCAL_ZONE):%Y%m%d}.csv"
    return web.Response(body=text.encode("utf-8"), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


@signed_in
async def evidence_file(request: web.Request, session: Session) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    case = await ops.get_case(request.app[STORE], request.match_info["number"])
    index = int(request.match_info["index"])
    items = case.get("attachments") or []
    a = items[index] if index < len(items) and isinstance(items[index], dict) else None
    path = ops._resolve(settings.files_dir, a.get("path"), a.get("sha256")) if a else None
    if path is None or not await asyncio.to_thread(Path(path).is_file):
        return _refuse(request, 404, message("no_file"))
    name = ops._safe_name(a.get("name"), index)
    ascii_name = name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    from urllib.parse import quote
    return web.FileResponse(path, headers={
        "Content-Type": "application/octet-stream",
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"})


@signed_in
async def evidence_package(request: web.Request, session: Session) -> web.StreamResponse:
    from bot import api
    return await api.get_package(request, None)


# --------------------------------------------------------------------------
# Statistics


async def _stats(request: web.Request) -> tuple[dict, dict, list, Optional[str]]:
    now, days = _now(request), _days(request)
    values = _filter_values(request)
    try:
        parsed = ops.parse_filters({k: v for k, v in values.items() if v}, now)
    except ops.OpsError as e:
        parsed, error = None, e.message
    else:
        error = None
    if parsed is None:
        st = tally.stats([], now, days)
        return values, st, _charts(tally.month_type([]), st), error
    cache = request.app[CACHE]
    everything, gen = await cache.cases(request.app[STORE])

    async def compute() -> tuple:
        if not parsed and gen is not None:           # every case: the running totals
            st, pairs = await cache.overall(days, now)
        else:
            cases = await ops.select(Listed(everything), parsed, now, days) if parsed else everything
            rows = await cache.rows(cases, days)
            st, pairs = await asyncio.to_thread(lambda: (tally.stats(rows, now, days), tally.month_type(rows)))
        return st, _charts(pairs, st)
    st, built = await cache.remembered("stats", gen, (json.dumps(parsed, sort_keys=True), minute(now)), compute)
    return values, st, built, error


def _charts(pairs, st: dict) -> list:
    t = texts()
    return charts.build(pairs, st, t["charts"], t["chart_columns"])


@signed_in
async def stats_page(request: web.Request, session: Session) -> web.Response:
    values, st, built, error = await _stats(request)
    return render(request, "stats.html", _base(session, active="stats", stats=st, charts=built, values=values, choices=choices(),
                                               query=_query(values), error=error),
                  status=400 if error else 200)


@signed_in
async def invite_page(request: web.Request, session: Session) -> web.Response:
    """The web chat's QR code and short link, to print or post in a WeChat group."""
    from bot.webchat import chat_link
    return render(request, "invite.html", _base(session, active="invite", link=chat_link(request)))


@signed_in
async def stats_csv(request: web.Request, session: Session) -> web.Response:
    values, st, built, error = await _stats(request)
    chart = charts.find(built, request.match_info["chart"])
    if chart is None or error:
        return _refuse(request, 404 if chart is None else 400, error or message("not_found"))
    now = _now(request)
    name = f"huqi-{chart['id'].replace('_', '-')}-{now.astimezone(ops.LOCAL_ZONE):%Y%m%d}.csv"
    return web.Response(body=charts.to_csv(chart).encode("utf-8"), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
