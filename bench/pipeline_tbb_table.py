#!/usr/bin/env python3
"""Medians of pipeline_benchmark's JSON output (--benchmark_out, every repetition kept), as the
markdown tables of docs/benchmarks.md: bp and TBB items/s over every run's repetitions with
the ratio of those medians and each run's own ratio; the same per run; then CPU time,
context switches and peak live items per implementation, over every run's repetitions.

    bench/pipeline_tbb_table.py bench/results/<run>_pipeline_tbb.json [more runs...]
"""
import json
import statistics
import sys

SCENARIOS = ["ordered_cpu", "ordered_cheap", "unordered_cpu"]


def load(path):
    """{(scenario, impl): [per-repetition benchmark dicts]} of one run."""
    runs = {}
    for b in json.load(open(path))["benchmarks"]:
        if b.get("run_type") != "iteration" or b.get("error_occurred"):
            continue
        scenario, impl = b["run_name"].split("/")[:2]
        runs.setdefault((scenario, impl), []).append(b)
    return runs


def med(rows, key):
    return statistics.median(r[key] for r in rows) if rows else None


def si(v):
    return "n/a" if v is None else (f"{v / 1e6:.2f} M" if v >= 1e6 else f"{v / 1e3:.0f} k")


def main():
    runs = [(p, load(p)) for p in sys.argv[1:]]
    print("| scenario | bp items/s | TBB items/s | bp / TBB | bp / TBB in each run |")
    print("|---|---:|---:|---:|---|")
    for s in SCENARIOS:
        bp = med([b for _, r in runs for b in r.get((s, "bp"), [])], "items_per_second")
        tbb = med([b for _, r in runs for b in r.get((s, "tbb"), [])], "items_per_second")
        per_run = []
        for _, r in runs:
            b, t = med(r.get((s, "bp")), "items_per_second"), med(r.get((s, "tbb")), "items_per_second")
            per_run.append(f"{b / t:.2f}" if b and t else "n/a")
        ratio = f"**{bp / tbb:.2f}**" if bp and tbb else "n/a"
        print(f"| {s} | {si(bp)} | {si(tbb)} | {ratio} | {', '.join(per_run)} |")
    print()
    print("| scenario | run | bp items/s | TBB items/s | bp / TBB | one thread, no pipeline |")
    print("|---|---|---:|---:|---:|---:|")
    for s in SCENARIOS:
        for i, (_, r) in enumerate(runs, 1):
            bp = med(r.get((s, "bp")), "items_per_second")
            tbb = med(r.get((s, "tbb")), "items_per_second")
            serial = med(r.get((s.replace("unordered", "ordered"), "serial")), "items_per_second")
            ratio = f"{bp / tbb:.2f}" if bp and tbb else "n/a"
            print(f"| {s} | {i} | {si(bp)} | {si(tbb)} | {ratio} | {si(serial)} |")
    print()
    print("| scenario | impl | CPU µs per item | context switches per item | peak live items "
          "(median / max) | live bound |")
    print("|---|---|---:|---:|---:|---:|")
    for s in SCENARIOS:
        for impl in ("bp", "bp_window64", "tbb", "serial"):
            rows = [b for _, r in runs for b in r.get((s, impl), [])]
            if not rows:
                continue
            print(f"| {s} | {impl} | {med(rows, 'cpu_us/item'):.2f} | "
                  f"{med(rows, 'ctxsw/item'):.3f} | {med(rows, 'peak_live'):.0f} / "
                  f"{max(b['peak_live'] for b in rows):.0f} | "
                  f"{rows[0]['live_bound']:.0f} |")


if __name__ == "__main__":
    main()
