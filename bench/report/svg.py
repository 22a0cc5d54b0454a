"""Plots drawn as inline SVG (no JavaScript library, no CDN): scatter and line charts with axes and a legend.
Every piece of text is escaped."""

from __future__ import annotations

import hashlib
import math
from html import escape

PALETTE = [
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
    "#393b79",
    "#ad494a",
    "#637939",
    "#e7ba52",
    "#7b4173",
    "#3182bd",
]


def color_for(name: str) -> str:
    return PALETTE[int(hashlib.md5(name.encode()).hexdigest(), 16) % len(PALETTE)]


SHAPES = ("circle", "square", "triangle", "diamond", "triangle-down", "cross")


def assign_colors(keys) -> dict:
    """A colour per distinct key of one plot, never the same colour twice while the palette lasts: each key
    starts from its hashed colour (so a family keeps its colour from plot to plot where it can) and takes the
    next free one when that is taken. Beyond the palette's 16 colours, colours repeat; the marker shape
    (:func:`assign_shapes`) then tells the series apart."""
    out, used = {}, set()
    for k in sorted(set(keys)):
        i = int(hashlib.md5(k.encode()).hexdigest(), 16) % len(PALETTE)
        for step in range(len(PALETTE)):
            c = PALETTE[(i + step) % len(PALETTE)]
            if c not in used:
                break
        else:
            used.clear()
            c = PALETTE[i]
        used.add(c)
        out[k] = c
    return out


def assign_shapes(keys) -> dict:
    """A marker shape per distinct key, in sorted order: with the colour, no two series of a plot look alike
    and a legend never relies on colour alone."""
    return {k: SHAPES[i % len(SHAPES)] for i, k in enumerate(sorted(set(keys)))}


def marker(
    shape: str, x: float, y: float, r: float, fill: str, extra: str = "", hollow: bool = False, cls: str = "mark"
) -> str:
    """An SVG marker of ``shape`` centred on (x, y), of class ``cls`` ("mark": a data point; "legend-mark");
    ``extra`` goes inside the element (a <title>)."""
    paint = f'class="{cls}" ' + (
        f'fill="#fff" stroke="{fill}" stroke-width="1.6"' if hollow else f'fill="{fill}" fill-opacity="0.9"'
    )
    if shape == "square":
        el = f'<rect x="{x - r * 0.85:.1f}" y="{y - r * 0.85:.1f}" width="{r * 1.7:.1f}" height="{r * 1.7:.1f}" {paint}'
    elif shape in ("triangle", "triangle-down", "diamond", "cross"):
        if shape == "triangle":
            pts = [(x, y - r * 1.1), (x + r, y + r * 0.7), (x - r, y + r * 0.7)]
        elif shape == "triangle-down":
            pts = [(x, y + r * 1.1), (x + r, y - r * 0.7), (x - r, y - r * 0.7)]
        elif shape == "diamond":
            pts = [(x, y - r * 1.2), (x + r, y), (x, y + r * 1.2), (x - r, y)]
        else:
            a, b = r * 0.35, r
            pts = [
                (x - a, y - b),
                (x + a, y - b),
                (x + a, y - a),
                (x + b, y - a),
                (x + b, y + a),
                (x + a, y + a),
                (x + a, y + b),
                (x - a, y + b),
                (x - a, y + a),
                (x - b, y + a),
                (x - b, y - a),
                (x - a, y - a),
            ]
        el = '<polygon points="' + " ".join(f"{px:.1f},{py:.1f}" for px, py in pts) + f'" {paint}'
    else:
        el = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" {paint}'
    return el + (f">{extra}</{el[1 : el.index(' ')]}>" if extra else "/>")


MAX_TICKS = 12  # a tick loop never yields more (nor loops longer) than this
REL_SPAN = 1e-9  # a range narrower than this × its magnitude is drawn as one value (no ulp-sized steps)


