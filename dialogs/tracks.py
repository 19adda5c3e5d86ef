"""Per-channel tracks of a case: what each channel (platform, office, police ...) has done with the report.

A case keeps ``case["channels"] = {channel: {status, ref, outcome, reason, updated_at, order}}``;
the case's overall ``status`` is derived from them (:func:`derived_status`), so list filters keep
working. Cases saved before tracks existed get theirs rebuilt from their history.
"""
from __future__ import annotations

from typing import Optional

#: Statuses whose events name the channel a report went to.
SUBMIT_STATUSES = ("submitted", "escalated")
#: Answers a channel gives to a report (or its silence).
RESULTS = ("accepted", "action_taken", "rejected", "no_response")
#: Track statuses, most advanced first: the case's overall status is its most advanced track.
_TRACK_RANK = {"action_taken": 5, "accepted": 4, "escalated": 3, "submitted": 3, "no_response": 2, "rejected": 1}


def _events(case: dict) -> list:
    return [e for e in case.get("history") or [] if isinstance(e, dict)]


def tracks(case: dict) -> dict:
    """``{channel: {status, ref, outcome, reason, updated_at}}``: the case's own, or rebuilt from history
    (cases saved before tracks existed)."""
    own = case.get("channels")
    if isinstance(own, dict) and own:
        return {k: dict(v) for k, v in own.items() if isinstance(v, dict)}
    out: dict = {}
    for e in _events(case):
        out = apply_event(out, e, case)
    return out


def apply_event(tr: dict, event: dict, case: Optional[dict] = None) -> dict:
    """The tracks after ``event``: a submission opens (or reopens) its channel's track; a result
    (accepted, action_taken, rejected) changes the track of its channel (default: the last submitted)."""
    tr = {k: dict(v) for k, v in tr.items()}
    to, ch = event.get("to"), event.get("channel")
    if to in SUBMIT_STATUSES and ch:
        tr[ch] = {"status": to, "ref": event.get("ref"), "outcome": None, "reason": None,
                  "updated_at": event.get("when"), "order": len(tr)}
    elif to in RESULTS:
        ch = ch or _last_opened(tr)
        if ch in tr:
            t = tr[ch]
            t.update(status=to, updated_at=event.get("when"))
            for k in ("ref", "outcome", "reason"):
                if event.get(k):
                    t[k] = event[k]
    return tr


def _last_opened(tr: dict) -> Optional[str]:
    return max(tr, key=lambda k: tr[k].get("order", 0)) if tr else None


def derived_status(status: str, tr: dict) -> str:
    """The case's overall status: closed/draft/ready as recorded, else its most advanced track."""
    if status in ("closed", "draft", "ready", "new") or not tr:
        return status
    best = max(tr.values(), key=lambda t: (_TRACK_RANK.get(t.get("status"), 0), t.get("order", 0)))
    return best.get("status") or status
