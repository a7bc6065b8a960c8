#!/usr/bin/env bash
# bp's coroutine verbs beside Go's goroutines and asio's concurrent_channel with awaitables, and
# the blocking channel's rows before and after a change, interleaved: repetition 1 of every
# program, then repetition 2, ... (the order rotates each repetition), medians at the end.
#
#   bench/async_compare.sh                          # 5 repetitions, the machine as found
#   bench/async_compare.sh --busy                   # two CPU-burning processes on both cores
#   bench/async_compare.sh --before /tmp/wt-before/build/rel/bench/channel_benchmark
#   bench/async_compare.sh --reps 7 --min-time 0.5
#   bench/async_compare.sh --report bench/results/<run>.csv   # the medians of a raw file again
#
# Builds async_benchmark and channel_benchmark in build/release (the `release` preset, -j1) and
# the Go peer (bench/go/scenarios.go, `go build`). The asio rows need libasio-dev (installed by
# scripts/bench). Programs and rows:
#   bp        async_benchmark BM_Bp_*       ping-pong one thread / two threads (ns per round
#                                           trip), MPMC 2x2 and 8x8 on a 2-thread pool (items/s)
#   asio      async_benchmark BM_Asio_*     the same with asio
#   go        scn_go pingpong -gomaxprocs 1 / 2, mpmc2x2 and mpmc8x8 -gomaxprocs 2
#   blocking  channel_benchmark BM_SpscBlocking, BM_PingPong, BM_Mpmc (this tree)
#   before    the same rows from --before's binary (a build of the commit to compare with)
# Raw results: bench/results/<date>_<commit>_async_<condition>.csv (rep,impl,row,value,unit) and
# .meta (commit, compiler, load average before and after); medians printed and in <...>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

reps=5
min_time=0.5
busy=0
before=""
report=""
while (($#)); do
  case "$1" in
    --reps) reps=$2; shift 2 ;;
    --min-time) min_time=$2; shift 2 ;;
    --busy) busy=1; shift ;;
    --before) before=$2; shift 2 ;;
    --report) report=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "async_compare: unknown option $1" >&2; exit 64 ;;
  esac
done

# Medians, min and max per row; then the ratios the targets are about, taken within each
# repetition (the programs of one repetition ran back to back, so a paired ratio cancels part of
# a busy machine's drift) and their median.
summarize() {
  python3 - "$1" <<'PY'
import csv, statistics, sys
rows, by_rep = {}, {}
for r in csv.DictReader(open(sys.argv[1])):
    if r["value"]:
        v = float(r["value"])
        rows.setdefault((r["impl"], r["row"], r["unit"]), []).append(v)
        by_rep.setdefault(r["rep"], {})[(r["impl"], r["row"])] = v
print(f"{'impl':<9} {'row':<40} {'median':>11} {'min':>11} {'max':>11}  unit  (n)")
for (impl, row, unit), v in sorted(rows.items()):
    print(f"{impl:<9} {row:<40} {statistics.median(v):>11.4g} {min(v):>11.4g} "
          f"{max(v):>11.4g}  {unit}  ({len(v)})")
bp, asio, go = "BM_Bp_", "BM_Asio_", "go"
ratios = [
    ("ping-pong 1 thread, bp / go (target <= 0.5)", ("bp", bp + "PingPong_OneThread"), ("go", "pingpong/gomaxprocs:1")),
    ("ping-pong 1 thread, bp / asio", ("bp", bp + "PingPong_OneThread"), ("asio", asio + "PingPong_OneThread")),
    ("ping-pong 2 threads, bp / go", ("bp", bp + "PingPong_TwoThreads/real_time"), ("go", "pingpong/gomaxprocs:2")),
    ("ping-pong 2 threads, bp / asio", ("bp", bp + "PingPong_TwoThreads/real_time"), ("asio", asio + "PingPong_TwoThreads/real_time")),
]
for n in (2, 8):
    for posted in (0, 1):
        b = ("bp", f"{bp}Mpmc/n:{n}/posted:{posted}/real_time")
        ratios.append((f"mpmc {n}x{n} {'posted' if posted else 'inline'}, bp / asio (target >= 3)", b, ("asio", f"{asio}Mpmc/n:{n}/real_time")))
        ratios.append((f"mpmc {n}x{n} {'posted' if posted else 'inline'}, bp / go (target >= 1)", b, ("go", f"mpmc{n}x{n}/gomaxprocs:2")))
for (impl, row, unit) in sorted(rows):
    if impl == "blocking":
        ratios.append((f"blocking {row}, after / before", ("blocking", row), ("before", row)))
print(f"\n{'ratio':<58} {'paired median':>13} {'min':>7} {'max':>7} {'of medians':>10}")
for name, a, b in ratios:
    paired = [reps[a] / reps[b] for reps in by_rep.values() if a in reps and b in reps]
    ma = [reps[a] for reps in by_rep.values() if a in reps]
    mb = [reps[b] for reps in by_rep.values() if b in reps]
    if paired:
        print(f"{name:<58} {statistics.median(paired):>13.3f} {min(paired):>7.3f} {max(paired):>7.3f} "
              f"{statistics.median(ma) / statistics.median(mb):>10.3f}")
PY
}
if [[ -n $report ]]; then
  summarize "$report"
  exit 0
