"""``huqi cases``: operator tools for the case store.

    huqi cases list [--status S] [--type T] [--platform P] [--province P]
                    [--older-than DAYS] [--newer-than DAYS]
    huqi cases show ID
    huqi cases set-status ID STATUS [--note ..] [--channel ..] [--ref ..]
                                    [--outcome ..] [--reason ..]
    huqi cases export [--out FILE] [filters as for list]
    huqi cases purge [--days N] [--dry-run]

The data directory is ``HUQI_DATA_DIR`` (default ./data).  The store allows
one process at a time, so stop the bot before running these.

Exit codes: 0 done; 2 bad arguments, unknown case or refused status change
(a message says why); 3 the case store cannot be opened (in use, damaged).

Privacy: case contents are shown to operators, but contact details are not:
phone numbers, ID-card numbers and e-mail addresses in free text are masked,
the owner's messenger account id is not printed, evidence and attachments
appear by title/name only.
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import re
import sys
import unicodedata
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Optional

__all__ = ["register", "redact", "utcnow", "EXPORT_COLUMNS"]

EXPORT_COLUMNS = ["id", "status", "created_at", "updated_at", "enterprise", "type", "subtype",
                  "platform", "province", "flags", "links", "channel", "last_event"]
DEFAULT_PURGE_DAYS = 180
EXIT_USAGE = 2
EXIT_STORE = 3
WHO = "operator"


def utcnow() -> datetime:
    """The CLI's clock (tests replace it)."""
    return datetime.now(timezone.utc)


# --------------------------------------------------------------------------
# Redaction and formatting

_MOBILE = re.compile(r"(?<![\d])(?:\+?86[-\s]?)?(1[3-9]\d)[-\s]?(\d{4})[-\s]?(\d{4})(?!\d)")
_LANDLINE = re.compile(r"(?<![\d])(0\d{2,3})[-\s](\d{3,4})(\d{4})(?!\d)")
_ID_CARD = re.compile(r"(?<![\dA-Za-z])(\d{6})\d{8}(\d{3}[\dXx])(?![\dA-Za-z])")
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")


def redact(text: Any) -> str:
    """Mask phone numbers, ID-card numbers and e-mail addresses in free text."""
    if text is None:
        return ""
    s = str(text)
    s = _ID_CARD.sub(lambda m: f"{m.group(1)}{'*' * 11}{m.group(2)[-1]}", s)
    s = _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", s)
    s = _LANDLINE.sub(lambda m: f"{m.group(1)}-****{m.group(3)}", s)
    s = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", s)
    return s


def _width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def _fit(s: str, width: int) -> str:
    """Cut ``s`` to ``width`` display columns (CJK count 2), with an ellipsis."""
    if _width(s) <= width:
        return s
    out, w = [], 0
    for c in s:
        cw = _width(c)
        if w + cw > width - 1:
            break
        out.append(c)
        w += cw
    return "".join(out) + "…"


def _pad(s: str, width: int) -> str:
    return s + " " * max(0, width - _width(s))


def _one_line(value: Any) -> str:
    return " ".join(redact(value).split())


def _enterprise(case: dict) -> str:
    ent = case.get("enterprise")
    if isinstance(ent, dict):
        ent = ent.get("name") or ent.get("title") or ""
    return _one_line(ent) if ent else ""


def _join(value: Any, sep: str = ", ") -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return sep.join(str(v) for v in value if v is not None and v != "")
    return str(value)


def _parse_time(value: Any) -> Optional[datetime]:
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _age_days(case: dict, now: datetime) -> str:
    created = _parse_time(case.get("created_at"))
    return str(max(0, (now - created).days)) if created else "?"


def _short_time(value: Any) -> str:
    dt = _parse_time(value)
    return dt.strftime("%Y-%m-%d %H:%M UTC") if dt else (str(value) if value else "")


