"""The conversation engine: (state, event) -> (state, replies), messenger-neutral.

Events (dicts, from the adapter):
  {"type": "text", "text"}            what the user typed
  {"type": "button", "value"}         an option pressed (refused unless it was offered)
  {"type": "file", "name", "size", "ref", "mime", "sha256", "received_at"}
  {"type": "command", "name"}         /help, /back, /cases, /quit ...
  {"type": "saved", "case_id"|None}   answers {"effect": "save_case"}
  {"type": "cases"|"case"|"transitioned"|"updated"|"snoozed", ...}   answer the tracking effects
  {"type": "reminder", "case_id", "reply"}                          a due reminder to show
  {"type": "store_failed"}            the store could not do what was asked (state is the one before)
Replies (dicts, to the adapter):
  {"text", "buttons": [[{"label", "value"}]]}   buttons render as Telegram buttons or numbered options
  {"file": {"name", "content"}, "text": caption}
  {"effect": ..., ...}                          store work for the session (see tracking.py)
  {"end": True}                                 the user ended the conversation (/quit)
A reply may carry "script": "hans": it stays Simplified for a Traditional writer (the draft).
State is plain JSON data; the engine keeps nothing between calls. The step
graph is declared in data/flow.yaml; this module interprets it.
"""
from __future__ import annotations

import copy
import re

from knowledge import get_classifier, knowledge, taxonomy
from knowledge.provinces import match_province
from knowledge.text import clean, extract_links, normalise

from . import card, options
from .flow import Flow, load_flow
from .typeset import localise, note_language, typeset

__all__ = ["Engine", "new_state", "typeset", "STATE_VERSION"]

STATE_VERSION = 1
MAX_HISTORY = 30
GLOBAL_KINDS = ("faq", "topic", "show")
_PHONE = re.compile(r"(?<!\d)(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})(?!\d)")


def new_state() -> dict:
    return {"v": STATE_VERSION, "step": "describe", "lang": "hans", "case": _empty_case(),
            "history": [], "pending": {}}


def _empty_case() -> dict:
    return {"description": "", "type": None, "subtype": None, "subtypes": [], "candidates": [], "flags": [],
            "asked": [], "platform": None, "links": [], "enterprise": None, "province": None,
            "reporter_role": None, "reporter_name": None, "contact": None, "attachments": []}


