"""`huqi faq`: answer one policy question, or a JSONL file of them, from faq.yaml.

One question: ``huqi faq "删帖要交钱吗"`` prints one JSON object.
Bulk: ``huqi faq --jsonl < in.jsonl`` reads one ``{"id", "text"}`` a line and
writes one line per input line, in order:
``{"id", "faq_id", "question", "answer", "sources", "score", "related": [...]}``.
``faq_id`` is null when nothing fits; ``related`` then lists the nearest
topics. A bad line (not UTF-8, not JSON, no "text") gets
``{"id", "line", "error"}`` and the run goes on.
"""
from __future__ import annotations

import json
import sys

from bot import jsonl

MAX_CHARS = 2000          # longer texts are cut: a question, not a document


def _sources(value) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _brief(entry: dict, score: float | None = None) -> dict:
    out = {"faq_id": entry["id"], "question": entry.get("question", "")}
    if score is not None:
        out["score"] = score
    return out


def answer(index, text: str, id_=None) -> dict:
    """The result object of one question; in Traditional script when the question is written so."""
    from knowledge.text import normalise, to_traditional

    text = text[:MAX_CHARS]
    script = to_traditional if normalise(text).traditional else (lambda t: t)
    hits = index.search(text, limit=4)
    if hits:
        best, score = hits[0]
        related = [_brief(e) for e in index.related(best["id"])]
        for r in related:
            r["question"] = script(r["question"])
        return {"id": id_, "faq_id": best["id"], "question": script(best.get("question", "")),
                "answer": script(best["answer"]), "sources": _sources(best.get("source")), "score": score,
                "related": related}
    # nothing fits: the nearest topics, so a policy editor sees what came close
    near = index.nearest(text, 3)
    return {"id": id_, "faq_id": None, "question": None, "answer": None, "sources": [],
            "score": near[0][1] if near else 0.0,
            "related": [_brief(index.entry(fid), s) for fid, s in near]}


def answer_line(index, line: bytes | str, lineno: int) -> dict:
    """One JSONL input line to one output object; bad lines become error objects."""
    req = jsonl.request(line, lineno)
    if isinstance(req, dict):
        return req
    id_, text = req
    return answer(index, text, id_)


def cmd_faq(args) -> int:
    from bot.cli import _kb_or_exit
    from knowledge.faq import FaqIndex

    index = FaqIndex(_kb_or_exit())
    out = sys.stdout
    if args.jsonl:
        for lineno, line in enumerate(sys.stdin.buffer, 1):
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            jsonl.write(out, answer_line(index, line, lineno))
        out.flush()
        return 0
    text = " ".join(args.text).strip()
    if not text:
        from bot import texts
        print(texts.text("faq_usage"), file=sys.stderr)
        return 2
    print(json.dumps(answer(index, text), ensure_ascii=False, indent=2))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("faq", help='answer policy questions from the FAQ (--jsonl: {"id", "text"} lines on stdin)')
    p.add_argument("--jsonl", action="store_true", help='read {"id", "text"} lines from stdin, write one result a line')
    p.add_argument("text", nargs="*", help="a question")
    p.set_defaults(func=cmd_faq)