def _event_line(ev: dict, lc) -> str:
    parts = [_short_time(ev.get("when"))]
    if ev.get("who"):
        parts.append(f"[{ev['who']}]")
    if ev.get("to"):
        frm = ev.get("from")
        parts.append(f"{lc.label(frm) if frm else '?'} → {lc.label(ev['to'])}")
    if ev.get("channel"):
        parts.append(f"渠道 channel: {lc.channel_label(ev['channel'])}")
    if ev.get("ref"):
        parts.append(f"编号 ref: {_one_line(ev['ref'])}")
    if ev.get("outcome"):
        parts.append(f"结果 outcome: {lc.outcomes.get(ev['outcome'], ev['outcome'])}")
    if ev.get("reason"):
        reason = lc.close_reasons.get(ev["reason"], ev["reason"]) if ev.get("to") == "closed" else ev["reason"]
        parts.append(f"原因 reason: {_one_line(reason)}")
    if ev.get("note"):
        parts.append(f"备注 note: {_one_line(ev['note'])}")
    return "  ".join(parts)


# --------------------------------------------------------------------------
# Arguments


def _days_arg(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"天数应为整数 / days must be a whole number: {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"天数不能为负 / days cannot be negative: {n}")
    return n


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--status", action="append", metavar="STATUS",
                   help="status id or Chinese label (repeatable, or comma-separated)")
    p.add_argument("--type", help="type id, e.g. rumor")
    p.add_argument("--platform", help="platform id or name as stored")
    p.add_argument("--province", help="province as stored")
    p.add_argument("--older-than", type=_days_arg, metavar="DAYS", help="created more than DAYS days ago")
    p.add_argument("--newer-than", type=_days_arg, metavar="DAYS", help="created within the last DAYS days")


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``huqi cases ...`` to the ``huqi`` command's subparsers."""
    cases = subparsers.add_parser(
        "cases", help="operator tools: list, show, set-status, export, purge cases",
        description="案件运维工具 / operator tools for the case store (HUQI_DATA_DIR). "
                    "Stop the bot first: the store allows one process at a time.")
    sub = cases.add_subparsers(dest="cases_command", metavar="{list,show,set-status,export,purge}")

    p = sub.add_parser("list", help="list cases as a table")
    _add_filters(p)
    p.set_defaults(func=_command(_list))

    p = sub.add_parser("show", help="one case with its history")
    p.add_argument("case_id", metavar="ID")
    p.set_defaults(func=_command(_show))

    p = sub.add_parser("set-status", help="change a case's status (checked against the lifecycle)")
    p.add_argument("case_id", metavar="ID")
    p.add_argument("status", metavar="STATUS", help="status id or Chinese label, e.g. accepted / 已受理")
    p.add_argument("--note", help="free-text note for the history")
    p.add_argument("--channel", help="platform|province|central|police|court (for submitted/escalated)")
    p.add_argument("--ref", help="reference number given by the channel")
    p.add_argument("--outcome", help="deleted|made_private|dispute_label|account_measures|clarification")
    p.add_argument("--reason", help="why rejected; for closed: resolved|withdrawn")
    p.set_defaults(func=_command(_set_status))

    p = sub.add_parser("export", help="CSV (UTF-8 with BOM, opens in Excel) of the cases")
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of standard output")
    _add_filters(p)
    p.set_defaults(func=_command(_export))

    p = sub.add_parser("purge", help=f"delete cases closed more than N days ago (default {DEFAULT_PURGE_DAYS})")
    p.add_argument("--days", type=_days_arg, default=DEFAULT_PURGE_DAYS, metavar="N")
    p.add_argument("--dry-run", action="store_true", help="only show what would be removed")
    p.set_defaults(func=_command(_purge))

    def usage(args) -> int:
        cases.print_usage(sys.stderr)
        return EXIT_USAGE

    cases.set_defaults(func=usage)
    return cases


# --------------------------------------------------------------------------
# Running a command against the store


