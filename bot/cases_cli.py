"""``huqi cases``: operator tools for the case store.

    huqi cases list [--status S] [--type T] [--subtype S] [--platform P] [--province P]
                    [--overdue | --not-overdue] [--messenger M] [--search TEXT]
                    [--older-than DAYS] [--newer-than DAYS]
    huqi cases show ID
    huqi cases set-status ID STATUS [--note ..] [--channel ..] [--ref ..]
                                    [--outcome ..] [--reason ..]
    huqi cases export [--out FILE] [filters as for list]
    huqi cases package ID [--out FILE]
    huqi cases purge [--days N] [--dry-run] [--yes]

The data directory is ``HUQI_DATA_DIR`` (default ./data).  When ``huqi serve``
holds the store, the commands go through its API (``HUQI_HTTP_HOST`` /
``HUQI_HTTP_PORT``, token ``HUQI_API_TOKEN`` or an operator token of
``HUQI_API_TOKENS``); purge needs the store itself.  Filters take what staff
type (``--platform 小红书``, ``--province 上海``); an unknown value is an error.
The operations themselves are :mod:`bot.ops`, shared with the API.

Exit codes: 0 done; 1 purge not confirmed; 2 bad arguments, unknown case or
refused status change (a message says why); 3 the case store cannot be
opened (missing, in use and the service unreachable, damaged).

Privacy: case contents are shown to operators, but contact details are not:
phone numbers, ID-card numbers and e-mail addresses in free text and links are
masked, the owner's messenger account id is not printed, evidence and
attachments appear by title/name only.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import unicodedata
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

__all__ = ["register", "redact", "utcnow"]

DEFAULT_PURGE_DAYS = 180
EXIT_CANCELLED = 1
EXIT_USAGE = 2
EXIT_STORE = 3
WHO = "operator"
MAX_DAYS = 100_000  # bot.ops.MAX_DAYS (not imported here: ops imports this module)


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


def _time(value: Any) -> str:
    from bot.ops import local_time
    t = local_time(value)
    return f"{t} 北京时间" if t else ""


def _event_line(ev: dict) -> str:
    parts = [_time(ev.get("when"))]
    if ev.get("who"):
        parts.append(f"[{ev['who']}]")
    if ev.get("to"):
        parts.append(f"{ev.get('from_label') or '?'} → {ev.get('to_label')}")
    if ev.get("channel_label"):
        parts.append(f"渠道 channel: {ev['channel_label']}")
    if ev.get("ref"):
        parts.append(f"编号 ref: {ev['ref']}")
    if ev.get("outcome_label"):
        parts.append(f"结果 outcome: {ev['outcome_label']}")
    if ev.get("reason_label"):
        parts.append(f"原因 reason: {_one_line(ev['reason_label'])}")
    if ev.get("note"):
        parts.append(f"备注 note: {_one_line(ev['note'])}")
    if ev.get("message"):
        parts.append(f"留言 message: {_one_line(ev['message'])}")
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
    if n > MAX_DAYS:
        raise argparse.ArgumentTypeError(f"天数最多 {MAX_DAYS} / days must be at most {MAX_DAYS}: {n}")
    return n


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--status", action="append", metavar="STATUS",
                   help="status id or Chinese label (repeatable, or comma-separated)")
    p.add_argument("--type", action="append", help="type id or title, e.g. rumor, 谣言性信息")
    p.add_argument("--subtype", action="append", help="sub-type id, e.g. rumor.fabricated_violation")
    p.add_argument("--platform", action="append", help="platform id or name, e.g. 小红书, weibo")
    p.add_argument("--province", action="append", help="province id or name, e.g. 上海, guangdong")
    p.add_argument("--messenger", action="append", help="where the owner talks to huqi: telegram, terminal, web")
    p.add_argument("--search", metavar="TEXT", help="case number or enterprise name contains TEXT")
    over = p.add_mutually_exclusive_group()
    over.add_argument("--overdue", dest="overdue", action="store_const", const=True,
                      help="only cases past their follow-up date")
    over.add_argument("--not-overdue", dest="overdue", action="store_const", const=False)
    p.add_argument("--older-than", type=_days_arg, metavar="DAYS", help="created more than DAYS days ago")
    p.add_argument("--newer-than", type=_days_arg, metavar="DAYS", help="created within the last DAYS days")


def _filters(args: argparse.Namespace) -> dict:
    """What was typed, as bot.ops.parse_filters (and the API's query) take it."""
    raw = {"status": args.status, "type": args.type, "subtype": args.subtype, "platform": args.platform,
           "province": args.province, "messenger": args.messenger, "q": args.search,
           "overdue": None if args.overdue is None else str(args.overdue).lower(),
           "older_than": args.older_than, "newer_than": args.newer_than}
    return {k: v for k, v in raw.items() if v is not None}


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``huqi cases ...`` to the ``huqi`` command's subparsers."""
    cases = subparsers.add_parser(
        "cases", help="operator tools: list, show, set-status, export, package, purge cases",
        description="案件运维工具 / operator tools for the case store (HUQI_DATA_DIR). "
                    "While huqi serve runs they go through its API (HUQI_API_TOKEN).")
    sub = cases.add_subparsers(dest="cases_command", metavar="{list,show,set-status,export,package,purge}")

    p = sub.add_parser("list", help="list cases as a table")
    _add_filters(p)
    p.add_argument("--sort", default="created",
                   help="created (default, oldest first), updated or due; --sort=-created for newest first")
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

    p = sub.add_parser("export", help="CSV (UTF-8 with BOM, Chinese labels, Beijing time) of the cases")
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of standard output")
    _add_filters(p)
    p.set_defaults(func=_command(_export))

    p = sub.add_parser("package", help="the evidence package (zip: report draft, files, manifest) of a case")
    p.add_argument("case_id", metavar="ID")
    p.add_argument("--out", metavar="FILE", help="zip file to write (default huqi-evidence-<ID>.zip here)")
    p.set_defaults(func=_command(_package))

    p = sub.add_parser("purge", help=f"delete cases closed more than N days ago (default {DEFAULT_PURGE_DAYS})")
    p.add_argument("--days", type=_days_arg, default=DEFAULT_PURGE_DAYS, metavar="N")
    p.add_argument("--dry-run", action="store_true", help="only show what would be removed")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=_command(_purge, local_only=True))

    def usage(args) -> int:
        cases.print_usage(sys.stderr)
        return EXIT_USAGE

    cases.set_defaults(func=usage)
    return cases


