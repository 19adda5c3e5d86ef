"""Asking the owner of a closed case how satisfied they are, and keeping the answer.

The question goes out through the outbox once per case, with buttons
``sat:<score>:<case id>``.  A press is checked against the store (the case
must be the presser's own, closed and not yet rated), so a forged value
changes nothing.  After the score the next plain text is kept as an optional
comment.
"""
from __future__ import annotations

from datetime import datetime

from bot import texts
from bot.outbox import enqueue

PREFIX = "sat:"
SCORES = range(1, 6)
COMMENT_LIMIT = 500


def parse(value) -> tuple[int, str] | None:
    """``"sat:5:HQ-2611-7K3Q"`` -> ``(5, "HQ-2611-7K3Q")``; None if not a satisfaction answer."""
    if not isinstance(value, str) or not value.startswith(PREFIX):
        return None
    parts = value.split(":", 2)
    if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) not in SCORES or not parts[2]:
        return None
    return int(parts[1]), parts[2]


def question(case_id: str, lang: str | None = None) -> dict:
    labels = texts.labels("satisfaction_labels", lang)
    return {"text": texts.text("satisfaction_ask", lang, case_id=case_id),
            "buttons": [[{"label": label, "value": f"{PREFIX}{score}:{case_id}"}]
                        for score, label in zip(SCORES, labels)]}


async def ask_if_closed(store, case: dict, now: datetime) -> bool:
    """Queue the question once when the case is closed; True if queued now."""
    if case.get("status") != "closed" or case.get("satisfaction_asked") or not case.get("owner"):
        return False
    await store.update(case["id"], {"satisfaction_asked": now.isoformat(timespec="seconds")})
    q = question(case["id"])
    await enqueue(store, kind="satisfaction", owner=case["owner"], case_id=case["id"], text=q["text"],
                  buttons=q["buttons"], now=now)
    return True


async def answer(store, owner: dict, record: dict, value: str, now: datetime, lang: str | None) -> dict:
    """Record a score pressed by ``owner``; returns the reply."""
    score, case_id = parse(value)
    case = await store.get(case_id, owner=owner)
    if case is None or case.get("status") != "closed":
        return {"text": texts.text("satisfaction_unknown", lang)}
    if (case.get("satisfaction") or {}).get("score"):
        return {"text": texts.text("satisfaction_already", lang)}
    await store.update(case["id"], {"satisfaction": {"score": score, "at": now.isoformat(timespec="seconds")}},
                       owner=owner)
    record["sat_comment"] = case["id"]
    return {"text": texts.text("satisfaction_thanks", lang, score=score)}


async def comment(store, owner: dict, record: dict, text: str, now: datetime, lang: str | None) -> dict | None:
    """Keep ``text`` as the comment of the case just rated; None if no comment is awaited."""
    case_id = record.pop("sat_comment", None)
    if not case_id:
        return None
    case = await store.get(case_id, owner=owner)
    if case is None or not case.get("satisfaction"):
        return None
    sat = dict(case["satisfaction"], comment=text.strip()[:COMMENT_LIMIT])
    await store.update(case["id"], {"satisfaction": sat}, owner=owner)
    return {"text": texts.text("satisfaction_comment_saved", lang)}