class _Refused(Exception):
    """A message for the operator; exit 2."""


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def _command(fn: Callable) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return asyncio.run(_with_store(fn, args))
        except _Refused as e:
            _err(str(e))
            return EXIT_USAGE
    return run


async def _with_store(fn: Callable, args: argparse.Namespace) -> int:
    from bot.config import data_dir
    from bot.store import StoreError, StoreLocked, open_store

    directory = Path(data_dir())
    if not directory.exists():
        # Nothing stored yet: answer from an empty store, create nothing.
        store = open_store(None, backend="memory", clock=utcnow)
    else:
        try:
            store = open_store(str(directory), clock=utcnow)
        except StoreLocked as e:
            pid = f"pid {e.pid}" if e.pid else "pid ?"
            _err(f"案件库正被另一个 huqi 进程使用({pid}),请先停止机器人再运行。\n"
                 f"The case store {directory} is in use by another huqi process ({pid}); stop the bot first.")
            return EXIT_STORE
        except (StoreError, OSError) as e:
            _err(f"无法打开案件库 / cannot open the case store {directory}: {e}")
            return EXIT_STORE
    try:
        return await fn(store, args)
    except (StoreError, OSError) as e:
        _err(f"案件库出错 / case store error in {directory}: {e}")
        return EXIT_STORE
    finally:
        try:
            await store.close()
        except (StoreError, OSError) as e:  # the change itself is already durable
            _err(f"关闭案件库时出错 / error closing the case store: {e}")


def _filters(args: argparse.Namespace, lc, now: datetime) -> dict:
    kw: dict = {}
    if args.status:
        wanted = []
        for item in args.status:
            for s in item.split(","):
                if not s.strip():
                    continue
                sid = lc.status_id(s)
                if sid is None:
                    raise _Refused(lc.message("unknown_status", status=s.strip(),
                                              statuses=", ".join(f"{k}({v.label})" for k, v in lc.statuses.items())))
                wanted.append(sid)
                wanted.extend(a for a, target in lc.aliases.items() if target == sid)
        kw["status"] = list(dict.fromkeys(wanted))
    for key in ("type", "platform", "province"):
        value = getattr(args, key)
        if value is not None:
            kw[key] = value.strip()
    if args.older_than is not None:
        kw["older_than"] = now - timedelta(days=args.older_than)
    if args.newer_than is not None:
        kw["newer_than"] = now - timedelta(days=args.newer_than)
    return kw


async def _get(store, case_id: str) -> dict:
    case = await store.get(case_id)
    if case is None:
        raise _Refused(f"没有这个案件 / no such case: {case_id}")
    return case


# -- list -------------------------------------------------------------------


async def _list(store, args) -> int:
    from dialogs.lifecycle import load_lifecycle

    lc = load_lifecycle()
    now = utcnow()
    cases = await store.list(**_filters(args, lc, now))
    if not cases:
        print("没有符合条件的案件 / no cases match")
        return 0
    header = ["ID", "状态 status", "类型 type", "平台 platform", "省份 province", "天 age", "企业 enterprise"]
    rows = []
    for c in cases:
        status = c.get("status") or ""
        sid = lc.status_id(status)
        rows.append([
            str(c.get("id", "")),
            f"{status} {lc.statuses[sid].label}" if sid else status,
            _fit(str(c.get("type") or "-"), 24),
            _fit(_join(c.get("platform")) or "-", 16),
            _fit(_join(c.get("province")) or "-", 10),
            _age_days(c, now),
            _fit(_enterprise(c) or "-", 24),
        ])
    widths = [max(_width(r[i]) for r in rows + [header]) for i in range(len(header))]
    for r in [header] + rows:
        print("  ".join(_pad(cell, w) for cell, w in zip(r, widths)).rstrip())
    print(f"共 {len(cases)} 个案件 / {len(cases)} case(s)")
    return 0


# -- show -------------------------------------------------------------------