# --------------------------------------------------------------------------
# Where the operations run: on the store here, or through the service's API


class _Refused(Exception):
    """A message for the operator; exit 2."""


class _Unavailable(Exception):
    """The store cannot be reached; exit 3."""


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


class _Local:
    """The operations on a store this process opened."""

    def __init__(self, store, settings):
        self.store, self.settings = store, settings

    def _days(self) -> int:
        from bot.ops import default_days
        return self.settings.reminder_days or default_days()

    async def list(self, filters: dict, sort: str = "created") -> list:
        from bot import ops
        page = await ops.list_cases(self.store, filters, now=utcnow(), days=self._days(), limit=None, sort=sort)
        return page["cases"]

    async def show(self, case_id: str) -> dict:
        from bot import ops
        return await ops.case_detail(self.store, case_id, now=utcnow(), days=self._days())

    async def set_status(self, case_id: str, body: dict) -> dict:
        from bot import ops
        return await ops.transition(self.store, case_id, body.pop("to"), who=WHO, now=utcnow(),
                                    days=self._days(), **body)

    async def export(self, filters: dict) -> tuple[str, int]:
        from bot import ops
        return await ops.export_csv(self.store, filters, now=utcnow(), days=self._days())

    async def package(self, case_id: str, out) -> None:
        from bot import ops
        await ops.package(self.store, case_id, files_dir=self.settings.files_dir, now=utcnow(), out=out)

    async def purge(self, days: int, dry_run: bool) -> dict:
        from bot import ops
        return await ops.purge(self.store, days, now=utcnow(), dry_run=dry_run)


class _Remote:
    """The same operations through the running service's API."""

    def __init__(self, client):
        self.client = client

    @staticmethod
    def _case(case_id: str) -> str:
        return "/cases/" + quote(case_id.strip(), safe="")

    async def list(self, filters: dict, sort: str = "created") -> list:
        from bot.api_client import query
        out, cursor = [], None
        while True:
            params = query(filters) + [("limit", "500"), ("sort", sort)] + ([("cursor", cursor)] if cursor else [])
            page = await self.client.json("GET", "/cases", params=params)
            out.extend(page["cases"])
            cursor = page.get("next_cursor")
            if not cursor:
                return out

    async def show(self, case_id: str) -> dict:
        return await self.client.json("GET", self._case(case_id))

    async def set_status(self, case_id: str, body: dict) -> dict:
        body = {k: v for k, v in body.items() if v is not None}
        return await self.client.json("POST", self._case(case_id) + "/transitions", body=body)

    async def export(self, filters: dict) -> tuple[str, int]:
        from bot.api_client import query
        import csv
        import io
        text = (await self.client.call("GET", "/export.csv", params=query(filters))).decode("utf-8")
        return text, max(0, sum(1 for _ in csv.reader(io.StringIO(text))) - 1)

    async def package(self, case_id: str, out) -> None:
        await self.client.download(self._case(case_id) + "/package", out)


