"""The conversation engine: (state, event) -> (state, replies), messenger-neutral.

Events are dicts: {"type": "text", "text": ...}, {"type": "button", "value": ...},
{"type": "file", "name": ..., "size": ..., "ref": ...}, {"type": "command", "name": ...},
{"type": "saved", "case_id": ... | None}.
Replies are dicts: {"text": ..., "buttons": [[{"label", "value"}]]}, {"file": {"name",
"content"}, "text": caption}, or {"effect": "save_case", "case": {...}} for the adapter.
State is plain JSON data; the engine keeps nothing between calls.
"""
from __future__ import annotations

import copy
import re

from rapidfuzz import fuzz, process

from knowledge import get_classifier, knowledge, taxonomy
from knowledge.text import clean, extract_links, is_traditional, normalise, to_traditional

from . import card
from .flow import Flow, load_flow

STATE_VERSION = 1
MAX_HISTORY = 30
# ASCII punctuation written next to Chinese (much of the knowledge base is typed that way)
_HAN = "\u3400-\u9fff\uff00-\uffef\u3000-\u303f"
_PUNCT = re.compile(rf"(?<=[{_HAN}])[,:;?!()]|[,:;?!()](?=[{_HAN}])|(?<=[{_HAN}])\((?=[^)]*\))")
_FULL = {",": "，", ":": "：", ";": "；", "?": "？", "!": "！", "(": "（", ")": "）"}
_SIMPLIFIED_ONLY = re.compile(r"[们这个说发对时会来为过还没问题国实现经应关学动种]")
GLOBAL_PREFIXES = ("faq:", "topic:", "show:")


def new_state() -> dict:
    return {"v": STATE_VERSION, "step": "describe", "lang": "hans", "case": _empty_case(),
            "history": [], "pending": {}}


