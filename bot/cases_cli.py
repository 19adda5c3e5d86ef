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
from functools import lru_cache
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
DATA_FILE = Path(__file__).parent / "data" / "cli.yaml"


def utcnow() -> datetime:
    """The CLI's clock (tests replace it)."""
    return datetime.now(timezone.utc)


@lru_cache(maxsize=1)
def texts() -> dict:
    """The operator-facing texts (data/cli.yaml)."""
    import yaml
    with open(DATA_FILE, encoding="utf-8") as f:
        return yaml.safe_load(f)


def _t(key: str, **values: Any) -> Any:
    """The text at a dotted ``key`` of cli.yaml, its placeholders filled when ``values`` are given."""
    node: Any = texts()
    for part in key.split("."):
        node = node[part]
    return node.format(**values) if values else node


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
    return _t("local_time", time=t) if t else ""


def _event_line(ev: dict) -> str:
    parts = [_time(ev.get("when"))]
    if ev.get("who"):
        parts.append(f"[{ev['who']}]")
    if ev.get("to"):
        parts.append(f"{ev.get('from_label') or '?'} → {ev.get('to_label')}")
    if ev.get("channel_label"):
        parts.append(_t("event.channel", value=ev["channel_label"]))
    if ev.get("ref"):
        parts.append(_t("event.ref", value=ev["ref"]))
    if ev.get("outcome_label"):
        parts.append(_t("event.outcome", value=ev["outcome_label"]))
    if ev.get("reason_label"):
        parts.append(_t("event.reason", value=_one_line(ev["reason_label"])))
    if ev.get("note"):
        parts.append(_t("event.note", value=_one_line(ev["note"])))
    if ev.get("message"):
        parts.append(_t("event.message", value=_one_line(ev["message"])))
    return "  ".join(parts)


# --------------------------------------------------------------------------
# Arguments


def _days_arg(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(_t("errors.days_not_int", value=repr(text))) from None
    if n < 0:
        raise argparse.ArgumentTypeError(_t("errors.days_negative", n=n))
    if n > MAX_DAYS:
        raise argparse.ArgumentTypeError(_t("errors.days_too_many", max=MAX_DAYS, n=n))
    return n


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--status", action="append", metavar="STATUS",
                   help="status id or Chinese label (repeatable, or comma-separated)")
    p.add_argument("--type", action="append", help=_t("help.type"))
    p.add_argument("--subtype", action="append", help="sub-type id, e.g. rumor.fabricated_violation")
    p.add_argument("--platform", action="append", help=_t("help.platform"))
    p.add_argument("--province", action="append", help=_t("help.province"))
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
        description=_t("help.cases"))
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
    p.add_argument("status", metavar="STATUS", help=_t("help.status"))
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
                _err(_t("errors.no_such_case", message=e.message, case_id=_one_line(getattr(args, "case_id", ""))))
            elif e.status in (401, 403, 404) and e.code in ("unauthorized", "forbidden", "api_off"):
                _err(f"{e.message}\n{_token_hint()}")
                return EXIT_STORE
            elif e.status >= 500:
                _err(_t("errors.service_failed", message=e.message))
                return EXIT_STORE
            else:
                _err(e.message)
            return EXIT_USAGE
    return run


def _token_hint() -> str:
    return _t("errors.token_hint")


async def _with_backend(fn: Callable, args: argparse.Namespace, local_only: bool) -> int:
    from bot.config import SettingsError, load_settings, load_settings_lenient
    from bot.store import StoreError, StoreLocked, open_store

    settings = load_settings_lenient()
    directory = Path(settings.data_dir)
    if not settings.database_url and not directory.is_dir():  # PostgreSQL: no directory needed
        raise _Unavailable(_t("errors.no_data_dir", directory=directory))
    try:
        store = open_store(str(directory), clock=utcnow)
    except StoreLocked as e:
        pid = f"pid {e.pid}" if e.pid else "pid ?"
        if local_only:
            raise _Unavailable(_t("errors.store_needed", pid=pid, directory=directory)) from None
        try:
            settings = load_settings()
        except SettingsError as se:
            raise _Unavailable(_t("errors.bad_setting", error=se)) from None
        token = settings.cli_token()
        if not token and fn is not _set_status and settings.api_tokens:
            token = settings.api_tokens[0].token  # a viewer's token is enough to read
        if not token:
            raise _Unavailable(_t("errors.store_in_use", pid=pid, hint=_token_hint(), directory=directory)) from None
        return await _remote(fn, args, settings, token, pid)
    except (StoreError, OSError) as e:
        raise _Unavailable(_t("errors.cannot_open", directory=directory, error=e)) from None
    try:
        return await fn(_Local(store, settings), args)
    except (StoreError, OSError) as e:
        raise _Unavailable(_t("errors.store_error", directory=directory, error=e)) from None
    finally:
        try:
            await store.close()
        except (StoreError, OSError) as e:  # the change itself is already durable
            _err(_t("errors.closing", error=e))


async def _remote(fn: Callable, args, settings, token: str, pid: str) -> int:
    from bot.api_client import ApiClient, ApiUnreachable

    try:
        async with ApiClient(settings.api_base, token) as client:
            return await fn(_Remote(client), args)
    except ApiUnreachable:
        raise _Unavailable(_t("errors.api_unreachable", pid=pid, api_base=settings.api_base)) from None


# -- list -------------------------------------------------------------------


