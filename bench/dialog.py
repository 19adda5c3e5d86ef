"""One dialog turn (engine + classifier, no I/O): latency percentiles and turns/s on one core.

Replays scripted intakes turn by turn; the last line is one JSON object.
Wall-clock figures (p50_ms, p99_ms) include time the process waits for a core on a
busy machine; cpu_* figures count only the CPU time of the turn itself.
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
    ["有自媒体说我们公司资金链断裂马上破产 https://m.weibo.cn/status/4987654321", "1", "都没有",
     "青禾食品有限公司", "深圳", "渠道方案", "举报草稿", "下载草稿文件"],
    ["抖音上有人用我们杭州云帆科技的名字注册了账号,头像也是我们的logo", "1", "1 3", "对的", "完整材料清单"],
    ["有个公众号发了我们的负面文章,然后私信说交五万公关费才能删", "1", "微博", "2", "某集团", "北京",
     "限时加私是什么意思?", "张律师 13800138000"],
    ["顾客在点评上说我们上菜慢,说的都是实情,能删吗", "重新描述", "你好", "/faq", "要准备什么材料?"],
]


def main(rounds: int = 60) -> dict:
    engine = Engine()
    samples, cpu = [], []
    for _ in range(rounds):
        for script in SCRIPTS:
            state, _ = engine.start()
            for line in script:
                t0, c0 = time.perf_counter(), time.process_time()
                state, _ = engine.handle(state, {"type": "text", "text": line})
                samples.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
    samples.sort()
    cpu.sort()
    total = sum(samples)
    figures = {
        "turns": len(samples),
        "turns_per_s": round(len(samples) / total, 1),
        "p50_ms": round(1000 * statistics.median(samples), 3),
        "p99_ms": round(1000 * samples[int(0.99 * (len(samples) - 1))], 3),
        "max_ms": round(1000 * samples[-1], 3),
        "cpu_p50_ms": round(1000 * statistics.median(cpu), 3),
        "cpu_p99_ms": round(1000 * cpu[int(0.99 * (len(cpu) - 1))], 3),
    }
    for k, v in figures.items():
        print(f"{k:>12}: {v}")
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