def _empty_case() -> dict:
    return {"description": "", "type": None, "subtype": None, "candidates": [], "flags": [],
            "asked": [], "platform": None, "links": [], "enterprise": None, "province": None,
            "reporter_role": None, "attachments": []}


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

    # ── public API ──────────────────────────────────────────────────
    def start(self, state: dict | None = None) -> tuple[dict, list[dict]]:
        state = new_state() if state is None else copy.deepcopy(state)
        return state, [self._msg("greeting")] + self._prompt(state)

    def handle(self, state: dict | None, event: dict) -> tuple[dict, list[dict]]:
        state = self._valid_state(state)
        replies: list[dict] = []
        try:
            self._dispatch(state, event if isinstance(event, dict) else {}, replies)
        except _Restart:
            state.clear()
            state.update(new_state())
            replies.append(self._msg("restarted"))
            replies.extend(self._prompt(state))
        return state, self._localise(state, replies)

    # ── dispatch ────────────────────────────────────────────────────
    def _dispatch(self, state: dict, event: dict, out: list[dict]) -> None:
        kind = event.get("type")
        if kind == "saved":
            self._saved(state, event, out)
            return
        if kind in ("cases", "case", "transitioned", "snoozed", "reminder", "updated"):
            self.tracker.event(state, event, out)
            return
        if kind == "file":
            self._file(state, event, out)
            return
        if kind == "command":
            self._command(state, str(event.get("name", "")).lstrip("/"), out)
            return
        if kind == "button":
            value = event.get("value")
            if not isinstance(value, str) or not self._allowed(state, value):
                out.append(self._msg("not_understood"))
                out.extend(self._prompt(state))
                return
            self._value(state, value, out)
            return
        text = event.get("text")
        if not isinstance(text, str):
            out.append(self._msg("empty_input"))
            out.extend(self._prompt(state))
            return
        self._text(state, text, out)

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
        self._note_language(state, text)
        command = self._command_word(text)
        if command:
            self._command(state, command, out)
            return
        value = self._match_option(state, text)
        if value:
            self._value(state, value, out)
            return
        self._keep_links(state, text)
        handler = getattr(self, f"_text_{state['step']}", None)
        if handler and handler(state, text, out):
            return
        if self._maybe_faq(state, text, out):
            return
        out.append(self._msg("not_understood"))
        out.extend(self._prompt(state))

    def _value(self, state: dict, value: str, out: list[dict]) -> None:
        if value == "cases" or value.startswith(("case:", "act:", "rem:")):
            self.tracker.value(state, value, out)
            return
        if value.startswith(GLOBAL_PREFIXES) or value == "go:faq_topics":
            self._global(state, value, out)
            return
        if value == "restart":
            raise _Restart
        if value.startswith("go:"):
            self._push(state)
            state["step"] = value[3:]
            out.extend(self._prompt(state))
            return
        getattr(self, f"_value_{state['step']}")(state, value, out)

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
        if result.links:
            out.append(self._msg("link_kept", links="\n".join(result.links)))
        best = max((c["score"] for c in result.candidates if not c["subtype"].startswith("out_of_scope")), default=0)
        case["candidates"] = [c["subtype"] for c in result.candidates
                              if not c["subtype"].startswith("out_of_scope") and c["score"] >= max(0.2, best / 2)
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
        state["step"] = "confirm"
        state["pending"]["unsure"] = bool(result.unsure)
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

    def _value_confirm(self, state: dict, value: str, out: list[dict]) -> None:
        self._choose_subtype(state, value[4:], out)

    def _text_pick_type(self, state: dict, text: str, out: list[dict]) -> bool:
        """A fuller description typed instead of picking a type is read again."""
        if len(normalise(text).compact) < self.flow.limits["min_describe_chars"] * 2:
            return False
        state["step"] = "describe"
        return self._text_describe(state, text, out)

    def _value_pick_type(self, state: dict, value: str, out: list[dict]) -> None:
        self._push(state)
        state["pending"]["type"] = value[5:]
        state["step"] = "pick_subtype"
        out.extend(self._prompt(state))

    def _value_pick_subtype(self, state: dict, value: str, out: list[dict]) -> None:
        self._choose_subtype(state, value[4:], out, announce=True)

    def _choose_subtype(self, state: dict, sid: str, out: list[dict], announce: bool = False) -> None:
        self._push(state)
        case = state["case"]
        case["subtype"] = sid
        case["type"] = taxonomy.type_of(sid)
        case.pop("out_of_scope", None)
        if announce:
            out.append(self._msg("type_chosen", **self.card.titles(sid)))
        self._after_type(state, out)

    def _after_type(self, state: dict, out: list[dict]) -> None:
        case = state["case"]
        if case["links"] and case["platform"]:
            out.append(self._msg("where_platform_from_link", platform=self.card.platform_name(case["platform"])))
            self._to_facts(state, out)
        elif case["platform"]:
            out.append(self._msg("where_platform", platform=self.card.platform_name(case["platform"])))
            state["step"] = "link"
            out.extend(self._prompt(state))
        else:
            state["step"] = "where"
            out.extend(self._prompt(state))

    def _text_where(self, state: dict, text: str, out: list[dict]) -> bool:
        norm = normalise(text)
        platform, _ = self.clf.platforms.resolve(norm)
        if norm.links:
            self._push(state)
            state["case"]["platform"] = platform or state["case"]["platform"]
            if platform:
                out.append(self._msg("where_platform_from_link", platform=self.card.platform_name(platform)))
            self._to_facts(state, out)
            return True
        if platform:
            self._value_where(state, f"platform:{platform}", out)
            return True
        return False

    def _value_where(self, state: dict, value: str, out: list[dict]) -> None:
        self._push(state)
        pid = value.split(":", 1)[1]
        state["case"]["platform"] = None if pid == "none" else pid
        state["step"] = "link"
        out.extend(self._prompt(state))

    def _text_link(self, state: dict, text: str, out: list[dict]) -> bool:
        norm = normalise(text)
        if norm.links:
            self._push(state)
            platform, _ = self.clf.platforms.resolve(norm)
            if platform and not state["case"]["platform"]:
                state["case"]["platform"] = platform
            self._to_facts(state, out)
            return True
        return False

    def _value_link(self, state: dict, value: str, out: list[dict]) -> None:
        self._push(state)
        out.append(self._msg("no_link_note"))
        self._to_facts(state, out)

    def _to_facts(self, state: dict, out: list[dict]) -> None:
        case = state["case"]
        queue = [f["flag"] for f in self.flow.facts
                 if case["type"] in f["types"] and f["flag"] not in case["flags"]]
        state["pending"]["facts"] = queue
        self._next_fact(state, out)

    def _next_fact(self, state: dict, out: list[dict]) -> None:
        queue = state["pending"].get("facts") or []
        if queue:
            state["step"] = "facts"
        else:
            state["step"] = "enterprise" if not state["case"]["enterprise"] else "province"
        out.extend(self._prompt(state))

    def _value_facts(self, state: dict, value: str, out: list[dict]) -> None:
        self._push(state)
        queue = state["pending"]["facts"]
        flag = queue.pop(0)
        case = state["case"]
        case["asked"].append(flag)
        if value == "yes" and flag not in case["flags"]:
            case["flags"] = [f for f in taxonomy.FLAGS if f in case["flags"] or f == flag]
        self._next_fact(state, out)

    def _text_enterprise(self, state: dict, text: str, out: list[dict]) -> bool:
        if self._maybe_faq(state, text, out):
            return True
        self._push(state)
        state["case"]["enterprise"] = text[:100]
        state["step"] = "province"
        out.extend(self._prompt(state))
        return True

    def _value_enterprise(self, state: dict, value: str, out: list[dict]) -> None:
        self._push(state)
        state["step"] = "province"
        out.extend(self._prompt(state))

    def _text_province(self, state: dict, text: str, out: list[dict]) -> bool:
        from knowledge.provinces import match_province
        pid = match_province(self.kb, text)
        if pid:
            self._value_province(state, f"province:{pid}", out)
            return True
        if self._maybe_faq(state, text, out):
            return True
        out.append(self._msg("province_unknown", text=text[:20]))
        out.extend(self._prompt(state))
        return True

    def _value_province(self, state: dict, value: str, out: list[dict]) -> None:
        pid = value.split(":", 1)[1]
        if pid == "other":
            out.append(self._msg("ask_province"))
            return
        self._push(state)
        state["case"]["province"] = pid
        state["step"] = "role"
        out.extend(self._prompt(state))

    def _value_role(self, state: dict, value: str, out: list[dict]) -> None:
        self._push(state)
        state["case"]["reporter_role"] = value.split(":", 1)[1]
        state["step"] = "result"
        out.extend(self.card.result(state["case"]))
        out.extend(self._prompt(state))

    def _value_result(self, state: dict, value: str, out: list[dict]) -> None:
        if value == "draft":
            out.append(self.card.draft_file(state["case"]))
        elif value == "save":
            out.append({"effect": "save_case", "case": self.card.case_record(state["case"])})

    _value_done = _value_result

    def _value_track(self, state: dict, value: str, out: list[dict]) -> None:
        self.tracker.track_value(state, value, out)

    def _text_track(self, state: dict, text: str, out: list[dict]) -> bool:
        return self.tracker.track_text(state, text, out)

    def _text_result(self, state: dict, text: str, out: list[dict]) -> bool:
        if self._maybe_faq(state, text, out):
            return True
        # a new description after a finished plan starts a new intake
        lang = state["lang"]
        state.clear()
        state.update(new_state(), lang=lang)
        return self._text_describe(state, text, out)

    _text_done = _text_result

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
            self.tracker.file(state, {k: event.get(k) for k in ("size", "ref", "mime", "sha256")} | {"name": name}, out)
            return
        else:
            state["case"]["attachments"].append(
                {k: event.get(k) for k in ("name", "size", "ref", "mime", "sha256")} | {"name": name})
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
        elif name == "help":
            out.append(self._msg("help"))
            out.extend(self._prompt(state))
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
        if value.startswith("faq:"):
            out.extend(self.card.faq_answer(value[4:]))
        elif value == "go:faq_topics":
            out.append(self.card.topics_menu())
            return
        elif value.startswith("topic:"):
            out.append(self.card.topic_menu(value[6:]))
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
        if step == "confirm":
            key = "unsure" if state["pending"].get("unsure") else "confirm_reading"
            return [self._msg(key, buttons=self._buttons(state))]
        if step == "pick_subtype":
            tid = state["pending"].get("type")
            return [self._msg("pick_subtype", buttons=self._buttons(state), type_title=self.kb.types[tid]["title"])]
        if step == "out_of_scope":
            return self.card.out_of_scope(case.get("out_of_scope", "out_of_scope.other"), self._buttons(state))
        if step == "link":
            name = self.card.platform_name(case["platform"]) if case["platform"] else "该网站"
            return [self._msg("ask_link_for_platform", platform=name, buttons=self._buttons(state))]
        if step == "facts":
            flag = state["pending"]["facts"][0]
            return [self._msg("ask_fact", question=self.kb.flags[flag]["question"], buttons=self._buttons(state))]
        if step == "track":
            return self.tracker.prompt(state)
        if step in ("result", "done"):
            return [self._msg("result_actions", buttons=self._buttons(state))]
        prompt = self.flow.steps[step].get("prompt")
        return [self._msg(prompt, buttons=self._buttons(state))] if prompt else []

    def _options(self, state: dict) -> list[dict]:
        step = state["step"]
        spec = self.flow.steps[step].get("buttons")
        if spec != "dynamic":
            return list(self.flow.buttons.get(spec, []))
        if step == "confirm":
            opts = [{"label": self.card.subtype_label(sid), "value": f"sub:{sid}"}
                    for sid in state["case"]["candidates"]]
            return opts + [self.flow.none_of_these]
        if step == "pick_subtype":
            tid = state["pending"].get("type")
            return [{"label": self.kb.subtypes[sid]["title"], "value": f"sub:{sid}"}
                    for sid in self.kb.subtypes if taxonomy.type_of(sid) == tid]
        if step == "track":
            return self.tracker.options(state)
        return []

    def _buttons(self, state: dict) -> list[list[dict]]:
        return [[o] for o in self._options(state)]

    def _allowed(self, state: dict, value: str) -> bool:
        if value.startswith("faq:"):
            return value[4:] in self.kb.faq
        if value.startswith("topic:"):
            return value[6:] in self.flow.topics
        if value in ("show:cases", "show:laws", "go:faq_topics", "restart"):
            return True
        if self.tracker.allowed(state, value):
            return True
        return any(o["value"] == value for o in self._options(state))

    def _match_option(self, state: dict, text: str) -> str | None:
        """Free text at a button step: a number, the option's words, yes/no words."""
        options = self._options(state) + self.tracker.offered(state)
        t = to_simplified_lower(text)
        if t.isdigit():
            n = int(t)
            return options[n - 1]["value"] if 1 <= n <= len(options) else None
        values = {o["value"] for o in options}
        if {"yes", "no"} <= values:
            for answer, words in self.flow.answers.items():
                if t.rstrip("。.!!") in words:
                    return answer
        labels = {to_simplified_lower(o["label"]): o["value"] for o in options}
        if t in labels:
            return labels[t]
        bare = t.rstrip("。.!！")
        for o in options:
            if bare in (o.get("words") or ()):
                return o["value"]
        if state["step"] in ("describe", "enterprise") or len(t) < 2:
            return None   # free text expected: only exact words pick a button
        best = process.extractOne(t, list(labels), scorer=fuzz.partial_ratio, score_cutoff=90)
        if best and len(t) <= 2 * len(best[0]) + 4:
            return labels[best[0]]
        return None

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
        return state

    def _note_language(self, state: dict, text: str) -> None:
        """Reply in the script the user writes; a short answer does not switch back."""
        if is_traditional(text):
            state["lang"] = "hant"
        elif len(set(_SIMPLIFIED_ONLY.findall(text))) >= 2:
            state["lang"] = "hans"

    def _msg(self, key: str, buttons: list[list[dict]] | None = None, **values) -> dict:
        reply = {"text": self.flow.text(key, **values)}
        if buttons:
            reply["buttons"] = buttons
        return reply

    def _localise(self, state: dict, replies: list[dict]) -> list[dict]:
        """Chinese punctuation, and Traditional characters for users who write them."""
        convert = to_traditional if state.get("lang") == "hant" else (lambda t: t)

        def finish(text: str) -> str:
            return convert(typeset(text))

        out = []
        for r in replies:
            r = dict(r)
            if "text" in r:
                r["text"] = finish(r["text"])
            if "buttons" in r:
                r["buttons"] = [[dict(b, label=finish(b["label"])) for b in row] for row in r["buttons"]]
            if "file" in r:
                r["file"] = dict(r["file"], content=finish(r["file"]["content"]))
            out.append(r)
        return out


class _Restart(Exception):
    pass


def typeset(text: str) -> str:
    """Full-width punctuation where it stands next to Chinese; links are left alone."""
    for _ in range(3):      # nested brackets: ")" after ")" is converted on the next pass
        done = _PUNCT.sub(lambda m: _FULL[m.group(0)], text)
        if done == text:
            break
        text = done
    return text


def to_simplified_lower(text: str) -> str:
    return normalise(text).text


def _looks_binary(text: str) -> bool:
    sample = text[:500]
    odd = sum(1 for c in sample if not (c.isprintable() or c in "\n\t"))
    return odd > max(3, len(sample) // 10)


def _classifier_for(kb):
    from knowledge.classifier import Classifier
    return Classifier(kb)
