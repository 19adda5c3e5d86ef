"""Following saved cases in the conversation: list, open, record what happened.

The engine stays pure: reading and writing the store are effects the adapter
carries out ({"effect": "list_cases"}, {"effect": "get_case", "case_id"},
{"effect": "transition", "case_id", "to", ...}, {"effect": "snooze", "case_id"}),
answered with events {"type": "cases"|"case"|"transitioned", ...}.
"""
from __future__ import annotations

from datetime import datetime, timezone

from .lifecycle import load_lifecycle, missing_evidence, next_action, next_channel

ACTIONS = ("evidence", "submitted", "action_taken", "rejected", "escalated", "withdraw")


class Tracker:
    def __init__(self, engine):
        self.e = engine
        self.lc = load_lifecycle()
        self.t = engine.flow.tracking
        self.b = engine.flow.tracking_buttons

    def _text(self, key: str, **values) -> str:
        return self.t[key].format(**values).strip()

    # ── values and events ───────────────────────────────────────────
    def allowed(self, state: dict, value: str) -> bool:
        p = state["pending"]
        if value == "cases":
            return True
        if value.startswith("case:"):
            return value[5:] in (p.get("case_ids") or [])
        if value.startswith("act:"):
            act = value[4:]
            if act == "escalate_confirm":
                return bool(p.get("open_case")) and bool(p.get("escalate_to"))
            return bool(p.get("open_case")) and act in (p.get("acts") or [])
        if value.startswith("rem:"):
            parts = value.split(":", 2)
            return len(parts) == 3 and parts[2] in (p.get("reminders") or [])
        return False

    def value(self, state: dict, value: str, out: list[dict]) -> None:
        p = state["pending"]
        if value == "cases":
            out.append({"effect": "list_cases"})
        elif value.startswith("case:"):
            out.append({"effect": "get_case", "case_id": value[5:]})
        elif value.startswith("act:"):
            self._act(state, value[4:], out)
        elif value.startswith("rem:"):
            _, action, case_id = value.split(":", 2)
            p["open_case"] = case_id
            p.pop("reminder_buttons", None)
            if action == "wait":
                out.append({"effect": "snooze", "case_id": case_id})
            elif action == "none":
                p["then"] = "escalate"
                out.append({"effect": "get_case", "case_id": case_id})
            else:
                p["acts"] = ["action_taken"]
                self._act(state, "action_taken", out)

    def _act(self, state: dict, action: str, out: list[dict]) -> None:
        p = state["pending"]
        case_id = p["open_case"]
        if action == "withdraw":
            out.append({"effect": "transition", "case_id": case_id, "to": "closed", "reason": "withdrawn"})
        elif action == "escalated":
            self._escalate_offer(state, out)
        elif action == "escalate_confirm":
            step = p.pop("escalate_to")
            out.append({"effect": "transition", "case_id": case_id, "to": "escalated", "channel": step["channel"]})
        elif action == "evidence":
            p["track"] = {"to": None, "ask": "evidence"}
            state["step"] = "track"
            out.extend(self.prompt(state))
        else:
            p["track"] = {"to": action, "ask": {"submitted": "channel", "action_taken": "outcome",
                                                "rejected": "reason"}[action]}
            state["step"] = "track"
            out.extend(self.prompt(state))

    def offered(self, state: dict) -> list[dict]:
        """Buttons of the open case and the case list, so typed words can pick them."""
        p = state["pending"]
        opts = [{"label": self.b[a], "value": f"act:{a}"} for a in p.get("acts") or []] if p.get("open_case") else []
        opts += list(p.get("reminder_buttons") or [])
        if p.get("open_case") and p.get("escalate_to"):
            opts.append({"label": self.b["escalate_confirm"], "value": "act:escalate_confirm"})
        return opts + [{"label": self.b["my_cases"], "value": "cases"}]

    def options(self, state: dict) -> list[dict]:
        track = state["pending"].get("track") or {}
        ask = track.get("ask")
        if ask == "channel":
            return [{"label": label, "value": f"ch:{cid}"} for cid, label in self.lc.channels.items()]
        if ask == "ref":
            return [{"label": self.b["no_ref"], "value": "ref:none"}]
        if ask == "outcome":
            return [{"label": label, "value": f"out:{oid}"} for oid, label in self.lc.outcomes.items()]
        if ask == "evidence":
            missing = state["pending"].get("missing") or []
            return [{"label": title, "value": f"ev:{item}"} for item, title in missing[:8]] + [
                {"label": self.b["evidence_finish"], "value": "ev:done"}]
        return []

    def prompt(self, state: dict) -> list[dict]:
        ask = (state["pending"].get("track") or {}).get("ask")
        key = {"channel": "ask_channel", "ref": "ask_ref", "outcome": "ask_outcome", "reason": "ask_reason",
               "evidence": "ask_evidence"}.get(ask)
        if not key:
            return []
        reply = {"text": self._text(key)}
        buttons = [[o] for o in self.options(state)]
        if buttons:
            reply["buttons"] = buttons
        return [reply]

    def track_value(self, state: dict, value: str, out: list[dict]) -> None:
        track = state["pending"]["track"]
        if value.startswith("ev:"):
            if value == "ev:done":
                state["pending"].pop("track")
                state["step"] = "done"
                out.append({"effect": "get_case", "case_id": state["pending"]["open_case"]})
            else:
                out.append({"effect": "mark_evidence", "case_id": state["pending"]["open_case"], "item": value[3:]})
            return
        if value.startswith("ch:"):
            track["channel"] = value[3:]
            track["ask"] = "ref"
            out.extend(self.prompt(state))
            return
        if value.startswith("out:"):
            track["outcome"] = value[4:]
        self._finish(state, out)

    def track_text(self, state: dict, text: str, out: list[dict]) -> bool:
        track = state["pending"].get("track") or {}
        if track.get("ask") == "evidence":
            from knowledge.text import extract_links
            links = [link for link, _host in extract_links(text)]
            if not links:
                return False
            out.append({"effect": "add_links", "case_id": state["pending"]["open_case"], "links": links[:10]})
            return True
        if track.get("ask") == "ref":
            track["ref"] = text.strip()[:60]
        elif track.get("ask") == "reason":
            track["reason"] = text.strip()[:200]
        else:
            return False
        self._finish(state, out)
        return True

    def _finish(self, state: dict, out: list[dict]) -> None:
        track = state["pending"].pop("track")
        effect = {"effect": "transition", "case_id": state["pending"]["open_case"], "to": track["to"]}
        effect.update({k: track[k] for k in ("channel", "ref", "outcome", "reason") if track.get(k)})
        state["step"] = "done"
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
                self._card(state, case, [])          # refresh what is missing
                if self.wants_file(state):
                    if state["pending"].get("missing"):
                        out.extend(self.prompt(state))
                    else:
                        out.append({"text": self._text("evidence_done")})
                        state["pending"].pop("track", None)
                        state["step"] = "done"
                        if case.get("status") in ("draft", "new"):
                            # materials complete: the case is ready to be submitted
                            out.append({"effect": "transition", "case_id": case["id"], "to": "ready"})
                        else:
                            self._card(state, case, out)
            return
        if kind == "cases":
            cases = event.get("cases")
            self._list(state, [c for c in cases if _valid(c)] if isinstance(cases, list) else [], out)
        elif kind == "case":
            case = event.get("case")
            if not _valid(case):
                out.append({"text": self._text("not_found")})
            else:
                self._card(state, case, out)
                if state["pending"].pop("then", None) == "escalate":
                    self._escalate_offer(state, out)
        elif kind == "transitioned":
            case = event.get("case")
            if event.get("error") or not _valid(case):
                out.append({"text": self._text("refused", message=str(event.get("error") or ""))})
            else:
                out.append({"text": self._text("recorded", case_id=case["id"], status=self.lc.label(case.get("status")))})
            if _valid(case):
                self._card(state, case, out)
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

    def _card(self, state: dict, case: dict, out: list[dict]) -> None:
        p = state["pending"]
        p["open_case"] = case["id"]
        p.setdefault("case_ids", [])
        if case["id"] not in p["case_ids"]:
            p["case_ids"].append(case["id"])
        lines = [self._text("case_card", case_id=case["id"], status=self.lc.label(case.get("status")),
                            type=self._type_title(case), platform=self.e.card.platform_name(case.get("platform")),
                            next_action=next_action(case, self.lc))]
        missing = missing_evidence(case)
        p["missing"] = [[m.get("id"), m.get("title", "")] for m in missing if m.get("id")]
        nxt = next_channel(case, self.lc) if case.get("status") not in ("draft", "ready", "new", "closed") else None
        p["next_step"] = {"channel": nxt.get("channel"), "what": nxt.get("what", "")} if nxt else None
        if missing:
            lines.append(self._text("case_missing", missing="、".join(m.get("title", "") for m in missing[:6])))
        history = case.get("history") or []
        if history:
            h = history[-1]
            lines.append(self._text("case_history", when=str(h.get("when", ""))[:10], to=self.lc.label(h.get("to")),
                                    channel=f"({self.lc.channel_label(h['channel'])})" if h.get("channel") else "",
                                    **{"from": self.lc.label(h.get("from")) if h.get("from") else ""}))
        try:
            allowed = set(self.lc.allowed(case.get("status") or "draft"))
        except ValueError:
            allowed = set()
        acts = [a for a in ACTIONS if (a == "withdraw" and "closed" in allowed) or a in allowed
                or (a == "evidence" and case.get("status") != "closed" and p["missing"])]
        p["acts"] = acts
        buttons = [[{"label": self.b[a], "value": f"act:{a}"}] for a in acts]
        buttons.append([{"label": self.b["my_cases"], "value": "cases"}])
        out.append({"text": "\n".join(lines), "buttons": buttons})

    def _escalate_offer(self, state: dict, out: list[dict]) -> None:
        p = state["pending"]
        step = p.get("next_step")
        if not step:
            out.append({"text": self._text("escalate_none")})
            return
        p["escalate_to"] = step
        out.append({"text": self._text("escalate_offer", channel=self.lc.channel_label(step["channel"]),
                                        what=str(step.get("what", "")).strip()),
                    "buttons": [[{"label": self.b["escalate_confirm"], "value": "act:escalate_confirm"}],
                                [{"label": self.b["my_cases"], "value": "cases"}]]})

    def _type_title(self, case: dict) -> str:
        sid = case.get("subtype")
        if sid in self.e.kb.subtypes:
            return self.e.card.subtype_label(sid)
        return str(case.get("type") or "")


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
