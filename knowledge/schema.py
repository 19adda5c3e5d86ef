"""The shape of every knowledge data file: which fields an entry may have and of what type.

A spec is one of:
- "text" (a string), "int", "bool", "texts" (a list of texts: a single text is
  refused, since code that loops over it would read 微博 as 微 and 博),
  "source" (a text or a list of texts), "text_or_texts";
- ("enum", values);
- a dict of field -> spec: unknown fields are refused (a misspelt `cuse:` is
  not silently ignored); the key "*" gives the spec of every value of a
  mapping with free keys (by_type, flag_statements); a key "~<regex>" the
  spec of every field whose name matches (en_cues, aliases_en);
- a list [spec]: a list whose elements each follow spec.

`check(file, data)` yields (entry, field, message) for every mismatch;
`entry` is the id/key/name of the nearest enclosing entry.
"""
from __future__ import annotations

import difflib
import re
from typing import Any, Iterator

# cue lists in another language or of another strength (en_cues, cues_en, not_if_en) are cue lists too
CUES = {k: "texts" for k in ("cues", "weak_cues", "strong_cues", "not_cues", "not_if")}
CUES["~^([a-z]+_)*cues(_[a-z]+)*$|^not_if(_[a-z]+)?$|^examples_[a-z]+$"] = "texts"

NOTE = {"text": "text", "source": "source", "verified": "bool"}
CONTACT = {"name": "text", "url": "text", "verified": "bool", "source": "source"}
TIP = {"text": "text", "verified": "bool", "source": "source"}
EVIDENCE_ITEM = {"id": "text", "title": "text", "article": "text", "source": "source", "hint": "text",
                 "agent_only": "bool", "flags": "texts", "subtypes": "texts", "tips": [TIP]}
TEXT_MAP = {"*": "text"}

SPECS: dict[str, Any] = {
    "documents": {"documents": [{
        "key": "text", "title": "text", "short": "text",
        "kind": ("enum", ("law", "regulation", "notice", "guidance", "news", "research", "general")),
        "issued": "text", "seed": "text", "summary": "text",
        "numbering": {"articles": "int", "items": {"*": "int"}, "sections": "int", "numbers": "int",
                      "parts": {"*": "int"}},
    }]},
    "types": {"types": [{
        "id": "text", "title": "text", "article": "text", "source": "source", "explanation": "text",
        "not_covered": [{"text": "text", "source": "source"}], **CUES,
        "subtypes": [{"id": "text", "title": "text", "article": "text", "source": "source",
                      "explanation": "text", "examples": "texts", **CUES}],
    }]},
    "flags": {"flags": [{"id": "text", "title": "text", "meaning": "text", "source": "source",
                         "question": "text", **CUES}]},
    "evidence": {
        "acceptance": [EVIDENCE_ITEM],
        "agent": {"note": "text", "source": "source"},
        "malicious": {"note": "text", "source": "source"},
        "by_type": {"*": {"note": "text", "source": "source", "items": [EVIDENCE_ITEM]}},
    },
    "measures": {"measures": [{
        "id": "text", "title": "text", "article": "text", "source": "source", "when": "text",
        "conditions": "texts", "flags": "texts", "types": "texts", "advice": "text", "expected": "bool",
        "flag_basis": [{"flag": "text", "item": "text", "note": "text", "source": "source"}],
        "type_basis": [{"type": "text", "subtype": "text", "item": "text", "note": "text", "source": "source"}],
        "authority_note": {"text": "text", "source": "source"},
    }]},
    "platforms": {
        "name_exceptions": "texts",
        "platforms": [{"id": "text", "name": "text", "aliases": "texts", "products": "texts", "domains": "texts",
                       "~^([a-z]+_)?(aliases|products)(_[a-z]+)?$": "texts",
                       "complaint": {"how": "text", "url": "text", "verified": "bool", "source": "source"}}],
    },
    "channels": {
        "central": {"id": "text", "name": "text", "short_name": "text", "hotline": "text", "website": "text",
                    "verified": "bool", "source": "source", "enterprise_zone": CONTACT,
                    "when_to_use": [NOTE], "notes": [NOTE], "directory_hint": "text",
                    "directory_hint_verified": "bool", "directory_hint_source": "source"},
        "provinces": [{"id": "text", "name": "text", "office": "text", "aliases": "texts", "abbr": "texts",
                       "cities": "texts", "portal": CONTACT, "other_channels": [CONTACT], "notes": [NOTE],
                       "source": "source"}],
        "police": {"id": "text", "name": "text", "office": "text", "hotline": "text", "verified": "bool",
                   "when_to_use": [NOTE], "notes": [NOTE], "source": "source"},
        "courts": {"id": "text", "name": "text", "when_to_use": [NOTE], "notes": [NOTE], "source": "source"},
    },
    "routing": {
        "no_response_days": "int",
        "steps": [{"id": "text", "channel": "text", "order": "int",
                   "kind": ("enum", ("do", "expect", "option")), "when": "text_or_texts",
                   "and_when": "text_or_texts", "unless": "text_or_texts", "what": "text", "source": "source"}],
        "conditions": [{"id": "text", "meaning": "text", "source": "source"}],
        "out_of_scope": [{"subtype": "text", "what": "text", "source": "source"}],
    },
    "faq": {"faq": [{
        "id": "text", "question": "text", "phrasings": "texts", "keywords": "texts", "answer": "text",
        "source": "source", "related": "texts",
        "topic": ("enum", ("scope", "materials", "process", "measures", "channels", "agent", "privacy", "misc")),
    }]},
    "cases": {"cases": [{
        "id": "text", "title": "text", "kind": ("enum", ("case", "campaign")), "region": "text", "year": "int",
        "summary": "text", "types": "texts", "flags": "texts", "outcome": "text", "lesson": "text",
        "source": "source",
    }]},
    "drafting": {
        "cite": {"separator": "text", "bare": TEXT_MAP},
        "question": {"marks": "texts", "endings": "texts", "words": "texts", "max_chars_for_words": "int",
                     "trailing": "text", "filler": "texts", "synonyms": ["texts"],
                     "domain_words": "texts"},
        "report": {"title": "text", "sections": TEXT_MAP, "placeholders": TEXT_MAP, "lines": TEXT_MAP,
                   "flag_statements": {"*": {"text": "text", "source": "source"}}, "requests": TEXT_MAP,
                   "inline_items": "texts", "pledge": {"text": "text", "source": "source"},
                   "self_source": "source", "agent_source": "source", "links_source": "source"},
    },
    "examples": {"examples": {"*": "texts"}, "~^examples(_[a-z]+)+$": {"*": "texts"}},
}

