"""The statistics of :func:`bot.ops.compute_stats`, summed from one small row per case kept until the case changes.

``compute_stats`` reads every case's history, times and names on each call;
at 100,000 cases that is seconds. Here each case is read once into a
:class:`Row` (the same ops functions decide every value) and the figures are
summed from the rows. tests/test_workspace_tally.py checks that the result
equals ``compute_stats`` on varied cases.
"""
from __future__ import annotations

import bisect
import statistics
from collections import Counter
from itertools import chain
from operator import itemgetter
from typing import NamedTuple, Optional

from bot import ops


class Row(NamedTuple):
    status: str
    type: str
    subtype: str
    platforms: tuple
    provinces: tuple
    month: str
    wait: Optional[float]       # days from submission to action
    due: Optional[str]          # next follow-up (ISO), overdue once passed
    score: Optional[int]
    comment: bool


def row(case: dict, days: int) -> Row:
    ctx = ops._ctx()
    lc = ctx.lc
    places = []
    for key, names in (("platform", ctx.platform_names), ("province", ctx.province_names)):
        vals = ops._values(case.get(key)) or [""]
        places.append(tuple(dict.fromkeys(names.get(v.strip().lower(), v) for v in vals)))
    score = ops._score(case)
    return Row(status=lc.status_id(case.get("status") or "draft") or str(case.get("status")),
               type=case.get("type") or "", subtype=case.get("subtype") or "",
               platforms=places[0], provinces=places[1], month=ops._month(case.get("created_at")) or "",
               wait=ops.days_to_action(case), due=ops.due_at(case, days), score=score,
               comment=bool(score and (case.get("satisfaction") or {}).get("comment")))


def stats(rows: list[Row], now, days: int) -> dict:
    """What ``ops.compute_stats(cases, now, days)`` answers for the cases of ``rows`` (same order)."""
    now_iso = ops._iso(now)
    c = {name: list(map(itemgetter(i), rows)) for i, name in enumerate(Row._fields)}   # counted in C
    by = {"status": Counter(c["status"]), "type": Counter(c["type"]), "subtype": Counter(c["subtype"]),
          "platform": Counter(chain.from_iterable(c["platforms"])),
          "province": Counter(chain.from_iterable(c["provinces"])), "month": Counter(c["month"])}
    waits = [w for w in c["wait"] if w is not None]
    late = sum(1 for d in c["due"] if d and d <= now_iso)
    return _figures(len(rows), by, waits, late, Counter(s for s in c["score"] if s), sum(c["comment"]))


def _figures(total: int, by: dict, waits: list, late: int, scores: Counter, comments: int) -> dict:
    lc = ops._ctx().lc
    kb = ops._ctx().kb
    unknown = ops.texts()["unknown"]
    n_scores = sum(scores.values())
    rows_of = ops._counter_rows
    return {
        "total": total,
        "by_status": rows_of(by["status"], lambda k: ops.status_label(k) or unknown,
                             [s for s in lc.statuses] + [k for k in by["status"] if k not in lc.statuses]),
        "by_type": rows_of(by["type"], lambda k: ops.type_label(k) or unknown),
        "by_subtype": rows_of(by["subtype"], lambda k: ops.subtype_label(k) or unknown),
        "by_platform": rows_of(by["platform"], lambda k: kb.platforms[k]["name"] if k in kb.platforms
                               else (k or unknown)),
        "by_province": rows_of(by["province"], lambda k: kb.provinces[k]["name"] if k in kb.provinces
                               else (k or unknown)),
        "by_month": rows_of(by["month"], lambda k: k or unknown, sorted(k for k in by["month"] if by["month"][k])),
        "median_days_to_action": round(statistics.median(waits), 1) if waits else None,
        "actions_measured": len(waits),
        "overdue": late,
        "satisfaction": {"count": n_scores,
                         "average": round(sum(k * v for k, v in scores.items()) / n_scores, 2) if n_scores else None,
                         "scores": {str(k): scores[k] for k in range(1, 6)},
                         "comments": comments},
    }


def month_type(rows: list[Row]) -> Counter:
    """Cases per (month, type)."""
    return Counter(zip(map(itemgetter(5), rows), map(itemgetter(1), rows)))


class Totals:
    """The sums of :func:`stats` kept up to date one row at a time (every case, in the cache's order).

    Counts and figures equal :func:`stats`; rows of equal count may be listed in another order once
    cases have changed (``stats`` lists ties in the order the cases first show them)."""

    def __init__(self, rows: list[Row]):
        c = {name: list(map(itemgetter(i), rows)) for i, name in enumerate(Row._fields)}
        self.by = {"status": Counter(c["status"]), "type": Counter(c["type"]), "subtype": Counter(c["subtype"]),
                   "platform": Counter(chain.from_iterable(c["platforms"])),
                   "province": Counter(chain.from_iterable(c["provinces"])), "month": Counter(c["month"])}
        self.waits = sorted(w for w in c["wait"] if w is not None)
        self.dues = sorted(d for d in c["due"] if d)
        self.scores = Counter(s for s in c["score"] if s)
        self.comments = sum(c["comment"])
        self.total = len(rows)
        self.cells = month_type(rows)

    def change(self, old: Optional[Row], new: Optional[Row]) -> None:
        """One case replaced (``old`` -> ``new``), added (old None) or removed (new None)."""
        for r, sign in ((old, -1), (new, 1)):
            if r is None:
                continue
            by = self.by
            by["status"][r.status] += sign
            by["type"][r.type] += sign
            by["subtype"][r.subtype] += sign
            for p in r.platforms:
                by["platform"][p] += sign
            for p in r.provinces:
                by["province"][p] += sign
            by["month"][r.month] += sign
            self.cells[(r.month, r.type)] += sign
            for values, v in ((self.waits, r.wait), (self.dues, r.due)):
                if v is None or v == "":
                    continue
                if sign > 0:
                    bisect.insort(values, v)
                else:
                    del values[bisect.bisect_left(values, v)]
            if r.score:
                self.scores[r.score] += sign
                self.comments += sign * r.comment
            self.total += sign

    def stats(self, now) -> dict:
        late = bisect.bisect_right(self.dues, ops._iso(now))
        return _figures(self.total, self.by, self.waits, late, self.scores, self.comments)
