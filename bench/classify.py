"""Classifier throughput and start-up cost.

usage: python bench/classify.py [--texts N] [--seed S] [--runs R] [--jsonl-texts M]

1. Builds N (default 10,000) descriptions of 20-300 characters from sentence
   fragments — the `examples:` of types.yaml cut into clauses, neutral filler,
   platform names, links, now and then Traditional script or emoji — with a
   fixed seed, and classifies them one after another on one core (no threads
   or processes in the measured loop). Target: >= 5,000 texts/s.
2. In R fresh interpreters (default 5), times `import knowledge` (with the
   classifier module) and then load() + Classifier(kb). Target for load +
   build: <= 200 ms. The median is reported.
3. Runs `huqi classify --jsonl` once over M such descriptions (default 20,000)
   as a batch job would, on the same core, start-up included. Target:
   >= 3,500 texts/s. (--jsonl-texts 0 skips it.)

Human-readable lines first; the last line is one JSON object:
{"texts": ..., "texts_per_s": ..., "p99_ms": ..., "load_build_ms": ..., "import_ms": ...,
 "jsonl_texts": ..., "jsonl_texts_per_s": ...}
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_TEXTS_PER_S = 5000
TARGET_LOAD_BUILD_MS = 200
TARGET_JSONL_TEXTS_PER_S = 3500

FILLER = [
    "您好", "请问一下", "我们是一家做食品的民营企业", "我是公司法务", "我是品牌部负责舆情的同事",
    "这个事情已经持续一周了", "对我们影响很大", "客户都在问", "领导让我来咨询一下", "麻烦帮忙看看",
    "具体情况如下", "截图我们都保存了", "应该怎么处理", "能不能举报", "平台一直没有回复",
    "谢谢", "急", "我们该找哪个部门", "已经有不少人转发了", "评论区也有很多人在跟风",
    "我们公司在杭州", "总部在深圳", "这个账号粉丝挺多的", "昨天晚上发的",
]
PLATFORM_NAMES = ["微博", "抖音", "小红书", "B站", "知乎", "公众号", "今日头条", "快手", "百度贴吧", "股吧", "大众点评"]
LINKS = ["https://m.weibo.cn/status/50123456{:02d}", "https://v.douyin.com/iR{:02d}Bho6u/",
         "http://xhslink.com/a/Ab{:02d}Ef", "https://b23.tv/AbC{:02d}34", "https://mp.weixin.qq.com/s/Ab{:02d}CdEf",
         "https://www.zhihu.com/question/6123{:02d}", "weibo.com/u/12345{:02d}"]
EMOJI = ["😡", "🙏", "😭", "!!", "???"]
_CLAUSE = re.compile(r"[^,,。;;!!??]+[,,。;;!!??]?")


def fragments() -> list[str]:
    """Clauses of the knowledge base's own example descriptions."""
    from knowledge import load
    kb = load()
    out = []
    for s in kb.subtypes.values():
        for e in s.get("examples") or []:
            out += [c.strip() for c in _CLAUSE.findall(str(e)) if len(c.strip()) >= 2]
    return out


def make_texts(n: int, seed: int) -> list[str]:
    from knowledge.text import to_traditional
    rng = random.Random(seed)
    frags = fragments()
    texts = []
    for i in range(n):
        target = rng.randint(20, 300)
        parts: list[str] = []
        while sum(map(len, parts)) < target:
            roll = rng.random()
            if roll < 0.55:
                if parts and parts[-1][-1:] not in ",,。;;!!?? ":
                    parts.append(rng.choice(",。"))
                parts.append(rng.choice(frags))
            elif roll < 0.80:
                parts.append(rng.choice(FILLER) + rng.choice(",。"))
            elif roll < 0.90:
                parts.append(f"在{rng.choice(PLATFORM_NAMES)}上")
            elif roll < 0.96:
                parts.append(" " + rng.choice(LINKS).format(rng.randint(0, 99)) + " ")
            else:
                parts.append(rng.choice(EMOJI))
        text = "".join(parts)[:target]
        if len(text) < 20:
            text = (text + "。" + rng.choice(frags) * 20)[:20]
        if rng.random() < 0.08:
            text = to_traditional(text)
        texts.append(text)
    return texts


def pin_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        try:
            cpu = min(os.sched_getaffinity(0))
            os.sched_setaffinity(0, {cpu})
            return f"pinned to CPU {cpu}"
        except OSError:
            pass
    return "not pinned (no sched_setaffinity)"


