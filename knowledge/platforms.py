"""Resolve platforms from links (host suffix, short links included) and from names in text."""
from __future__ import annotations

from .matcher import CueIndex, parse_cue
from .text import Normalised


class PlatformResolver:
    def __init__(self, platforms: dict[str, dict], exceptions: list[str] = ()):
        self.platforms = platforms
        self.exceptions = sorted({e.lower() for e in exceptions}, key=len, reverse=True)
        self.domains: dict[str, str] = {}
        names: dict[str, str] = {}
        context: set[str] = set()
        for pid, p in platforms.items():
            for a in p.get("context_products") or []:
                a = str(a).strip().lower()
                if a:
                    names[a] = pid
                    context.add(a)
            for d in p.get("domains") or []:
                self.domains[d.lower().lstrip(".")] = pid
            for a in [p.get("name", "")] + list(p.get("aliases") or []) + list(p.get("products") or []):
                a = str(a).strip().lower()
                if a:
                    names[a] = pid
        self.names = names
        self.context = context      # names that count only when no other platform is named
        self.index = CueIndex([parse_cue(name, 1.0, pid) for name, pid in names.items()],
                              fuzzy_ok=lambda cue: False, negatable=False)

    def from_host(self, host: str) -> str | None:
        """Longest matching host suffix: news.qq.com beats qq.com."""
        host = host.lower().rstrip(".")
        parts = host.split(".")
        for i in range(len(parts) - 1):
            pid = self.domains.get(".".join(parts[i:]))
            if pid:
                return pid
        return None

    def named(self, text: str, linked: bool = False) -> list[str]:
        """Platform ids named in normalised text, in order of first mention.

        Longer names claim their characters first, so 抖音电商 is not also 抖音.
        A context name (群里) counts only when nothing else, and no link (`linked`), names a platform."""
        found = self.index.found_parts(text)
        if not found:
            return []
        if any(word in text for word in self.exceptions):
            for word in self.exceptions:
                text = text.replace(word, " " * len(word))
            found = self.index.found_parts(text)
        parts = self.index.parts
        hits = sorted(((-len(parts[pid]), i, parts[pid]) for pid, where in found.items() for i in where))
        taken = [False] * len(text)
        first: dict[str, int] = {}
        by_context: dict[str, int] = {}
        for neg_len, i, name in hits:
            if any(taken[i:i - neg_len]):
                continue
            for k in range(i, i - neg_len):
                taken[k] = True
            pid = self.names[name]
            into = by_context if name in self.context else first
            if pid not in into or i < into[pid]:
                into[pid] = i
        if not first and not linked:
            first = by_context
        elif by_context:
            # a group chat or moments beside a named platform: the content is on that platform
            first = {pid: min(i, by_context.get(pid, i)) for pid, i in first.items()}
        return sorted(first, key=first.get)

    def resolve(self, norm: Normalised) -> tuple[str | None, list[str]]:
        """(the platform of the case, every platform seen).

        A link decides (it is the most specific); otherwise the first platform
        named. Several platforms seen make it a cross-platform case, but the
        case still has a platform to start with.
        """
        linked = [pid for pid in (self.from_host(h) for h in norm.hosts) if pid]
        seen = list(dict.fromkeys(linked + self.named(norm.text, bool(linked))))
        return (seen[0] if seen else None), seen