class Engine:
    def __init__(self, kb=None, flow: Flow | None = None):
        self.kb = kb or knowledge()
        self.flow = flow or load_flow()
        self.clf = get_classifier() if kb is None else _classifier_for(kb)
        from knowledge.faq import FaqIndex
        self.faq = FaqIndex(self.kb)
        self.card = card.CardBuilder(self.kb, self.flow)
        from .tracking import Tracker
        self.tracker = Tracker(self)
        self.company = _company_pattern(self.flow.enterprise_name)

    # ── public API ──────────────────────────────────────────────────
    def start(self, state: dict | None = None) -> tuple[dict, list[dict]]:
        state = new_state() if state is None else copy.deepcopy(state)
        return state, localise(state["lang"], [self._msg("greeting")] + self._prompt(state))

    def handle(self, state: dict | None, event: dict) -> tuple[dict, list[dict]]:
        state = self._valid_state(state)
        replies: list[dict] = []
        try:
            self._dispatch(state, event if isinstance(event, dict) else {}, replies)
        except _Restart:
            lang = state.get("lang", "hans")
            state.clear()
            state.update(new_state(), lang=lang)
            replies.append(self._msg("restarted"))
            replies.extend(self._prompt(state))
        replies = localise(state["lang"], replies)
        shown = [{"label": b["label"], "value": b["value"]} for r in replies for row in r.get("buttons") or []
                 for b in row]
        if shown:
            state["shown"] = shown     # what a typed number or label refers to: the options on screen, in order
        return state, replies

    def say(self, state: dict | None, key: str, **values) -> str:
        """One text of texts.yaml in the user's script (for adapters' own lines)."""
        lang = state.get("lang", "hans") if isinstance(state, dict) else "hans"
        return localise(lang, [self._msg(key, **values)])[0]["text"]

    # ── dispatch ────────────────────────────────────────────────────
    def _dispatch(self, state: dict, event: dict, out: list[dict]) -> None:
        kind = event.get("type")
        if kind == "saved":
            self._saved(state, event, out)
        elif kind == "store_failed":
            out.append(self._msg("store_failed"))
            out.extend(self._prompt(state))
        elif kind in ("cases", "case", "transitioned", "snoozed", "reminder", "updated"):
            self.tracker.event(state, event, out)
        elif kind == "file":
            self._file(state, event, out)
        elif kind == "command":
            self._command(state, str(event.get("name", "")).lstrip("/"), out)
        elif kind == "button":
            value = event.get("value")
            if not isinstance(value, str) or not self._allowed(state, value):
                out.append(self._msg("not_understood"))
                out.extend(self._prompt(state))
            else:
                self._value(state, value, out)
        elif not isinstance(event.get("text"), str):
            out.append(self._msg("empty_input"))
            out.extend(self._prompt(state))
        else:
            self._text(state, event["text"], out)

    def _text(self, state: dict, raw: str, out: list[dict]) -> None:
        text = clean(raw).strip()
        if not text:
            out.append(self._msg("empty_input"))
            out.extend(self._prompt(state))
            return
        if _looks_binary(text):
            out.append(self._msg("binary_input"))
            out.extend(self._prompt(state))
            return
        limit = self.flow.limits["max_chars"]
        if len(text) > limit:
            text = text[:limit]
            out.append(self._msg("too_long", limit=limit))
        note_language(state, text, self.flow.simplified_only)
        command = self._command_word(text)
        if command:
            self._command(state, command, out)
            return
        step = self.flow.steps[state["step"]]
        if step.get("kind") == "multi" and self._multi_text(state, text, out):
            return
        value = self._match_option(state, text)
        if value:
            self._value(state, value, out)
            return
        handler = getattr(self, f"_text_{state['step']}", None)
        if options.numbers(text) and not self._text_allowed_numbers(state):
            if len(options.numbers(text)) > 1 and handler and handler(state, text, out):
                return                                # several options at once ("1 2")
            out.append(self._msg("no_option"))       # a number with no option re-asks
            out.extend(self._prompt(state))
            return
        self._keep_links(state, text)
        if handler and handler(state, text, out):
            return
        if self._maybe_faq(state, text, out):
            return
        out.append(self._msg("not_understood"))
        out.extend(self._prompt(state))

    def _text_allowed_numbers(self, state: dict) -> bool:
        """Steps where a bare number may be an answer in itself (a reference number)."""
        return state["step"] == "track" and self.tracker.wants_text(state)

    def _value(self, state: dict, value: str, out: list[dict]) -> None:
        kind, arg = options.parse_value(value)
        if kind in ("cases", "case", "act", "rem", "hist"):
            self.tracker.value(state, value, out)
        elif kind in GLOBAL_KINDS and arg not in ("plan", "materials") or value == "go:faq_topics":
            self._global(state, value, out)
        elif value == "restart":
            raise _Restart
        elif kind == "go":
            self._push(state)
            if arg == "contact":
                state["pending"]["return_to"] = state["step"]
            state["step"] = arg
            out.extend(self._prompt(state))
        elif kind == "show":
            out.extend(self.card.plan_view(state["case"]) if arg == "plan" else self.card.materials_view(state["case"]))
            out.extend(self._prompt(state))
        elif kind == "draft":
            self._draft(state, arg, out)
        else:
            getattr(self, f"_value_{state['step']}")(state, kind, arg, out)

    # ── the step graph ──────────────────────────────────────────────
    def _advance(self, state: dict, out: list[dict], frm: str | None = None) -> None:
        """Go to the step after `frm` (default: the current one) that is not skipped, and ask it."""
        nxt = self.flow.steps[frm or state["step"]].get("next")
        while nxt and self._skipped(state, nxt):
            nxt = self.flow.steps[nxt].get("next")
        state["step"] = nxt
        if nxt == "facts":
            self._open_facts(state)
        if nxt == "result":
            out.extend(self.card.result(state["case"]))
        out.extend(self._prompt(state))

    def _skipped(self, state: dict, step: str) -> bool:
        pred = self.flow.steps[step].get("skip_if")
        case = state["case"]
        if pred == "platform_known":
            return bool(case["platform"] or case["links"])
        if pred == "no_facts":
            return not self._fact_options(state)
        if pred == "enterprise_known":
            return bool(case["enterprise"])
        return False

    # ── steps ───────────────────────────────────────────────────────
    def _text_describe(self, state: dict, text: str, out: list[dict]) -> bool:
        if len(normalise(text).compact) < self.flow.limits["min_describe_chars"]:
            if self._maybe_faq(state, text, out):
                return True
            out.append(self._msg("describe_too_short"))
            return True
        result = self.clf.classify(text)
        if self.faq_first(text, result) and self._maybe_faq(state, text, out):
            return True
        self._push(state)
        case = state["case"]
        case["description"] = text
        case["flags"] = list(result.flags)
        case["platform"] = result.platform or case.get("platform")
        for link in result.links:
            if link not in case["links"]:
                case["links"].append(link)
        if not case["enterprise"]:
            case["enterprise"] = _enterprise_in(self.company, text, self.flow.not_enterprise)
        state["pending"]["province_guess"] = self._province_guess(case)
        if result.links:
            out.append(self._msg("link_kept", links="\n".join(result.links)))
        scope = [c for c in result.candidates if not c["subtype"].startswith("out_of_scope")]
        best = max((c["score"] for c in scope), default=0)
        case["candidates"] = [c["subtype"] for c in scope if c["score"] >= max(0.2, best / 2)
                              ][: self.flow.limits["candidates"]]
        if result.type == "out_of_scope":
            if result.subtype == "out_of_scope.other":
                if result.unsure and self._about_us(text):
                    # something happened to the enterprise, in words we do not know: let them pick
                    state["step"] = "pick_type"
                    out.append(self._msg("unsure_pick"))
                    out.extend(self._prompt(state))
                    return True
                out.append(self._msg("not_our_topic"))
                out.extend(self._prompt(state))
                state["history"].pop()
                return True
            case["out_of_scope"] = result.subtype
            state["step"] = "out_of_scope"
            out.extend(self._prompt(state))
            return True
        if not case["candidates"]:
            case["candidates"] = [result.subtype]
        state["step"] = "confirm"
        state["pending"]["unsure"] = bool(result.unsure)
        if enterprise := case["enterprise"]:
            out.append(self._msg("enterprise_found", enterprise=enterprise))
        if not result.unsure:
            out.extend(self.card.reading(result.subtype))
        out.extend(self._prompt(state))
        return True

    def _about_us(self, text: str) -> bool:
        """The text speaks of the enterprise (我们, 公司, 老板 ...), not of something else."""
        compact = normalise(text).compact
        return any(w in compact for w in self.flow.about_us)

    def faq_first(self, text: str, result) -> bool:
        """A question that is not a description of an incident goes to the FAQ."""
        from knowledge.faq import looks_like_question
        return looks_like_question(text) and (result.unsure or result.subtype == "out_of_scope.other")

    def _text_confirm(self, state: dict, text: str, out: list[dict]) -> bool:
        """Several readings at once: "1 2"."""
        subs = [options.parse_value(v)[1] for v in self.numbered(state, text) or [] if v.startswith("sub:")]
        if len(subs) < 2:
            return False
        self._choose_subtypes(state, subs, out, announce=True)
        return True

    _text_pick_subtype = _text_confirm

    def _value_confirm(self, state: dict, kind: str, arg: str, out: list[dict]) -> None:
        self._choose_subtypes(state, [arg], out)

    def _text_pick_type(self, state: dict, text: str, out: list[dict]) -> bool:
        """A fuller description typed instead of picking a type is read again."""
        if len(normalise(text).compact) < self.flow.limits["min_describe_chars"] * 2:
            return False
        state["step"] = "describe"
        return self._text_describe(state, text, out)

    def _value_pick_type(self, state: dict, kind: str, arg: str, out: list[dict]) -> None:
        self._push(state)
        state["pending"]["type"] = arg
        state["step"] = "pick_subtype"
        out.extend(self._prompt(state))

    def _value_pick_subtype(self, state: dict, kind: str, arg: str, out: list[dict]) -> None:
        self._choose_subtypes(state, [arg], out, announce=True)

    def _choose_subtypes(self, state: dict, sids: list[str], out: list[dict], announce: bool = False) -> None:
        self._push(state)
        case = state["case"]
        case["subtype"] = sids[0]
        case["subtypes"] = list(sids)
        case["type"] = taxonomy.type_of(sids[0])
        case.pop("out_of_scope", None)
        if len(sids) > 1:
            out.append(self._msg("types_chosen", titles=self.card.join(self.card.subtype_label(s) for s in sids)))
        elif announce:
            out.append(self._msg("type_chosen", **self.card.titles(sids[0])))
        if case["links"] and case["platform"]:
            out.append(self._msg("where_platform_from_link", platform=self.card.platform_name(case["platform"])))
        elif case["platform"]:
            out.append(self._msg("where_platform", platform=self.card.platform_name(case["platform"])))
        self._advance(state, out, "confirm")

    def _text_where(self, state: dict, text: str, out: list[dict]) -> bool:
        norm = normalise(text)
        platform, _ = self.clf.platforms.resolve(norm)
        if norm.links:
            self._push(state)
            state["case"]["platform"] = platform or state["case"]["platform"]
            if platform:
                out.append(self._msg("where_platform_from_link", platform=self.card.platform_name(platform)))
            self._advance(state, out)
            return True
        if platform:
            self._value_where(state, "platform", platform, out)
            return True
        return False

    def _value_where(self, state: dict, kind: str, arg: str, out: list[dict]) -> None:
        self._push(state)
        state["case"]["platform"] = None if arg == "none" else arg
        if not state["case"]["links"]:
            out.append(self._msg("card_no_link"))
        self._advance(state, out)

    # the situations, as one multi-select
    def _fact_options(self, state: dict) -> list[dict]:
        case = state["case"]
        m = self.flow.buttons["multi"]
        opts = [{"label": self.kb.flags[f["flag"]]["title"], "value": f"facts:{f['flag']}"}
                for f in self.flow.facts if case["type"] in f["types"] and f["flag"] not in case["flags"]
                and f["flag"] in self.kb.flags]
        if not case["reporter_role"]:
            opts.append(dict(m["agent"]))
        return opts

    def _open_facts(self, state: dict) -> None:
        state["pending"]["chosen"] = []

    def _multi_text(self, state: dict, text: str, out: list[dict]) -> bool:
        """Typed numbers pick those situations and go on; a no-word means none."""
        values = self.numbered(state, text)
        facts = {o["value"] for o in self._fact_options(state)}
        if values and len(values) > 1 and set(values) <= facts:
            state["pending"]["chosen"] = values
            self._finish_facts(state, out)
            return True
        if values and len(values) == 1 and values[0] in facts:
            state["pending"]["chosen"] = values      # one typed number: that one, and on
            self._finish_facts(state, out)
            return True
        if options.answer_word(text, self.flow.answers) == "no":
            state["pending"]["chosen"] = []
            self._finish_facts(state, out)
            return True
        return False

    def _value_facts(self, state: dict, kind: str, arg: str, out: list[dict]) -> None:
        chosen = state["pending"].setdefault("chosen", [])
        if arg == "none":
            chosen.clear()
        if arg in ("none", "done"):
            self._finish_facts(state, out)
            return
        value = f"facts:{arg}"
        if value in chosen:
            chosen.remove(value)
        else:
            chosen.append(value)
        out.extend(self._prompt(state))

    def _finish_facts(self, state: dict, out: list[dict]) -> None:
        chosen = [options.parse_value(v)[1] for v in state["pending"].pop("chosen", [])]
        self._push(state)
        case = state["case"]
        offered = [options.parse_value(o["value"])[1] for o in self._fact_options(state)]
        case["asked"] = [f for f in offered if f != "agent"]
        if "agent" in offered:
            case["reporter_role"] = "agent" if "agent" in chosen else "self"
        case["flags"] = [f for f in taxonomy.FLAGS if f in case["flags"] or f in chosen]
        self._advance(state, out)

    def _text_enterprise(self, state: dict, text: str, out: list[dict]) -> bool:
        if self._maybe_faq(state, text, out):
            return True
        self._push(state)
        state["case"]["enterprise"] = text[:100]
        state["pending"]["province_guess"] = self._province_guess(state["case"])
        self._advance(state, out)
        return True

    def _value_enterprise(self, state: dict, kind: str, arg: str, out: list[dict]) -> None:
        self._push(state)
        self._advance(state, out)

    def _province_guess(self, case: dict) -> str | None:
        """The province a company name, the description or a landline names (confirmed with one tap)."""
        for text in (case.get("enterprise"), case.get("description")):
            pid = match_province(self.kb, text or "") if text else None
            if pid:
                return pid
        return None

    def _text_province(self, state: dict, text: str, out: list[dict]) -> bool:
        pid = match_province(self.kb, text)
        if pid:
            self._value_province(state, "province", pid, out)
            return True
        if self._maybe_faq(state, text, out):
            return True
        out.append(self._msg("province_unknown", text=text[:20]))
        out.extend(self._prompt(state))
        return True

    def _value_province(self, state: dict, kind: str, arg: str, out: list[dict]) -> None:
        if arg == "other":
            state["pending"]["province_guess"] = None
            out.append(self._msg("ask_province"))
            return
        self._push(state)
        state["case"]["province"] = arg
        self._advance(state, out)

    def _value_result(self, state: dict, kind: str, arg: str, out: list[dict]) -> None:
        if kind == "save":
            out.append({"effect": "save_case", "case": self.card.case_record(state["case"])})

    _value_done = _value_result

    def _text_result(self, state: dict, text: str, out: list[dict]) -> bool:
        if _PHONE.search(text):
            self._set_contact(state, text, out)
            return True
        if self._maybe_faq(state, text, out):
            return True
        # a new description after a finished plan starts a new intake
        lang = state["lang"]
        state.clear()
        state.update(new_state(), lang=lang)
        return self._text_describe(state, text, out)

    def _text_done(self, state: dict, text: str, out: list[dict]) -> bool:
        if _PHONE.search(text) and state["case"].get("case_id"):
            self.tracker.contact_text(state, state["case"]["case_id"], text, out)
            return True
        return self._text_result(state, text, out)

    # following a saved case (tracking.py)
    def _value_track(self, state: dict, kind: str, arg: str, out: list[dict]) -> None:
        self.tracker.track_value(state, f"{kind}:{arg}", out)

    def _text_track(self, state: dict, text: str, out: list[dict]) -> bool:
        return self.tracker.track_text(state, text, out)

    def _value_confirm_close(self, state: dict, kind: str, arg: str, out: list[dict]) -> None:
        self.tracker.track_value(state, f"{kind}:{arg}", out)

    # contact person and phone
    def _text_contact(self, state: dict, text: str, out: list[dict]) -> bool:
        if not _PHONE.search(text):
            out.append(self._msg("contact_bad"))
            out.extend(self._prompt(state))
            return True
        self._set_contact(state, text, out)
        return True

    def _value_contact(self, state: dict, kind: str, arg: str, out: list[dict]) -> None:
        state["step"] = state["pending"].pop("return_to", None) or "result"
        out.extend(self._prompt(state))

    def _set_contact(self, state: dict, text: str, out: list[dict]) -> None:
        name, phone = split_contact(text)
        case = state["case"]
        case["reporter_name"], case["contact"] = name or None, phone
        out.append(self._msg("contact_saved", contact=mask_contact(name, phone)))
        if state["step"] == "contact":
            state["step"] = state["pending"].pop("return_to", None) or "result"
        out.extend(self._prompt(state))

    def _draft(self, state: dict, arg: str, out: list[dict]) -> None:
        case = state["case"]
        if case.get("case_id"):
            # saved: the draft is written from the stored case (contact and materials added since)
            state["pending"]["open_case"] = case["case_id"]
            state["pending"]["then"] = f"draft_{arg}"
            out.append({"effect": "get_case", "case_id": case["case_id"]})
            return
        if arg == "view":
            view = self.card.draft_view(case)
            view[-1]["buttons"] = view[-1]["buttons"] + self._buttons(state)   # the step's options stay at hand
            out.extend(view)
            return
        if arg == "hant":
            out.append(self.card.draft_file(case, traditional=True))
        elif arg == "evidence":
            out.append(self.card.evidence_pack(case))
        else:
            out.append(self.card.draft_file(case))
        out.extend(self._prompt(state))

    def _saved(self, state: dict, event: dict, out: list[dict]) -> None:
        case_id = event.get("case_id")
        if case_id:
            state["case"]["case_id"] = case_id
            state["step"] = "done"
            out.append(self._msg("case_saved", case_id=case_id))
        else:
            out.append(self._msg("case_save_unavailable"))
        out.extend(self._prompt(state))

    def _file(self, state: dict, event: dict, out: list[dict]) -> None:
        name = str(event.get("name") or "file")[:80]
        size = event.get("size") or 0
        limit = self.flow.limits["file_mb"]
        if not isinstance(size, (int, float)) or size > limit * 1024 * 1024:
            out.append(self._msg("file_too_large", name=name, limit=limit))
        elif self.tracker.wants_file(state):
            self.tracker.file(state, {k: event.get(k) for k in ("size", "ref", "mime", "sha256", "received_at")} | {"name": name}, out)
            return
        else:
            state["case"]["attachments"].append(
                {k: event.get(k) for k in ("name", "size", "ref", "mime", "sha256", "received_at")} | {"name": name})
            out.append(self._msg("file_received", name=name))
        out.extend(self._prompt(state))

    # ── commands, FAQ and globals ───────────────────────────────────
    def _command(self, state: dict, name: str, out: list[dict]) -> None:
        if name in ("restart", "start"):
            raise _Restart
        if name == "back":
            if not state["history"]:
                out.append(self._msg("nothing_to_go_back"))
            else:
                previous = state["history"].pop()
                state["step"], state["case"], state["pending"] = previous["step"], previous["case"], previous["pending"]
            out.extend(self._prompt(state))
        elif name == "cancel":
            lang = state["lang"]
            state.clear()
            state.update(new_state(), lang=lang)
            out.append(self._msg("cancelled"))
        elif name in ("quit", "exit", "q"):
            out.append(self._msg("bye"))
            out.append({"end": True})
        elif name == "faq":
            self._global(state, "go:faq_topics", out)
        elif name == "cases_browse":
            self._global(state, "show:cases", out)
        elif name == "laws":
            self._global(state, "show:laws", out)
        elif name == "cases":
            out.append({"effect": "list_cases"})
        else:
            out.append(self._msg("help"))
            out.extend(self._prompt(state))

    def _command_word(self, text: str) -> str | None:
        t = text.strip().lower()
        for name, words in self.flow.commands.items():
            if t in words:
                return name
        return None

    def _global(self, state: dict, value: str, out: list[dict]) -> None:
        """FAQ, topics, case studies and laws: shown without leaving the step."""
        kind, arg = options.parse_value(value)
        if kind == "faq":
            out.extend(self.card.faq_answer(arg))
        elif value == "go:faq_topics":
            out.append(self.card.topics_menu())
            return
        elif kind == "topic":
            out.append(self.card.topic_menu(arg))
            return
        elif value == "show:cases":
            out.extend(self.card.case_studies())
        elif value == "show:laws":
            out.append(self.card.laws())
        out.append(self._msg("faq_resume"))
        out.extend(self._prompt(state))

    def _maybe_faq(self, state: dict, text: str, out: list[dict]) -> bool:
        from knowledge.faq import CONFIDENT, looks_like_question
        question = looks_like_question(text)
        hits = self.faq.search(text, limit=3)
        if hits and hits[0][1] >= CONFIDENT:
            self._global(state, f"faq:{hits[0][0]['id']}", out)
            return True
        if hits and question:
            # a weak match: offer it, do not assert it
            out.append(self._msg("faq_maybe", buttons=[[{"label": e["question"], "value": f"faq:{e['id']}"}]
                                                      for e, _score in hits]))
            out.append(self._msg("faq_resume"))
            out.extend(self._prompt(state))
            return True
        if question:
            out.append(self._msg("faq_unknown"))
            out.append(self.card.topics_menu())
            out.append(self._msg("faq_resume"))
            out.extend(self._prompt(state))
            return True
        return False

    # ── prompts, buttons and input matching ─────────────────────────
    def _prompt(self, state: dict) -> list[dict]:
        step = state["step"]
        case = state["case"]
        spec = self.flow.steps[step]
        buttons = self._buttons(state)
        if step == "confirm":
            key = "unsure" if state["pending"].get("unsure") else "confirm_reading"
            reply = self._msg(key, buttons=buttons)
        elif step == "pick_subtype":
            tid = state["pending"].get("type")
            reply = self._msg("pick_subtype", buttons=buttons, type_title=self.kb.types[tid]["title"])
        elif step == "out_of_scope":
            return self.card.out_of_scope(case.get("out_of_scope", "out_of_scope.other"), buttons)
        elif step == "facts":
            reply = self._msg("ask_facts", buttons=buttons)
        elif step == "province" and state["pending"].get("province_guess"):
            reply = self._msg("province_guess", buttons=buttons,
                              province=self.card.province_name(state["pending"]["province_guess"]))
        elif step in ("track", "confirm_close"):
            return self.tracker.prompt(state)
        elif step in ("result", "done"):
            reply = self._msg("result_actions", buttons=buttons)
        elif spec.get("prompt"):
            reply = self._msg(spec["prompt"], buttons=buttons)
        else:
            return []
        if spec.get("progress"):
            reply["text"] = self.flow.text("progress", n=spec["progress"], total=self.flow.progress_total) \
                + reply["text"]
        return [reply]

    def _options(self, state: dict) -> list[dict]:
        step = state["step"]
        spec = self.flow.steps[step].get("buttons")
        if spec != "dynamic":
            return [dict(o) for o in self.flow.buttons.get(spec, [])]
        if step == "confirm":
            opts = [{"label": self.card.subtype_label(sid), "value": f"sub:{sid}"}
                    for sid in state["case"]["candidates"]]
            if opts and not state["pending"].get("unsure"):
                opts[0]["answer"] = "yes"            # "对的" confirms the reading shown
            return opts + [dict(self.flow.none_of_these, answer="no")]
        if step == "pick_subtype":
            tid = state["pending"].get("type")
            return [{"label": self.kb.subtypes[sid]["title"], "value": f"sub:{sid}"}
                    for sid in self.kb.subtypes if taxonomy.type_of(sid) == tid]
        if step == "facts":
            chosen = state["pending"].get("chosen") or []
            m = self.flow.buttons["multi"]
            opts = [dict(o, label=self.flow.text("selected", label=o["label"])) if o["value"] in chosen else o
                    for o in self._fact_options(state)]
            return opts + [dict(m["done"] if chosen else m["none"])]
        if step == "province":
            guess = state["pending"].get("province_guess")
            opts = [dict(o) for o in self.flow.buttons["provinces"]]
            if guess:
                opts = [{"label": self.flow.text("province_yes", province=self.card.province_name(guess)),
                         "value": f"province:{guess}", "answer": "yes"}] + \
                       [o for o in opts if o["value"] != f"province:{guess}"]
            return opts
        if step in ("track", "confirm_close"):
            return self.tracker.options(state)
        return []

    def _buttons(self, state: dict) -> list[list[dict]]:
        return [[{"label": o["label"], "value": o["value"]}] for o in self._options(state)]

    def _allowed(self, state: dict, value: str) -> bool:
        kind, arg = options.parse_value(value)
        if kind == "faq":
            return arg in self.kb.faq
        if kind == "topic":
            return arg in self.flow.topics
        if value in ("show:cases", "show:laws", "go:faq_topics", "restart"):
            return True
        if self.tracker.allowed(state, value):
            return True
        if kind == "draft" and state["step"] in ("result", "done"):
            return arg in ("view", "file", "hant", "evidence")
        return any(o["value"] == value for o in self._options(state))

    def numbered(self, state: dict, text: str) -> list[str] | None:
        """The values of the options on screen that typed numbers ("2", "1 3") name; None if any is not one."""
        picked = options.numbers(text)
        if picked is None:
            return None
        shown = [o["value"] for o in state.get("shown") or self._options(state)]
        values = [shown[n - 1] for n in picked if 1 <= n <= len(shown)]
        if len(values) != len(picked) or not all(self._allowed(state, v) for v in values):
            return None
        return list(dict.fromkeys(values))

    def _match_option(self, state: dict, text: str) -> str | None:
        """Free text at a button step: a number (of an option on screen), the option's words, yes/no words."""
        free = self.flow.steps[state["step"]].get("kind") == "text"
        if options.numbers(text) is not None:
            values = self.numbered(state, text)
            return values[0] if values and len(values) == 1 else None
        value = options.match(self._options(state), text, self.flow.answers, free_text=free)
        if value:
            return value
        on_screen = [o for o in state.get("shown") or [] if self._allowed(state, o["value"])]
        value = options.match(on_screen, text, {}, free_text=True)
        if value:
            return value
        # the words of the open case's buttons and the case list (never by number: those are not on screen)
        return options.match(self.tracker.offered(state), text, self.flow.answers, free_text=True)

    # ── state helpers ───────────────────────────────────────────────
    def _push(self, state: dict) -> None:
        state["history"].append({"step": state["step"], "case": copy.deepcopy(state["case"]),
                                 "pending": copy.deepcopy(state["pending"])})
        del state["history"][:-MAX_HISTORY]

    def _keep_links(self, state: dict, text: str) -> None:
        links = state["case"]["links"]
        for link, _host in extract_links(text):
            if link not in links and len(links) < self.flow.limits["max_links"]:
                links.append(link)

    def _valid_state(self, state) -> dict:
        if (not isinstance(state, dict) or state.get("v") != STATE_VERSION
                or state.get("step") not in self.flow.steps or not isinstance(state.get("case"), dict)):
            return new_state()
        state = copy.deepcopy(state)
        for key, value in new_state().items():
            state.setdefault(key, value)
        for key, value in _empty_case().items():
            state["case"].setdefault(key, value)
        return state

    def _msg(self, key: str, buttons: list[list[dict]] | None = None, **values) -> dict:
        reply = {"text": self.flow.text(key, **values)}
        if buttons:
            reply["buttons"] = buttons
        return reply


