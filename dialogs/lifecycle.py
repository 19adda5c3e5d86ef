"""The status lifecycle of a case, as data (``data/lifecycle.yaml``).

Shared by the dialogs and the operator tools (``huqi cases``), so both accept
and refuse exactly the same status changes with the same Chinese messages::

    draft -> ready -> submitted -> accepted -> action_taken -> closed(resolved)
                          |            |            |
                          +-> rejected +-> escalated (next channel of the plan;
                                                      the cycle repeats there)
    any status but closed -> closed(withdrawn); closed -> reopened by staff (to="reopen")

Each channel of the plan has its own track (:mod:`dialogs.tracks`): the
platform and the police can run in parallel, a result (accepted, acted,
rejected) answers its own channel, and escalating opens the next channel
without closing the previous; the case's ``status`` is derived from the
tracks.  After the plan, :func:`next_channel` offers the backstop of
lifecycle.yaml (the central reporting centre, the police where money was
demanded, the courts).  :func:`possible_transitions` lists what may be
recorded from here, for staff tools and the chat alike.

:func:`transition` only *checks* a change and builds the history event; the
caller appends it (``store.append_event(case_id, event)``), which also sets the
case's status.  :func:`record` does both for a case in a store.

Everything is pure and takes ``now`` from the caller, so tests and replays
control the clock.
"""
from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from .model import CaseNotFound, to_iso
from .tracks import RESULTS, SUBMIT_STATUSES, _last_opened, apply_event, derived_status, tracks

__all__ = [
    "Lifecycle",
    "LifecycleError",
    "TransitionRefused",
    "STEP_KINDS_SKIPPED",
    "load_lifecycle",
    "allowed",
    "transition",
    "record",
    "current_channel",
    "used_channels",
    "next_channel",
    "missing_evidence",
    "next_action",
    "tracks",
    "apply_event",
    "derived_status",
    "possible_transitions",
]

DATA_FILE = Path(__file__).parent / "data" / "lifecycle.yaml"
#: Plan steps that are not something to submit to.
STEP_KINDS_SKIPPED = ("expect", "option")
_REQUIRABLE = ("channel", "outcome", "reason")
_MESSAGE_KEYS = {
    "refused": {"from_label", "to_label", "allowed"},
    "refused_none": {"from_label"},
    "refused_reason": {"from_label", "reasons", "reason", "allowed"},
    "unknown_status": {"status", "statuses"},
    "missing_channel": {"to_label", "choices"},
    "missing_escalation_channel": {"choices"},
    "same_channel": {"channel_label", "choices"},
    "bad_channel": {"value", "choices"},
    "missing_outcome": {"choices"},
    "bad_outcome": {"value", "choices"},
    "missing_reason": set(),
    "missing_close_reason": {"choices"},
    "bad_close_reason": {"value", "choices"},
    "missing_who": set(),
    "allowed_with_reasons": {"label", "reasons"},
    "allowed_separator": set(),
    "reasons_separator": set(),
    "choice": {"id", "label"},
    "not_closed": {"from_label"},
    "more": set(),
}
_ACTION_FIELDS = {"track": {"channel", "status"}, "submit": {"channel"}, "escalate": {"channel"},
                  "close": {"reason"}, "reopen": set(), "draft": set(), "ready": set()}

_NEXT_ACTION_FIELDS = {"channel", "next_channel", "missing_count", "missing_titles"}
_NEXT_ACTION_KEYS = ("missing", "next", "default")
_REMINDER_FIELDS = {"case_id", "age", "channel", "days"}


class LifecycleError(Exception):
    """lifecycle.yaml is malformed."""


class TransitionRefused(ValueError):
    """A status change that the lifecycle does not allow (message in Chinese)."""


@dataclass(frozen=True)
class Status:
    id: str
    label: str
    meaning: str
    to: tuple  # target status ids, in the order written
    close_reasons: Optional[tuple]  # reasons allowed for "closed" (None: not allowed)
    next_action: dict


