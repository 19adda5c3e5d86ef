"""What the platform is expected to do with a report (WS Art. 20-26), read from measures.yaml.

How a measure applies to a case (type + flags), as the header of measures.yaml says:

- ``expected: false`` (Art. 24, the poster's objection): never listed;
- with ``type_basis``: the types (or sub-types) listed there trigger it, and so
  does each of its ``flags`` (account_action: impersonation and the two
  interference sub-types of Art. 23(4), negative_aggregation and extortion;
  repeat_offender, extortion, cross_platform);
- otherwise ``types`` (if any) is where it applies; with ``flags`` one of them
  must be set (private_temporarily: key_moment; dispute_label: dispute;
  stakeholder_referral; no_paid_deletion: extortion); without ``flags`` it is
  the basic outcome of those types (delete);
- measures with neither types nor flags (grading, ledger, malicious_refused)
  describe the platform's work in general and are not listed here;
- when ``dispute`` is the only flag that triggers anything, the dispute label
  (Art. 22) is the expected outcome instead of the basic one (delete).
"""
from __future__ import annotations

from typing import Iterable

from .cite import cite

DISPUTE = "dispute"


def _sources(value) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _basis(kb, m: dict, type_id: str, flags: list[str], subtype: str | None = None) -> tuple[bool, bool, list[dict]]:
    """(applies, basic outcome, basis entries) of one measure for the case."""
    if m.get("expected") is False:
        return False, False, []
    mflags = list(m.get("flags") or [])
    types = list(m.get("types") or [])
    type_basis = {b.get("type") or b.get("subtype"): b for b in m.get("type_basis") or [] if isinstance(b, dict)}
    flag_basis = {b.get("flag"): b for b in m.get("flag_basis") or [] if isinstance(b, dict)}
    hits = [f for f in flags if f in mflags]

    def flag_entries() -> list[dict]:
        return [{"flag": f, **{k: flag_basis.get(f, {}).get(k) for k in ("item", "note", "source")}}
                for f in hits]

    if type_basis:
        basis = []
        key = type_id if type_id in type_basis else subtype if subtype in type_basis else None
        if key:
            b = type_basis[key]
            basis.append({"type": key, "item": b.get("item"), "note": b.get("note"), "source": b.get("source")})
        basis += flag_entries()
        return bool(basis), False, basis
    if types and type_id not in types:
        return False, False, []
    if mflags:
        return bool(hits), False, flag_entries()
    if types:
        return True, True, []
    return False, False, []


def expected_measures(kb, type_id: str, flags: Iterable[str], subtype: str | None = None) -> list[dict]:
    """The measures the platform is expected to take, in the order of measures.yaml.

    `type_id` may also be a sub-type id ("interference.extortion"); `subtype`
    matters where an article item covers some sub-types only (Art. 23(4)).

    Each: {"id", "title", "article", "when", "cite", "source"} plus "basis"
    (the flags/types that trigger it, each with the article item, an optional
    note and its source), "items" (those article items, e.g. "第二十三条(四)")
    and "advice" (plain-words advice for the enterprise, may be "").
    """
    if type_id in kb.subtypes:
        type_id, subtype = kb.subtypes[type_id]["type"], type_id
    if type_id not in kb.types or type_id == "out_of_scope":
        return []
    if subtype and (kb.subtypes.get(subtype) or {}).get("type") != type_id:
        subtype = None
    flags = list(dict.fromkeys(flags or ()))
    found = []
    triggering: set[str] = set()
    for mid, m in kb.measures.items():
        applies, basic, basis = _basis(kb, m, type_id, flags, subtype)
        if not applies:
            continue
        triggering |= {b["flag"] for b in basis if "flag" in b}
        found.append((m, basic, basis))
    if triggering == {DISPUTE}:
        found = [f for f in found if not f[1]]
    out = []
    for m, basic, basis in found:
        basis_sources = [s for b in basis for s in _sources(b.get("source"))]
        source = list(dict.fromkeys(basis_sources)) or m.get("source")
        out.append({
            "id": m["id"],
            "title": m.get("title", ""),
            "article": m.get("article", ""),
            "when": (m.get("when") or "").strip(),
            "cite": cite(kb, source),
            "source": source,
            "basis": basis,
            "items": list(dict.fromkeys(b["item"] for b in basis if b.get("item"))),
            "advice": (m.get("advice") or "").strip(),
        })
    return out
