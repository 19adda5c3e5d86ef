"""The channel plan of a case: which steps of routing.yaml apply, in order, with whom to contact.

A plan is shown up front, before anything has happened, so a step's
conditions fall in two groups:

- facts of the case, known now: ``always``, ``flag:<id>``, ``province_unknown``
  and ``cross_region`` (huqi cannot know in which province a platform or an
  account sits, so a ``cross_platform`` case counts as cross-region; the
  dialog may also say so explicitly);
- follow-ups that may happen later: ``no_response`` and ``refused``.

A step is in the plan when its ``when`` holds now or after a follow-up, its
``and_when`` (if any) likewise, and none of its ``unless`` holds now. When a
follow-up is needed the step carries ``"if"``: the first such condition as
written in the data (``"no_response"`` or ``"refused"``), and ``"if_any"``:
all of them, so the dialog can say "如果平台不处理…". Steps that apply now
have ``"if": None``.
"""
from __future__ import annotations

from .cite import cite

FOLLOW_UPS = ("no_response", "refused")
ESCALATION = ("platform", "province", "central")   # the reminder ladder


def _list(value) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def facts(kb, *, platform: str | None, province: str | None, flags, cross_region: bool | None = None) -> set[str]:
    """The conditions of routing.yaml that hold for the case now."""
    held = {"always"} | {f"flag:{f}" for f in flags or ()}
    if not province or province not in kb.provinces:
        held.add("province_unknown")
    if cross_region or (cross_region is None and "cross_platform" in (flags or ())):
        held.add("cross_region")
    return held


def _needs(conditions: list[str], now: set[str]) -> tuple[bool, list[str]]:
    """(can hold, follow-ups it waits for — [] when it holds now)."""
    if not conditions:
        return True, []
    if any(c in now for c in conditions):
        return True, []
    later = [c for c in conditions if c in FOLLOW_UPS]
    return bool(later), later


def _text(value) -> str:
    return value.strip() if isinstance(value, str) else ""


def contact(kb, channel: str, *, platform: str | None = None, province: str | None = None) -> dict:
    """Whom to contact on a channel, from platforms.yaml / channels.yaml; never an invented detail.

    Every contact has "name" (whom: 微博, 广东省委网信办, 12377's centre, 公安机关, 人民法院),
    "source" and "cite"; by channel also:
      platform: platform, how, url, verified
      province: province, province_name, office, portal, url, verified, other_channels, directory_hint
                (directory_hint, 12377's directory, only when no portal URL is known)
      central:  short_name, hotline, website, url (= enterprise_zone.url), enterprise_zone {name, url,
                verified}, verified, directory_hint (only when the province is unknown)
      police:   office, hotline, verified
    An empty string means no source gives it.
    """
    ch = kb.channels or {}
    central = ch.get("central") or {}
    hint = _text(central.get("directory_hint"))
    hint_source = central.get("directory_hint_source") or central.get("source")
    if channel == "platform":
        p = kb.platforms.get(platform) if platform else None
        if not p:
            return {"platform": None, "name": "", "how": "", "url": "", "verified": False,
                    "source": [], "cite": ""}
        c = p.get("complaint") or {}
        return {"platform": platform, "name": p.get("name", ""), "how": _text(c.get("how")),
                "url": c.get("url") or "", "verified": bool(c.get("verified")),
                "source": c.get("source"), "cite": cite(kb, c.get("source"))}
    if channel == "province":
        p = kb.provinces.get(province) if province else None
        if not p:
            return {"province": None, "province_name": "", "name": "", "office": "", "portal": "", "url": "",
                    "verified": False,
                    "other_channels": [], "directory_hint": hint, "source": hint_source,
                    "cite": cite(kb, hint_source)}
        portal = p.get("portal") or {}
        url = portal.get("url") or ""
        out = {"province": province, "province_name": p.get("name", ""),
               "name": p.get("office") or p.get("name", ""), "office": p.get("office", ""),
               "portal": portal.get("name") or "", "url": url, "verified": bool(portal.get("verified")),
               "other_channels": [{"name": o.get("name", ""), "url": o.get("url") or "",
                                   "verified": bool(o.get("verified"))}
                                  for o in p.get("other_channels") or [] if isinstance(o, dict)],
               "directory_hint": "" if url else hint,
               "source": portal.get("source") or p.get("source"),
               "cite": cite(kb, portal.get("source") or p.get("source"))}
        return out
    if channel == "central":
        zone = central.get("enterprise_zone") or {}
        return {"name": central.get("name", ""), "short_name": central.get("short_name", ""),
                "hotline": central.get("hotline") or "", "website": central.get("website") or "",
                "url": zone.get("url") or "",     # where to submit: the enterprise zone
                "enterprise_zone": {"name": zone.get("name", ""), "url": zone.get("url") or "",
                                    "verified": bool(zone.get("verified"))},
                "verified": bool(central.get("verified")),
                # how to find the provincial portal through 12377, when huqi does not know the province
                "directory_hint": "" if province in kb.provinces else hint,
                "source": central.get("source"), "cite": cite(kb, central.get("source"))}
    if channel == "police":
        block = ch.get("police") or {}
        return {"name": block.get("name", ""), "office": block.get("office", ""),
                "hotline": block.get("hotline") or "", "verified": bool(block.get("verified")),
                "source": block.get("source"), "cite": cite(kb, block.get("source"))}
    if channel == "court":
        block = ch.get("courts") or {}
        return {"name": block.get("name", ""), "source": block.get("source"),
                "cite": cite(kb, block.get("source"))}
    return {}