fi

build=$PWD/build/release
cmake --preset release -B "$build" -DBP_BUILD_TESTS=OFF -DBP_BUILD_EXAMPLES=OFF \
  -DBP_BUILD_APPS=OFF -DBP_BUILD_CONNECTORS=OFF -DBP_BUILD_BENCH=ON >/dev/null
cmake --build "$build" --target async_benchmark channel_benchmark -j 1 >/dev/null
go_bin=$build/bench/scn_go
GOCACHE=$build/gocache go build -o "$go_bin" bench/go/scenarios.go

impls=(bp asio go blocking)
[[ -n $before ]] && impls+=(before)

mkdir -p bench/results
condition=asfound
((busy)) && condition=busy
base=bench/results/$(date -u +%Y-%m-%dT%H%MZ)_$(git rev-parse --short=12 HEAD)_async_$condition
csv=$base.csv
burners=()
cleanup() { for pid in "${burners[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
if ((busy)); then
  for _ in 1 2; do (while :; do :; done) & burners+=($!); done
fi
compiler=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse HEAD)"
  echo "uncommitted changes under include/bp or bench: $(git status --porcelain -- include/bp bench | grep -c . || true)"
  echo "before binary: ${before:-none}"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
  echo "kernel: $(uname -sr)"
  echo "compiler: $("$compiler" --version | head -1), release preset (-O3 -DNDEBUG), -std=c++20"
  echo "go: $(go version)"
  echo "asio: $(dpkg-query -W -f='${Version}' libasio-dev 2>/dev/null || echo absent)"
  echo "condition: $condition$( ((busy)) && echo ': two CPU-burning processes on both cores')"
  echo "uptime at start: $(uptime)"
  echo "reps: $reps, Google Benchmark min time $min_time s, Go runs 0.5 s"
} >"$base.meta"

echo "rep,impl,row,value,unit" >"$csv"
gbench() {  # gbench <rep> <impl> <binary> <filter>: ns per iteration, or items/s where counted
  "$3" --benchmark_filter="$4" --benchmark_min_time="$min_time" --benchmark_format=csv \
    2>>"$base.stderr" | awk -F, -v rep="$1" -v impl="$2" 'NR > 1 && $1 ~ /^"BM_/ {
      gsub(/"/, "", $1)
      if ($9 == "true") { printf "%s,%s,%s,,error\n", rep, impl, $1; next }
      scale = ($5 == "ms") ? 1e6 : ($5 == "us") ? 1e3 : 1
      if ($1 ~ /PingPong/) printf "%s,%s,%s,%.6g,ns_per_trip\n", rep, impl, $1, $3 * scale
      else printf "%s,%s,%s,%.6g,items_per_s\n", rep, impl, $1, $7 }' >>"$csv"
}
go_run() {  # go_run <rep> <scenario> <gomaxprocs>
  "$go_bin" --scenario "$2" --gomaxprocs "$3" --seconds 0.5 2>>"$base.stderr" |
    awk -F, -v rep="$1" -v p="$3" '{ printf "%s,go,%s/gomaxprocs:%s,%s,%s\n", rep, $2, p, $3, $4 }' \
      >>"$csv"
}
blocking_rows='BM_SpscBlocking|BM_PingPong|BM_Mpmc'
n=${#impls[@]}
for ((rep = 1; rep <= reps; rep++)); do
  for ((k = 0; k < n; k++)); do
    case ${impls[$(((k + rep - 1) % n))]} in
      bp) gbench "$rep" bp "$build/bench/async_benchmark" BM_Bp_ ;;
      asio) gbench "$rep" asio "$build/bench/async_benchmark" BM_Asio_ ;;
      go)
        go_run "$rep" pingpong 1
        go_run "$rep" pingpong 2
        go_run "$rep" mpmc2x2 2
        go_run "$rep" mpmc8x8 2
        ;;
      blocking) gbench "$rep" blocking "$build/bench/channel_benchmark" "$blocking_rows" ;;
      before) gbench "$rep" before "$before" "$blocking_rows" ;;
    esac
  done
  echo "async_compare: repetition $rep of $reps done ($(cut -d' ' -f1-3 /proc/loadavg))"
done
echo "uptime at end: $(uptime)" >>"$base.meta"
cleanup

summarize "$csv" | tee "$base.txt"
echo "async_compare: raw results $csv"
