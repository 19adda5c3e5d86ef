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

from knowledge import get_classifier, knowledge, taxonomy
from knowledge.text import clean, extract_links

from . import card, options
from .flow import Flow, load_flow
from .intake import IntakeSteps, company_pattern
from .typeset import localise, note_language, typeset

__all__ = ["Engine", "new_state", "typeset", "STATE_VERSION"]

STATE_VERSION = 1
MAX_HISTORY = 30


def new_state() -> dict:
    return {"v": STATE_VERSION, "step": "describe", "lang": "hans", "case": _empty_case(),
            "history": [], "pending": {}}


def _empty_case() -> dict:
    return {"description": "", "type": None, "subtype": None, "subtypes": [], "candidates": [], "flags": [],
            "asked": [], "platform": None, "links": [], "enterprise": None, "province": None,
            "reporter_role": None, "reporter_name": None, "contact": None, "attachments": []}


class Engine(IntakeSteps):
    def __init__(self, kb=None, flow: Flow | None = None):
        self.kb = kb or knowledge()
        self.flow = flow or load_flow()
        self.clf = get_classifier() if kb is None else _classifier_for(kb)
        from knowledge.faq import FaqIndex
        self.faq = FaqIndex(self.kb)
        self.card = card.CardBuilder(self.kb, self.flow)
        from .tracking import Tracker
        self.tracker = Tracker(self)
        self.company = company_pattern(self.flow.enterprise_name)

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
        elif kind in ("faq", "topic") or value in ("show:cases", "show:laws", "go:faq_topics"):
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
            card = self.card.result(state["case"])
            card[-1]["buttons"] = self._buttons(state)    # the rest of the plan is behind the card's buttons
            out.extend(card)
            return
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
            n, total = self._progress(state, step)
            reply["text"] = self.flow.text("progress", n=n, total=total) + reply["text"]
        return [reply]

    def _progress(self, state: dict, step: str) -> tuple[int, int]:
        """(n, total) of the marker: this question's place among the questions this user is asked."""
        stage = int(self.flow.steps[step]["progress"])
        asked = [s for s in state["pending"].get("progress") or [] if s < stage] + [stage]
        state["pending"]["progress"] = asked
        later, seen, nxt = set(), set(), self.flow.steps[step].get("next")
        while nxt and nxt not in seen:
            seen.add(nxt)
            p = int(self.flow.steps[nxt].get("progress") or 0)
            if p > stage and not self._skipped(state, nxt):
                later.add(p)
            nxt = self.flow.steps[nxt].get("next")
        return len(asked), len(asked) + len(later)

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


def _looks_binary(text: str) -> bool:
    sample = text[:500]
    odd = sum(1 for c in sample if not (c.isprintable() or c in "\n\t"))
    return odd > max(3, len(sample) // 10)


def _classifier_for(kb):
    from knowledge.classifier import Classifier
    return Classifier(kb)