@dataclass(frozen=True)
class Lifecycle:
    statuses: dict  # id -> Status, in lifecycle order
    aliases: dict  # other spelling -> status id
    requires: dict  # status id -> tuple of field names
    channels: dict  # id -> label, in escalation order
    outcomes: dict  # id -> label
    close_reasons: dict  # id -> label
    messages: dict
    reminder: dict
    actions: dict = None      # possible_transitions labels
    backstop: tuple = ()      # channels after the plan: ({channel, what, source, when_flags}, ...)

    # -- names ------------------------------------------------------------

    def status_id(self, text: Any) -> Optional[str]:
        """The status id for an id, alias or Chinese label (None if unknown)."""
        return _lookup(text, self.statuses, {s.label: s.id for s in self.statuses.values()}, self.aliases)

    def label(self, status: Any) -> str:
        sid = self.status_id(status)
        return self.statuses[sid].label if sid else str(status)

    def channel_id(self, text: Any) -> Optional[str]:
        return _lookup(text, self.channels, {v: k for k, v in self.channels.items()})

    def channel_label(self, channel: Any) -> str:
        cid = self.channel_id(channel)
        return self.channels[cid] if cid else (str(channel) if channel else self.reminder["unknown_channel"])

    def outcome_id(self, text: Any) -> Optional[str]:
        return _lookup(text, self.outcomes, {v: k for k, v in self.outcomes.items()})

    def close_reason_id(self, text: Any) -> Optional[str]:
        return _lookup(text, self.close_reasons, {v: k for k, v in self.close_reasons.items()})

    def message(self, key: str, **values: Any) -> str:
        return self.messages[key].format(**values).strip()

    # -- transitions ----------------------------------------------------------

    def allowed(self, from_status: Any) -> list:
        """Status ids reachable from ``from_status`` (TransitionRefused if unknown)."""
        return list(self._status(from_status).to)

    def allowed_labels(self, from_status: Any) -> list:
        """Chinese labels of the allowed targets; closing shows its reasons: 已结案(撤回)."""
        st = self._status(from_status)
        out = []
        for to in st.to:
            label = self.statuses[to].label
            if to == "closed":
                reasons = self.messages["reasons_separator"].join(
                    self.close_reasons[r] for r in st.close_reasons or ())
                label = self.message("allowed_with_reasons", label=label, reasons=reasons)
            out.append(label)
        return out

    def _status(self, status: Any) -> Status:
        sid = self.status_id(status)
        if sid is None:
            raise TransitionRefused(self.message(
                "unknown_status", status=status,
                statuses=self._join(s.label for s in self.statuses.values())))
        return self.statuses[sid]

    def _join(self, items) -> str:
        return self.messages["allowed_separator"].join(items)

    def _choices(self, table: dict) -> str:
        return self._join(self.message("choice", id=key, label=label) for key, label in table.items())


def _lookup(text: Any, ids: dict, labels: dict, aliases: Optional[dict] = None) -> Optional[str]:
    if not isinstance(text, str):
        return None
    t = text.strip()
    if t in ids:
        return t
    low = t.lower().replace("-", "_")
    if low in ids:
        return low
    if t in labels:
        return labels[t]
    if aliases:
        return aliases.get(t) or aliases.get(low)
    return None


# --------------------------------------------------------------------------
# Loading


def _fields(template: str) -> set:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


def _check_template(where: str, template: Any, allowed_fields: set) -> str:
    if not isinstance(template, str) or not template.strip():
        raise LifecycleError(f"{where}: must be a non-empty text")
    try:
        unknown = _fields(template) - allowed_fields
    except ValueError as e:
        raise LifecycleError(f"{where}: bad template: {e}") from None
    if unknown:
        raise LifecycleError(f"{where}: unknown placeholder(s) {sorted(unknown)}; "
                             f"available: {sorted(allowed_fields)}")
    return template


def _id_labels(data: dict, key: str) -> dict:
    items = data.get(key)
    if not isinstance(items, list) or not items:
        raise LifecycleError(f"{key}: must be a non-empty list of {{id, label}}")
    out = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) \
                or not isinstance(item.get("label"), str) or not item["label"].strip():
            raise LifecycleError(f"{key}[{i}]: needs an id and a label")
        if item["id"] in out:
            raise LifecycleError(f"{key}: duplicate id {item['id']!r}")
        out[item["id"]] = item["label"].strip()
    if len(set(out.values())) != len(out):
        raise LifecycleError(f"{key}: duplicate labels")
    return out


