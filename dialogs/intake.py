"""The intake steps: from a description to the result card (describe, confirm, where, situations,
enterprise, province), and the contact person. Mixed into :class:`dialogs.engine.Engine`, which
interprets the step graph of data/flow.yaml and calls ``_text_<step>`` / ``_value_<step>``.
"""
from __future__ import annotations

import re

from knowledge import taxonomy
from knowledge.provinces import match_province
from knowledge.text import normalise, to_simplified

from . import options
from .contact import PHONE, mask_contact, split_contact


class IntakeSteps:
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
            # read in Simplified: the name goes into a draft for a mainland platform
            case["enterprise"] = _enterprise_in(self.company, to_simplified(text), self.flow.not_enterprise)
        state["pending"]["province_guess"] = self._province_guess(case)
        if getattr(result, "english", False):
            out.append(self._msg("english_note"))
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
                    state["step"] = self.flow.after("describe", "vague")
                    out.append(self._msg("unsure_pick"))
                    out.extend(self._prompt(state))
                    return True
                out.append(self._msg("not_our_topic"))
                out.extend(self._prompt(state))
                state["history"].pop()
                return True
            case["out_of_scope"] = result.subtype
            state["step"] = self.flow.after("describe", "out_of_scope")
            out.extend(self._prompt(state))
            return True
        if not case["candidates"]:
            case["candidates"] = [result.subtype]
        state["step"] = self.flow.after("describe")
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
        state["step"] = self.flow.after("pick_type", "described")
        return self._text_describe(state, text, out)

    def _value_pick_type(self, state: dict, kind: str, arg: str, out: list[dict]) -> None:
        self._push(state)
        state["pending"]["type"] = arg
        state["step"] = self.flow.after("pick_type")
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
        if PHONE.search(text):
            self._set_contact(state, text, out)
            return True
        if self._maybe_faq(state, text, out):
            return True
        result = self.clf.classify(text)
        if result.subtype == "out_of_scope.other" or len(normalise(text).compact) < \
                self.flow.limits["min_describe_chars"] * 2:
            return False       # not a new incident (an old button's words, a greeting): the plan stays
        # a new description after a finished plan starts a new intake
        from .engine import new_state
        lang = state["lang"]
        state.clear()
        state.update(new_state(), lang=lang)
        return self._text_describe(state, text, out)

    def _text_done(self, state: dict, text: str, out: list[dict]) -> bool:
        saved = state["pending"].get("open_case") or state["case"].get("case_id")
        if PHONE.search(text) and saved:
            self.tracker.contact_text(state, saved, text, out)
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
        if not PHONE.search(text):
            out.append(self._msg("contact_bad"))
            out.extend(self._prompt(state))
            return True
        self._set_contact(state, text, out)
        return True

    def _value_contact(self, state: dict, kind: str, arg: str, out: list[dict]) -> None:
        state["step"] = state["pending"].pop("return_to", None) or self.flow.after("contact")
        out.extend(self._prompt(state))

    def _set_contact(self, state: dict, text: str, out: list[dict]) -> None:
        name, phone = split_contact(text)
        case = state["case"]
        case["reporter_name"], case["contact"] = name or None, phone
        out.append(self._msg("contact_saved", contact=mask_contact(name, phone)))
        if state["step"] == "contact":
            state["step"] = state["pending"].pop("return_to", None) or self.flow.after("contact")
        out.extend(self._prompt(state))

    def _draft(self, state: dict, arg: str, out: list[dict]) -> None:
        case = state["case"]
        saved = state["pending"].get("open_case") if state["step"] == "done" else None
        saved = saved or case.get("case_id")
        if saved:
            # saved: the draft is written from the stored case (contact and materials added since)
            state["pending"]["open_case"] = saved
            state["pending"]["then"] = f"draft_{arg}"
            out.append({"effect": "get_case", "case_id": saved})
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
            state["step"] = self.flow.after("result")
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


def company_pattern(spec: dict) -> re.Pattern:
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
