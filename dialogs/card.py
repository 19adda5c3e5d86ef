"""Build the replies that present knowledge: the reading, the result card, FAQ answers, case studies."""
from __future__ import annotations

from knowledge import taxonomy
from knowledge.cite import cite
from knowledge.drafting import draft_filename, draft_report
from knowledge.evidence import checklist, type_note
from knowledge.measures import expected_measures
from knowledge.provinces import province_name
from knowledge.routing import channel_plan, out_of_scope_advice
from knowledge.text import to_simplified, to_traditional

from .flow import Flow


class CardBuilder:
    def __init__(self, kb, flow: Flow):
        self.kb = kb
        self.flow = flow

    def _msg(self, key: str, buttons=None, **values) -> dict:
        reply = {"text": self.flow.text(key, **values)}
        if buttons:
            reply["buttons"] = buttons
        return reply

    # ── names ───────────────────────────────────────────────────────
    def titles(self, sid: str) -> dict:
        sub = self.kb.subtypes[sid]
        typ = self.kb.types[taxonomy.type_of(sid)]
        return {"type_title": typ["title"], "subtype_title": sub["title"], "cite": cite(self.kb, sub["source"])}

    def subtype_label(self, sid: str) -> str:
        t = self.titles(sid)
        return self.flow.text("subtype_label", type_title=t["type_title"], subtype_title=t["subtype_title"])

    def platform_name(self, pid: str | None) -> str:
        p = self.kb.platforms.get(pid or "")
        return p["name"] if p else self.flow.text("other_site")

    def province_name(self, pid: str | None) -> str:
        return province_name(self.kb, pid)

    def join(self, items, limit: int | None = None) -> str:
        items = [str(i) for i in items if str(i)]
        more = limit is not None and len(items) > limit
        text = self.flow.text("list_sep").join(items[:limit] if limit is not None else items)
        return text + (self.flow.text("list_more") if more else "")

    # ── reading and out of scope ────────────────────────────────────
    def reading(self, sid: str) -> list[dict]:
        t = self.titles(sid)
        explanation = self.kb.subtypes[sid]["explanation"].strip()
        return [self._msg("reading", **t), self._msg("reading_why", explanation=explanation)]

    def out_of_scope(self, sid: str, buttons) -> list[dict]:
        sub = self.kb.subtypes[sid]
        advice = out_of_scope_advice(self.kb, sid)
        return [
            self._msg("out_of_scope", subtype_title=sub["title"], explanation=sub["explanation"].strip()),
            self._msg("out_of_scope_where", where=advice["what"], cite=advice["cite"]) if advice
            else self._msg("not_our_topic"),
            self._msg("out_of_scope_next", buttons=buttons),
        ]

    # ── the result card ─────────────────────────────────────────────
    def result(self, case: dict) -> list[dict]:
        """The first message: type and why, the one thing to do now, the top materials (one phone screen)."""
        sid = case["subtype"]
        sids = [x for x in case.get("subtypes") or [sid] if x in self.kb.subtypes] or [sid]
        t = self.titles(sid)
        titles = self.join(self.kb.subtypes[x]["title"] for x in sids)
        why = _first_sentence(self.kb.subtypes[sid]["explanation"])
        parts = [self.flow.text("card_head", type_title=t["type_title"], subtype_titles=titles, cite=t["cite"],
                                why=why)]
        flags = case.get("flags") or []
        if flags:
            parts.append(self.flow.text("card_flags", flags=self.join(self.kb.flags[f]["title"] for f in flags)))
        shown = self._plan_shown(case)
        now = next((s for s in shown if s.get("kind", "do") == "do" and not s.get("if")), None)
        if now:
            parts.append(self.flow.text("card_now", channel=self.flow.channels.get(now["channel"], now["channel"]),
                                        what=_first_sentence(now["what"])))
            if now.get("contact_line"):
                parts.append(self._contact(now, _first_line(now["contact_line"])))
            # a channel to go to at the same time (the police, where money is demanded)
            also = next((s for s in shown if s.get("kind", "do") == "do" and not s.get("if")
                         and s["channel"] != now["channel"]), None)
            if also:
                parts.append(self.flow.text("card_also", channel=self.flow.channels.get(also["channel"], also["channel"]),
                                            what=_first_sentence(also["what"])))
        if not case.get("links"):
            parts.append(self.flow.text("card_no_link"))
        top = self.top_materials(case)
        if top:
            parts.append(self.flow.text("card_materials", items=self.join(i["title"] for i in top)))
        parts.append(self.flow.text("card_more"))
        text = "\n".join(parts)
        limit = self.flow.limits["card_chars"]
        if len(text) > limit:           # the reason is what gives way: the article stays
            cut = len(text) - limit + 1
            text = text.replace(why, why[: max(0, len(why) - cut)] + "…", 1)
        return [{"text": text}]

    def top_materials(self, case: dict) -> list[dict]:
        """The few materials that matter most: what the user must bring (not what huqi's draft supplies)."""
        items = [e for e in self.evidence(case) if not self._provided_by_intake(case, e["id"])]
        rank = {"agent": 1, "acceptance": 2}
        first = sorted((e for e in items if e.get("relevant")), key=lambda e: self._specificity(case, e["id"]))[:1]
        rest = sorted((e for e in items if e not in first and e["group"] != "type"), key=lambda e: rank.get(e["group"], 3))
        return (first + rest)[: self.flow.limits["top_materials"]]

    def _specificity(self, case: dict, item_id: str) -> tuple:
        """Items tagged with one of the case's flags first, then those aimed at fewer sub-types."""
        block = (self.kb.evidence.get("by_type") or {}).get(case["type"]) or {}
        entry = next((e for e in block.get("items") or [] if e.get("id") == item_id), {})
        flagged = bool(set(entry.get("flags") or []) & set(case.get("flags") or []))
        return (not flagged, len(entry.get("subtypes") or []) or 99)

    def _provided_by_intake(self, case: dict, item_id: str) -> bool:
        """Materials the intake already holds (the link, the contact) or huqi's draft is (statement, pledge)."""
        if item_id == "url_or_locator":
            return bool(case.get("links"))
        if item_id == "reporter_contact":
            return bool(case.get("contact"))
        return item_id in ("statement", "truth_pledge")

    def plan_view(self, case: dict) -> list[dict]:
        """The whole channel plan, with contacts."""
        flags = case.get("flags") or []
        out = []
        if flags:
            out.append(self._msg("result_flags", flags=self.join(self.kb.flags[f]["title"] for f in flags)))
        lines = [self.flow.text("result_plan_header")]
        for n, step in enumerate(self._plan_shown(case), 1):
            channel = self.flow.channels.get(step["channel"], step["channel"])
            values = dict(n=n, channel=channel, what=step["what"].strip(), cite=step.get("cite", ""))
            if step.get("if"):
                lines.append(self.flow.text("result_plan_if", condition=self.flow.conditions.get(step["if"], step["if"]), **values))
            else:
                lines.append(self.flow.text("result_plan_step", **values))
            contact = step.get("contact_line")
            if contact:
                lines.append(self._contact(step, contact))
        out.append({"text": "\n".join(lines)})
        measures = self.measures(case, flags)
        if measures:
            lines = [self.flow.text("result_measures_header")]
            lines += [self.flow.text("result_measure", title=m["title"], when=_first_line(m["when"]), cite=m["cite"])
                      for m in measures]
            out.append({"text": "\n".join(lines)})
        return out

    def measures(self, case: dict, flags) -> list[dict]:
        """Measures expected for any of the case's sub-types (some items cover some sub-types only)."""
        found: dict[str, dict] = {}
        for sid in case.get("subtypes") or [case.get("subtype")]:
            for m in expected_measures(self.kb, case["type"], flags, subtype=sid):
                found.setdefault(m["id"], m)
        return list(found.values())

    def _contact(self, step: dict, contact: str) -> str:
        """A channel's contact line; what no seed says is general knowledge, worded as such."""
        key = "result_contact"
        if not (step.get("contact") or {}).get("verified", True):
            key = "result_contact_unverified" if step["channel"] == "platform" else "result_contact_unverified_official"
        return self.flow.text(key, contact=contact)

    def materials_view(self, case: dict) -> list[dict]:
        """Every material with its hint."""
        lines = [self.flow.text("result_evidence_header")]
        for n, item in enumerate(self.evidence(case), 1):
            lines.append(self.flow.text("result_evidence_item", n=n, title=item["title"], cite=item["cite"],
                                        hint=_first_line(item["hint"])))
        note = type_note(self.kb, case["type"])
        if note and note.get("text"):
            lines.append(self.flow.text("result_evidence_note", note=note["text"]))
        return [{"text": "\n".join(lines)}]

    def draft_view(self, case: dict, stored: dict | None = None) -> list[dict]:
        """The draft as text (Simplified: the platforms and offices are on the mainland), with its buttons.
        A saved case's draft is written from the stored case (its contact, its materials)."""
        buttons = [[dict(b)] for b in self.flow.buttons["draft"]]
        record = stored if stored is not None else self._draft_record(case)
        return [{"text": self.flow.text("draft_view")},
                {"text": to_simplified(draft_report(self.kb, record)), "script": "hans", "buttons": buttons}]

    def _draft_record(self, case: dict) -> dict:
        record = self.case_record(case)
        record["id"] = case.get("case_id") or _ascii(case.get("subtype") or case.get("type"))
        return record

    def _plan_shown(self, case: dict) -> list[dict]:
        """The plan as shown: an optional step is dropped where its channel is already a step
        to take, and a channel's contact is printed once."""
        plan = self.plan(case)
        doing = {s["channel"] for s in plan if s.get("kind") == "do" and not s.get("if")}
        shown, contacts = [], set()
        for step in plan:
            if step.get("kind") == "option" and step["channel"] in doing:
                continue
            line = _contact_line(step.get("contact") or {})
            step = dict(step, contact_line=line if line not in contacts else "")
            contacts.add(line)
            shown.append(step)
        return shown

    def plan(self, case: dict) -> list[dict]:
        key = ("plan", case.get("platform"), case.get("province"), tuple(case.get("flags") or ()), case["type"])
        return self._cached(key, lambda: channel_plan(self.kb, platform=key[1], province=key[2], flags=list(key[3]),
                                                      type_id=key[4]))

    def evidence(self, case: dict) -> list[dict]:
        """The checklist; with several sub-types, the items of each (once, in order)."""
        subtypes = [s for s in case.get("subtypes") or [] if taxonomy.type_of(s) == case["type"]] or [case.get("subtype")]
        key = ("evidence", case["type"], case.get("reporter_role") == "agent", tuple(subtypes),
               tuple(case.get("flags") or ()))

        def build() -> list[dict]:
            merged: dict[str, dict] = {}
            for sid in key[3]:
                for item in checklist(self.kb, key[1], agent=key[2], subtype=sid, flags=list(key[4])):
                    if item["id"] not in merged or item.get("relevant"):
                        merged[item["id"]] = item if item["id"] not in merged else dict(merged[item["id"]], relevant=True)
            return list(merged.values())
        return self._cached(key, build)

    def _cached(self, key: tuple, build) -> list[dict]:
        """Plans and checklists depend only on a few case fields: computed once per combination."""
        cache = self.__dict__.setdefault("_cache", {})
        if key not in cache:
            if len(cache) > 512:
                cache.clear()
            cache[key] = build()
        return list(cache[key])          # callers build new dicts from the items, never change them

    def case_record(self, case: dict) -> dict:
        """Everything the case store keeps about an intake, as plain data."""
        record = {k: case.get(k) for k in ("enterprise", "reporter_role", "reporter_name", "contact", "type",
                                           "subtype", "platform", "province", "description")}
        record["subtypes"] = list(case.get("subtypes") or [case.get("subtype")])
        record["flags"] = list(case.get("flags") or [])
        record["links"] = list(case.get("links") or [])
        record["attachments"] = list(case.get("attachments") or [])
        record["plan"] = [{k: s.get(k) for k in ("id", "channel", "order", "kind", "if", "what", "cite")}
                          for s in self.plan(case)]
        record["evidence"] = [{"id": e["id"], "title": e["title"], "group": e.get("group"),
                               "required": e.get("required", True),
                               "provided": self._provided_by_intake(case, e["id"])
                               and e["id"] not in ("statement", "truth_pledge"),
                               "by_draft": e["id"] in ("statement", "truth_pledge")}
                              for e in self.evidence(case)]
        record["status"] = "draft"
        return record

    def draft_file(self, case: dict, traditional: bool = False, stored: dict | None = None) -> dict:
        """The draft as a file named after the case (or its type before saving)."""
        record = stored if stored is not None else self._draft_record(case)
        # Simplified throughout, the user's own words too: the platforms and offices are on the mainland
        name, content = draft_filename(record), to_simplified(draft_report(self.kb, record))
        if traditional:
            return {"text": self.flow.text("draft_hant_caption"),
                    "file": {"name": name.replace(".txt", "-hant.txt"), "content": to_traditional(content)}}
        return {"text": self.flow.text("draft_file_caption"), "script": "hans",
                "file": {"name": name, "content": content}}

    def evidence_pack(self, case: dict) -> dict:
        """What to gather, each item with its hint, and the links and files already kept: one file."""
        record = self._draft_record(case)
        lines = [self.flow.text("evidence_pack_title", name=case.get("enterprise") or record["id"]), ""]
        marked = {e.get("id") for e in case.get("evidence") or [] if isinstance(e, dict) and e.get("provided")}
        for n, item in enumerate(self.evidence(case), 1):
            if item["id"] in marked or (self._provided_by_intake(case, item["id"])
                                        and item["id"] not in ("statement", "truth_pledge")):
                lines.append(self.flow.text("evidence_pack_provided", n=n, title=item["title"]))
            else:
                lines.append(self.flow.text("evidence_pack_item", n=n, title=item["title"], cite=item["cite"],
                                            hint=_first_line(item["hint"])))
        if case.get("links"):
            lines += ["", self.flow.text("evidence_pack_links")] + [f"- {link}" for link in case["links"]]
        files = [a.get("name") for a in case.get("attachments") or [] if isinstance(a, dict)]
        if files:
            lines += ["", self.flow.text("evidence_pack_files")] + [f"- {f}" for f in files]
        name = draft_filename(record).replace("huqi-report", "huqi-evidence")
        return {"text": self.flow.text("evidence_pack_caption"),
                "file": {"name": name, "content": "\n".join(lines) + "\n"}}

    # ── FAQ, topics, case studies, laws ─────────────────────────────
    def faq_answer(self, faq_id: str) -> list[dict]:
        entry = self.kb.faq[faq_id]
        out = [self._msg("faq_answer", question=entry["question"].strip(), answer=entry["answer"].strip(),
                         cite=cite(self.kb, entry["source"]))]
        related = [self.kb.faq[r] for r in entry.get("related") or [] if r in self.kb.faq][:3]
        if related:
            out.append(self._msg("faq_related", buttons=[[{"label": r["question"], "value": f"faq:{r['id']}"}]
                                                         for r in related]))
        return out

    def topics_menu(self) -> dict:
        topics = {e.get("topic") for e in self.kb.faq.values()}
        buttons = [[{"label": label, "value": f"topic:{t}"}] for t, label in self.flow.topics.items() if t in topics]
        buttons += [[dict(b)] for b in self.flow.buttons["topics_more"]]
        return self._msg("faq_topics", buttons=buttons)

    def topic_menu(self, topic: str) -> dict:
        entries = [e for e in self.kb.faq.values() if e.get("topic") == topic]
        return self._msg("faq_topic", topic=self.flow.topics.get(topic, topic),
                         buttons=[[{"label": e["question"], "value": f"faq:{e['id']}"}] for e in entries])

    def case_studies(self) -> list[dict]:
        out = [self._msg("faq_browse_cases")]
        for c in self.kb.cases.values():
            out.append(self._msg("case_study", title=c["title"], region=c.get("region", ""), year=c.get("year", ""),
                                 summary=c["summary"].strip(), outcome=str(c.get("outcome", "")).strip(),
                                 lesson=str(c.get("lesson", "")).strip(), cite=cite(self.kb, c["source"])))
        return out

    def laws(self) -> dict:
        lines = [self.flow.text("laws_list")]
        for d in self.kb.documents.values():
            if d.get("kind") in ("law", "regulation", "notice", "guidance"):
                lines.append(self.flow.text("law_item", title=d["title"], summary=_first_line(d.get("summary", ""))))
        return {"text": "\n".join(lines)}


def _first_line(text: str) -> str:
    return str(text).strip().splitlines()[0] if str(text).strip() else ""


def _first_sentence(text: str) -> str:
    text = " ".join(str(text).split())
    head, dot, _ = text.partition("。")
    return head + dot


def _ascii(sid) -> str:
    return str(sid or "").replace(".", "-").replace("_", "-")


def _contact_line(contact: dict) -> str:
    parts = [str(contact[k]).strip() for k in ("name", "how", "hotline", "website", "url", "directory_hint")
             if contact.get(k) and str(contact[k]).strip()]
    return ";".join(_first_line(p) for p in parts)