def parse_lifecycle(data: Any) -> Lifecycle:
    """Validate the YAML tree of lifecycle.yaml into a :class:`Lifecycle`."""
    if not isinstance(data, dict):
        raise LifecycleError("lifecycle.yaml must be a mapping")
    channels = _id_labels(data, "channels")
    outcomes = _id_labels(data, "outcomes")
    close_reasons = _id_labels(data, "close_reasons")

    raw = data.get("statuses")
    if not isinstance(raw, list) or not raw:
        raise LifecycleError("statuses: must be a non-empty list")
    ids = [s.get("id") if isinstance(s, dict) else None for s in raw]
    if not all(isinstance(i, str) and i for i in ids) or len(set(ids)) != len(ids):
        raise LifecycleError("statuses: every status needs a unique id")
    if "closed" not in ids:
        raise LifecycleError("statuses: there must be a 'closed' status")

    statuses = {}
    for s in raw:
        sid = s["id"]
        label, meaning = s.get("label"), s.get("meaning")
        if not isinstance(label, str) or not label.strip() or not isinstance(meaning, str) or not meaning.strip():
            raise LifecycleError(f"status {sid}: needs a label and a meaning")
        targets, reasons = [], None
        for t in s.get("to") or []:
            if isinstance(t, dict):
                to, rs = t.get("to"), t.get("reasons")
                if to != "closed" or not isinstance(rs, list) or not rs:
                    raise LifecycleError(f"status {sid}: only closed takes reasons: {t!r}")
                bad = [r for r in rs if r not in close_reasons]
                if bad:
                    raise LifecycleError(f"status {sid}: unknown close reason(s) {bad}")
                reasons = tuple(rs)
            else:
                to = t
                if to == "closed":
                    reasons = tuple(close_reasons)
            if to not in ids:
                raise LifecycleError(f"status {sid}: unknown target status {to!r}")
            if to in targets:
                raise LifecycleError(f"status {sid}: target {to!r} listed twice")
            if to == sid and to != "escalated":
                raise LifecycleError(f"status {sid}: only escalated may go to itself")
            targets.append(to)
        if sid != "closed" and (reasons is None or "withdrawn" not in reasons):
            raise LifecycleError(f"status {sid}: withdrawing (closed, reason withdrawn) must be allowed")
        na = s.get("next_action")
        if not isinstance(na, dict) or "default" not in na:
            raise LifecycleError(f"status {sid}: next_action needs a default")
        for key, text in na.items():
            if key not in _NEXT_ACTION_KEYS:
                raise LifecycleError(f"status {sid}: next_action {key!r} is not one of {_NEXT_ACTION_KEYS}")
            _check_template(f"status {sid}: next_action.{key}", text, _NEXT_ACTION_FIELDS)
        statuses[sid] = Status(sid, label.strip(), meaning.strip(), tuple(targets), reasons, dict(na))
    if statuses["closed"].to:
        raise LifecycleError("status closed: must be final (to: [])")
    if len({s.label for s in statuses.values()}) != len(statuses):
        raise LifecycleError("statuses: duplicate labels")

    aliases = data.get("aliases") or {}
    if not isinstance(aliases, dict) or any(v not in statuses or k in statuses for k, v in aliases.items()):
        raise LifecycleError("aliases: must map other spellings to status ids")

    requires = {}
    for sid, fields in (data.get("requires") or {}).items():
        if sid not in statuses or not isinstance(fields, list) or any(f not in _REQUIRABLE for f in fields):
            raise LifecycleError(f"requires.{sid}: must be a status with fields among {_REQUIRABLE}")
        requires[sid] = tuple(fields)

    messages = data.get("messages")
    if not isinstance(messages, dict):
        raise LifecycleError("messages: missing")
    for key, fields in _MESSAGE_KEYS.items():
        if key not in messages:
            raise LifecycleError(f"messages.{key}: missing")
        _check_template(f"messages.{key}", messages[key], fields)

    reminder = data.get("reminder")
    if not isinstance(reminder, dict):
        raise LifecycleError("reminder: missing")
    _check_template("reminder.text", reminder.get("text"), _REMINDER_FIELDS)
    _check_template("reminder.unknown_channel", reminder.get("unknown_channel"), set())
    buttons = reminder.get("buttons")
    if not isinstance(buttons, list) or not buttons or any(
            not isinstance(b, dict) or not b.get("label") or not b.get("action") for b in buttons):
        raise LifecycleError("reminder.buttons: a list of {label, action}")

    actions = data.get("actions")
    if not isinstance(actions, dict):
        raise LifecycleError("actions: missing")
    for key, fields in _ACTION_FIELDS.items():
        _check_template(f"actions.{key}", actions.get(key), fields)
    backstop = data.get("backstop") or []
    if not isinstance(backstop, list) or any(not isinstance(b, dict) or b.get("channel") not in channels
                                             or not b.get("what") for b in backstop):
        raise LifecycleError("backstop: a list of {channel (one of channels), what, source}")

    return Lifecycle(statuses, dict(aliases), requires, channels, outcomes, close_reasons,
                     dict(messages), dict(reminder), dict(actions), tuple(dict(b) for b in backstop))