_TYPE_NAMES = {"text": "text", "int": "whole number", "bool": "true or false"}


def _name(value: Any, top: bool) -> str | None:
    """The entry name of a list item: its id or key; at the top level also name or subtype."""
    if isinstance(value, dict):
        for k in ("id", "key") + (("name", "subtype") if top else ()):
            if isinstance(value.get(k), str) and value[k]:
                return value[k]
    return None


def _is_text(v: Any) -> bool:
    return isinstance(v, str)


def _texts_problem(v: Any) -> str | None:
    if isinstance(v, str):
        return f"must be a list, e.g. [{v}], not a single text"
    if not isinstance(v, list):
        return f"must be a list of texts, got {type(v).__name__}"
    if not all(isinstance(x, (str, int)) and not isinstance(x, bool) and str(x).strip() for x in v):
        return "must be a list of non-empty texts"
    return None


def _leaf_problem(spec: Any, v: Any) -> str | None:
    if v is None:
        return None                       # missing values are the business of the required-field checks
    if spec == "text":
        # numbers written without quotes (issued: 2026, hotline: 12377) read as text too
        return None if isinstance(v, (str, int, float)) and not isinstance(v, bool) else \
            f"must be text, got {type(v).__name__}"
    if spec == "int":
        return None if isinstance(v, int) and not isinstance(v, bool) else f"must be a whole number, got {v!r}"
    if spec == "bool":
        return None if isinstance(v, bool) else f"must be true or false, got {v!r}"
    if spec == "texts":
        return _texts_problem(v)
    if spec in ("source", "text_or_texts"):
        if isinstance(v, str):
            return None
        return _texts_problem(v)
    if isinstance(spec, tuple) and spec[0] == "enum":
        return None if v in spec[1] else f"{v!r} is not one of {', '.join(spec[1])}"
    return None


def _walk(value: Any, spec: Any, entry: str, path: str) -> Iterator[tuple[str, str, str]]:
    if isinstance(spec, dict):
        if value is None:
            return
        if not isinstance(value, dict):
            yield entry, path, f"must be a mapping (field: value), got {type(value).__name__}"
            return
        for k, v in value.items():
            key = str(k)
            fld = f"{path}.{key}" if path else key
            if "*" in spec:
                sub = spec["*"]
            elif key in spec:
                sub = spec[key]
            else:
                sub = next((v for k, v in spec.items() if k.startswith("~") and re.match(k[1:], key)), None)
            if sub is None:
                names = [s for s in spec if not s.startswith(("*", "~"))]
                near = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
                hint = f"; did you mean {near[0]!r}?" if near else f" (known: {', '.join(sorted(names))})"
                yield entry, fld, f"unknown field {key!r}{hint}"
                continue
            yield from _walk(v, sub, entry, fld)
        return
    if isinstance(spec, list):
        if value is None:
            return
        if not isinstance(value, list):
            yield entry, path, f"must be a list, got {type(value).__name__}"
            return
        for i, item in enumerate(value):
            name = _name(item, not entry) if isinstance(spec[0], dict) else None
            if name:
                yield from _walk(item, spec[0], name, "")
            else:
                yield from _walk(item, spec[0], entry, f"{path}[{i + 1}]")
        return
    problem = _leaf_problem(spec, value)
    if problem:
        yield entry, path, problem


def check(file: str, data: Any) -> Iterator[tuple[str, str, str]]:
    """(entry, field, message) for every field of `data` (file stem, e.g. "types") off its spec."""
    spec = SPECS.get(file)
    if spec is None or not isinstance(data, dict):
        return
    yield from _walk(data, spec, "", "")
