#!/usr/bin/env python3
"""Draws docs/sizing.svg and prints the table of docs/sizing.md from a scripts/sizing run.

    python3 scripts/sizing_plot.py bench/results/2026-12-07_sizing docs/sizing.svg

Reads DIR/<scenario>/cap-*/rep-*/series.json (the `summary` object bp-console writes; scenarios
`equal` and `over10`, see scripts/sizing) and DIR/machine.txt. Two panels side by side, both
with a log capacity axis: throughput (items consumed per second) and end-to-end latency p99
(log axis), one line per scenario, each point the median of the repetitions, a bar from the lowest to the
highest. The SVG is written by hand: no plotting library needed.
"""
import json
import math
import pathlib
import sys


SCENARIOS = [("equal", "producer = consumer (20 000/s each)", "#2b6cb0"),
             ("over10", "producer 10 % faster (22 000/s vs 20 000/s)", "#c05621")]


FIELDS = ["consume_rate", "wait_share", "latency_p50_ms", "latency_p99_ms", "peak_depth",
          "peak_buffered_bytes", "peak_rss_bytes"]


def median(values):
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def load(directory):
    """One row per capacity: the median of each field over the repetitions (cap-N/rep-K), with
    the lowest and highest throughput and p99 kept as *_min / *_max."""
    by_cap = {}
    for p in sorted(pathlib.Path(directory).glob("cap-*/rep-*/series.json")):
        s = json.loads(p.read_text())["summary"]
        by_cap.setdefault(s["capacity"], []).append(s)
    if not by_cap:
        sys.exit(f"sizing_plot: no cap-*/rep-*/series.json under {directory}")
    rows = []
    for cap in sorted(by_cap):
        runs = by_cap[cap]
        row = {"capacity": cap, "reps": len(runs)}
        for f in FIELDS:
            row[f] = median([r[f] for r in runs])
        for f in ("consume_rate", "latency_p99_ms"):
            vals = [r[f] for r in runs if r[f] is not None]
            row[f + "_min"], row[f + "_max"] = min(vals), max(vals)
        rows.append(row)
    return rows


def fmt(v, digits=0):
    return "n/a" if v is None else f"{v:,.{digits}f}".replace(",", " ")