@lru_cache(maxsize=4)
def _load(path: str) -> Lifecycle:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        raise LifecycleError(f"{path}: {e}") from None
    try:
        return parse_lifecycle(data)
    except LifecycleError as e:
        raise LifecycleError(f"{Path(path).name}: {e}") from None   # the file to fix, then what is wrong


def load_lifecycle(path: Union[str, Path, None] = None) -> Lifecycle:
    """The lifecycle from ``dialogs/data/lifecycle.yaml`` (cached)."""
    return _load(str(path or DATA_FILE))


def _lc(lifecycle: Optional[Lifecycle]) -> Lifecycle:
    return lifecycle if lifecycle is not None else load_lifecycle()


# --------------------------------------------------------------------------
# Reading a case


def _events(case: dict) -> list:
    return [e for e in case.get("history") or [] if isinstance(e, dict)]


def used_channels(case: dict) -> list:
    """Channels the case has been submitted or escalated to, in order."""
    out = []
    for e in _events(case):
        if e.get("to") in SUBMIT_STATUSES and e.get("channel") and e["channel"] not in out:
            out.append(e["channel"])
    return out


def current_channel(case: dict) -> Optional[str]:
    """The channel of the last submitted/escalated event (None: not submitted yet)."""
    for e in reversed(_events(case)):
        if e.get("to") in SUBMIT_STATUSES and e.get("channel"):
            return e["channel"]
    return None


def next_channel(case: dict, lifecycle: Optional[Lifecycle] = None, *, after: Optional[str] = None) -> Optional[dict]:
    """The plan step to escalate to next, or None.

    Steps the user only expects or may choose (kind ``expect``/``option``)
    are skipped.  Before any submission this is the first channel of the
    plan; afterwards (``after`` a given channel, default the last one sent to),
    the first step on a channel further along the ladder
    (platform -> province -> central -> police -> court) that the case has
    not been sent to yet.  Among steps on the same channel the plan's own
    order decides.
    """
    lc = _lc(lifecycle)
    ladder = list(lc.channels)
    current = after or current_channel(case)     # after: the next channel from that one's track
    used = set(used_channels(case))
    candidates = []
    for pos, step in enumerate(case.get("plan") or []):
        if not isinstance(step, dict) or step.get("kind", "do") in STEP_KINDS_SKIPPED:
            continue
        ch = step.get("channel")
        if ch not in ladder or ch == current or ch in used:
            continue
        if current in ladder and ladder.index(ch) < ladder.index(current):
            continue
        candidates.append((ladder.index(ch), pos, step))
    if candidates:
        return dict(min(candidates, key=lambda c: c[:2])[2])
    return _backstop(case, lc, ladder, current, used)


def _backstop(case: dict, lc: Lifecycle, ladder: list, current: Optional[str], used: set) -> Optional[dict]:
    """After the plan: the central reporting centre, the police where money was demanded, the courts."""
    if not current:
        return None
    flags = set(case.get("flags") or [])
    for b in lc.backstop:
        ch = b["channel"]
        if ch == current or ch in used or ladder.index(ch) < ladder.index(current):
            continue
        if b.get("when_flags") and not flags & set(b["when_flags"]):
            continue
        return {"id": f"backstop_{ch}", "channel": ch, "kind": "do", "what": str(b["what"]).strip(),
                "cite": cite_of(b.get("source"))}
    return None


def cite_of(source) -> str:
    """The citation of a backstop's source, from the knowledge base (loaded only when needed)."""
    from knowledge import knowledge
    from knowledge.cite import cite
    return cite(knowledge(), source)


# --------------------------------------------------------------------------
# What may be done from here