async def _show(store, args) -> int:
    from dialogs.lifecycle import current_channel, load_lifecycle, next_action, next_channel

    lc = load_lifecycle()
    case = await _get(store, args.case_id)
    now = utcnow()
    status = case.get("status") or ""
    sid = lc.status_id(status)
    out = []

    def line(label: str, value: Any) -> None:
        if value not in (None, "", []):
            out.append(f"{label}: {value}")

    out.append(f"案件 Case {case.get('id')}")
    if sid:
        line("状态 Status", f"{lc.statuses[sid].label} ({status}) — {lc.statuses[sid].meaning}")
    else:
        line("状态 Status", status)
    line("建立 Created", f"{_short_time(case.get('created_at'))} ({_age_days(case, now)} 天前 days ago)")
    line("更新 Updated", _short_time(case.get("updated_at")))
    line("结案 Closed", _short_time(case.get("closed_at")))
    owner = case.get("owner") or {}
    line("来源 Via", owner.get("messenger"))
    line("企业 Enterprise", _enterprise(case))
    role = case.get("reporter_role")
    line("举报人 Reporter", {"self": "企业本身 self", "agent": "代理人 agent"}.get(role, role))
    line("类型 Type", " / ".join(str(x) for x in (case.get("type"), case.get("subtype")) if x))
    line("情形 Flags", _join(case.get("flags")))
    line("平台 Platform", _join(case.get("platform")))
    line("省份 Province", _join(case.get("province")))
    line("当前渠道 Channel", lc.channel_label(current_channel(case)) if current_channel(case) else "")
    links = case.get("links") or []
    if links:
        out.append("链接 Links:")
        out.extend(f"  - {link}" for link in links)
    if case.get("description"):
        out.append("描述 Description:")
        out.extend(f"  {ln}" for ln in redact(case["description"]).splitlines() if ln.strip())
    plan = [s for s in case.get("plan") or [] if isinstance(s, dict)]
    if plan:
        out.append("渠道方案 Plan:")
        for n, s in enumerate(plan, 1):
            extra = []
            if s.get("kind") and s.get("kind") != "do":
                extra.append(str(s["kind"]))
            if s.get("if"):
                extra.append(f"if {s['if']}")
            tail = f" ({', '.join(extra)})" if extra else ""
            out.append(f"  {n}. {lc.channel_label(s.get('channel'))} [{s.get('id')}]{tail}")
    evidence = [e for e in case.get("evidence") or [] if isinstance(e, dict)]
    if evidence:
        have = sum(1 for e in evidence if e.get("provided"))
        out.append(f"材料 Evidence ({have}/{len(evidence)} provided):")
        for e in evidence:
            mark = "✓" if e.get("provided") else ("✗" if e.get("required", True) else "·")
            opt = "" if e.get("required", True) else " (可选 optional)"
            out.append(f"  {mark} {_one_line(e.get('title') or e.get('id'))}{opt}")
    attachments = [a for a in case.get("attachments") or [] if isinstance(a, dict)]
    if attachments:
        out.append(f"附件 Attachments: {len(attachments)}")
        out.extend(f"  - {_one_line(a.get('name') or 'file')}" for a in attachments)
    for r in case.get("reminders") or []:
        line("提醒 Reminder", f"{r.get('kind')} {_short_time(r.get('due'))}")
    if sid:
        nxt = next_channel(case, lc)
        line("下一个渠道 Next channel", lc.channel_label(nxt["channel"]) if nxt and sid != "closed" else "")
        line("下一步 Next", next_action(case, lc))
        line("可改为 Allowed", "、".join(f"{lab} ({to})" for lab, to in zip(lc.allowed_labels(sid), lc.allowed(sid))))
    history = [e for e in case.get("history") or [] if isinstance(e, dict)]
    out.append(f"历史 History ({len(history)}):")
    out.extend(f"  {_event_line(e, lc)}" for e in history)
    print("\n".join(out))
    return 0