def _command(fn: Callable, local_only: bool = False) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from bot.ops import OpsError
        try:
            return asyncio.run(_with_backend(fn, args, local_only))
        except _Refused as e:
            _err(str(e))
            return EXIT_USAGE
        except _Unavailable as e:
            _err(str(e))
            return EXIT_STORE
        except OpsError as e:
            if e.code == "not_found":
                _err(f"{e.message}\n没有这个案件 / no such case: {_one_line(getattr(args, 'case_id', ''))}")
            elif e.status in (401, 403, 404) and e.code in ("unauthorized", "forbidden", "api_off"):
                _err(f"{e.message}\n{_token_hint()}")
                return EXIT_STORE
            elif e.status >= 500:
                _err(f"服务出错 / the service failed: {e.message}")
                return EXIT_STORE
            else:
                _err(e.message)
            return EXIT_USAGE
    return run


def _token_hint() -> str:
    return ("请把 HUQI_API_TOKEN(或 HUQI_API_TOKENS 里一个 operator 令牌)设为 huqi serve 使用的令牌 / "
            "set HUQI_API_TOKEN (or an operator token in HUQI_API_TOKENS) to a token huqi serve accepts")


async def _with_backend(fn: Callable, args: argparse.Namespace, local_only: bool) -> int:
    from bot.config import SettingsError, load_settings, load_settings_lenient
    from bot.store import StoreError, StoreLocked, open_store

    settings = load_settings_lenient()
    directory = Path(settings.data_dir)
    if not settings.database_url and not directory.is_dir():  # PostgreSQL: no directory needed
        raise _Unavailable(f"数据目录不存在 / the data directory does not exist: {directory} "
                           "(设置 HUQI_DATA_DIR / set HUQI_DATA_DIR)")
    try:
        store = open_store(str(directory), clock=utcnow)
    except StoreLocked as e:
        pid = f"pid {e.pid}" if e.pid else "pid ?"
        if local_only:
            raise _Unavailable(f"案件库正被另一个 huqi 进程使用({pid});这个命令需要独占案件库,请先停止 huqi serve。\n"
                               f"The case store {directory} is in use by another huqi process ({pid}); "
                               "this command needs the store itself: stop huqi serve first.") from None
        try:
            settings = load_settings()
        except SettingsError as se:
            raise _Unavailable(f"设置有误 / bad setting: {se}") from None
        token = settings.cli_token()
        if not token and fn is not _set_status and settings.api_tokens:
            token = settings.api_tokens[0].token  # a viewer's token is enough to read
        if not token:
            raise _Unavailable(f"案件库正被另一个 huqi 进程使用({pid})。要通过它的接口操作,{_token_hint()}。\n"
                               f"The case store {directory} is in use by another huqi process ({pid}).") from None
        return await _remote(fn, args, settings, token, pid)
    except (StoreError, OSError) as e:
        raise _Unavailable(f"无法打开案件库 / cannot open the case store {directory}: {e}") from None
    try:
        return await fn(_Local(store, settings), args)
    except (StoreError, OSError) as e:
        raise _Unavailable(f"案件库出错 / case store error in {directory}: {e}") from None
    finally:
        try:
            await store.close()
        except (StoreError, OSError) as e:  # the change itself is already durable
            _err(f"关闭案件库时出错 / error closing the case store: {e}")


async def _remote(fn: Callable, args, settings, token: str, pid: str) -> int:
    from bot.api_client import ApiClient, ApiUnreachable

    try:
        async with ApiClient(settings.api_base, token) as client:
            return await fn(_Remote(client), args)
    except ApiUnreachable:
        raise _Unavailable(
            f"案件库正被另一个 huqi 进程使用({pid}),但 {settings.api_base} 上没有 huqi serve 的接口应答。"
            "请检查 HUQI_HTTP_HOST / HUQI_HTTP_PORT。\n"
            f"The case store is in use ({pid}) and no huqi serve API answers at {settings.api_base}: "
            "check HUQI_HTTP_HOST / HUQI_HTTP_PORT.") from None