def possible_transitions(case: dict, lifecycle: Optional[Lifecycle] = None) -> list:
    """What may be recorded from here: ``[{"to", "label", "channel", "reason"?}]`` (staff and the chat)."""
    lc = _lc(lifecycle)
    sid = lc.status_id(case.get("status") or "draft") or "draft"
    a = lc.actions
    if sid == "closed":
        return [{"to": "reopen", "label": a["reopen"], "channel": None}]
    out = []
    tr = tracks(case)
    for ch, t in sorted(tr.items(), key=lambda kv: kv[1].get("order", 0)):
        st = lc.status_id(t.get("status"))
        for to in lc.allowed(st) if st else []:
            if to in RESULTS:
                out.append({"to": to, "channel": ch,
                            "label": a["track"].format(channel=lc.channel_label(ch), status=lc.label(to))})
    plan_channels = [s.get("channel") for s in case.get("plan") or []
                     if isinstance(s, dict) and s.get("kind", "do") == "do" and s.get("channel") in lc.channels]
    for ch in dict.fromkeys(plan_channels):
        if ch not in tr and ("submitted" in lc.allowed(sid) or tr):
            out.append({"to": "submitted", "channel": ch, "label": a["submit"].format(channel=lc.channel_label(ch))})
    nxt = next_channel(case, lc) if tr else None
    if nxt and nxt["channel"] not in tr and "escalated" in lc.allowed(sid):
        out.append({"to": "escalated", "channel": nxt["channel"],
                    "label": a["escalate"].format(channel=lc.channel_label(nxt["channel"]))})
    for to in ("draft", "ready"):
        if to in lc.allowed(sid):
            out.append({"to": to, "channel": None, "label": a[to]})
    for reason in lc.statuses[sid].close_reasons or ():
        out.append({"to": "closed", "channel": None, "reason": reason,
                    "label": a["close"].format(reason=lc.close_reasons[reason])})
    return out


def missing_evidence(case: dict) -> list:
    """Evidence items that are required and not provided yet.

    What the case itself holds counts as provided, for cases saved before it
    was marked: its links (the content's address) and its contact.
    """
    held = set()
    if case.get("links"):
        held.add("url_or_locator")
    if case.get("contact"):
        held.add("reporter_contact")
    return [e for e in case.get("evidence") or []
            if isinstance(e, dict) and e.get("required", True) and not e.get("provided") and e.get("id") not in held]


def next_action(case: dict, lifecycle: Optional[Lifecycle] = None) -> str:
    """A short Chinese hint of what to do next, for the case's status."""
    lc = _lc(lifecycle)
    sid = lc.status_id(case.get("status") or "draft")
    if sid is None:
        return lc.message("unknown_status", status=case.get("status"),
                          statuses=lc._join(s.label for s in lc.statuses.values()))
    missing = missing_evidence(case)
    nxt = next_channel(case, lc)
    titles = [str(e.get("title") or e.get("id") or "") for e in missing]
    values = {
        "channel": lc.channel_label(current_channel(case)),
        "next_channel": lc.channel_label(nxt["channel"]) if nxt else "",
        "missing_count": len(missing),
        "missing_titles": lc._join(titles[:5]) + (lc.messages["more"] if len(titles) > 5 else ""),
    }
    holds = {"missing": bool(missing), "next": nxt is not None, "default": True}
    for key, template in lc.statuses[sid].next_action.items():
        if holds[key]:
            return template.format(**values).strip()
    return ""  # unreachable: default always holds


# --------------------------------------------------------------------------
# Changing status


def _text(value: Any) -> Optional[str]:
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _iso(now: Union[datetime, str]) -> str:
    return to_iso(now)


def allowed(from_status: Any, lifecycle: Optional[Lifecycle] = None) -> list:
    """Status ids the lifecycle allows from ``from_status``."""
    return _lc(lifecycle).allowed(from_status)