def throughput(texts: list[str]) -> dict:
    from knowledge import get_classifier
    clf = get_classifier()
    for t in texts[:200]:                       # warm-up: first-call costs out of the figures
        clf.classify(t)
    classify = clf.classify
    lat = [0] * len(texts)
    clock = time.perf_counter_ns
    cpu0 = time.process_time()
    start = clock()
    for i, t in enumerate(texts):
        t0 = clock()
        classify(t)
        lat[i] = clock() - t0
    wall = (clock() - start) / 1e9
    cpu = time.process_time() - cpu0
    lat.sort()
    ms = [x / 1e6 for x in lat]
    return {
        "wall_s": wall,
        "texts_per_s": len(texts) / wall,
        "texts_per_cpu_s": len(texts) / cpu if cpu else 0.0,   # less sensitive to a busy machine
        "mean_ms": statistics.fmean(ms),
        "p50_ms": ms[len(ms) // 2],
        "p99_ms": ms[min(len(ms) - 1, int(len(ms) * 0.99))],
        "max_ms": ms[-1],
    }


_STARTUP = r"""
import json, time
t0 = time.perf_counter()
import knowledge
from knowledge.classifier import Classifier
t1 = time.perf_counter()
kb = knowledge.load()
t2 = time.perf_counter()
clf = Classifier(kb)
t3 = time.perf_counter()
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "load_ms": (t2 - t1) * 1e3, "build_ms": (t3 - t2) * 1e3}))
"""


def startup(runs: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    samples = []
    for i in range(runs + 1):                   # the first run only warms the file cache / .pyc
        p = subprocess.run([sys.executable, "-c", _STARTUP], capture_output=True, text=True,
                           cwd=ROOT, env=env, timeout=120)
        if p.returncode != 0:
            raise SystemExit(f"start-up probe failed:\n{p.stderr}")
        if i:
            samples.append(json.loads(p.stdout.strip().splitlines()[-1]))

    def med(key: str) -> float:
        return statistics.median(s[key] for s in samples)

    lb = [s["load_ms"] + s["build_ms"] for s in samples]
    return {"import_ms": med("import_ms"), "load_ms": med("load_ms"), "build_ms": med("build_ms"),
            "load_build_ms": statistics.median(lb), "load_build_max_ms": max(lb)}


def jsonl_run(texts: list[str]) -> dict:
    """`huqi classify --jsonl` over texts, wall time from start to the last line."""
    import tempfile
    script = Path(sys.executable).parent / "huqi"
    cmd = [str(script), "classify", "--jsonl"] if script.exists() else \
        [sys.executable, "-m", "bot.cli", "classify", "--jsonl"]
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    with tempfile.TemporaryFile() as src, tempfile.TemporaryFile() as dst:
        for i, t in enumerate(texts):
            src.write(json.dumps({"id": i, "text": t}, ensure_ascii=False).encode("utf-8") + b"\n")
        src.seek(0)
        import resource
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(cmd, stdin=src, stdout=dst, check=True, cwd=ROOT,
                       preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        dst.seek(0)
        lines = dst.read().count(b"\n")
    if lines != len(texts):
        raise SystemExit(f"classify --jsonl wrote {lines} lines for {len(texts)} inputs")
    return {"wall_s": wall, "texts_per_s": len(texts) / wall, "texts_per_cpu_s": len(texts) / cpu if cpu else 0.0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=20240801)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--jsonl-texts", type=int, default=20_000)
    args = ap.parse_args()

    pinned = pin_one_core()
    texts = make_texts(args.texts, args.seed)
    lengths = sorted(map(len, texts))
    print(f"texts: {len(texts)} generated (seed {args.seed}), {lengths[0]}-{lengths[-1]} chars, "
          f"median {lengths[len(lengths) // 2]}; {pinned}")
    tp = throughput(texts)
    ok_tp = tp["texts_per_s"] >= TARGET_TEXTS_PER_S
    print(f"throughput: {tp['texts_per_s']:,.0f} texts/s ({tp['wall_s']:.2f} s) "
          f"[target >= {TARGET_TEXTS_PER_S:,}: {'OK' if ok_tp else 'MISSED'}]")
    print(f"per CPU second (time the process actually ran): {tp['texts_per_cpu_s']:,.0f} texts/s")
    print(f"latency: mean {tp['mean_ms']:.3f} ms, p50 {tp['p50_ms']:.3f} ms, "
          f"p99 {tp['p99_ms']:.3f} ms, max {tp['max_ms']:.3f} ms")
    st = startup(args.runs)
    ok_lb = st["load_build_ms"] <= TARGET_LOAD_BUILD_MS
    print(f"start-up (fresh interpreter, median of {args.runs}): import {st['import_ms']:.1f} ms; "
          f"load {st['load_ms']:.1f} ms + build {st['build_ms']:.1f} ms = {st['load_build_ms']:.1f} ms "
          f"(max {st['load_build_max_ms']:.1f}) [target <= {TARGET_LOAD_BUILD_MS}: {'OK' if ok_lb else 'MISSED'}]")
    figures = {
        "texts": len(texts),
        "texts_per_s": round(tp["texts_per_s"], 1),
        "texts_per_cpu_s": round(tp["texts_per_cpu_s"], 1),
        "p99_ms": round(tp["p99_ms"], 3),
        "load_build_ms": round(st["load_build_ms"], 1),
        "import_ms": round(st["import_ms"], 1),
    }
    if args.jsonl_texts:
        batch = make_texts(args.jsonl_texts, args.seed + 1)
        jr = jsonl_run(batch)
        ok_j = jr["texts_per_s"] >= TARGET_JSONL_TEXTS_PER_S
        print(f"huqi classify --jsonl: {len(batch):,} texts in {jr['wall_s']:.2f} s, start-up included = "
              f"{jr['texts_per_s']:,.0f} texts/s [target >= {TARGET_JSONL_TEXTS_PER_S:,}: {'OK' if ok_j else 'MISSED'}]; "
              f"per CPU second {jr['texts_per_cpu_s']:,.0f} texts/s")
        figures.update(jsonl_texts=len(batch), jsonl_texts_per_s=round(jr["texts_per_s"], 1),
                       jsonl_texts_per_cpu_s=round(jr["texts_per_cpu_s"], 1))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
