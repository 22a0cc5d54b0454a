"""Plots drawn as inline SVG (no JavaScript library, no CDN): scatter and line charts with axes and a legend.
Every piece of text is escaped."""
from __future__ import annotations

import hashlib
import math
from html import escape

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#7f7f7f", "#393b79", "#ad494a", "#637939", "#e7ba52", "#7b4173", "#3182bd"]


def color_for(name: str) -> str:
    return PALETTE[int(hashlib.md5(name.encode()).hexdigest(), 16) % len(PALETTE)]


def _ticks(lo: float, hi: float, log: bool, n: int = 5) -> list[float]:
    if log:
        a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        ticks = [10.0 ** e for e in range(a, b + 1)]
        return [t for t in ticks if lo <= t <= hi] or [lo, hi]
    if hi == lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    start = math.ceil(lo / step) * step
    out, t = [], start
    while t <= hi + 1e-9 * step:
        out.append(round(t, 10))
        t += step
    return out


def _fmt_tick(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e9:
        return f"{v / 1e9:g}G"
    if abs(v) >= 1e6:
        return f"{v / 1e6:g}M"
    if abs(v) >= 1e3:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


class _Frame:
    def __init__(self, xs, ys, logx, logy, w, h, pad=(56, 16, 18, 44)):
        self.logx, self.logy, self.w, self.h = logx, logy, w, h
        self.l, self.r, self.t, self.b = pad
        xs = [x for x in xs if x is not None and (x > 0 or not logx)]
        ys = [y for y in ys if y is not None and (y > 0 or not logy)]
        self.x0, self.x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
        self.y0, self.y1 = (min(ys), max(ys)) if ys else (0.0, 1.0)
        for attr, log in (("x", logx), ("y", logy)):
            lo, hi = getattr(self, attr + "0"), getattr(self, attr + "1")
            if log:
                lo, hi = lo / 1.3, hi * 1.3
            else:
                span = (hi - lo) or max(abs(hi), 1.0)
                lo, hi = lo - 0.08 * span, hi + 0.08 * span
            setattr(self, attr + "0", lo)
            setattr(self, attr + "1", hi)

    def _norm(self, v, lo, hi, log):
        if log:
            return (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        return (v - lo) / (hi - lo) if hi != lo else 0.5

    def px(self, x):
        return self.l + self._norm(x, self.x0, self.x1, self.logx) * (self.w - self.l - self.r)

    def py(self, y):
        return self.h - self.b - self._norm(y, self.y0, self.y1, self.logy) * (self.h - self.t - self.b)

    def axes(self, xlabel, ylabel) -> list[str]:
        s = [f'<rect x="{self.l}" y="{self.t}" width="{self.w - self.l - self.r}" '
             f'height="{self.h - self.t - self.b}" fill="none" stroke="#999"/>']
        for t in _ticks(self.x0, self.x1, self.logx):
            x = self.px(t)
            s.append(f'<line x1="{x:.1f}" y1="{self.h - self.b}" x2="{x:.1f}" y2="{self.h - self.b + 4}" stroke="#999"/>'
                     f'<text x="{x:.1f}" y="{self.h - self.b + 16}" text-anchor="middle">{escape(_fmt_tick(t))}</text>')
        for t in _ticks(self.y0, self.y1, self.logy):
            y = self.py(t)
            s.append(f'<line x1="{self.l - 4}" y1="{y:.1f}" x2="{self.w - self.r}" y2="{y:.1f}" stroke="#eee"/>'
                     f'<text x="{self.l - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(_fmt_tick(t))}</text>')
        s.append(f'<text x="{(self.l + self.w - self.r) / 2:.1f}" y="{self.h - 6}" text-anchor="middle" '
                 f'class="axis-label">{escape(xlabel)}</text>')
        s.append(f'<text transform="translate(14,{(self.t + self.h - self.b) / 2:.1f}) rotate(-90)" '
                 f'text-anchor="middle" class="axis-label">{escape(ylabel)}</text>')
        return s


def _svg(parts: list[str], w: int, h: int, title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
            f'role="img" class="plot" font-size="11" font-family="sans-serif"><title>{escape(title)}</title>'
            + "".join(parts) + "</svg>")


def scatter(points: list[dict], xlabel: str, ylabel: str, title: str = "", logx: bool = True,
            w: int = 640, h: int = 360, frontier: bool = False) -> str:
    """points: {x, y, label, yerr?, key?}. With ``frontier``, the Pareto front (higher y, lower x) is drawn."""
    pts = [p for p in points if p.get("x") is not None and p.get("y") is not None and (p["x"] > 0 or not logx)]
    if not pts:
        return ""
    fr = _Frame([p["x"] for p in pts], [p["y"] - (p.get("yerr") or 0) for p in pts] +
                [p["y"] + (p.get("yerr") or 0) for p in pts], logx, False, w, h)
    parts = fr.axes(xlabel, ylabel)
    if frontier:
        best, front = -math.inf, []
        for p in sorted(pts, key=lambda p: (p["x"], -p["y"])):
            if p["y"] > best:
                front.append(p)
                best = p["y"]
        if len(front) > 1:
            d = " ".join(f"{fr.px(p['x']):.1f},{fr.py(p['y']):.1f}" for p in front)
            parts.append(f'<polyline points="{d}" fill="none" stroke="#aaa" stroke-dasharray="4 3"/>')
    for p in pts:
        x, y, c = fr.px(p["x"]), fr.py(p["y"]), color_for(p.get("key") or p["label"])
        if p.get("yerr"):
            parts.append(f'<line x1="{x:.1f}" y1="{fr.py(p["y"] - p["yerr"]):.1f}" x2="{x:.1f}" '
                         f'y2="{fr.py(p["y"] + p["yerr"]):.1f}" stroke="{c}"/>')
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{c}" fill-opacity="0.85">'
                     f'<title>{escape(p["label"])}: {p["y"]:.2f} @ {_fmt_tick(p["x"])}</title></circle>'
                     f'<text x="{x + 7:.1f}" y="{y - 6:.1f}" class="pt-label">{escape(p["label"])}</text>')
    return _svg(parts, w, h, title or f"{ylabel} vs {xlabel}")


def lines(series: list[dict], xlabel: str, ylabel: str, title: str = "", logx: bool = False,
          w: int = 640, h: int = 320) -> str:
    """series: {label, x: [...], y: [...], key?}. A legend lists the series."""
    series = [s for s in series if s.get("x") and s.get("y")]
    if not series:
        return ""
    xs = [x for s in series for x in s["x"]]
    ys = [y for s in series for y in s["y"] if y is not None]
    legend_h = 16 * len(series)
    fr = _Frame(xs, ys, logx, False, w, h + legend_h, pad=(56, 16, 18 + legend_h, 44))
    parts = fr.axes(xlabel, ylabel)
    for i, s in enumerate(series):
        c = color_for(s.get("key") or s["label"])
        pts = [(x, y) for x, y in zip(s["x"], s["y"]) if y is not None and (x > 0 or not logx)]
        d = " ".join(f"{fr.px(x):.1f},{fr.py(y):.1f}" for x, y in pts)
        parts.append(f'<polyline points="{d}" fill="none" stroke="{c}" stroke-width="2"/>')
        for x, y in pts:
            parts.append(f'<circle cx="{fr.px(x):.1f}" cy="{fr.py(y):.1f}" r="2.5" fill="{c}">'
                         f'<title>{escape(s["label"])}: {y:.3g} @ {x:g}</title></circle>')
        parts.append(f'<rect x="{fr.l + 4}" y="{4 + 16 * i}" width="12" height="3" fill="{c}"/>'
                     f'<text x="{fr.l + 20}" y="{10 + 16 * i}">{escape(s["label"])}</text>')
    return _svg(parts, w, h + legend_h, title or f"{ylabel} vs {xlabel}")
