"""What to gather: the WS Art. 5 acceptance items, then the evidence of the type (Art. 7, 9, 11, 13, 15, 17)."""
from __future__ import annotations

from typing import Iterable

from .cite import cite


def _item(kb, e: dict, group: str, required: bool, relevant: bool = False) -> dict:
    return {
        "id": e["id"],
        "title": e.get("title", ""),
        "article": e.get("article", ""),
        "hint": (e.get("hint") or "").strip(),
        "source": e.get("source"),
        "cite": cite(kb, e.get("source")),
        "group": group,
        "required": required,
        # extras: general advice (never a rule of the WS) and whether the item fits this sub-type/flags
        "tips": [{"text": t.get("text", ""), "verified": bool(t.get("verified"))}
                 for t in e.get("tips") or [] if isinstance(t, dict)],
        "relevant": relevant,
    }


def checklist(kb, type_id: str, *, agent: bool, subtype: str | None = None,
              flags: Iterable[str] = ()) -> list[dict]:
    """Acceptance items (agent-only ones when `agent`), then the type's items.

    Type items tagged (evidence.yaml `subtypes` / `flags`) with the case's
    sub-type or one of its flags come first, each group keeping the file's
    order. Acceptance items are `required`; type items are the kinds of proof
    the article accepts, so they are not all required.
    Out-of-scope or unknown types get [] (nothing to report).
    """
    if type_id not in kb.types or type_id == "out_of_scope":
        return []
    flags = set(flags or ())
    out = []
    for e in kb.evidence.get("acceptance") or []:
        if e.get("agent_only"):
            if agent:
                out.append(_item(kb, e, "agent", True))
        else:
            out.append(_item(kb, e, "acceptance", True))
    block = (kb.evidence.get("by_type") or {}).get(type_id) or {}
    tagged, rest = [], []
    for e in block.get("items") or []:
        tags = set(e.get("subtypes") or []) | set(e.get("flags") or [])
        hit = (subtype is not None and subtype in (e.get("subtypes") or [])) or bool(flags & set(e.get("flags") or []))
        if hit:
            tagged.append(_item(kb, e, "type", False, relevant=True))
        elif subtype is None or not tags:
            # items aimed at other sub-types are left out once the sub-type is known
            rest.append(_item(kb, e, "type", False))
    return out + tagged + rest


def type_note(kb, type_id: str) -> dict | None:
    """The by_type note (e.g. Art. 13: nothing beyond identity proof), or None."""
    block = (kb.evidence.get("by_type") or {}).get(type_id)
    if not isinstance(block, dict) or not (block.get("note") or "").strip():
        return None
    return {"type": type_id, "text": block["note"].strip(), "source": block.get("source"),
            "cite": cite(kb, block.get("source")), "items": len(block.get("items") or [])}


def agent_note(kb) -> dict | None:
    """What an agent (employee, law firm) adds to the report (WS Art. 5(2))."""
    block = kb.evidence.get("agent")
    if not isinstance(block, dict) or not block.get("note"):
        return None
    return {"text": block["note"].strip(), "source": block.get("source"), "cite": cite(kb, block.get("source"))}


def find_item(kb, item_id: str) -> dict | None:
    """The raw evidence.yaml entry (acceptance or by_type) with this id."""
    for e in kb.evidence.get("acceptance") or []:
        if e.get("id") == item_id:
            return e
    for block in (kb.evidence.get("by_type") or {}).values():
        for e in (block or {}).get("items") or []:
            if e.get("id") == item_id:
                return e
    return None
