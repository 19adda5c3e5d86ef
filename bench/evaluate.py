"""Evaluate the classifier on a labelled JSONL file in the taxonomy's format.

usage: python bench/evaluate.py [FILE] [--errors]
Prints type top-1, sub-type top-3, out-of-scope precision/recall, platform
accuracy and flag F1; the last line is one JSON object with the figures.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from knowledge import classify  # noqa: E402

DEFAULT = ROOT.parent / "shared" / "eval" / "dev_cases.jsonl"


def evaluate(path: Path, show_errors: bool = False) -> dict:
    n = type_ok = sub3_ok = plat_ok = 0
    oos_tp = oos_fp = oos_fn = 0
    flag_tp = flag_fp = flag_fn = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        case = json.loads(line)
        r = classify(case["text"])
        n += 1
        top3 = [c["subtype"] for c in r.candidates[:3]]
        good_subs = {case["subtype"], *case.get("also_ok", [])}
        t_ok = r.type == case["type"]
        s_ok = bool(good_subs & set(top3))
        p_ok = r.platform == case.get("platform")
        type_ok += t_ok
        sub3_ok += s_ok
        plat_ok += p_ok
        want_oos, got_oos = case["type"] == "out_of_scope", r.type == "out_of_scope"
        oos_tp += want_oos and got_oos
        oos_fp += got_oos and not want_oos
        oos_fn += want_oos and not got_oos
        want_f, got_f = set(case.get("flags", [])), set(r.flags)
        flag_tp += len(want_f & got_f)
        flag_fp += len(got_f - want_f)
        flag_fn += len(want_f - got_f)
        if show_errors and not (t_ok and s_ok and p_ok and want_f == got_f):
            print(f"{case['id']}: want {case['subtype']} {case.get('platform')} {sorted(want_f)}"
                  f" | got {top3} {r.platform} {sorted(got_f)} | {case['text']}")
            print("      cues:", dict(r.cues))

    def ratio(a: int, b: int) -> float:
        return round(a / b, 4) if b else 1.0

    p = ratio(flag_tp, flag_tp + flag_fp)
    rc = ratio(flag_tp, flag_tp + flag_fn)
    return {
        "cases": n,
        "type_top1": ratio(type_ok, n),
        "subtype_top3": ratio(sub3_ok, n),
        "out_of_scope_precision": ratio(oos_tp, oos_tp + oos_fp),
        "out_of_scope_recall": ratio(oos_tp, oos_tp + oos_fn),
        "platform_accuracy": ratio(plat_ok, n),
        "flag_f1": round(2 * p * rc / (p + rc), 4) if p + rc else 0.0,
    }


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    figures = evaluate(Path(args[0]) if args else DEFAULT, "--errors" in sys.argv)
    for k, v in figures.items():
        print(f"{k:>24}: {v}")
    print(json.dumps(figures))