# -- list -------------------------------------------------------------------


async def _list(backend, args) -> int:
    cases = await backend.list(_filters(args), args.sort)
    if not cases:
        print("没有符合条件的案件 / no cases match")
        return 0
    header = ["ID", "状态 status", "类型 type", "平台 platform", "省份 province", "天 age", "跟进 due",
              "企业 enterprise"]
    rows = []
    for c in cases:
        due = _time(c.get("due_at"))[:10]
        rows.append([
            str(c.get("id", "")),
            f"{c.get('status')} {c.get('status_label')}",
            _fit(str(c.get("type") or "-"), 24),
            _fit(c.get("platform_label") or "-", 16),
            _fit(c.get("province_label") or "-", 10),
            "?" if c.get("age_days") is None else str(c["age_days"]),
            (f"!{due}" if c.get("overdue") else due) or "-",
            _fit(c.get("enterprise") or "-", 24),
        ])
    widths = [max(_width(r[i]) for r in rows + [header]) for i in range(len(header))]
    for r in [header] + rows:
        print("  ".join(_pad(cell, w) for cell, w in zip(r, widths)).rstrip())
    print(f"共 {len(cases)} 个案件 / {len(cases)} case(s)")
    return 0


# -- show -------------------------------------------------------------------


async def _show(backend, args) -> int:
    from dialogs.lifecycle import load_lifecycle

    lc = load_lifecycle()
    c = await backend.show(args.case_id)
    out = []

    def line(label: str, value: Any) -> None:
        if value not in (None, "", []):
            out.append(f"{label}: {value}")

    out.append(f"案件 Case {c.get('id')}")
    st = lc.statuses.get(c.get("status") or "")
    line("状态 Status", f"{st.label} ({st.id}) — {st.meaning}" if st else c.get("status"))
    age = c.get("age_days")
    line("建立 Created", f"{_time(c.get('created_at'))} ({'?' if age is None else age} 天前 days ago)")
    line("更新 Updated", _time(c.get("updated_at")))
    line("结案 Closed", _time(c.get("closed_at")))
    line("来源 Via", c.get("messenger"))
    line("企业 Enterprise", c.get("enterprise"))
    role = c.get("reporter_role")
    line("举报人 Reporter", {"self": "企业本身 self", "agent": "代理人 agent"}.get(role, role))
    line("类型 Type", " / ".join(str(x) for x in (c.get("type"), c.get("subtype")) if x))
    line("情形 Flags", ", ".join(c.get("flags") or []))
    line("平台 Platform", c.get("platform_label"))
    line("省份 Province", c.get("province_label"))
    line("当前渠道 Channel", c.get("channel_label"))
    if c.get("links"):
        out.append("链接 Links:")
        out.extend(f"  - {link}" for link in c["links"])
    if c.get("description"):
        out.append("描述 Description:")
        out.extend(f"  {ln}" for ln in c["description"].splitlines() if ln.strip())
    if c.get("plan"):
        out.append("渠道方案 Plan:")
        for n, s in enumerate(c["plan"], 1):
            extra = [str(s["kind"])] if s.get("kind") and s["kind"] != "do" else []
            if s.get("if"):
                extra.append(f"if {s['if']}")
            tail = f" ({', '.join(extra)})" if extra else ""
            out.append(f"  {n}. {s.get('channel_label')} [{s.get('id')}]{tail}")
    evidence = c.get("evidence") or []
    if evidence:
        have = sum(1 for e in evidence if e.get("provided"))
        out.append(f"材料 Evidence ({have}/{len(evidence)} provided):")
        for e in evidence:
            mark = "✓" if e.get("provided") else ("✗" if e.get("required", True) else "·")
            opt = "" if e.get("required", True) else " (可选 optional)"
            out.append(f"  {mark} {e.get('title')}{opt}")
    files = c.get("files") or []
    if files:
        out.append(f"附件 Attachments: {len(files)}")
        for f in files:
            extra = [x for x in (f"{f['size']} B" if f.get("size") is not None else "",
                                 f"sha256 {f['sha256'][:16]}…" if f.get("sha256") else "",
                                 _time(f.get("received_at"))) if x]
            out.append(f"  - {f.get('name')}" + (f"  ({', '.join(extra)})" if extra else ""))
    for r in c.get("reminders") or []:
        line("提醒 Reminder", f"{r.get('kind')} {_time(r.get('due'))}")
    if c.get("overdue"):
        line("逾期 Overdue", _time(c.get("due_at")))
    line("满意度 Satisfaction", c.get("satisfaction"))
    line("下一个渠道 Next channel", c.get("next_channel_label"))
    line("下一步 Next", c.get("next_action"))
    line("可改为 Allowed", "、".join(f"{a['label']} ({a['to']})" for a in c.get("allowed") or []))
    outbox = c.get("outbox") or []
    if outbox:
        out.append(f"通知 Notifications ({len(outbox)}):")
        for m in outbox:
            out.append(f"  {_time(m.get('created_at'))}  {m.get('kind')}  {m.get('status')}"
                       + (f"  {_one_line(m.get('last_error'))}" if m.get("last_error") else ""))
    history = c.get("history") or []
    out.append(f"历史 History ({len(history)}):")
    out.extend(f"  {_event_line(e)}" for e in history)
    print("\n".join(out))
    return 0


