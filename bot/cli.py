"""The `huqi` command line."""
from __future__ import annotations

import argparse
import json
import sys



def _text(key: str) -> str:
    from bot import texts
    return texts.text(key)


def _kb_or_exit():
    from knowledge import KnowledgeError, knowledge
    try:
        return knowledge()
    except KnowledgeError as e:
        from bot import texts
        print(texts.text("kb_invalid_start", error=e), file=sys.stderr)
        raise SystemExit(2)


def cmd_kb_check(args) -> int:
    if args.data:
        from knowledge import KnowledgeError, load
        try:
            kb = load(args.data)
        except KnowledgeError as e:
            from bot import texts
            print(texts.text("kb_invalid", error=e), file=sys.stderr)
            return 2
    else:
        kb = _kb_or_exit()
    counts = kb.counts()
    print(f"knowledge base OK: {kb.data_dir}")
    for k, v in counts.items():
        print(f"  {k:<18} {v}")
    return 0


def classify_line(clf, line: bytes | str, lineno: int) -> dict:
    """One JSONL input line to one output object; bad lines become error objects."""
    from bot import jsonl
    req = jsonl.request(line, lineno)
    if isinstance(req, dict):
        return req
    id_, text = req
    return clf.classify(text).as_json(id_) | ({"id": id_} if id_ is None else {})


def cmd_classify(args) -> int:
    _kb_or_exit()
    from bot import jsonl
    from knowledge import get_classifier
    clf = get_classifier()
    if args.jsonl:
        out = sys.stdout
        for lineno, line in enumerate(sys.stdin.buffer, 1):
            if not line.strip():
                continue
            jsonl.write(out, classify_line(clf, line.rstrip(b"\r\n"), lineno))
        out.flush()
        return 0
    text = " ".join(args.text) if args.text else _text("cli_example")
    r = clf.classify(text)
    print(json.dumps(r.as_json() | {"platforms": r.platforms, "links": r.links}, ensure_ascii=False, indent=2))
    return 0


def cmd_chat(args) -> int:
    """The terminal chat: the main job when no Telegram token is configured."""
    import asyncio
    import io

    from bot.config import data_dir
    from bot.store import StoreError, StoreLocked, open_store
    from bot.terminal import run

    _kb_or_exit()
    inp = sys.stdin
    if hasattr(inp, "buffer"):
        inp = io.TextIOWrapper(inp.buffer, encoding="utf-8", errors="replace")
    directory = data_dir()

    async def main() -> int:
        try:
            store = open_store(directory)
        except (StoreLocked, StoreError, OSError) as e:
            from bot import texts
            print(texts.text("chat_without_store", error=e), file=sys.stderr)
            return await run(inp, sys.stdout, store=None, drafts_dir=directory / "drafts")
        try:
            return await run(inp, sys.stdout, store=store, drafts_dir=directory / "drafts")
        finally:
            await store.close()

    return asyncio.run(main())


def cmd_serve(args) -> int:
    """``huqi serve``: the Telegram bot (webhook or polling), the staff's API and health, in one process."""
    import asyncio

    from bot import logsafe, texts
    from bot.config import SettingsError, load_settings
    from bot.store import StoreError, StoreLocked, open_store

    try:
        settings = load_settings()
    except SettingsError as e:
        print(texts.text("settings_error", error=e), file=sys.stderr)
        return 2
    if args.require_token and not settings.telegram_token:
        print(texts.text("no_token"), file=sys.stderr)
        return 2
    _kb_or_exit()
    logsafe.setup([settings.telegram_token or "", settings.webhook_secret or ""]
                  + [t.token for t in settings.api_tokens])

    async def main() -> int:
        from telegram.error import InvalidToken, TelegramError

        from bot.server import serve
        if settings.database_url:  # PostgreSQL: refuse an outdated schema, saying what to run
            from bot.store.migrations import check_schema
            try:
                await check_schema(settings.database_url)
            except StoreError as e:
                print(texts.text("store_error", error=e), file=sys.stderr)
                return 2
        try:
            store = open_store(settings.data_dir, backend="postgres", url=settings.database_url) \
                if settings.database_url else open_store(settings.data_dir, backend="tinydb")
        except StoreLocked as e:
            print(texts.text("store_locked", error=e), file=sys.stderr)
            return 3
        except (StoreError, OSError) as e:
            print(texts.text("store_error", error=e), file=sys.stderr)
            return 2
        from bot.store.states_import import import_states_file
        await import_states_file(store, settings.data_dir / "telegram_states.json")
        try:
            return await serve(settings, store)
        except InvalidToken:
            print(texts.text("token_rejected"), file=sys.stderr)
            return 2
        except TelegramError as e:
            print(texts.text("telegram_unreachable", error=type(e).__name__), file=sys.stderr)
            return 1
        finally:
            await store.close()

    return asyncio.run(main())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="huqi", description=_text("cli_description"))
    sub = p.add_subparsers(dest="command")

    c = sub.add_parser("classify", help="classify descriptions (--jsonl: one JSON object a line on stdin)")
    c.add_argument("--jsonl", action="store_true", help='read {"id", "text"} lines from stdin, write one result a line')
    c.add_argument("text", nargs="*", help="a description to classify")
    c.set_defaults(func=cmd_classify)

    chat = sub.add_parser("chat", help="talk to huqi in the terminal (stdin may be a script)")
    chat.set_defaults(func=cmd_chat)

    srv = sub.add_parser("serve", help="run the service: Telegram bot (if a token is set), staff API, health")
    srv.set_defaults(func=cmd_serve, require_token=False)
    tg = sub.add_parser("telegram", help="the same as serve, but a Telegram token is required")
    tg.set_defaults(func=cmd_serve, require_token=True)

    kb = sub.add_parser("kb", help="knowledge base tools")
    kb_sub = kb.add_subparsers(dest="kb_command")
    check = kb_sub.add_parser("check", help="validate the knowledge base and print counts")
    check.add_argument("--data", metavar="DIR", help="check the YAML files in DIR instead of the shipped ones")
    check.set_defaults(func=cmd_kb_check)
    kb.set_defaults(func=lambda a: (kb.print_usage(), 2)[1])

    from bot.cases_cli import register
    register(sub)
    from bot.faq_cli import register as register_faq
    register_faq(sub)
    from bot import db_cli
    db_cli.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        from bot.config import telegram_token
        args = parser.parse_args(["serve" if telegram_token() else "chat"])
    return args.func(args) or 0


if __name__ == "__main__":
    raise SystemExit(main())
