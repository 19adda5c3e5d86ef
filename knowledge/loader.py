"""Load the YAML knowledge base and validate it; every problem names file, entry and field."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from . import schema, taxonomy

DATA_DIR = Path(__file__).parent / "data"
FILES = ("documents", "types", "flags", "evidence", "measures", "platforms",
         "channels", "routing", "faq", "cases", "drafting", "examples")
CHANNEL_KINDS = ("platform", "province", "central", "police", "court")
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):
    """A safe loader that records duplicate keys instead of keeping the last value silently."""

    def __init__(self, stream):
        super().__init__(stream)
        self.duplicates: list[tuple[str, str, int]] = []     # (entry, key, line)

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        entry = ""
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value in ("id", "key") and isinstance(v, yaml.ScalarNode):
                entry = v.value
                break
        for k, _ in node.value:
            if not isinstance(k, yaml.ScalarNode) or k.tag == "tag:yaml.org,2002:merge":
                continue
            if k.value in seen:
                self.duplicates.append((entry or f"line {node.start_mark.line + 1}", k.value, k.start_mark.line + 1))
            seen.add(k.value)
        return super().construct_mapping(node, deep=deep)


_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_yaml_map)
_ID = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)?$")


@dataclass(frozen=True)
class Problem:
    file: str
    entry: str
    field: str
    message: str

    def __str__(self) -> str:
        where = ": ".join(p for p in (self.file, self.entry, self.field) if p)
        return f"{where}: {self.message}"


class KnowledgeError(Exception):
    """The knowledge base is invalid; `problems` lists every finding."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        lines = [str(p) for p in problems[:50]]
        if len(problems) > 50:
            lines.append(f"... and {len(problems) - 50} more")
        super().__init__(f"{len(problems)} problem(s) in the knowledge base:\n" + "\n".join(lines))


@dataclass
class KnowledgeBase:
    documents: dict[str, dict]
    types: dict[str, dict]
    subtypes: dict[str, dict]
    flags: dict[str, dict]
    evidence: dict[str, Any]
    measures: dict[str, dict]
    platforms: dict[str, dict]
    platform_exceptions: list[str]
    channels: dict[str, Any]
    provinces: dict[str, dict]
    routing: dict[str, Any]
    faq: dict[str, dict]
    cases: dict[str, dict]
    data_dir: Path = field(default=DATA_DIR)
    drafting: dict[str, Any] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)   # sub-type -> descriptions

    def counts(self) -> dict[str, int]:
        return {
            "documents": len(self.documents),
            "types": len(self.types),
            "subtypes": len(self.subtypes),
            "flags": len(self.flags),
            "acceptance_items": len(self.evidence.get("acceptance", [])),
            "evidence_items": sum(len(v.get("items") or []) for v in self.evidence.get("by_type", {}).values()),
            "measures": len(self.measures),
            "platforms": len(self.platforms),
            "platform_aliases": sum(len(p.get("aliases") or []) for p in self.platforms.values()),
            "platform_domains": sum(len(p.get("domains") or []) for p in self.platforms.values()),
            "provinces": len(self.provinces),
            "routing_steps": len(self.routing.get("steps", [])),
            "faq": len(self.faq),
            "faq_phrasings": sum(len(f.get("phrasings") or []) for f in self.faq.values()),
            "cases": len(self.cases),
        }