def _ticks(lo: float, hi: float, log: bool, n: int = 5) -> list[float]:
    """Round tick values in [lo, hi]: 1/2/2.5/5 × 10^k steps (linear) or powers of ten with 1-3 or 1-2-5
    multiples (log). Terminates for any finite input: the ticks are counted from integers, never accumulated,
    and a range within a few ulp of one value gets that value alone. Non-finite bounds are a ValueError."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"tick range must be finite, got [{lo!r}, {hi!r}]")
    if lo > hi:
        lo, hi = hi, lo
    if log:
        return _log_ticks(lo, hi)
    if hi - lo <= REL_SPAN * max(abs(lo), abs(hi)) or hi == lo:
        return [_round_number((lo + hi) / 2)]
    raw = (hi - lo) / n
    mag = 10.0 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
    if last - first + 1 > MAX_TICKS:  # cannot happen with step ≥ span / n; a guard, not a path
        last = first + MAX_TICKS - 1
    return [_round_number(k * step, step) for k in range(first, last + 1)]


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Powers of ten (with 1-3 or 1-2-5 multiples when needed) inside [lo, hi]; both must be positive."""
    if lo <= 0:
        raise ValueError(f"a log axis needs positive bounds, got [{lo!r}, {hi!r}]")
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    ticks: list[float] = []
    for mults in ((1,), (1, 3), (1, 2, 5)):  # at least two ticks inside the range
        ticks = [m * 10.0**e for e in range(a, b + 1) for m in mults]
        ticks = [t for t in ticks if lo <= t <= hi]
        if len(ticks) >= 2:
            break
    if len(ticks) < 2:  # less than a decade apart: round linear ticks inside the range
        return _ticks(lo, hi, False)
    if len(ticks) > MAX_TICKS:  # many decades: the powers of ten whose exponent is a multiple of k
        every = -(-(b - a + 1) // MAX_TICKS)
        ticks = [10.0**e for e in range(a, b + 1) if e % every == 0 and lo <= 10.0**e <= hi]
    return ticks


def _round_number(v: float, step: float | None = None) -> float:
    """``v`` without float noise (0.30000000000000004 → 0.3): 12 significant digits, or the step's decimals."""
    if v == 0:
        return 0.0
    if step:
        digits = max(0, -math.floor(math.log10(step)) + 2)
        if digits < 300:
            v = round(v, digits)
    return float(f"{v:.12g}")


def _fmt_tick(v: float, step: float | None = None) -> str:
    """Compact tick text: SI suffix for large values, at most 3 significant digits (or the step's precision);
    scientific notation beyond the SI range (≥ 10^15) and for magnitudes below 10^-3."""
    if v == 0:
        return "0"
    if abs(v) >= 1e15 or abs(v) < 1e-3:
        digits = 3 if not step else max(1, min(15, math.floor(math.log10(abs(v))) - math.floor(math.log10(step)) + 2))
        return f"{v:.{digits}g}"
    for div, suf in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{suf}"
    if step:
        decimals = max(
            0,
            min(
                6,
                -math.floor(math.log10(step))
                + (0 if round(step / 10 ** math.floor(math.log10(step)), 6) in (1, 2, 5) else 1),
            ),
        )
        return f"{v:.{decimals}f}"
    return f"{v:.3g}"


CHAR_W = {9: 5.2, 10: 5.8, 11: 6.4}  # average sans-serif glyph width (px) at a font size, for layout


def _text_w(text: str, size: int = 11) -> float:
    return len(text) * CHAR_W.get(size, 0.58 * size)


class _Frame:
    def __init__(self, xs, ys, logx, logy, w, h, pad=(56, 16, 18, 44)):
        self.logx, self.logy, self.w, self.h = logx, logy, w, h
        self.l, self.r, self.t, self.b = pad
        xs = [x for x in xs if (_positive(x) if logx else _finite(x))]
        ys = [y for y in ys if (_positive(y) if logy else _finite(y))]
        self.x0, self.x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
        self.y0, self.y1 = (min(ys), max(ys)) if ys else (0.0, 1.0)
        for attr, log in (("x", logx), ("y", logy)):
            lo, hi = getattr(self, attr + "0"), getattr(self, attr + "1")
            if log:
                lo, hi = lo / 1.3, hi * 1.3
            else:  # equal or ulp-apart values: a span of their magnitude (the ticks cannot step by ulps)
                span = hi - lo if hi - lo > REL_SPAN * max(abs(lo), abs(hi)) else max(abs(hi), 1.0)
                lo, hi = lo - 0.08 * span, hi + 0.08 * span
            setattr(self, attr + "0", lo)
            setattr(self, attr + "1", hi)
        # ticks and their texts decide the margins: a tick label is never clipped by the SVG's edge
        self.xticks = self._tick_texts(self.x0, self.x1, logx)
        self.yticks = self._tick_texts(self.y0, self.y1, logy)
        widest_y = max((_text_w(t) for _, t in self.yticks), default=0)
        self.l = max(self.l, int(widest_y + 6 + 22))  # tick text, gap, rotated axis label
        last_x = max((_text_w(t) / 2 for _, t in self.xticks[-1:]), default=0)
        self.r = max(self.r, int(last_x + 4))

    @staticmethod
    def _tick_texts(lo, hi, log):
        ticks = _ticks(lo, hi, log)
        step = None if log or len(ticks) < 2 else ticks[1] - ticks[0]
        out, seen = [], set()
        for t in ticks:
            text = _fmt_tick(t, step)
            if text not in seen:  # two ticks printing the same text would read as a mistake: keep the first
                seen.add(text)
                out.append((t, text))
        return out

    def _norm(self, v, lo, hi, log):
        if log:
            return (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        return (v - lo) / (hi - lo) if hi != lo else 0.5

    def px(self, x):
        return self.l + self._norm(x, self.x0, self.x1, self.logx) * (self.w - self.l - self.r)

    def py(self, y):
        return self.h - self.b - self._norm(y, self.y0, self.y1, self.logy) * (self.h - self.t - self.b)

    def axes(self, xlabel, ylabel) -> list[str]:
        s = [
            f'<rect x="{self.l}" y="{self.t}" width="{self.w - self.l - self.r}" '
            f'height="{self.h - self.t - self.b}" fill="none" stroke="#999"/>'
        ]
        for t, text in self.xticks:
            x = self.px(t)
            s.append(
                f'<line x1="{x:.1f}" y1="{self.h - self.b}" x2="{x:.1f}" y2="{self.h - self.b + 4}" stroke="#999"/>'
                f'<text x="{x:.1f}" y="{self.h - self.b + 16}" text-anchor="middle" class="tick">{escape(text)}</text>'
            )
        for t, text in self.yticks:
            y = self.py(t)
            s.append(
                f'<line x1="{self.l - 4}" y1="{y:.1f}" x2="{self.w - self.r}" y2="{y:.1f}" stroke="#eee"/>'
                f'<text x="{self.l - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{escape(text)}</text>'
            )
        s.append(
            f'<text x="{(self.l + self.w - self.r) / 2:.1f}" y="{self.h - 6}" text-anchor="middle" '
            f'class="axis-label">{escape(xlabel)}</text>'
        )
        s.append(
            f'<text transform="translate(14,{(self.t + self.h - self.b) / 2:.1f}) rotate(-90)" '
            f'text-anchor="middle" class="axis-label">{escape(ylabel)}</text>'
        )
        return s


PLOT_MAX = 1e300  # larger magnitudes cannot be plotted: padding the axis or its span would overflow


def _finite(v) -> bool:
    """A number that can be plotted (None, NaN and ±inf cannot: a leaderboard cell with no value is NaN; nor
    can magnitudes beyond :data:`PLOT_MAX` or, on a log axis, below its reciprocal)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and abs(v) <= PLOT_MAX


def _positive(v) -> bool:
    """Plottable on a log axis."""
    return _finite(v) and v >= 1 / PLOT_MAX


def statement(title: str, lines: list[str], why: str = "one point only: nothing to compare it with") -> str:
    """What a plot with a single point (or a curve at a single x) would show, as a short labelled list."""
    items = "".join(f"<li>{escape(t)}</li>" for t in lines)
    return (
        f'<div class="plot-statement" role="note"><b>{escape(title)}</b> <span class="muted">({escape(why)})'
        f"</span><ul>{items}</ul></div>"
    )


def _svg(parts: list[str], w: int, h: int, title: str) -> str:
    # scales to its container (width 100 %, at most its drawn size), keeping its aspect ratio
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" '
        f'style="max-width:{w}px;height:auto" preserveAspectRatio="xMinYMin meet" '
        f'role="img" class="plot" font-size="11" font-family="sans-serif"><title>{escape(title)}</title>'
        + "".join(parts)
        + "</svg>"
    )


def scatter(
    points: list[dict],
    xlabel: str,
    ylabel: str,
    title: str = "",
    logx: bool = True,
    w: int = 640,
    h: int = 360,
    frontier: bool = False,
    diagonal: bool = False,
    zero_line: bool = False,
) -> str:
    """points: {x, y, label, yerr?, key?, shape?, color?, hollow?, tip?}. With ``frontier``, the Pareto front
    (higher y, lower x) is drawn; with ``diagonal``, the line y = x; with ``zero_line``, y = 0. Every point is
    labelled directly where a free place exists (else its label is its tooltip)."""
    pts = [
        dict(p, yerr=p.get("yerr") if _finite(p.get("yerr")) else None)
        for p in points
        if (_positive(p.get("x")) if logx else _finite(p.get("x"))) and _finite(p.get("y"))
    ]
    if not pts:
        return ""
    if len(pts) == 1:  # one point has nothing to be compared with: said in words, not drawn on empty axes
        p = pts[0]
        return statement(
            title or f"{ylabel} vs {xlabel}", [f"{p['label']}: {ylabel} {p['y']:.4g} at {xlabel} {_fmt_tick(p['x'])}"]
        )
    fr = _Frame(
        [p["x"] for p in pts],
        [p["y"] - (p.get("yerr") or 0) for p in pts] + [p["y"] + (p.get("yerr") or 0) for p in pts],
        logx,
        False,
        w,
        h,
    )
    parts = fr.axes(xlabel, ylabel)
    if frontier:  # one front per group (a backbone): a front never joins points of different networks
        groups: dict = {}
        for p in pts:
            groups.setdefault(p.get("group"), []).append(p)
        for group, members in groups.items():
            best, front = -math.inf, []
            for p in sorted(members, key=lambda p: (p["x"], -p["y"])):
                if p["y"] > best:
                    front.append(p)
                    best = p["y"]
            if len(front) > 1:
                d = " ".join(f"{fr.px(p['x']):.1f},{fr.py(p['y']):.1f}" for p in front)
                name = f"<title>Pareto front{' of ' + escape(str(group)) if group else ''}</title>"
                parts.append(
                    f'<polyline class="front" points="{d}" fill="none" stroke="#aaa" '
                    f'stroke-dasharray="4 3">{name}</polyline>'
                )
    if diagonal:  # y = x across the part of the frame where both axes overlap
        lo, hi = max(fr.x0, fr.y0), min(fr.x1, fr.y1)
        if lo < hi:
            parts.append(
                f'<line x1="{fr.px(lo):.1f}" y1="{fr.py(lo):.1f}" x2="{fr.px(hi):.1f}" y2="{fr.py(hi):.1f}" '
                f'stroke="#888" stroke-dasharray="5 4"><title>y = x</title></line>'
            )
    if zero_line and fr.y0 < 0 < fr.y1:
        parts.append(
            f'<line x1="{fr.l}" y1="{fr.py(0):.1f}" x2="{fr.w - fr.r}" y2="{fr.py(0):.1f}" stroke="#888" '
            f'stroke-dasharray="5 4"/>'
        )
    colors = assign_colors([p.get("key") or p["label"] for p in pts])
    marks, labels = [], []
    for p in pts:
        x, y = fr.px(p["x"]), fr.py(p["y"])
        c = p.get("color") or colors[p.get("key") or p["label"]]
        if p.get("yerr"):
            marks.append(
                f'<line x1="{x:.1f}" y1="{fr.py(p["y"] - p["yerr"]):.1f}" x2="{x:.1f}" '
                f'y2="{fr.py(p["y"] + p["yerr"]):.1f}" stroke="{c}"/>'
            )
        tip = f"<title>{escape(p.get('tip') or p['label'])}: {p['y']:.2f} @ {_fmt_tick(p['x'])}</title>"
        marks.append(marker(p.get("shape") or "circle", x, y, 5, c, tip, hollow=bool(p.get("hollow"))))
    placed = place_labels(
        [(fr.px(p["x"]), fr.py(p["y"]), p["label"]) for p in pts], (fr.l, fr.t, fr.w - fr.r, fr.h - fr.b)
    )
    for (x, y, label), pos in zip([(fr.px(p["x"]), fr.py(p["y"]), p["label"]) for p in pts], placed):
        if pos is None:
            continue  # no free place: the label is left to the point's tooltip rather than overlap another
        tx, ty, anchor, far = pos
        if far:
            labels.append(
                f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{tx:.1f}" y2="{ty - 3:.1f}" stroke="#bbb" stroke-width="0.7"/>'
            )
        labels.append(f'<text x="{tx:.1f}" y="{ty:.1f}" text-anchor="{anchor}" class="pt-label">{escape(label)}</text>')
    return _svg(parts + marks + labels, w, h, title or f"{ylabel} vs {xlabel}")


LABEL_SIZE = 9  # px, the point labels' font size (svg.plot text.pt-label in base.html)
LABEL_H = 10


def place_labels(points: list[tuple], box: tuple) -> list:
    """Greedy label placement without overlap: for each point (x, y, text), the first candidate position
    (right, left, above, below, then farther out) whose text box overlaps no label placed before, no point
    mark and stays inside ``box`` (x0, y0, x1, y1). Returns (x, y, anchor, far) per point, or None where no
    position is free (that label is not drawn; the point keeps its tooltip)."""
    x0, y0, x1, y1 = box
    marks = [(x - 5, y - 5, x + 5, y + 5) for x, y, _ in points]
    taken: list[tuple] = []
    out: list = [None] * len(points)

    def free(r):
        if r[0] < x0 + 1 or r[2] > x1 - 1 or r[1] < y0 + 1 or r[3] > y1 - 1:
            return False
        return not any(r[0] < o[2] and o[0] < r[2] and r[1] < o[3] and o[1] < r[3] for o in taken + marks)

    order = sorted(range(len(points)), key=lambda i: (points[i][1], points[i][0]))
    for i in order:
        x, y, text = points[i]
        tw = _text_w(text, LABEL_SIZE)
        cands = []
        for d in (0, 12, 24, 36):
            cands += [
                (x + 7 + d * 0.5, y - 6 - d, "start"),
                (x + 7 + d * 0.5, y + 10 + d, "start"),
                (x - 7 - d * 0.5, y - 6 - d, "end"),
                (x - 7 - d * 0.5, y + 10 + d, "end"),
                (x + 8 + d, y + 3, "start"),
                (x - 8 - d, y + 3, "end"),
            ]
        for tx, ty, anchor in cands:
            left = tx if anchor == "start" else tx - tw
            rect = (left, ty - LABEL_H + 2, left + tw, ty + 2)
            if free(rect):
                taken.append(rect)
                out[i] = (tx, ty, anchor, abs(ty - y) > 16 or abs(tx - x) > 20)
                break
    return out


def lines(
    series: list[dict], xlabel: str, ylabel: str, title: str = "", logx: bool = False, w: int = 640, h: int = 320
) -> str:
    """series: {label, x: [...], y: [...], key?}. A legend lists the series."""
    okx = _positive if logx else _finite
    series = [
        dict(
            s,
            x=[x for x, y in zip(s["x"], s["y"]) if okx(x) and _finite(y)],
            y=[y for x, y in zip(s["x"], s["y"]) if okx(x) and _finite(y)],
        )
        for s in series
        if isinstance(s.get("x"), list) and isinstance(s.get("y"), list)
    ]
    series = [s for s in series if s["x"]]
    if not series:
        return ""
    if all(len(set(s["x"])) == 1 for s in series):  # a "curve" at one x (a 1-epoch run): its values in words
        return statement(
            title or f"{ylabel} by {xlabel}",
            [f"{s['label']}: {ylabel} {s['y'][-1]:.4g} at {xlabel} {_fmt_tick(s['x'][-1])}" for s in series],
            "one " + xlabel + " only: no curve to draw",
        )
    xs = [x for s in series for x in s["x"]]
    ys = [y for s in series for y in s["y"] if y is not None]
    legend_h = 16 * len(series)
    fr = _Frame(xs, ys, logx, False, w, h + legend_h, pad=(56, 16, 18 + legend_h, 44))
    if all(float(x).is_integer() for x in xs):  # epochs, steps: whole-number ticks only (never "1.5 epochs")
        whole = [(v, text) for v, text in fr.xticks if float(v).is_integer()]
        fr.xticks = whole or [(float(round(xs[0])), _fmt_tick(float(round(xs[0]))))]
        fr.xticks = [(v, text if "." not in text else _fmt_tick(v)) for v, text in fr.xticks]
    parts = fr.axes(xlabel, ylabel)
    keys = [s.get("key") or s["label"] for s in series]
    colors = assign_colors(keys)
    # one shape per series (the legend shows it beside the name: never colour alone)
    shapes = {k: SHAPES[i % len(SHAPES)] for i, k in enumerate(dict.fromkeys(keys))}
    for i, s in enumerate(series):
        k = s.get("key") or s["label"]
        c, shape = colors[k], shapes[k]
        pts = [(x, y) for x, y in zip(s["x"], s["y"]) if y is not None and (x > 0 or not logx)]
        d = " ".join(f"{fr.px(x):.1f},{fr.py(y):.1f}" for x, y in pts)
        parts.append(f'<polyline points="{d}" fill="none" stroke="{c}" stroke-width="2"/>')
        for x, y in pts:
            parts.append(
                marker(shape, fr.px(x), fr.py(y), 3, c, f"<title>{escape(s['label'])}: {y:.3g} @ {x:g}</title>")
            )
        parts.append(
            f'<line x1="{fr.l + 2}" y1="{6 + 16 * i}" x2="{fr.l + 18}" y2="{6 + 16 * i}" stroke="{c}" '
            f'stroke-width="2"/>'
            + marker(shape, fr.l + 10, 6 + 16 * i, 3.5, c, cls="legend-mark")
            + f'<text x="{fr.l + 24}" y="{10 + 16 * i}" class="legend">{escape(s["label"])}</text>'
        )
    return _svg(parts, w, h + legend_h, title or f"{ylabel} vs {xlabel}")
