"""Typesetting and script: full-width punctuation next to Chinese, Traditional for users who write it."""
from __future__ import annotations

import re

from knowledge.text import is_traditional, to_traditional

# ASCII punctuation written next to Chinese (much of the knowledge base is typed that way)
_HAN = r"\u3400-\u9fff\uff00-\uffef\u3000-\u303f"
_PUNCT = re.compile(rf"(?<=[{_HAN}])[,:;?!()]|[,:;?!()](?=[{_HAN}])|(?<=[{_HAN}])\((?=[^)]*\))")
_CLOSE = re.compile(r"\uff08[^\uff08\uff09()]*\)")
_FULL = {",": "，", ":": "：", ";": "；", "?": "？", "!": "！", "(": "（", ")": "）"}


def typeset(text: str) -> str:
    """Full-width punctuation where it stands next to Chinese; links are left alone."""
    for _ in range(3):      # nested brackets: ")" after ")" is converted on the next pass
        done = _PUNCT.sub(lambda m: _FULL[m.group(0)], text)
        if done == text:
            break
        text = done
    return _CLOSE.sub(lambda m: m.group(0)[:-1] + _FULL[")"], text)   # "（12377)" -> "（12377）"


def note_language(state: dict, text: str, simplified_only: str) -> None:
    """Reply in the script the user writes; a short answer does not switch back
    (two characters only Simplified has, from flow.yaml, do)."""
    if is_traditional(text):
        state["lang"] = "hant"
    elif len(set(text) & set(simplified_only)) >= 2:
        state["lang"] = "hans"


def localise(lang: str, replies: list[dict]) -> list[dict]:
    """Typeset every reply; Traditional for a Traditional writer, except what is marked
    ``"script": "hans"`` (the draft for a mainland platform stays Simplified)."""
    def same(text: str) -> str:
        return text

    user = to_traditional if lang == "hant" else same
    out = []
    for r in replies:
        convert = user if r.get("script") != "hans" else same

        def finish(text: str, convert=convert) -> str:
            return convert(typeset(text))

        r = dict(r)
        if "text" in r:
            r["text"] = finish(r["text"])
        if "buttons" in r:      # buttons are the user's, even under a Simplified draft
            r["buttons"] = [[dict(b, label=user(typeset(b["label"]))) for b in row] for row in r["buttons"]]
        if "file" in r:
            r["file"] = dict(r["file"], content=finish(r["file"]["content"]))
        out.append(r)
    return out