class _Restart(Exception):
    pass


def split_contact(text: str) -> tuple[str, str]:
    """"张律师 13800138000" -> ("张律师", "13800138000")."""
    m = _PHONE.search(text)
    phone = m.group(1) if m else ""
    name = (text[:m.start()] + " " + text[m.end():]) if m else text
    name = " ".join(re.sub(r"[,，;；:：、/|]+", " ", name).split())[:40]
    return name, phone


def mask_contact(name: str | None, phone: str | None) -> str:
    """The contact as shown: 张律师 138****8000."""
    phone = str(phone or "")
    digits = phone.replace("-", "")
    masked = digits[:3] + "*" * max(0, len(digits) - 7) + digits[-4:] if len(digits) >= 8 else phone
    return " ".join(p for p in (name or "", masked) if p)


def _company_pattern(spec: dict) -> re.Pattern:
    """The enterprise-name pattern from flow.yaml `enterprise_name`."""
    stop = re.escape(str(spec["stop"]))
    suffixes = "|".join(map(re.escape, spec["suffixes"]))
    forms = "|".join(map(re.escape, spec["legal_forms"]))
    return re.compile(rf"([^\s{stop}]{{2,16}}?(?:{suffixes})(?:{forms})?)")


def _enterprise_in(pattern: re.Pattern, text: str, not_names: list[str]) -> str | None:
    """"我们杭州云帆科技被人冒充" -> "杭州云帆科技"; "骗子公司" is not a name."""
    for m in pattern.finditer(text or ""):
        if not any(w in m.group(1) for w in not_names):
            return m.group(1)
    return None


def _looks_binary(text: str) -> bool:
    sample = text[:500]
    odd = sum(1 for c in sample if not (c.isprintable() or c in "\n\t"))
    return odd > max(3, len(sample) // 10)


def _classifier_for(kb):
    from knowledge.classifier import Classifier
    return Classifier(kb)
