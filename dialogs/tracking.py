"""Following saved cases in the conversation: list, open, record what each channel did.

The engine stays pure: reading and writing the store are effects the adapter
carries out ({"effect": "list_cases"}, {"effect": "get_case", "case_id"},
{"effect": "transition", "case_id", "to", "channel"?, "ref"?, "outcome"?, "reason"?},
{"effect": "snooze", "case_id"}, {"effect": "mark_evidence", "case_id", "items"},
{"effect": "add_attachment"|"add_links"|"set_contact", "case_id", ...}),
answered with events {"type": "cases"|"case"|"transitioned"|"updated"|"snoozed", ...}.
Button values are "act:<action>[:<arg>]", read with :func:`parse_act`.
"""
from __future__ import annotations

from datetime import datetime, timezone

from .lifecycle import (load_lifecycle, missing_evidence, next_action, next_channel, possible_transitions,
                        tracks)
from .options import parse_value

RESULTS = ("accepted", "action_taken", "rejected")
# statuses at which a channel's answer can still come (its "no response" offers the next channel)
WAITING = ("submitted", "escalated", "accepted", "no_response")


def parse_act(value: str) -> tuple[str, str]:
    """"act:rejected:platform" -> ("rejected", "platform"); "act:evidence" -> ("evidence", "")."""
    _, rest = parse_value(value)
    action, _, arg = rest.partition(":")
    return action, arg