def table(name, rows):
    out = [
        f"| {name}: capacity | consumed/s | producer waiting | latency p50 | latency p99 "
        "| peak depth | peak buffered | peak RSS |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in rows:
        out.append(
            f"| {s['capacity']} | {fmt(s['consume_rate'])} ({fmt(s['consume_rate_min'])}–"
            f"{fmt(s['consume_rate_max'])}) | {s['wait_share'] * 100:.0f} % "
            f"| {fmt(s['latency_p50_ms'], 2)} ms | {fmt(s['latency_p99_ms'], 2)} ms "
            f"({fmt(s['latency_p99_ms_min'], 2)}–{fmt(s['latency_p99_ms_max'], 2)}) "
            f"| {fmt(s['peak_depth'])} | {s['peak_buffered_bytes'] / 2**20:.1f} MiB "
            f"| {s['peak_rss_bytes'] / 2**20:.1f} MiB |"
        )
    return "\n".join(out)


def nice_log_ticks(lo, hi):
    ticks = []
    e = math.floor(math.log10(lo))
    while 10**e <= hi * 1.0001:
        for m in (1, 2, 5):
            v = m * 10**e
            if lo * 0.9999 <= v <= hi * 1.0001:
                ticks.append(v)
        e += 1
    return ticks


def panel(x0, y0, w, h, caps, series, title, ylabel, log_y):
    """One chart as SVG elements; the plot area is (x0, y0)-(x0+w, y0+h); series is a list of
    (values, color)."""
    el = []
    xs_lo, xs_hi = math.log2(min(caps)), math.log2(max(caps))

    def px(c):
        return x0 + (math.log2(c) - xs_lo) / (xs_hi - xs_lo) * w

    vals = [v for values, _, spans in series for v in values + [x for ab in spans for x in ab]
            if v is not None and v > 0]
    if log_y:
        lo = 10 ** math.floor(math.log10(min(vals)))
        hi = 10 ** math.ceil(math.log10(max(vals)))
        ticks = nice_log_ticks(lo, hi)

        def py(v):
            return y0 + h - (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * h
    else:
        # Linear axis zoomed on the data (not from 0): the differences are a few per cent.
        vmin, vmax = min(vals), max(vals)
        step = 10 ** math.floor(math.log10(max(vmax - vmin, 1e-9) / 4))
        for m in (1, 2, 5, 10):
            if (vmax - vmin) / (m * step) <= 6:
                step *= m
                break
        lo = math.floor(vmin / step) * step
        hi = math.ceil(vmax * 1.005 / step) * step
        ticks = [lo + i * step for i in range(int(round((hi - lo) / step)) + 1)]

        def py(v):
            return y0 + h - (v - lo) / (hi - lo) * h

    el.append(f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#999"/>')
    el.append(f'<text x="{x0 + w / 2}" y="{y0 - 12}" text-anchor="middle" font-size="15" '
              f'font-weight="bold">{title}</text>')
    for t in ticks:
        y = py(t)
        el.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + w}" y2="{y:.1f}" stroke="#e6e6e6"/>')
        label = f"{t:g}" if t < 10000 else f"{t:,.0f}".replace(",", " ")
        el.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12">{label}</text>')
    for c in caps:
        x = px(c)
        el.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y0 + h}" stroke="#f0f0f0"/>')
        el.append(f'<text x="{x:.1f}" y="{y0 + h + 18}" text-anchor="middle" font-size="12">{c}</text>')
    el.append(f'<text x="{x0 + w / 2}" y="{y0 + h + 40}" text-anchor="middle" font-size="13">'
              f'capacity (items, log scale)</text>')
    el.append(f'<text x="{x0 - 55}" y="{y0 + h / 2}" text-anchor="middle" font-size="13" '
              f'transform="rotate(-90 {x0 - 55} {y0 + h / 2})">{ylabel}</text>')
    for values, color, spans in series:
        for c, (a, b) in zip(caps, spans):
            x = px(c)
            el.append(f'<line x1="{x:.1f}" y1="{py(a):.1f}" x2="{x:.1f}" y2="{py(b):.1f}" '
                      f'stroke="{color}" stroke-opacity="0.45" stroke-width="6"/>')
        pts = [(px(c), py(v)) for c, v in zip(caps, values) if v is not None and v > 0]
        el.append('<polyline fill="none" stroke="%s" stroke-width="2.5" points="%s"/>'
                  % (color, " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)))
        for x, y in pts:
            el.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{color}"/>')
    return el


def svg(data, subtitle):
    caps = [s["capacity"] for s in next(iter(data.values()))]
    W, H = 1000, 470
    el = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
          f'viewBox="0 0 {W} {H}" font-family="sans-serif">',
          f'<rect width="{W}" height="{H}" fill="white"/>',
          f'<text x="{W / 2}" y="24" text-anchor="middle" font-size="17" font-weight="bold">'
          f'bp::channel, block: what the capacity costs and buys</text>',
          f'<text x="{W / 2}" y="44" text-anchor="middle" font-size="12" fill="#555">{subtitle}</text>']
    def series(field):
        return [([s[field] for s in data[n]], c,
                 [(s[field + "_min"], s[field + "_max"]) for s in data[n]])
                for n, _, c in SCENARIOS if n in data]

    thr, p99 = series("consume_rate"), series("latency_p99_ms")
    el += panel(100, 90, 360, 270, caps, thr, "throughput", "items consumed per second (axis not from 0)", False)
    el += panel(610, 90, 360, 270, caps, p99, "end-to-end latency p99", "ms (log scale)", True)
    x = 100
    for n, label, color in SCENARIOS:
        if n not in data:
            continue
        el.append(f'<line x1="{x}" y1="{H - 22}" x2="{x + 30}" y2="{H - 22}" stroke="{color}" '
                  f'stroke-width="3"/>')
        el.append(f'<text x="{x + 38}" y="{H - 18}" font-size="13">{label}</text>')
        x += 420
    el.append("</svg>")
    return "\n".join(el) + "\n"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    directory, target = sys.argv[1], sys.argv[2]
    data = {}
    for n, _, _ in SCENARIOS:
        if pathlib.Path(directory, n).is_dir():
            data[n] = load(pathlib.Path(directory, n))
    if not data:
        sys.exit(f"sizing_plot: no scenario directory under {directory}")
    reps = max(r["reps"] for rows in data.values() for r in rows)
    subtitle = ("one producer, one consumer, 16 KiB items, bp-console run --strategy block; "
                f"median of {reps} runs, bars from lowest to highest")
    pathlib.Path(target).write_text(svg(data, subtitle))
    for n, _, _ in SCENARIOS:
        if n in data:
            print(table(n, data[n]))
            print()
    print(f"wrote {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
