#!/usr/bin/env bash
# Runs a command beside a fresh `nats-server -js` on 127.0.0.1 (random free ports, temporary
# store), with its URL in BP_NATS_URL; waits for GET /healthz = 200 first and stops the server
# by its PID afterwards, whatever the command does. Exit status: the command's.
#   run_with_nats_server.sh <command> [args...]
set -euo pipefail
server=${BP_NATS_SERVER:-nats-server}
dir=$(mktemp -d /tmp/bp-nats-XXXXXX)
log=$dir/server.log
: >"$log"  # exists before the server writes to it: the polling below reads it at once
"$server" -js -a 127.0.0.1 -p -1 -m -1 -sd "$dir/store" >"$log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

client_port="" monitor_port=""
for _ in $(seq 150); do  # 15 s at most
  kill -0 "$pid" 2>/dev/null || { echo "nats-server exited:" >&2; cat "$log" >&2; exit 1; }
  client_port=$(sed -n 's/.*Listening for client connections on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
  monitor_port=$(sed -n 's/.*Starting http monitor on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
  if [[ -n $client_port && -n $monitor_port ]] && exec 3<>"/dev/tcp/127.0.0.1/$monitor_port" 2>/dev/null; then
    printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3
    status=$(head -n1 <&3 || true)
    exec 3<&-
    [[ $status == *" 200 "* ]] && break
  fi
  sleep 0.1
done
[[ -n $client_port ]] || { echo "nats-server not ready within 15 s" >&2; exit 1; }

export BP_NATS_URL="nats://127.0.0.1:$client_port"
set +e
"$@"
rc=$?
set -e
exit $rc
