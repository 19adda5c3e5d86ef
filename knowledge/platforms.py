"""Resolve platforms from links (host suffix, short links included) and from names in text."""
from __future__ import annotations

from .text import Normalised


class PlatformResolver:
    def __init__(self, platforms: dict[str, dict], exceptions: list[str] = ()):
        self.platforms = platforms
        self.exceptions = sorted({e.lower() for e in exceptions}, key=len, reverse=True)
        self.domains: dict[str, str] = {}
        names: dict[str, str] = {}
        for pid, p in platforms.items():
            for d in p.get("domains") or []:
                self.domains[d.lower().lstrip(".")] = pid
            for a in [p.get("name", "")] + list(p.get("aliases") or []) + list(p.get("products") or []):
                a = str(a).strip().lower()
                if a:
                    names[a] = pid
        # longest first, so 抖音电商 is found before 抖音
        self.names = sorted(names.items(), key=lambda kv: -len(kv[0]))

    def from_host(self, host: str) -> str | None:
        """Longest matching host suffix: news.qq.com beats qq.com."""
        host = host.lower().rstrip(".")
        parts = host.split(".")
        for i in range(len(parts) - 1):
            pid = self.domains.get(".".join(parts[i:]))
            if pid:
                return pid
        return None

    def named(self, text: str) -> list[str]:
        """Platform ids named in normalised text, in order of first mention."""
        for word in self.exceptions:
            text = text.replace(word, " " * len(word))
        taken = [False] * len(text)
        first: dict[str, int] = {}
        for name, pid in self.names:
            start = 0
            while (i := text.find(name, start)) >= 0:
                start = i + 1
                if any(taken[i:i + len(name)]):
                    continue
                if name.isascii() and _glued(text, i, len(name)):
                    continue
                for k in range(i, i + len(name)):
                    taken[k] = True
                if pid not in first or i < first[pid]:
                    first[pid] = i
        return sorted(first, key=first.get)

    def resolve(self, norm: Normalised) -> tuple[str | None, list[str]]:
        """(the platform of the case, every platform seen).

        A link decides; otherwise a single named platform; several named
        platforms and no link leave the platform open (a cross-platform case).
        """
        linked = [pid for pid in (self.from_host(h) for h in norm.hosts) if pid]
        named = self.named(norm.text)
        seen = list(dict.fromkeys(linked + named))
        if linked:
            return linked[0], seen
        if len(named) == 1:
            return named[0], seen
        return None, seen


def _glued(text: str, i: int, n: int) -> bool:
    before = text[i - 1] if i > 0 else ""
    after = text[i + n] if i + n < len(text) else ""
    return (before.isascii() and before.isalnum()) or (after.isascii() and after.isalnum())
