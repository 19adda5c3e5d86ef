"""Matching what a user typed to the options on screen, and reading button values."""
from __future__ import annotations

import re

from rapidfuzz import fuzz, process

from knowledge.text import normalise

# "1 3", "1,3", "1，3", "1、3", "1；3", "1和3", "1及3"
_SEPARATED = re.compile(r"^\d+(?:\s*[\s,\uff0c\u3001;\uff1b\u548c\u53ca/+]\s*\d+)+$")
_TRAIL = "。.!！~～ "


def parse_value(value: str) -> tuple[str, str]:
    """"sub:rumor.other" -> ("sub", "rumor.other"); "save" -> ("save", "")."""
    kind, _, arg = str(value).partition(":")
    return kind, arg


def simple(text: str) -> str:
    """Simplified, lower case, single spaces: how typed words are compared."""
    return normalise(text).text


def numbers(text: str) -> list[int] | None:
    """"1 3", "1、3", "1,3" -> [1, 3]; a single number -> [n]; anything else -> None."""
    t = text.strip()
    if t.isdigit():
        return [int(t)]
    if _SEPARATED.match(t):
        return [int(n) for n in re.findall(r"\d+", t)]
    return None


def answer_word(text: str, answers: dict[str, list[str]]) -> str | None:
    """"对的" -> "yes", "👎" -> "no"; None if the text is not a yes/no word."""
    t = simple(text).strip(_TRAIL)
    for answer, words in answers.items():
        if t in words:
            return answer
    return None


def match(options: list[dict], text: str, answers: dict[str, list[str]], *, free_text: bool) -> str | None:
    """The value of the option the typed text picks, or None.

    A number picks the option with that number; a yes/no word picks the option
    marked with that `answer`; then the option's label or `words`; then, where
    free text is not expected, a close fuzzy match of a label.
    """
    t = simple(text)
    if t.isdigit():
        n = int(t)
        return options[n - 1]["value"] if 1 <= n <= len(options) else None
    word = answer_word(text, answers)
    if word:
        for o in options:
            if o.get("answer") == word:
                return o["value"]
    labels = {simple(o["label"]): o["value"] for o in options}
    if t in labels:
        return labels[t]
    bare = t.strip(_TRAIL)
    for o in options:
        if bare in (o.get("words") or ()):
            return o["value"]
    if free_text or len(t) < 2:
        return None   # free text expected: only exact words pick a button
    best = process.extractOne(t, list(labels), scorer=fuzz.partial_ratio, score_cutoff=90)
    if best and len(t) <= 2 * len(best[0]) + 4:
        return labels[best[0]]
    return None
