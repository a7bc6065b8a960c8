#!/usr/bin/env bash
# Runs one libFuzzer binary for a bounded time and prints one summary line:
#   fuzz <name>: <runs> runs in <s> s, cov <edges>, ft <features>, corpus <n> inputs
# Usage: run_fuzzer.sh EXE NAME SECONDS WORKDIR SEED_CORPUS_DIR FINDINGS_DIR
# New inputs go to WORKDIR/corpus (the committed seeds are only read); a crash leaves its input
# in WORKDIR/artifacts and fails the run. The findings directory holds inputs that once failed:
# they are replayed first, so a regression fails at once.
set -euo pipefail
exe=$1 name=$2 seconds=$3 work=$4 seeds=$5 found=$6
mkdir -p "$work/corpus" "$work/artifacts"
dirs=("$work/corpus")
[[ -d $seeds ]] && dirs+=("$seeds")
[[ -d $found ]] && dirs+=("$found")
log="$work/fuzz.log"
rc=0
"$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" "${dirs[@]}" >"$log" 2>&1 || rc=$?
runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || true)
cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | grep -Eo '[0-9]+' || true)
ft=$(grep -Eo 'ft: [0-9]+' "$log" | tail -1 | grep -Eo '[0-9]+' || true)
corpus=$(find "$work/corpus" -type f | wc -l)
echo "fuzz $name: ${runs:-?} runs in $seconds s, cov ${cov:-?}, ft ${ft:-?}, corpus $corpus inputs"
if ((rc != 0)); then
  echo "fuzz $name: FAILED (exit $rc); the log's end:"
  tail -40 "$log"
  ls "$work/artifacts"
  exit 1
fi
