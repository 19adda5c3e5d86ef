"""A cooperative newcomer: answers whatever the engine asks, from what they know about their case."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

ENTERPRISE = "杭州青禾食品有限公司"


@dataclass
class Newcomer:
    description: str
    subtypes: list[str] = field(default_factory=list)     # the readings they recognise (first: the main one)
    flags: list[str] = field(default_factory=list)        # the situations that apply to them
    agent: bool = False
    link: str | None = "https://weibo.com/1234567890/NaBcD1234"
    enterprise: str = ENTERPRISE
    province: str = "浙江"


def texts(replies) -> str:
    return "\n".join(r.get("text", "") for r in replies)


def buttons(replies) -> list[dict]:
    return [b for r in replies for row in r.get("buttons") or [] for b in row]


def values(replies) -> list[str]:
    return [b["value"] for b in buttons(replies)]


def answer(engine, state: dict, replies: list[dict], who: Newcomer) -> dict:
    """What this user sends at the current step (typed as a phone user would, or a button)."""
    step = state["step"]
    offered = values(replies)
    if step in ("confirm", "pick_subtype"):
        subs = [v for v in offered if v.startswith("sub:")]
        wanted = [f"sub:{s}" for s in who.subtypes if f"sub:{s}" in subs]
        if len(wanted) > 1:
            return {"type": "text", "text": " ".join(str(subs.index(v) + 1) for v in wanted)}
        if wanted:
            return {"type": "button", "value": wanted[0]}
        if step == "confirm" and who.subtypes:
            return {"type": "text", "text": "都不是"}
        return {"type": "button", "value": subs[0]}
    if step == "pick_type":
        return {"type": "button", "value": f"type:{who.subtypes[0].split('.')[0]}"}
    if step == "where":
        return {"type": "text", "text": who.link or "不知道"}
    if step == "facts":
        opts = [v for v in offered if v.startswith("facts:")]
        mine = [str(i) for i, v in enumerate(opts, 1)
                if v.split(":", 1)[1] in who.flags or (v == "facts:agent" and who.agent)]
        return {"type": "text", "text": " ".join(mine) if mine else "都没有"}
    if step == "enterprise":
        return {"type": "text", "text": who.enterprise}
    if step == "province":
        guess = state["pending"].get("province_guess")
        pid = engine.card.province_name(guess) if guess else ""
        return {"type": "text", "text": "对的" if pid and pid.startswith(who.province) else who.province}
    raise AssertionError(f"unexpected step {step}: {texts(replies)}")


def run_to_result(engine, who: Newcomer, roundtrip: bool = False, limit: int = 30):
    """Description, then answers until the result card: (state, transcript, turns after the description)."""
    state, replies = engine.start()
    state, replies = engine.handle(state, {"type": "text", "text": who.description})
    transcript = [replies]
    for turns in range(limit):
        if state["step"] == "result":
            return state, transcript, turns
        if roundtrip:
            state = json.loads(json.dumps(state, ensure_ascii=False))
        state, replies = engine.handle(state, answer(engine, state, replies, who))
        transcript.append(replies)
    raise AssertionError(f"never reached the result card; stuck at {state['step']}")