def transition(
    case: dict,
    to: str,
    *,
    who: str,
    channel: Optional[str] = None,
    ref: Optional[str] = None,
    outcome: Optional[str] = None,
    reason: Optional[str] = None,
    note: Optional[str] = None,
    now: Union[datetime, str],
    lifecycle: Optional[Lifecycle] = None,
) -> dict:
    """Check a status change and return the history event to append.

    ``to``, ``channel``, ``outcome`` and the closing ``reason`` may be ids or
    their Chinese labels.  Raises :class:`TransitionRefused` (Chinese message
    listing what is possible) when the change is not allowed or a required
    field is missing.  Nothing is changed: append the returned event with
    ``store.append_event(case["id"], event)``.
    """
    lc = _lc(lifecycle)
    who = _text(who)
    if who is None:
        raise TransitionRefused(lc.message("missing_who"))
    src = lc._status(case.get("status") or "draft")
    if to == "reopen":
        if src.id != "closed":
            raise TransitionRefused(lc.message("not_closed", from_label=src.label))
        back = derived_status("submitted", tracks(case)) if tracks(case) else "draft"
        return {"when": _iso(now), "who": who, "from": src.id, "to": back, "channel": None, "ref": None,
                "outcome": None, "reason": None, "note": _text(note)}
    dst = lc._status(to)
    tr = tracks(case)
    track_ch = lc.channel_id(channel) if channel else _last_opened(tr)
    check = src
    if dst.id in RESULTS and track_ch in tr and src.id != "closed":
        check = lc._status(tr[track_ch].get("status"))     # a result answers its own channel's track
        if check.id == "submitted" and src.id == "escalated":
            check = src
    parallel = (dst.id == "submitted" and src.id not in ("closed", "draft", "ready") and channel
                and lc.channel_id(channel) is not None and lc.channel_id(channel) not in tr)
    if dst.id not in check.to and not parallel:
        src = check
        if not src.to:
            raise TransitionRefused(lc.message("refused_none", from_label=src.label))
        raise TransitionRefused(lc.message(
            "refused", from_label=src.label, to_label=dst.label,
            allowed=lc._join(lc.allowed_labels(src.id))))

    needs = lc.requires.get(dst.id, ())
    current = current_channel(case)

    ch = None
    if channel is not None and _text(channel) is not None:
        ch = lc.channel_id(channel)
        if ch is None:
            raise TransitionRefused(lc.message("bad_channel", value=channel, choices=lc._choices(lc.channels)))
    if dst.id == "escalated":
        if ch is None:
            nxt = next_channel(case, lc)
            ch = nxt["channel"] if nxt else None
        if ch is None:
            raise TransitionRefused(lc.message("missing_escalation_channel", choices=lc._choices(lc.channels)))
        if ch == current:
            others = {k: v for k, v in lc.channels.items() if k != current}
            raise TransitionRefused(lc.message(
                "same_channel", channel_label=lc.channel_label(current), choices=lc._choices(others)))
    elif "channel" in needs and ch is None:
        raise TransitionRefused(lc.message("missing_channel", to_label=dst.label, choices=lc._choices(lc.channels)))
    elif ch is None and dst.id not in ("closed", "draft", "ready"):
        ch = current if dst.id not in RESULTS else (track_ch or current)  # where the report is

    out = None
    if outcome is not None and _text(outcome) is not None:
        out = lc.outcome_id(outcome)
        if out is None:
            raise TransitionRefused(lc.message("bad_outcome", value=outcome, choices=lc._choices(lc.outcomes)))
    if "outcome" in needs and out is None:
        raise TransitionRefused(lc.message("missing_outcome", choices=lc._choices(lc.outcomes)))

    why = _text(reason)
    if dst.id == "closed":
        allowed_reasons = {k: lc.close_reasons[k] for k in src.close_reasons or ()}
        if why is None:
            raise TransitionRefused(lc.message("missing_close_reason", choices=lc._choices(allowed_reasons)))
        rid = lc.close_reason_id(why)
        if rid is None:
            raise TransitionRefused(lc.message(
                "bad_close_reason", value=why, choices=lc._choices(allowed_reasons)))
        if rid not in allowed_reasons:
            raise TransitionRefused(lc.message(
                "refused_reason", from_label=src.label,
                reasons=lc.messages["reasons_separator"].join(allowed_reasons.values()),
                reason=lc.close_reasons[rid], allowed=lc._join(lc.allowed_labels(src.id))))
        why = rid
    elif "reason" in needs and why is None:
        raise TransitionRefused(lc.message("missing_reason"))

    return {
        "when": _iso(now),
        "who": who,
        "from": src.id,
        "to": dst.id,
        "channel": ch,
        "ref": _text(ref),
        "outcome": out,
        "reason": why,
        "note": _text(note),
    }


async def record(store, case_id: str, to: str, *, owner: Optional[dict] = None,
                 lifecycle: Optional[Lifecycle] = None, **kw: Any) -> dict:
    """Check and apply a status change to a stored case; returns the updated case.

    Raises the store's ``CaseNotFound`` for an unknown (or not ``owner``'s)
    case and :class:`TransitionRefused` for a refused change.
    """
    case = await store.get(case_id, owner=owner)
    if case is None:
        raise CaseNotFound(case_id)
    event = transition(case, to, lifecycle=lifecycle, **kw)
    updated = await store.append_event(case["id"], event, owner=owner)
    tr = apply_event(tracks(case), event, case)
    status = derived_status(updated.get("status"), tr)
    if tr != (case.get("channels") or {}) or status != updated.get("status"):
        changes = {"channels": tr}
        if status != updated.get("status"):
            changes["status"] = status
        updated = await store.update(case["id"], changes, owner=owner)
    return updated