# -- set-status -------------------------------------------------------------


async def _set_status(store, args) -> int:
    from bot.config import reminder_days
    from bot.reminders import after_transition
    from dialogs.lifecycle import TransitionRefused, load_lifecycle, next_action, transition

    lc = load_lifecycle()
    case = await _get(store, args.case_id)
    now = utcnow()
    try:
        event = transition(case, args.status, who=WHO, channel=args.channel, ref=args.ref,
                           outcome=args.outcome, reason=args.reason, note=args.note, now=now, lifecycle=lc)
    except TransitionRefused as e:
        raise _Refused(f"{case['id']}: {e}") from None
    case = await store.append_event(case["id"], event)
    rem = await after_transition(store, case, now, reminder_days())
    msg = f"{case['id']}: {lc.label(event['from'])} → {lc.label(event['to'])}"
    if event.get("channel"):
        msg += f"  ({lc.channel_label(event['channel'])})"
    print(msg)
    if rem:
        print(f"提醒 reminder: {_short_time(rem['due'])}")
    print(f"下一步 next: {next_action(case, lc)}")
    return 0


# -- export -----------------------------------------------------------------


def _export_row(case: dict, lc) -> dict:
    from dialogs.lifecycle import current_channel

    history = [e for e in case.get("history") or [] if isinstance(e, dict)]
    return {
        "id": case.get("id", ""),
        "status": case.get("status", ""),
        "created_at": case.get("created_at", ""),
        "updated_at": case.get("updated_at", ""),
        "enterprise": _enterprise(case),
        "type": case.get("type") or "",
        "subtype": case.get("subtype") or "",
        "platform": _join(case.get("platform"), "; "),
        "province": _join(case.get("province"), "; "),
        "flags": _join(case.get("flags"), "; "),
        "links": _join(case.get("links"), " "),
        "channel": current_channel(case) or "",
        "last_event": _event_line(history[-1], lc) if history else "",
    }


async def _export(store, args) -> int:
    from dialogs.lifecycle import load_lifecycle

    lc = load_lifecycle()
    cases = await store.list(**_filters(args, lc, utcnow()))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=EXPORT_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for c in cases:
        writer.writerow(_export_row(c, lc))
    data = buf.getvalue()
    if args.out:
        path = Path(args.out)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with open(fd, "w", encoding="utf-8-sig", newline="") as f:
                f.write(data)
        except OSError as e:
            raise _Refused(f"无法写入 / cannot write {path}: {e.strerror or e}") from None
        print(f"已导出 {len(cases)} 个案件 / exported {len(cases)} case(s) to {path}", file=sys.stderr)
    else:
        sys.stdout.write("\ufeff" + data)
        sys.stdout.flush()
    return 0


# -- purge ------------------------------------------------------------------


async def _purge(store, args) -> int:
    from bot.store import CLOSED, to_iso

    now = utcnow()
    cutoff = now - timedelta(days=args.days)
    cutoff_iso = to_iso(cutoff)
    closed = await store.list(status=CLOSED)
    old = [c for c in closed if (c.get("closed_at") or c.get("updated_at") or "") < cutoff_iso]
    verb = "将删除 would remove" if args.dry_run else "删除 removing"
    for c in old:
        print(f"{verb} {c['id']}  结案 closed {_short_time(c.get('closed_at'))}  "
              f"{c.get('type') or '-'}  {_join(c.get('platform')) or '-'}")
    if args.dry_run:
        print(f"{len(old)} 个案件结案超过 {args.days} 天 / {len(old)} case(s) closed more than {args.days} days ago "
              "(dry run, nothing removed)")
        return 0
    removed = await store.purge(cutoff)
    print(f"已删除 {len(removed)} 个结案超过 {args.days} 天的案件 / "
          f"purged {len(removed)} case(s) closed more than {args.days} days ago")
    return 0