# -- set-status -------------------------------------------------------------


async def _set_status(backend, args) -> int:
    body = {"to": args.status, "note": args.note, "channel": args.channel, "reference": args.ref,
            "outcome": args.outcome, "reason": args.reason}
    result = await backend.set_status(args.case_id, body)
    ev, case = result["event"], result["case"]
    msg = f"{case['id']}: {ev.get('from_label')} → {ev.get('to_label')}"
    if ev.get("channel_label"):
        msg += f"  ({ev['channel_label']})"
    print(msg)
    if result.get("reminder"):
        print(f"提醒 reminder: {_time(result['reminder'])}")
    if result.get("notification"):
        print("已通知案件所有人 / the owner is notified (outbox)")
    print(f"下一步 next: {result.get('next_action')}")
    return 0


# -- export -----------------------------------------------------------------


def _write_private(path: Path, data: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "wb") as f:
            f.write(data)
    except OSError as e:
        raise _Refused(f"无法写入 / cannot write {path}: {e.strerror or e}") from None


async def _export(backend, args) -> int:
    text, n = await backend.export(_filters(args))
    if args.out:
        path = Path(args.out)
        _write_private(path, text.encode("utf-8"))
        print(f"已导出 {n} 个案件 / exported {n} case(s) to {path}", file=sys.stderr)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    return 0


# -- package ----------------------------------------------------------------


async def _package(backend, args) -> int:
    import tempfile

    from bot.caseid import normalize_case_id
    from bot.ops import package_filename

    path = Path(args.out) if args.out else Path(package_filename({"id": normalize_case_id(args.case_id)
                                                                  or args.case_id}))
    try:  # a private temporary file beside the target, renamed once complete
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".huqi-package-", suffix=".tmp")
    except OSError as e:
        raise _Refused(f"无法写入 / cannot write {path}: {e.strerror or e}") from None
    try:
        with open(fd, "wb") as f:
            await backend.package(args.case_id, f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    print(f"已写入证据包 / evidence package written: {path} ({path.stat().st_size} bytes)")
    return 0


# -- purge ------------------------------------------------------------------


def _confirm(n: int, days: int) -> bool:
    print(f"确认删除以上 {n} 个结案超过 {days} 天的案件?输入 yes 确认 / "
          f"delete these {n} case(s)? type yes to confirm: ", end="", flush=True)
    try:
        answer = sys.stdin.readline()
    except (OSError, ValueError):
        answer = ""
    return answer.strip().lower() in ("yes", "y", "是")


async def _purge(backend, args) -> int:
    plan = await backend.purge(args.days, dry_run=True)
    verb = "将删除 would remove" if args.dry_run else "删除 removing"
    for c in plan["cases"]:
        print(f"{verb} {c['id']}  结案 closed {_time(c.get('closed_at'))}  "
              f"{c.get('type') or '-'}  {c.get('platform_label') or '-'}")
    n = len(plan["cases"])
    if args.dry_run:
        print(f"{n} 个案件结案超过 {args.days} 天 / {n} case(s) closed more than {args.days} days ago "
              "(dry run, nothing removed)")
        return 0
    if n and not args.yes and not _confirm(n, args.days):
        print("未删除 / nothing removed (use --yes to skip the question)")
        return EXIT_CANCELLED
    done = await backend.purge(args.days, dry_run=False)
    print(f"已删除 {len(done['removed'])} 个结案超过 {args.days} 天的案件 / "
          f"purged {len(done['removed'])} case(s) closed more than {args.days} days ago")
    return 0
