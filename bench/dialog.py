"""One dialog turn (engine + classifier, no I/O): latency percentiles and turns/s on one core.

Replays scripted intakes turn by turn; the last line is one JSON object.
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dialogs.engine import Engine  # noqa: E402

SCRIPTS = [
    ["有自媒体说我们公司资金链断裂马上破产 https://m.weibo.cn/status/4987654321", "1", "否", "否", "否", "否", "否", "否",
     "青禾食品有限公司", "深圳", "企业自己举报", "下载举报草稿"],
    ["抖音上有人用我们公司的名字注册了账号,头像也是我们的logo", "1", "https://v.douyin.com/iRNBmkQ/", "否", "否",
     "杭州某科技", "浙江", "2"],
    ["有个公众号发了我们的负面文章,然后私信说交五万公关费才能删", "1", "暂时没有链接", "否", "否", "否", "否", "否",
     "某集团", "北京", "1", "限时加私是什么意思?"],
    ["顾客在点评上说我们上菜慢,说的都是实情,能删吗", "重新描述", "你好", "/faq", "要准备什么材料?"],
]


def main(rounds: int = 60) -> dict:
    engine = Engine()
    samples = []
    for _ in range(rounds):
        for script in SCRIPTS:
            state, _ = engine.start()
            for line in script:
                t0 = time.perf_counter()
                state, _ = engine.handle(state, {"type": "text", "text": line})
                samples.append(time.perf_counter() - t0)
    samples.sort()
    total = sum(samples)
    figures = {
        "turns": len(samples),
        "turns_per_s": round(len(samples) / total, 1),
        "p50_ms": round(1000 * statistics.median(samples), 3),
        "p99_ms": round(1000 * samples[int(0.99 * (len(samples) - 1))], 3),
        "max_ms": round(1000 * samples[-1], 3),
    }
    for k, v in figures.items():
        print(f"{k:>12}: {v}")
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