async def _list(backend, args) -> int:
    cases = await backend.list(_filters(args), args.sort)
    if not cases:
        print(_t("list.none"))
        return 0
    header = list(_t("list.header"))
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
    print(_t("list.total", n=len(cases)))
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

    out.append(_t("show.case", id=c.get("id")))
    st = lc.statuses.get(c.get("status") or "")
    line(_t("show.status"), f"{st.label} ({st.id}) — {st.meaning}" if st else c.get("status"))
    age = c.get("age_days")
    line(_t("show.created"), _t("show.created_value", time=_time(c.get("created_at")), age="?" if age is None else age))
    line(_t("show.updated"), _time(c.get("updated_at")))
    line(_t("show.closed"), _time(c.get("closed_at")))
    line(_t("show.via"), c.get("messenger"))
    line(_t("show.enterprise"), c.get("enterprise"))
    role = c.get("reporter_role")
    line(_t("show.reporter"), _t("show.reporter_roles").get(role, role))
    line(_t("show.type"), " / ".join(str(x) for x in (c.get("type"), c.get("subtype")) if x))
    line(_t("show.flags"), ", ".join(c.get("flags") or []))
    line(_t("show.platform"), c.get("platform_label"))
    line(_t("show.province"), c.get("province_label"))
    line(_t("show.channel"), c.get("channel_label"))
    if c.get("links"):
        out.append(_t("show.links"))
        out.extend(f"  - {link}" for link in c["links"])
    if c.get("description"):
        out.append(_t("show.description"))
        out.extend(f"  {ln}" for ln in c["description"].splitlines() if ln.strip())
    if c.get("plan"):
        out.append(_t("show.plan"))
        for n, s in enumerate(c["plan"], 1):
            extra = [str(s["kind"])] if s.get("kind") and s["kind"] != "do" else []
            if s.get("if"):
                extra.append(f"if {s['if']}")
            tail = f" ({', '.join(extra)})" if extra else ""
            out.append(f"  {n}. {s.get('channel_label')} [{s.get('id')}]{tail}")
    evidence = c.get("evidence") or []
    if evidence:
        have = sum(1 for e in evidence if e.get("provided"))
        out.append(_t("show.evidence", have=have, total=len(evidence)))
        for e in evidence:
            mark = "✓" if e.get("provided") else ("✗" if e.get("required", True) else "·")
            opt = "" if e.get("required", True) else _t("show.optional")
            out.append(f"  {mark} {e.get('title')}{opt}")
    files = c.get("files") or []
    if files:
        out.append(_t("show.attachments", n=len(files)))
        for f in files:
            extra = [x for x in (f"{f['size']} B" if f.get("size") is not None else "",
                                 f"sha256 {f['sha256'][:16]}…" if f.get("sha256") else "",
                                 _time(f.get("received_at"))) if x]
            out.append(f"  - {f.get('name')}" + (f"  ({', '.join(extra)})" if extra else ""))
    for r in c.get("reminders") or []:
        line(_t("show.reminder"), f"{r.get('kind')} {_time(r.get('due'))}")
    if c.get("overdue"):
        line(_t("show.overdue"), _time(c.get("due_at")))
    line(_t("show.satisfaction"), c.get("satisfaction"))
    line(_t("show.next_channel"), c.get("next_channel_label"))
    line(_t("show.next"), c.get("next_action"))
    line(_t("show.allowed"), "、".join(f"{a['label']} ({a['to']})" for a in c.get("allowed") or []))
    outbox = c.get("outbox") or []
    if outbox:
        out.append(_t("show.notifications", n=len(outbox)))
        for m in outbox:
            out.append(f"  {_time(m.get('created_at'))}  {m.get('kind')}  {m.get('status')}"
                       + (f"  {_one_line(m.get('last_error'))}" if m.get("last_error") else ""))
    history = c.get("history") or []
    out.append(_t("show.history", n=len(history)))
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
        print(_t("set_status.reminder", time=_time(result["reminder"])))
    if result.get("notification"):
        print(_t("set_status.notified"))
    print(_t("set_status.next", next=result.get("next_action")))
    return 0


# -- export -----------------------------------------------------------------


def _write_private(path: Path, data: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "wb") as f:
            f.write(data)
    except OSError as e:
        raise _Refused(_t("errors.cannot_write", path=path, error=e.strerror or e)) from None


async def _export(backend, args) -> int:
    text, n = await backend.export(_filters(args))
    if args.out:
        path = Path(args.out)
        _write_private(path, text.encode("utf-8"))
        print(_t("export.done", n=n, path=path), file=sys.stderr)
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
        raise _Refused(_t("errors.cannot_write", path=path, error=e.strerror or e)) from None
    try:
        with open(fd, "wb") as f:
            await backend.package(args.case_id, f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    print(_t("package.done", path=path, size=path.stat().st_size))
    return 0


# -- purge ------------------------------------------------------------------


def _confirm(n: int, days: int) -> bool:
    print(_t("purge.confirm", n=n, days=days), end="", flush=True)
    try:
        answer = sys.stdin.readline()
    except (OSError, ValueError):
        answer = ""
    return answer.strip().lower() in _t("purge.yes_words")


async def _purge(backend, args) -> int:
    plan = await backend.purge(args.days, dry_run=True)
    verb = _t("purge.would_remove") if args.dry_run else _t("purge.removing")
    for c in plan["cases"]:
        print(_t("purge.line", verb=verb, id=c["id"], closed=_time(c.get("closed_at")), type=c.get("type") or "-",
                 platform=c.get("platform_label") or "-"))
    n = len(plan["cases"])
    if args.dry_run:
        print(_t("purge.dry_run", n=n, days=args.days))
        return 0
    if n and not args.yes and not _confirm(n, args.days):
        print(_t("purge.cancelled"))
        return EXIT_CANCELLED
    done = await backend.purge(args.days, dry_run=False)
    print(_t("purge.done", n=len(done["removed"]), days=args.days))
    return 0