class _Checker:
    """Collects problems while walking the raw data."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.later: list[Problem] = []          # found while reading a file that was still read
        self.doc_keys: set[str] = set()
        self.docs: dict[str, dict] = {}

    def add(self, file: str, entry: Any, fld: str, message: str) -> None:
        self.problems.append(Problem(f"{file}.yaml", str(entry or ""), fld, message))

    def entries(self, file: str, data: Any, key: str) -> list[dict]:
        items = data.get(key) if isinstance(data, dict) else None
        if not isinstance(items, list):
            self.add(file, "", key, "missing or not a list")
            return []
        good = []
        for i, item in enumerate(items):
            if isinstance(item, dict):
                good.append(item)
            else:
                self.add(file, f"#{i + 1}", "", "entry is not a mapping (check indentation and '- ')")
        return good

    def text(self, file: str, entry: dict, fld: str, required: bool = True) -> str:
        value = entry.get(fld)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.add(file, _name(entry), fld, "missing or empty")
            return ""
        if not isinstance(value, str):
            self.add(file, _name(entry), fld, f"must be text, got {type(value).__name__}")
            return ""
        return value

    def strings(self, file: str, entry: dict, fld: str, required: bool = False) -> list[str]:
        value = entry.get(fld)
        if value is None:
            if required:
                self.add(file, _name(entry), fld, "missing")
            return []
        if isinstance(value, str):
            # a single text is a typo for a list: code looping over it would read 微博 as 微 and 博
            self.add(file, _name(entry), fld, f"must be a list, e.g. [{value}], not a single text")
            return []
        if not isinstance(value, list) or not all(isinstance(v, (str, int)) and str(v).strip() for v in value):
            self.add(file, _name(entry), fld, "must be a list of non-empty texts")
            return []
        return [str(v) for v in value]

    def claim(self, owners: dict[str, str], key: str, owner: str, file: str, fld: str, message: str,
              shown: str | None = None) -> None:
        """`key` (a name, domain or phrasing) belongs to one owner only; a second owner is a problem.
        `message` is formatted with {key} (as written: `shown`) and {other}."""
        other = owners.setdefault(key, owner)
        if other != owner:
            self.add(file, owner, fld, message.format(key=repr(shown or key), other=repr(other)))

    def refs(self, file: str, entry: dict, fld: str, known, message: str) -> None:
        """Every id listed in entry[fld] must be one of `known`; message names what it should be."""
        for value in self.strings(file, entry, fld):
            if value not in known:
                self.add(file, _name(entry), fld, f"{message} {value!r}")

    def source(self, file: str, entry: dict, required: bool = True, name: str | None = None) -> None:
        name = name or _name(entry)
        value = entry.get("source")
        if value is None or value == "" or value == []:
            if required:
                self.add(file, name, "source", "missing: every rule, channel and answer needs its source")
            return
        values = value if isinstance(value, list) else [value]
        for v in values:
            if not isinstance(v, str) or not v.strip():
                self.add(file, name, "source", f"not a text: {v!r}")
                continue
            key, _, locator = v.strip().partition(" ")
            if key not in self.doc_keys:
                self.add(file, name, "source", f"unknown document key {key!r} in {v!r} (see documents.yaml)")
                continue
            problem = locator_problem(self.docs.get(key) or {}, locator)
            if problem:
                self.add(file, name, "source", f"{v!r}: {problem}")

    def verified_research(self, file: str, data: Any, path: str = "") -> None:
        """A claim marked `verified: true` must not rest on the research notes (they are not seeds)."""
        if isinstance(data, dict):
            if data.get("verified") is True:
                value = data.get("source")
                values = value if isinstance(value, list) else [value]
                if any(isinstance(v, str) and v.split()[:1] == ["research"] for v in values):
                    self.add(file, _name(data) or path, "verified",
                             "marked verified but its source names research, which is not a seed: "
                             "set verified: false or cite the seed that says it")
            for k, v in data.items():
                self.verified_research(file, v, f"{path}.{k}" if path else str(k))
        elif isinstance(data, list):
            for i, v in enumerate(data):
                self.verified_research(file, v, f"{path}[{i + 1}]")

    def unique(self, file: str, entries: Iterable[dict], fld: str = "id") -> dict[str, dict]:
        seen: dict[str, dict] = {}
        for e in entries:
            value = e.get(fld)
            if not isinstance(value, str) or not value:
                self.add(file, _name(e), fld, "missing")
                continue
            if fld == "id" and not _ID.match(value):
                self.add(file, value, fld, "ids are lower-case ASCII letters, digits and '_' (dotted for sub-types)")
            if value in seen:
                self.add(file, value, fld, "duplicate id")
            seen[value] = e
        return seen

    def all_sources(self, file: str, data: Any, path: str = "") -> None:
        """Check every `source` field anywhere in the file."""
        if isinstance(data, dict):
            if "source" in data:
                self.source(file, data, required=False, name=_name(data) or path)
            for k, v in data.items():
                if k != "source":
                    self.all_sources(file, v, f"{path}.{k}" if path else str(k))
        elif isinstance(data, list):
            for i, v in enumerate(data):
                self.all_sources(file, v, f"{path}[{i + 1}]")


_CN = "一二三四五六七八九十"
_WS_ART = re.compile(r"Art\.\s*(\d+)((?:\s*\(\s*\d+\s*\))*)")


def _cn_int(s: str) -> int | None:
    """一 -> 1, 十七 -> 17, 二十五 -> 25; None if not a Chinese numeral."""
    if not s or any(c not in _CN for c in s):
        return None
    if "十" in s:
        tens, _, ones = s.partition("十")
        return (_CN.index(tens) + 1 if tens else 1) * 10 + (_CN.index(ones) + 1 if ones else 0)
    return _CN.index(s) + 1 if len(s) == 1 else None


def locator_problem(doc: dict, locator: str) -> str | None:
    """Why `locator` names a part the document does not have (documents.yaml `numbering`), or None.

    Article form ("Art. 10(4)"): `articles` and `items`; section form ("(十七)"): `sections`;
    a bare number ("12"): `numbers`; a part ("二", "二.8", "三(二)"): `parts` (items per part).
    Documents without `numbering` and other locators ("广东", "第1024条") are not checked.
    """
    num = doc.get("numbering") if isinstance(doc, dict) else None
    loc = (locator or "").strip()
    if not isinstance(num, dict) or not loc:
        return None
    title = doc.get("short") or doc.get("key")
    arts = list(_WS_ART.finditer(loc))
    if arts:
        if "articles" not in num:
            return f"{title} has no articles (Art. N)"
        items = {int(k): int(v) for k, v in (num.get("items") or {}).items()}
        for m in arts:
            n = int(m.group(1))
            if not 1 <= n <= int(num["articles"]):
                return f"{title} has articles 1-{num['articles']}, not {n}"
            for item in re.findall(r"\d+", m.group(2) or ""):
                if not 1 <= int(item) <= items.get(n, 0):
                    have = f"items (1)-({items[n]})" if n in items else "no numbered items"
                    return f"Art. {n} of {title} has {have}, not ({item})"
        return None
    section = re.fullmatch(r"\(([一二三四五六七八九十]+)\)", loc)
    if section:
        if "sections" not in num:
            return f"{title} has no sections like {loc}"
        n = _cn_int(section.group(1)) or 0
        return None if n <= int(num["sections"]) else f"{title} has sections (一)-({_cn_num(num['sections'])}), not {loc}"
    if loc.isdigit():
        if "numbers" not in num:
            return f"{title} has no numbered points like {loc}"
        return None if 1 <= int(loc) <= int(num["numbers"]) else f"{title} has points 1-{num['numbers']}, not {loc}"
    part = re.fullmatch(r"([一二三四五六七八九十]+)(?:\.(\d+)|\(([一二三四五六七八九十]+)\))?", loc)
    if part:
        if "parts" not in num:
            return f"{title} has no parts like {loc}"
        parts = {str(k): int(v) for k, v in (num.get("parts") or {}).items()}
        if part.group(1) not in parts:
            return f"{title} has parts {', '.join(parts)}, not {part.group(1)}"
        item = int(part.group(2)) if part.group(2) else _cn_int(part.group(3) or "")
        if item and not 1 <= item <= parts[part.group(1)]:
            return f"part {part.group(1)} of {title} has {parts[part.group(1)]} items, not {item}"
    return None


def _cn_num(n: int) -> str:
    if n <= 10:
        return _CN[n - 1]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else _CN[tens - 1]) + "十" + (_CN[ones - 1] if ones else "")


def _name(entry: Any) -> str:
    if isinstance(entry, dict):
        for k in ("id", "key", "name", "title"):
            if isinstance(entry.get(k), str):
                return entry[k]
    return ""


def _read(path: Path, ck: _Checker, file: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        ck.add(file, "", "", f"file missing: {path}")
        return {}
    except UnicodeDecodeError as e:
        ck.add(file, "", "", f"not UTF-8 text: {e}")
        return {}
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        ck.add(file, where, "", f"YAML syntax error: {getattr(e, 'problem', None) or e}")
        return {}
    finally:
        loader.dispose()
    for entry, key, line in loader.duplicates:
        ck.later.append(Problem(f"{file}.yaml", entry, key,
                                f"duplicate key {key!r} (line {line}): YAML keeps only the last one, "
                                "so the earlier value would be lost; merge them into one"))
    if not isinstance(data, dict):
        ck.add(file, "", "", "top level must be a mapping")
        return {}
    return data


def load(data_dir: Path | str = DATA_DIR) -> KnowledgeBase:
    """Read and validate every file; raise KnowledgeError listing all problems."""
    data_dir = Path(data_dir)
    ck = _Checker()
    raw = {f: _read(data_dir / f"{f}.yaml", ck, f) for f in FILES}
    unreadable = {p.file for p in ck.problems}
    read_problems = list(ck.problems)
    ck.problems += ck.later
    for f in FILES:
        for entry, fld, message in schema.check(f, raw[f]):
            ck.add(f, entry, fld, message)

    docs = ck.unique("documents", ck.entries("documents", raw["documents"], "documents"), "key")
    ck.doc_keys = set(docs)
    ck.docs = docs
    for d in docs.values():
        ck.text("documents", d, "title")

    types, subtypes = _check_types(ck, raw["types"])
    flags = _check_flags(ck, raw["flags"])
    evidence = _check_evidence(ck, raw["evidence"], types)
    measures = _check_measures(ck, raw["measures"], types, flags)
    platforms = _check_platforms(ck, raw["platforms"])
    provinces = _check_channels(ck, raw["channels"])
    _check_routing(ck, raw["routing"], flags)
    faq = _check_faq(ck, raw["faq"])
    cases = _check_cases(ck, raw["cases"], subtypes, flags)
    drafting = _check_drafting(ck, raw["drafting"], flags, evidence)
    examples = _check_examples(ck, raw["examples"], subtypes)
    for f in FILES:
        ck.all_sources(f, raw[f])
        ck.verified_research(f, raw[f])

    if ck.problems:
        # the same problem can be found twice (explicit check + the sweep)
        raise KnowledgeError(_without_echoes(read_problems, ck.problems, unreadable))
    return KnowledgeBase(
        documents=docs, types=types, subtypes=subtypes, flags=flags,
        evidence=evidence, measures=measures, platforms=platforms,
        platform_exceptions=[str(w) for w in raw["platforms"].get("name_exceptions") or []],
        channels=raw["channels"], provinces=provinces, routing=raw["routing"],
        faq=faq, cases=cases, data_dir=data_dir, drafting=drafting, examples=examples,
    )


def _without_echoes(read: list[Problem], found: list[Problem], unreadable: set[str]) -> list[Problem]:
    """Drop what only follows from an unreadable file: its own emptiness, and the
    unknown references into it from other files."""
    echoes = []
    if "documents.yaml" in unreadable:
        echoes.append("unknown document key")
    if unreadable & {"types.yaml", "flags.yaml", "faq.yaml"}:
        echoes += ["unknown type", "unknown flag", "unknown type or sub-type", "no FAQ entry"]
    kept = [p for p in found if p in read or (p.file not in unreadable
                                              and not any(p.message.startswith(e) for e in echoes))]
    return list(dict.fromkeys(kept))


def _check_cues(ck: _Checker, file: str, entry: dict) -> None:
    for fld in ("cues", "weak_cues", "strong_cues", "not_cues", "not_if"):
        for cue in ck.strings(file, entry, fld):
            if any(not part.strip() for part in cue.split("+")):
                ck.add(file, _name(entry), fld, f"cue {cue!r} has an empty part around '+'")


def _check_types(ck: _Checker, data: Any) -> tuple[dict, dict]:
    f = "types"
    types = ck.unique(f, ck.entries(f, data, "types"))
    subtypes: dict[str, dict] = {}
    for tid, t in types.items():
        if tid not in taxonomy.TYPES:
            ck.add(f, tid, "id", f"unknown type id (taxonomy: {', '.join(taxonomy.TYPES)})")
        for fld in ("title", "explanation"):
            ck.text(f, t, fld)
        ck.source(f, t)
        _check_cues(ck, f, t)
        for i, nc in enumerate(t.get("not_covered") or []):
            if not isinstance(nc, dict) or not nc.get("text"):
                ck.add(f, tid, f"not_covered[{i + 1}]", "needs `text` and `source`")
            else:
                ck.source(f, nc, name=f"{tid} not_covered[{i + 1}]")
        subs = ck.unique(f, ck.entries(f, t, "subtypes"))
        for sid, s in subs.items():
            if sid not in taxonomy.SUBTYPE_IDS:
                ck.add(f, sid, "id", "sub-type missing from the taxonomy")
            elif taxonomy.type_of(sid) != tid:
                ck.add(f, sid, "id", f"sub-type listed under type {tid!r}")
            if sid in subtypes:
                ck.add(f, sid, "id", "duplicate sub-type")
            for fld in ("title", "explanation"):
                ck.text(f, s, fld)
            ck.source(f, s)
            _check_cues(ck, f, s)
            ck.strings(f, s, "examples")
            subtypes[sid] = dict(s, type=tid)
    for tid in taxonomy.TYPES:
        if tid not in types:
            ck.add(f, tid, "", "type of the taxonomy is missing")
    for sid in taxonomy.SUBTYPE_IDS:
        if sid not in subtypes:
            ck.add(f, sid, "", "sub-type of the taxonomy is missing")
    return types, subtypes


def _check_flags(ck: _Checker, data: Any) -> dict:
    f = "flags"
    flags = ck.unique(f, ck.entries(f, data, "flags"))
    for fid, fl in flags.items():
        if fid not in taxonomy.FLAGS:
            ck.add(f, fid, "id", f"unknown flag (taxonomy: {', '.join(taxonomy.FLAGS)})")
        for fld in ("title", "meaning", "question"):
            ck.text(f, fl, fld)
        ck.source(f, fl)
        _check_cues(ck, f, fl)
    for fid in taxonomy.FLAGS:
        if fid not in flags:
            ck.add(f, fid, "", "flag of the taxonomy is missing")
    return flags


def _check_evidence(ck: _Checker, data: Any, types: dict) -> dict:
    f = "evidence"
    ids: set[str] = set()

    def item(e: dict) -> None:
        for fld in ("title", "hint"):
            ck.text(f, e, fld)
        ck.source(f, e)
        if e.get("id") in ids:
            ck.add(f, e.get("id"), "id", "duplicate evidence id")
        ids.add(e.get("id"))

    for e in ck.entries(f, data, "acceptance"):
        ck.unique(f, [e])
        item(e)
    by_type = data.get("by_type") if isinstance(data, dict) else None
    if not isinstance(by_type, dict):
        ck.add(f, "", "by_type", "missing or not a mapping")
        return data if isinstance(data, dict) else {}
    for tid, block in by_type.items():
        if tid not in types or tid == "out_of_scope":
            ck.add(f, tid, "", "unknown type id under by_type")
        if not isinstance(block, dict):
            ck.add(f, tid, "", "must be a mapping with `items`")
            continue
        items = block.get("items") or []
        if not isinstance(items, list):
            ck.add(f, tid, "items", "must be a list")
            continue
        for e in items:
            if not isinstance(e, dict):
                ck.add(f, tid, "items", "entry is not a mapping")
                continue
            ck.unique(f, [e])
            item(e)
    for tid in taxonomy.TYPES:
        if tid != "out_of_scope" and tid not in by_type:
            ck.add(f, tid, "by_type", "type has no evidence entry (use `items: []` if none)")
    return data


def _check_measures(ck: _Checker, data: Any, types: dict, flags: dict) -> dict:
    f = "measures"
    measures = ck.unique(f, ck.entries(f, data, "measures"))
    for mid, m in measures.items():
        for fld in ("title", "when"):
            ck.text(f, m, fld)
        ck.source(f, m)
        ck.refs(f, m, "flags", flags, "unknown flag")
        ck.refs(f, m, "types", types, "unknown type")
    return measures


def _check_platforms(ck: _Checker, data: Any) -> dict:
    f = "platforms"
    platforms = ck.unique(f, ck.entries(f, data, "platforms"))
    if isinstance(data, dict):
        ck.strings(f, data, "name_exceptions")
    alias_owner: dict[str, str] = {}
    domain_owner: dict[str, str] = {}
    for pid, p in platforms.items():
        ck.text(f, p, "name")
        names = [p.get("name", "")] + ck.strings(f, p, "aliases") + ck.strings(f, p, "products")
        for a in names:
            key = str(a).lower()
            ck.claim(alias_owner, key, pid, f, "aliases", "{key} is also a name of {other}", shown=a)
        for d in ck.strings(f, p, "domains", required=True):
            key = d.lower()
            if "/" in key or ":" in key or " " in key:
                ck.add(f, pid, "domains", f"{d!r}: give a host like m.weibo.cn, no scheme or path")
            ck.claim(domain_owner, key, pid, f, "domains", "{key} also belongs to {other}", shown=d)
        complaint = p.get("complaint")
        if not isinstance(complaint, dict):
            ck.add(f, pid, "complaint", "missing: how to complain on this platform")
        else:
            ck.text(f, complaint, "how")
            ck.source(f, complaint, name=f"{pid} complaint")
            _check_contact(ck, f, f"{pid} complaint", complaint)
    for pid in taxonomy.PLATFORMS:
        if pid not in platforms:
            ck.add(f, pid, "", "platform id of the taxonomy is missing")
    return platforms


def _check_contact(ck: _Checker, f: str, name: str, entry: dict) -> None:
    """A URL or phone number must carry a source; unsourced ones stay empty."""
    for fld in ("url", "website", "hotline", "phone"):
        if entry.get(fld) and not entry.get("source"):
            ck.add(f, name, fld, "a contact detail needs a source; leave it empty if no source gives it")


def _check_channels(ck: _Checker, data: Any) -> dict:
    f = "channels"
    if not isinstance(data, dict):
        return {}
    for key in ("central", "police", "courts"):
        block = data.get(key)
        if not isinstance(block, dict):
            ck.add(f, key, "", "missing or not a mapping")
            continue
        ck.text(f, block, "name")
        ck.source(f, block, name=key)
        _check_contact(ck, f, key, block)
    provinces = ck.unique(f, ck.entries(f, data, "provinces"))
    seen: dict[str, str] = {}
    for pid, p in provinces.items():
        ck.text(f, p, "name")
        for a in [p.get("name", "")] + ck.strings(f, p, "aliases"):
            ck.claim(seen, a, pid, f, "aliases", "{key} is also a name of {other}")
        portal = p.get("portal")
        if isinstance(portal, dict):
            _check_contact(ck, f, f"{pid} portal", portal)
    if provinces and len(provinces) != 32:
        ck.add(f, "provinces", "", f"expected 31 provinces plus 新疆生产建设兵团 (32), found {len(provinces)}")
    return provinces


_WHEN = re.compile(r"^(always|no_response|refused|cross_region|province_unknown|flag:[a-z_]+)$")


def _check_routing(ck: _Checker, data: Any, flags: dict) -> dict:
    f = "routing"
    steps = ck.unique(f, ck.entries(f, data, "steps"))
    for sid, s in steps.items():
        if s.get("channel") not in CHANNEL_KINDS:
            ck.add(f, sid, "channel", f"must be one of {', '.join(CHANNEL_KINDS)}")
        conditions = []
        for fld in ("when", "and_when", "unless"):
            value = s.get(fld)
            if value is None and fld != "when":
                continue
            conditions += [(fld, w) for w in (value if isinstance(value, list) else [value])]
        for fld, w in conditions:
            if not isinstance(w, str) or not _WHEN.match(w):
                ck.add(f, sid, fld, f"{w!r}: use always, no_response, refused, cross_region, province_unknown or flag:<id>")
            elif w.startswith("flag:") and w[5:] not in flags:
                ck.add(f, sid, fld, f"unknown flag {w[5:]!r}")
        ck.text(f, s, "what")
        ck.source(f, s)
    return data


def _check_faq(ck: _Checker, data: Any) -> dict:
    f = "faq"
    faq = ck.unique(f, ck.entries(f, data, "faq"))
    phrasing_owner: dict[str, str] = {}
    for qid, q in faq.items():
        for fld in ("question", "answer"):
            ck.text(f, q, fld)
        ck.source(f, q)
        for p in [q.get("question", "")] + ck.strings(f, q, "phrasings"):
            ck.claim(phrasing_owner, p, qid, f, "phrasings", "{key} is also a phrasing of {other}")
        ck.refs(f, q, "related", faq, "no FAQ entry")
    return faq


def _check_cases(ck: _Checker, data: Any, subtypes: dict, flags: dict) -> dict:
    f = "cases"
    cases = ck.unique(f, ck.entries(f, data, "cases"))
    for cid, c in cases.items():
        for fld in ("title", "summary"):
            ck.text(f, c, fld)
        ck.source(f, c)
        ck.refs(f, c, "types", set(subtypes) | set(taxonomy.TYPES), "unknown type or sub-type")
        ck.refs(f, c, "flags", flags, "unknown flag")
    return cases


_SLOT = re.compile(r"\{([^{}]*)\}")
_SLOTS = {"enterprise", "agent", "contact", "platform", "type_title", "type_cite", "subtype_title",
          "subtype_cite", "subtypes", "description", "reason", "cite", "date"}
_DRAFT_KEYS = {
    "sections": ("reporter", "content", "reason", "request", "evidence", "pledge"),
    "placeholders": ("enterprise", "agent", "contact", "platform", "links", "type", "description",
                     "evidence", "date"),
    "lines": ("enterprise", "self", "agent", "contact", "platform", "links", "type", "subtype", "subtype_item",
              "subtype_sep", "facts", "reason", "reason_also", "reason_type_only", "evidence_more", "signature",
              "agent_signature", "date"),
}


def _check_examples(ck: _Checker, data: Any, subtypes: dict) -> dict:
    """examples.yaml: sub-type -> realistic descriptions the classifier learns from."""
    f = "examples"
    block = data.get("examples") if isinstance(data, dict) else None
    if not isinstance(block, dict):
        ck.add(f, "", "examples", "missing or not a mapping of sub-type -> descriptions")
        return {}
    out = {}
    for sid, texts in block.items():
        if sid not in subtypes:
            ck.add(f, sid, "", "unknown sub-type")
            continue
        if not isinstance(texts, list) or not all(isinstance(t, str) and t.strip() for t in texts):
            ck.add(f, sid, "", "must be a list of non-empty descriptions")
            continue
        out[sid] = texts
    return out


def _check_drafting(ck: _Checker, data: Any, flags: dict, evidence: dict) -> dict:
    """drafting.yaml: the report template, citation wording and question words."""
    f = "drafting"
    if not isinstance(data, dict):
        return {}

    def slots(entry: str, fld: str, text: Any) -> None:
        if not isinstance(text, str) or not text.strip():
            ck.add(f, entry, fld, "missing or empty")
            return
        for name in _SLOT.findall(text):
            if name not in _SLOTS:
                ck.add(f, entry, fld, f"unknown slot {{{name}}} (use {', '.join(sorted(_SLOTS))})")

    report = data.get("report")
    if not isinstance(report, dict):
        ck.add(f, "report", "", "missing or not a mapping")
    else:
        slots("report", "title", report.get("title"))
        for block, keys in _DRAFT_KEYS.items():
            got = report.get(block)
            if not isinstance(got, dict):
                ck.add(f, "report", block, "missing or not a mapping")
                continue
            for k in keys:
                slots(f"report.{block}", k, got.get(k))
        for fid, st in (report.get("flag_statements") or {}).items():
            if fid not in flags:
                ck.add(f, "report.flag_statements", fid, "unknown flag")
            if not isinstance(st, dict):
                ck.add(f, "report.flag_statements", fid, "needs `text` and `source`")
                continue
            slots("report.flag_statements", fid, st.get("text"))
            ck.source(f, st, name=f"report.flag_statements.{fid}")
        for mid, text in (report.get("requests") or {}).items():
            slots("report.requests", mid, text)
        pledge = report.get("pledge")
        if not isinstance(pledge, dict):
            ck.add(f, "report", "pledge", "missing: the pledge of WS Art. 5(6) needs `text` and `source`")
        else:
            slots("report", "pledge.text", pledge.get("text"))
            ck.source(f, pledge, name="report.pledge")
        accepted = {e.get("id") for e in evidence.get("acceptance") or [] if isinstance(e, dict)}
        for item in ck.strings(f, report, "inline_items"):
            if accepted and item not in accepted:
                ck.add(f, "report", "inline_items", f"{item!r} is not an acceptance item of evidence.yaml")
        for k in ("self_source", "agent_source", "links_source"):
            ck.source(f, {"source": report.get(k)}, name=f"report.{k}")
    question = data.get("question")
    if not isinstance(question, dict):
        ck.add(f, "question", "", "missing or not a mapping")
    else:
        for k in ("marks", "endings", "words"):
            ck.strings(f, question, k, required=True)
    cite = data.get("cite") or {}
    for key in (cite.get("bare") or {}) if isinstance(cite, dict) else ():
        if key not in ck.doc_keys:
            ck.add(f, "cite.bare", key, "unknown document key")
    return data
