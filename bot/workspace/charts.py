"""The statistics page's charts as shapes (bars, texts) and tables, from bot.ops' statistics."""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Optional


WIDTH = 760
ROW = 24                 # height of one horizontal bar's row
LABEL_W = 170            # room for the labels left of horizontal bars
COLORS = 8               # CSS classes c0..c7


def _nice(top: int) -> int:
    """A round axis maximum >= top."""
    if top <= 5:
        return max(top, 1)
    step = 10 ** (len(str(top)) - 1)
    for m in (1, 2, 2.5, 5, 10):
        if m * step >= top:
            return int(m * step)
    return top


def _short(label: str, limit: int = 12) -> str:
    return label if len(label) <= limit else label[:limit - 1] + "\u2026"


def hbars(chart_id: str, title: str, rows: list[dict], columns: dict) -> dict:
    """Horizontal bars, one per row ``{"label", "count"}``."""
    top = _nice(max([r["count"] for r in rows] or [1]))
    area = WIDTH - LABEL_W - 60
    bars, texts = [], []
    for i, r in enumerate(rows):
        y = 8 + i * ROW
        w = round(area * r["count"] / top, 1) if top else 0
        bars.append({"x": LABEL_W, "y": y, "w": max(w, 1 if r["count"] else 0), "h": ROW - 6,
                     "cls": f"c{i % COLORS}" if chart_id != "status" else "c0",
                     "title": f'{r["label"]}: {r["count"]}'})
        texts.append({"x": LABEL_W - 6, "y": y + ROW - 11, "anchor": "end", "text": _short(r["label"]),
                      "cls": "lbl"})
        texts.append({"x": LABEL_W + w + 4, "y": y + ROW - 11, "anchor": "start", "text": str(r["count"]),
                      "cls": "val"})
    return {"id": chart_id, "title": title, "width": WIDTH, "height": 16 + max(len(rows), 1) * ROW,
            "bars": bars, "texts": texts, "legend": [],
            "table": {"columns": [columns["label"], columns["count"]],
                      "rows": [[r["label"], r["count"]] for r in rows]}}


def month_type(pairs: Counter, stats: dict, title: str, columns: dict) -> dict:
    """Stacked bars: cases created per month (Beijing time), one colour per type (pairs: (month, type) -> n)."""
    cells: dict = defaultdict(Counter)
    for (month, kind), n in pairs.items():
        cells[month][kind] = n
    months = [r["key"] for r in stats["by_month"]]
    types = [r["key"] for r in stats["by_type"]]
    type_names = {r["key"]: r["label"] for r in stats["by_type"]}
    month_names = {r["key"]: r["label"] for r in stats["by_month"]}
    left, bottom, height = 44, 28, 240
    plot_h = height - bottom - 10
    top = _nice(max([r["count"] for r in stats["by_month"]] or [1]))
    step = (WIDTH - left - 10) / max(len(months), 1)
    bw = max(min(step * 0.7, 48), 2)
    bars, texts = [], []
    for tick in (0, top // 2, top):
        y = 10 + plot_h - plot_h * tick / top
        texts.append({"x": left - 6, "y": round(y + 4, 1), "anchor": "end", "text": str(tick), "cls": "axis"})
    every = max(1, len(months) // 12)        # at most about 12 month labels
    for i, m in enumerate(months):
        x = round(left + i * step + (step - bw) / 2, 1)
        y = 10 + plot_h
        for j, t in enumerate(types):
            n = cells[m][t]
            if not n:
                continue
            h = plot_h * n / top
            y -= h
            bars.append({"x": x, "y": round(y, 1), "w": round(bw, 1), "h": round(h, 1), "cls": f"c{j % COLORS}",
                         "title": f"{month_names[m]} {type_names[t]}: {n}"})
        if i % every == 0:
            texts.append({"x": round(x + bw / 2, 1), "y": height - 10, "anchor": "middle",
                          "text": month_names[m], "cls": "axis"})
    legend = [{"cls": f"c{j % COLORS}", "text": type_names[t]} for j, t in enumerate(types)]
    rows = [[month_names[m]] + [cells[m][t] for t in types] + [sum(cells[m].values())] for m in months]
    return {"id": "month_type", "title": title, "width": WIDTH, "height": height, "bars": bars,
            "texts": texts, "legend": legend, "axis": {"x1": left, "x2": WIDTH - 10, "y": 10 + plot_h},
            "table": {"columns": [columns["month"]] + [type_names[t] for t in types] + [columns["total"]],
                      "rows": rows}}


def build(pairs: Counter, stats: dict, titles: dict, columns: dict) -> list[dict]:
    """Every chart of the statistics page, in page order (pairs: cases per (month, type))."""
    sat = stats["satisfaction"]["scores"]
    return [
        month_type(pairs, stats, titles["month_type"], columns),
        hbars("status", titles["status"], stats["by_status"], columns),
        hbars("platform", titles["platform"], stats["by_platform"], columns),
        hbars("province", titles["province"], stats["by_province"], columns),
        hbars("satisfaction", titles["satisfaction"], [{"label": k, "count": sat[k]} for k in sorted(sat)],
              columns),
    ]


def find(charts: list[dict], chart_id: str) -> Optional[dict]:
    return next((c for c in charts if c["id"] == chart_id), None)


def to_csv(chart: dict) -> str:
    """The chart's table as CSV (with the BOM, so spreadsheet programs read UTF-8)."""
    import csv
    import io

    buf = io.StringIO()
    buf.write("\ufeff")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(chart["table"]["columns"])
    w.writerows(chart["table"]["rows"])
    return buf.getvalue()
