"""Text normalisation: NFKC, Traditional to Simplified, case, whitespace, links."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import opencc

_t2s = opencc.OpenCC("t2s")
_s2t = None    # built on first use: its dictionary takes ~0.1 s to load, and classifying never needs it

MAX_CHARS = 5000  # descriptions longer than this are cut before matching

_TLDS = ("com|cn|net|org|tv|io|me|cc|co|top|info|xyz|vip|app|site|club|shop|"
         "link|ltd|hk|tw|so|la|ly|gl|im|fm|biz|wang|ink|fun|live|news")
_URL = re.compile(
    # starts only at a token boundary and never backtracks into the host,
    # so 100 KB of "a.a.a.a" stays linear
    r"(?<![a-z0-9.-])(?:https?://)?"
    r"((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.(?=[a-z0-9]))++(?:" + _TLDS + r"))"
    r"(?![a-z0-9-])(?::\d{1,5})?"
    r"(/[!-~]*)?",
    re.IGNORECASE,
)
_SPACE = re.compile(r"\s+")
_LATIN_WORD = re.compile(r"[a-z]{2,}")
_HAN = re.compile(r"[\u4e00-\u9fff]")
ENGLISH_MIN_WORDS = 4   # latin words, at least; and fewer Han characters than a third of them
# spaces matter only between two latin words ("mini program"); elsewhere they go
_LOOSE_SPACE = re.compile(r" (?![a-z0-9])|(?<![a-z0-9]) ")
# variant spellings OpenCC leaves alone
_VARIANTS = {"帐号": "账号", "帐户": "账户", "撤消": "撤销", "徵": "征"}
_VARIANT = re.compile("|".join(map(re.escape, _VARIANTS)))
_VARIANT_FIRST = frozenset(v[0] for v in _VARIANTS)
# control characters (C0, C1), zero-width marks, BOM, lone surrogates
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2060-\u2064\ufeff\ufffd\ud800-\udfff]")


@dataclass(frozen=True)
class Normalised:
    original: str
    text: str          # NFKC, Simplified, lower case, single spaces, no links
    compact: str       # `text` without spaces, except between latin words (cue matching)
    links: tuple[str, ...]   # links as typed (scheme added when missing)
    hosts: tuple[str, ...]   # lower-case host of each link
    traditional: bool  # the user wrote Traditional Chinese
    english: bool = False   # the user wrote English (a few Chinese words at most)


def is_traditional(text: str, simplified: str | None = None) -> bool:
    """True when converting to Simplified changes enough characters
    (`simplified`: the text already converted, when the caller has it)."""
    if simplified is None or len(simplified) != len(text):
        simplified = _t2s.convert(text)
        if len(simplified) != len(text):      # a phrase conversion changed the length: compare the Han only
            han = "".join(c for c in text if "\u4e00" <= c <= "\u9fff")
            return is_traditional(han, _t2s.convert(han)) if han != text else False
    if simplified == text:
        return False
    changed = han = 0
    for a, b in zip(text, simplified):
        if "\u4e00" <= a <= "\u9fff":
            han += 1
            changed += a != b
    return changed >= 2 or (changed == 1 and han <= 6)


def to_simplified(text: str) -> str:
    return _t2s.convert(text)


def to_traditional(text: str) -> str:
    global _s2t
    if _s2t is None:
        _s2t = opencc.OpenCC("s2t")
    return _s2t.convert(text)


def clean(text: str) -> str:
    """NFKC (full-width to half-width), control characters dropped."""
    text = unicodedata.normalize("NFKC", text)
    # printable text has no control or zero-width character (U+FFFD is printable)
    return _CONTROL.sub("", text) if not text.isprintable() or "\ufffd" in text else text


def _url_matches(text: str) -> list[re.Match]:
    """_URL matches in text, searched only in the runs of printable ASCII around each
    dot (a link is one such run), not at every position of a long Chinese text."""
    found = []
    n = len(text)
    dot = text.find(".")
    while dot != -1:
        left, right = dot, dot + 1
        while left > 0 and "!" <= text[left - 1] <= "~":
            left -= 1
        while right < n and "!" <= text[right] <= "~":
            right += 1
        found += _URL.finditer(text, left, right)
        dot = text.find(".", right)
    return found


def _link_of(m: re.Match) -> tuple[str, str]:
    host = m.group(1).lower()
    link = m.group(0)
    # a bare "abc.com" without scheme or path still counts: people paste hosts
    if not link.lower().startswith(("http://", "https://")):
        link = "https://" + link
    return link.rstrip(".,;:!?)]}>"), host


def extract_links(text: str) -> list[tuple[str, str]]:
    """(link, host) pairs found in text; text must already be NFKC."""
    return [_link_of(m) for m in _url_matches(text)]


def normalise(raw: str) -> Normalised:
    if not isinstance(raw, str):
        raw = "" if raw is None else str(raw)
    nfkc = clean(raw[: MAX_CHARS * 2])[:MAX_CHARS]
    matches = _url_matches(nfkc)
    links = [_link_of(m) for m in matches]
    without_links = nfkc
    for m in reversed(matches):
        without_links = without_links[:m.start()] + " " + without_links[m.end():]
    converted = _t2s.convert(without_links)
    traditional = is_traditional(without_links, converted)
    simplified = converted.lower()
    if any(ch in simplified for ch in _VARIANT_FIRST):
        simplified = _VARIANT.sub(lambda m: _VARIANTS[m.group(0)], simplified)
    # printable text has no whitespace but the plain space (NFKC made the others one)
    if simplified.isprintable() and "  " not in simplified:
        text = simplified.strip()
    else:
        text = _SPACE.sub(" ", simplified).strip()
    return Normalised(
        original=raw,
        text=text,
        compact=_LOOSE_SPACE.sub("", text) if " " in text else text,
        links=tuple(l for l, _ in links),
        hosts=tuple(h for _, h in links),
        traditional=traditional,
        english=is_english(text),
    )


def is_english(text: str) -> bool:
    """Mostly English: several latin words and hardly any Chinese (a platform name or two)."""
    if len(text.encode("ascii", "ignore")) < 3 * ENGLISH_MIN_WORDS:
        return False            # too few latin characters for that many words
    words = len(_LATIN_WORD.findall(text))
    return words >= ENGLISH_MIN_WORDS and len(_HAN.findall(text)) * 3 < words


def pair_keys(text: str):
    """Every character pair of text as one integer (first code point << 21 | second), as a numpy array."""
    import numpy as np
    if len(text) < 2:
        return np.zeros(0, dtype=np.int64)
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int64)
    return (codes[:-1] << 21) | codes[1:]


def distinct(keys):
    """The sorted distinct values of a numpy array (np.unique without its numpy.ma import)."""
    import numpy as np
    keys = np.sort(keys)
    if len(keys) > 1:
        keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    return keys
