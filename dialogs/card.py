"""Build the replies that present knowledge: the reading, the result card, FAQ answers, case studies."""
from __future__ import annotations

from knowledge import taxonomy
from knowledge.cite import cite
from knowledge.drafting import draft_filename, draft_report
from knowledge.evidence import checklist, type_note
from knowledge.measures import expected_measures
from knowledge.routing import channel_plan, out_of_scope_advice

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
        return f"{t['type_title']}:{t['subtype_title']}"

    def platform_name(self, pid: str | None) -> str:
        p = self.kb.platforms.get(pid or "")
        return p["name"] if p else "其他网站"

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
        sid, tid = case["subtype"], case["type"]
        flags = case.get("flags") or []
        t = self.titles(sid)
        out = [{"text": self.flow.text("result_header") + "\n"
                + self.flow.text("result_type", explanation=self.kb.subtypes[sid]["explanation"].strip(), **t)}]
        if flags:
            out.append(self._msg("result_flags", flags="、".join(self.kb.flags[f]["title"] for f in flags)))

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
                # what no seed says is general knowledge, worded as such
                key = "result_contact"
                if not (step.get("contact") or {}).get("verified", True):
                    key = "result_contact_unverified" if step["channel"] == "platform" else "result_contact_unverified_official"
                lines.append(self.flow.text(key, contact=contact))
        out.append({"text": "\n".join(lines)})

        measures = expected_measures(self.kb, tid, flags, subtype=sid)
        if measures:
            lines = [self.flow.text("result_measures_header")]
            lines += [self.flow.text("result_measure", title=m["title"], when=_first_line(m["when"]), cite=m["cite"])
                      for m in measures]
            out.append({"text": "\n".join(lines)})

        lines = [self.flow.text("result_evidence_header")]
        for n, item in enumerate(self.evidence(case), 1):
            lines.append(self.flow.text("result_evidence_item", n=n, title=item["title"], cite=item["cite"],
                                        hint=_first_line(item["hint"])))
        note = type_note(self.kb, tid)
        if note and note.get("text"):
            lines.append(self.flow.text("result_evidence_note", note=note["text"]))
        out.append({"text": "\n".join(lines)})

        out.append(self._msg("result_draft"))
        out.append({"text": draft_report(self.kb, self.case_record(case))})
        return out

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
        return channel_plan(self.kb, platform=case.get("platform"), province=case.get("province"),
                            flags=case.get("flags") or [], type_id=case["type"])

    def evidence(self, case: dict) -> list[dict]:
        return checklist(self.kb, case["type"], agent=case.get("reporter_role") == "agent",
                         subtype=case.get("subtype"), flags=case.get("flags") or [])

    def case_record(self, case: dict) -> dict:
        """Everything the case store keeps about an intake, as plain data."""
        record = {k: case.get(k) for k in ("enterprise", "reporter_role", "type", "subtype", "platform",
                                           "province", "description")}
        record["flags"] = list(case.get("flags") or [])
        record["links"] = list(case.get("links") or [])
        record["attachments"] = list(case.get("attachments") or [])
        record["plan"] = [{k: s.get(k) for k in ("id", "channel", "order", "kind", "if", "what", "cite")}
                          for s in self.plan(case)]
        record["evidence"] = [{"id": e["id"], "title": e["title"], "group": e.get("group"),
                               "required": e.get("required", True), "provided": False}
                              for e in self.evidence(case)]
        record["status"] = "draft"
        return record

    def draft_file(self, case: dict) -> dict:
        record = self.case_record(case)
        if case.get("case_id"):
            record["id"] = case["case_id"]
        return {"text": self.flow.text("draft_file_caption"),
                "file": {"name": draft_filename(record), "content": draft_report(self.kb, record)}}

    # ── FAQ, topics, case studies, laws ─────────────────────────────
    def faq_answer(self, faq_id: str) -> list[dict]:
        from knowledge.faq import FaqIndex
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
        buttons += [[{"label": "典型案例", "value": "show:cases"}], [{"label": "法律法规", "value": "show:laws"}]]
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


def _contact_line(contact: dict) -> str:
    parts = [str(contact[k]).strip() for k in ("name", "how", "hotline", "website", "url", "directory_hint")
             if contact.get(k) and str(contact[k]).strip()]
    return ";".join(_first_line(p) for p in parts)