class Tracker:
    def __init__(self, engine):
        self.e = engine
        self.lc = load_lifecycle()
        self.t = engine.flow.tracking
        self.b = engine.flow.tracking_buttons

    def _text(self, key: str, **values) -> str:
        return self.t[key].format(**values).strip()

    def _button(self, key: str, value: str, **values) -> dict:
        return {"label": self.b[key].format(**values).strip(), "value": value}

    # ── values and events ───────────────────────────────────────────
    def allowed(self, state: dict, value: str) -> bool:
        p = state["pending"]
        kind, arg = parse_value(value)
        if value == "cases":
            return True
        if kind == "case":
            return arg in (p.get("case_ids") or [])
        if kind in ("act", "hist"):
            return bool(p.get("open_case")) and value in (p.get("acts") or [])
        if kind == "rem":
            parts = value.split(":", 2)
            return len(parts) == 3 and parts[2] in (p.get("reminders") or [])
        return False

    def value(self, state: dict, value: str, out: list[dict]) -> None:
        p = state["pending"]
        kind, arg = parse_value(value)
        if value == "cases":
            out.append({"effect": "list_cases"})
        elif kind == "case":
            out.append({"effect": "get_case", "case_id": arg})
        elif kind == "hist":
            p["then"] = "history"
            out.append({"effect": "get_case", "case_id": p["open_case"]})
        elif kind == "act":
            self._act(state, *parse_act(value), out)
        elif kind == "rem":
            _, action, case_id = value.split(":", 2)
            p["open_case"] = case_id
            p.pop("reminder_buttons", None)
            if action == "wait":
                out.append({"effect": "snooze", "case_id": case_id})
            elif action == "none":        # recorded as no response from the channel, then the next one
                p["then"], p["after"] = "escalate", None
                out.append({"effect": "transition", "case_id": case_id, "to": "no_response"})
            else:      # the channel acted: which channel is read from the case
                p["then"] = "acted"
                out.append({"effect": "get_case", "case_id": case_id})

    def _act(self, state: dict, action: str, arg: str, out: list[dict]) -> None:
        p = state["pending"]
        case_id = p["open_case"]
        if action == "escalate_offer" and arg in (p.get("silent") or []):
            # no answer from that channel: recorded on its track, then the next channel is offered
            p["then"], p["after"] = action, arg
            out.append({"effect": "transition", "case_id": case_id, "to": "no_response", "channel": arg})
        elif action in ("draft", "pack", "escalate_offer"):
            p["then"] = "draft_view" if action == "draft" else action
            p["after"] = arg or None
            out.append({"effect": "get_case", "case_id": case_id})
        elif action == "accepted":
            out.append({"effect": "transition", "case_id": case_id, "to": "accepted", "channel": arg})
        elif action == "action_taken":
            self._ask(state, {"to": "action_taken", "ask": "outcome", "channel": arg}, out)
        elif action == "rejected":
            self._ask(state, {"to": "rejected", "ask": "reason", "channel": arg}, out)
        elif action == "submit":
            self._ask(state, {"to": "submitted", "ask": "channel"}, out)
        elif action == "escalate":
            out.append({"effect": "transition", "case_id": case_id, "to": "escalated", "channel": arg})
        elif action == "close":
            state["step"] = self.e.flow.after("done", "close")
            p["close"] = arg
            out.extend(self.prompt(state))
        elif action == "evidence":
            self._ask(state, {"to": None, "ask": "evidence"}, out)
        elif action == "contact":
            self._ask(state, {"to": None, "ask": "contact"}, out)
        elif action == "draft_ok":
            out.append({"effect": "mark_evidence", "case_id": case_id,
                        "items": [i for i, _t, _done in p.get("by_draft") or []]})

    def _ask(self, state: dict, track: dict, out: list[dict]) -> None:
        state["pending"]["track"] = track
        state["step"] = self.e.flow.after("done", "follow")
        out.extend(self.prompt(state))

    def offered(self, state: dict) -> list[dict]:
        """Buttons of the open case and the case list, so typed words can pick them."""
        p = state["pending"]
        opts = list(p.get("act_buttons") or []) if p.get("open_case") else []
        opts += list(p.get("reminder_buttons") or [])
        return opts + [self._button("my_cases", "cases")]

    def _track_channel(self, state: dict) -> str:
        ch = (state["pending"].get("track") or {}).get("channel")
        return self.lc.channel_label(ch) if ch else self.lc.reminder["unknown_channel"]

    def options(self, state: dict) -> list[dict]:
        p = state["pending"]
        if state["step"] == "confirm_close":
            return [dict(self._button("close_yes", "close:yes"), answer="yes"),
                    dict(self._button("close_no", "close:no"), answer="no")]
        ask = (p.get("track") or {}).get("ask")
        if ask == "channel":
            opened = set(p.get("opened") or [])
            return [{"label": label, "value": f"ch:{cid}"} for cid, label in self.lc.channels.items()
                    if cid not in opened]
        if ask == "ref":
            return [self._button("no_ref", "ref:none")]
        if ask == "outcome":
            return [{"label": label, "value": f"out:{oid}"} for oid, label in self.lc.outcomes.items()]
        if ask == "contact":
            return [self._button("contact_skip", "ref:none")]
        if ask == "evidence":
            items = p.get("items") or []
            return [{"label": self.e.flow.text("selected", label=title) if done else title, "value": f"ev:{item}"}
                    for item, title, done in items] + [self._button("evidence_finish", "ev:done")]
        return []

    def prompt(self, state: dict) -> list[dict]:
        if state["step"] == "confirm_close":
            reason = state["pending"].get("close")
            key = "confirm_resolved" if reason == "resolved" else "confirm_withdraw"
            return [{"text": self._text(key), "buttons": [[o] for o in self.options(state)]}]
        ask = (state["pending"].get("track") or {}).get("ask")
        key = {"channel": "ask_channel", "ref": "ask_ref", "outcome": "ask_outcome", "reason": "ask_reason",
               "evidence": "ask_evidence", "contact": "ask_contact"}.get(ask)
        if not key:
            return []
        text = self._text(key, channel=self._track_channel(state)) if key in ("ask_outcome", "ask_reason", "ask_ref") \
            else self._text(key)
        reply = {"text": text}
        buttons = [[{"label": o["label"], "value": o["value"]}] for o in self.options(state)]
        if buttons:
            reply["buttons"] = buttons
        return [reply]

    def wants_text(self, state: dict) -> bool:
        """A bare number is an answer here (a reference number)."""
        return (state["pending"].get("track") or {}).get("ask") in ("ref", "reason", "contact")

    def track_value(self, state: dict, value: str, out: list[dict]) -> None:
        p = state["pending"]
        kind, arg = parse_value(value)
        if kind == "close":
            reason = p.pop("close", None)
            state["step"] = self.e.flow.after(state["step"])
            if arg == "yes" and reason:
                out.append({"effect": "transition", "case_id": p["open_case"], "to": "closed", "reason": reason})
            else:
                out.append({"text": self._text("close_kept")})
                out.append({"effect": "get_case", "case_id": p["open_case"]})
            return
        track = p["track"]
        if kind == "ev":
            if arg == "done":
                p.pop("track")
                state["step"] = self.e.flow.after(state["step"])
                out.append({"effect": "get_case", "case_id": p["open_case"]})
            else:
                out.append({"effect": "mark_evidence", "case_id": p["open_case"], "items": [arg]})
            return
        if kind == "ch":
            track["channel"] = arg
            track["ask"] = "ref"
            out.extend(self.prompt(state))
            return
        if kind == "ref" and track.get("ask") == "contact":
            p.pop("track")
            state["step"] = self.e.flow.after(state["step"])
            out.append({"effect": "get_case", "case_id": p["open_case"]})
            return
        if kind == "out":
            track["outcome"] = arg
        self._finish(state, out)

    def track_text(self, state: dict, text: str, out: list[dict]) -> bool:
        p = state["pending"]
        track = p.get("track") or {}
        ask = track.get("ask")
        if ask == "evidence":
            from knowledge.text import extract_links
            links = [link for link, _host in extract_links(text)]
            if not links:
                return False
            out.append({"effect": "add_links", "case_id": p["open_case"], "links": links[:10]})
            return True
        if ask == "contact":
            self.contact_text(state, p["open_case"], text, out)
            return True
        if ask == "ref":
            track["ref"] = text.strip()[:60]
        elif ask == "reason":
            track["reason"] = text.strip()[:200]
        elif ask == "channel":
            cid = self.lc.channel_id(text.strip())
            if not cid:
                return False
            self.track_value(state, f"ch:{cid}", out)
            return True
        else:
            return False
        self._finish(state, out)
        return True

    def contact_text(self, state: dict, case_id: str, text: str, out: list[dict]) -> None:
        """"张律师 13800138000" for a saved case: kept on the case (shown masked)."""
        from .contact import PHONE as _PHONE, split_contact
        if not _PHONE.search(text):
            out.append({"text": self.e.flow.text("contact_bad")})
            out.extend(self.prompt(state))
            return
        name, phone = split_contact(text)
        if state["pending"].pop("track", None):
            state["step"] = self.e.flow.after(state["step"])
        out.append({"effect": "set_contact", "case_id": case_id, "reporter_name": name or None, "contact": phone})

    def _finish(self, state: dict, out: list[dict]) -> None:
        track = state["pending"].pop("track")
        effect = {"effect": "transition", "case_id": state["pending"]["open_case"], "to": track["to"]}
        effect.update({k: track[k] for k in ("channel", "ref", "outcome", "reason") if track.get(k)})
        state["step"] = self.e.flow.after(state["step"])
        out.append(effect)

    def wants_file(self, state: dict) -> bool:
        """A file sent while adding evidence to a saved case goes to that case."""
        return state["step"] == "track" and (state["pending"].get("track") or {}).get("ask") == "evidence"

    def file(self, state: dict, attachment: dict, out: list[dict]) -> None:
        out.append({"effect": "add_attachment", "case_id": state["pending"]["open_case"], "attachment": attachment})

    def event(self, state: dict, event: dict, out: list[dict]) -> None:
        kind = event.get("type")
        if kind == "updated":
            case = event.get("case")
            if _valid(case):
                if event.get("attachment"):
                    out.append({"text": self._text("attachment_saved", name=event["attachment"], case_id=case["id"])})
                if event.get("links"):
                    out.append({"text": self._text("links_saved", case_id=case["id"])})
                if event.get("contact"):
                    from .contact import mask_contact
                    out.append({"text": self.e.flow.text("contact_saved", contact=mask_contact(
                        case.get("reporter_name"), case.get("contact")))})
                if self.wants_file(state):
                    self._card(state, case, [])          # refresh what is missing
                    if state["pending"].get("missing"):
                        out.extend(self.prompt(state))
                        return
                    out.append({"text": self._text("evidence_done")})
                    state["pending"].pop("track", None)
                    state["step"] = self.e.flow.after(state["step"])
                    if case.get("status") in ("draft", "new") and not missing_evidence(case):
                        # materials complete: the case is ready to be submitted
                        out.append({"effect": "transition", "case_id": case["id"], "to": "ready"})
                        return
                self._card(state, case, out)
            return
        if kind == "cases":
            cases = event.get("cases")
            self._list(state, [c for c in cases if _valid(c)] if isinstance(cases, list) else [], out)
        elif kind == "case":
            case = event.get("case")
            if not _valid(case):
                out.append({"text": self._text("not_found")})
                return
            then = state["pending"].pop("then", None)
            record = dict(case, case_id=case["id"])
            if then in ("draft", "draft_file"):
                out.append(self.e.card.draft_file(record, stored=record))
            elif then == "draft_hant":
                out.append(self.e.card.draft_file(record, traditional=True, stored=record))
            elif then == "draft_evidence":
                out.append(self.e.card.evidence_pack(_intake_view(case)))
            elif then == "draft_view":
                out.extend(self.e.card.draft_view(record, stored=record))
                return
            elif then == "acted":
                tr = tracks(case)
                waiting = [ch for ch, t in tr.items() if t.get("status") in WAITING]
                self._card(state, case, [])
                self._ask(state, {"to": "action_taken", "ask": "outcome",
                                  "channel": waiting[-1] if waiting else None}, out)
                return
            elif then == "pack":
                out.append(self.e.card.evidence_pack(_intake_view(case)))
            elif then == "history":
                out.append({"text": "\n".join([self._text("history_all_header")] + self._events(case, None))})
            self._card(state, case, out)
            if then in ("escalate", "escalate_offer"):
                self._escalate_offer(state, case, out)
        elif kind == "transitioned":
            case = event.get("case")
            then = state["pending"].pop("then", None)
            offer = then in ("escalate", "escalate_offer") and _valid(case)
            if event.get("error") and not offer or not _valid(case):
                out.append({"text": self._text("refused", message=str(event.get("error") or ""))})
            elif not event.get("error"):
                out.append({"text": self._text("recorded", case_id=case["id"], status=self.lc.label(case.get("status")))})
            if _valid(case):
                self._card(state, case, out)
            if offer:      # the silence could not be recorded (already answered): the next channel all the same
                self._escalate_offer(state, case, out)
        elif kind == "snoozed":
            out.append({"text": self._text("snoozed", days=event.get("days", ""))})
        elif kind == "reminder":
            case_id = event.get("case_id")
            reply = event.get("reply")
            if isinstance(case_id, str) and isinstance(reply, dict):
                state["pending"].setdefault("reminders", []).append(case_id)
                # typed answers ("没回应") pick these buttons too
                state["pending"]["reminder_buttons"] = [b for row in reply.get("buttons") or [] for b in row]
                out.append(reply)

    # ── rendering ───────────────────────────────────────────────────
    def _list(self, state: dict, cases: list[dict], out: list[dict]) -> None:
        if not cases:
            out.append({"text": self._text("no_cases")})
            out.extend(self.e._prompt(state))          # and back to the question that was open
            return
        state["pending"]["case_ids"] = [c["id"] for c in cases]
        lines = [self._text("list_header")]
        buttons = []
        for c in cases:
            item = self._text("list_item", case_id=c["id"], status=self.lc.label(c.get("status")),
                              age=_age_days(c.get("created_at")), type=self._type_title(c))
            lines.append(item)
            lines.append(self._text("list_next", next_action=next_action(c, self.lc)))
            buttons.append([{"label": item, "value": f"case:{c['id']}"}])
        out.append({"text": "\n".join(lines), "buttons": buttons})

    def _events(self, case: dict, limit: int | None) -> list[str]:
        history = [h for h in case.get("history") or [] if isinstance(h, dict) and h.get("to")]  # status changes
        shown = history[-limit:] if limit else history
        return [self._text("case_history_item", when=str(h.get("when", ""))[:10], to=self.lc.label(h.get("to")),
                           channel=self.lc.channel_label(h["channel"]) if h.get("channel") else "",
                           ref=self._text("case_ref", ref=h["ref"]) if h.get("ref") else "")
                for h in shown]

    def _card(self, state: dict, case: dict, out: list[dict]) -> None:
        from .contact import mask_contact
        p = state["pending"]
        p["open_case"] = case["id"]
        p.setdefault("case_ids", [])
        if case["id"] not in p["case_ids"]:
            p["case_ids"].append(case["id"])
        closed = case.get("status") == "closed"
        contact = mask_contact(case.get("reporter_name"), case.get("contact")) or self._text("contact_missing")
        lines = [self._text("case_card", case_id=case["id"], status=self.lc.label(case.get("status")),
                            type=self._type_title(case), platform=self.e.card.platform_name(case.get("platform")),
                            contact=contact, next_action=next_action(case, self.lc))]
        tr = tracks(case)
        p["opened"] = list(tr)
        lines.append(self._text("case_channels_header"))
        for ch, t in sorted(tr.items(), key=lambda kv: kv[1].get("order", 0)):
            detail = self.lc.outcomes.get(t.get("outcome") or "") or t.get("reason") or ""
            lines.append(self._text("case_channel", channel=self.lc.channel_label(ch), status=self.lc.label(t.get("status")),
                                    ref=self._text("case_ref", ref=t["ref"]) if t.get("ref") else "",
                                    outcome=f" {detail}" if detail else ""))
        if not tr:
            lines.append(self._text("case_channel_none"))
        evidence = [e for e in case.get("evidence") or [] if isinstance(e, dict) and e.get("id")]
        required = [e for e in evidence if e.get("required", True)]
        p["items"] = [[e["id"], e.get("title", ""), bool(e.get("provided"))] for e in required]
        missing = missing_evidence(case)
        p["missing"] = [e["id"] for e in missing if e.get("id")]
        p["by_draft"] = [[e["id"], e.get("title", ""), False] for e in missing
                         if e.get("by_draft") or e.get("id") in ("statement", "truth_pledge")]   # older cases
        if missing and case.get("status") not in ("draft", "new"):     # a draft's next step names them already
            lines.append(self._text("case_missing", missing=self.e.card.join((m.get("title", "") for m in missing), 6)))
        history = self._events(case, self.e.flow.limits["history_shown"])
        if history:
            lines.append(self._text("case_history_header"))
            lines += history
        nxt = next_channel(case, self.lc) if tr and not closed else None
        p["next_step"] = {"channel": nxt.get("channel"), "what": nxt.get("what", "")} if nxt else None
        buttons = [] if closed else self._case_buttons(case, tr, p)
        if len(case.get("history") or []) > self.e.flow.limits["history_shown"]:
            buttons.append({"label": self.b["history"], "value": "hist:all"})
        buttons.append(self._button("my_cases", "cases"))
        p["acts"] = [b["value"] for b in buttons if b["value"] != "cases"]
        p["act_buttons"] = [b for b in buttons if b["value"] != "cases"]
        out.append({"text": "\n".join(lines), "buttons": [[b] for b in buttons]})

    def _case_buttons(self, case: dict, tr: dict, p: dict) -> list[dict]:
        buttons = []
        possible = possible_transitions(case, self.lc)
        for o in possible:
            if o["to"] in RESULTS and o.get("channel"):
                buttons.append(self._button(o["to"], f"act:{o['to']}:{o['channel']}",
                                            channel=self.lc.channel_label(o["channel"])))
        # no answer (or a refusal) from a channel: the next one after it; that track stays open
        p["silent"] = [ch for ch, t in tr.items() if t.get("status") in ("submitted", "escalated", "accepted")]
        for ch, t in sorted(tr.items(), key=lambda kv: kv[1].get("order", 0)):
            nxt = next_channel(case, self.lc, after=ch)
            if t.get("status") in WAITING + ("rejected",) and nxt and nxt["channel"] not in tr:
                key = "after_rejected" if t.get("status") == "rejected" else "no_response"
                buttons.append(self._button(key, f"act:escalate_offer:{ch}", channel=self.lc.channel_label(ch)))
        if any(o["to"] == "submitted" for o in possible) or not tr:
            buttons.append(self._button("submitted", "act:submit"))
        if p["missing"]:
            buttons.append(self._button("evidence", "act:evidence"))
        if p["by_draft"]:
            buttons.append(self._button("draft_ok", "act:draft_ok"))
        if not case.get("contact"):
            buttons.append(self._button("contact", "act:contact"))
        buttons.append(self._button("draft", "act:draft"))
        buttons.append(self._button("pack", "act:pack"))
        for o in possible:
            if o["to"] == "closed":
                buttons.append(self._button(o["reason"], f"act:close:{o['reason']}"))
        return buttons

    def _escalate_offer(self, state: dict, case: dict, out: list[dict]) -> None:
        p = state["pending"]
        after = p.pop("after", None)
        step = next_channel(case, self.lc, after=after) if tracks(case) else None
        if not step:
            out.append({"text": self._text("escalate_none"), "buttons": [[self._button("my_cases", "cases")]]})
            return
        value = f"act:escalate:{step['channel']}"
        label = self.b["escalate_confirm"].format(channel=self.lc.channel_label(step["channel"]))
        p["acts"] = list(p.get("acts") or []) + [value]
        p["act_buttons"] = list(p.get("act_buttons") or []) + [{"label": label, "value": value}]
        out.append({"text": self._text("escalate_offer", channel=self.lc.channel_label(step["channel"]),
                                        what=str(step.get("what", "")).strip()),
                    "buttons": [[{"label": label, "value": value}], [self._button("my_cases", "cases")]]})

    def _type_title(self, case: dict) -> str:
        sid = case.get("subtype")
        if sid in self.e.kb.subtypes:
            return self.e.card.subtype_label(sid)
        return str(case.get("type") or "")


def _intake_view(case: dict) -> dict:
    """A stored case as the card builder reads an intake."""
    view = {k: case.get(k) for k in ("type", "subtype", "subtypes", "flags", "platform", "province", "links",
                                     "enterprise", "reporter_role", "contact", "attachments", "evidence")}
    view["case_id"] = case.get("id")
    return view


def _valid(case) -> bool:
    """A case as the store hands it out (anything else is treated as not found)."""
    return isinstance(case, dict) and isinstance(case.get("id"), str)


def _age_days(created: str | None) -> int:
    if not created:
        return 0
    try:
        then = datetime.fromisoformat(str(created))
    except ValueError:
        return 0
    if then.tzinfo is None:
        then = then.replace(tzinfo=timezone.utc)
    return max(0, (datetime.now(timezone.utc) - then).days)