def channel_plan(kb, *, platform: str | None, province: str | None, flags: list[str], type_id: str,
                 cross_region: bool | None = None) -> list[dict]:
    """The applicable steps of routing.yaml, sorted by `order` (stable), each with its contact.

    Out-of-scope (or unknown) types get an empty plan: see `out_of_scope_advice`.
    """
    if type_id not in kb.types or type_id == "out_of_scope":
        return []
    now = facts(kb, platform=platform, province=province, flags=flags, cross_region=cross_region)
    plan = []
    for step in kb.routing.get("steps") or []:
        ok_when, wait_when = _needs(_list(step.get("when")), now)
        ok_and, wait_and = _needs(_list(step.get("and_when")), now)
        if not (ok_when and ok_and):
            continue
        if any(u in now for u in _list(step.get("unless"))):
            continue
        waits = list(dict.fromkeys(wait_when + wait_and))
        channel = step.get("channel")
        plan.append({
            "id": step["id"],
            "channel": channel,
            "order": step.get("order", 1),
            "kind": step.get("kind", "do"),
            "what": _text(step.get("what")),
            "source": step.get("source"),
            "cite": cite(kb, step.get("source")),
            "contact": contact(kb, channel, platform=platform, province=province),
            "if": waits[0] if waits else None,
            "if_any": waits,
        })
    plan.sort(key=lambda s: s["order"])
    return plan


def next_channel(kb, plan: list[dict], current_step_id: str) -> dict | None:
    """The next escalation step after `current_step_id` (platform -> province -> central), or None.

    Only steps of the plan that the user does (`kind: do`) after a follow-up
    (`if` set) on a higher rung of the ladder count.
    """
    current = next((s for s in plan if s["id"] == current_step_id), None)
    if current is None:
        step = next((s for s in kb.routing.get("steps") or [] if s.get("id") == current_step_id), None)
        if step is None:
            return None
        current = {"channel": step.get("channel")}
    if current["channel"] not in ESCALATION:
        return None
    rung = ESCALATION.index(current["channel"])
    for step in plan:
        if (step["kind"] == "do" and step["if"] and step["channel"] in ESCALATION
                and ESCALATION.index(step["channel"]) > rung):
            return step
    return None


def no_response_days(kb) -> int:
    """huqi's own reminder interval before escalating (routing.yaml); not a legal time limit."""
    try:
        return int(kb.routing.get("no_response_days") or 7)
    except (TypeError, ValueError):
        return 7


def out_of_scope_advice(kb, subtype: str | None) -> dict | None:
    """Where to send the user instead, for an out_of_scope sub-type (routing.yaml out_of_scope)."""
    for entry in kb.routing.get("out_of_scope") or []:
        if entry.get("subtype") == subtype:
            return {"subtype": subtype, "what": _text(entry.get("what")),
                    "source": entry.get("source"), "cite": cite(kb, entry.get("source"))}
    return None
