#!/usr/bin/env bash
# The Debian packages end to end: cpack -G DEB from the build tree, dpkg -i, a program built
# against the installed /usr files with find_package(bp) and pkg-config, bp-console --help,
# then dpkg --purge of every package it installed. Needs root and dpkg (else: skipped, exit 77).
#
# The machine is left as it was: the purge runs from an EXIT trap; the names of the packages
# are written to a state file before they are installed, so a run killed outright (ctest's
# timeout) is cleaned up by the next one; each step has its own time limit, well inside the
# ctest timeout; a lock keeps two runs (from other build trees too) from overlapping; and
# packages of these names that something else installed are never touched (the test skips).
# Environment: as run.sh (BP_SOURCE_DIR, BP_BUILD_DIR, BP_CMAKE, BP_CXX, BP_GENERATOR) and
# BP_CPACK.
set -euo pipefail
: "${BP_SOURCE_DIR:?}" "${BP_BUILD_DIR:?}" "${BP_CMAKE:?}" "${BP_CPACK:?}" "${BP_CXX:?}"
generator=${BP_GENERATOR:-Unix Makefiles}
skip() { echo "SKIPPED: $*"; exit 77; }

[[ $(id -u) == 0 ]] || skip "the Debian package test installs into /usr: it runs only as root"
if ! command -v dpkg >/dev/null || ! command -v dpkg-deb >/dev/null; then skip "dpkg not found"; fi
if ! command -v flock >/dev/null; then skip "flock (util-linux) not found"; fi

state_dir=/var/lib/bp-install-test
state=$state_dir/installed-packages
state_tmp=$state_dir/temporary-directory
mkdir -p "$state_dir"
exec 9>"$state_dir/lock"
flock -w 120 9 || { echo "another Debian package test holds $state_dir/lock"; exit 1; }

# dpkg refuses while apt or another dpkg holds its lock: retry for a while.
dpkg_retry() {
  local i
  for i in $(seq 30); do
    timeout 120 dpkg "$@" && return 0
    fuser /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock >/dev/null 2>&1 || return 1
    echo "dpkg is busy, retrying ($i)"
    sleep 2
  done
  return 1
}
purge_recorded() {
  [[ -s $state ]] || { rm -f "$state"; return 0; }
  local pkgs
  mapfile -t pkgs <"$state"
  echo "--- dpkg --purge ${pkgs[*]}"
  dpkg_retry --purge "${pkgs[@]}" >/dev/null && rm -f "$state"
}

if [[ -e $state ]]; then
  echo "--- a previous run was killed before its cleanup: purging what it installed"
  purge_recorded || { echo "could not purge the packages listed in $state"; exit 1; }
fi
if [[ -s $state_tmp ]]; then
  rm -rf -- "$(cat "$state_tmp")"
  rm -f "$state_tmp"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bp-install-deb.XXXXXX")
echo "$tmp" >"$state_tmp"
cleanup() {
  local rc=$?
  purge_recorded || { echo "CLEANUP FAILED: packages listed in $state are still installed"; rc=1; }
  rm -rf "$tmp"
  rm -f "$state_tmp"
  exit $rc
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP
echo "bp Debian package test in $tmp"

echo "--- cpack -G DEB"
timeout 240 "$BP_CPACK" -G DEB --config "$BP_BUILD_DIR/CPackConfig.cmake" -B "$tmp/packages" \
  >"$tmp/cpack.log" 2>&1 || { cat "$tmp/cpack.log"; exit 1; }
mapfile -t debs < <(find "$tmp/packages" -maxdepth 1 -name '*.deb' | sort)
((${#debs[@]})) || { cat "$tmp/cpack.log"; echo "cpack made no .deb"; exit 1; }
pkgs=()
for deb in "${debs[@]}"; do
  name=$(dpkg-deb -f "$deb" Package)
  echo "$(basename "$deb"): $(dpkg-deb -f "$deb" Package Version Architecture Depends | tr '\n' ' ')"
  pkgs+=("$name")
done
for p in "${pkgs[@]}"; do
  status=$(dpkg-query -W -f '${db:Status-Status}' "$p" 2>/dev/null || true)
  if [[ -n $status && $status != not-installed ]]; then
    skip "$p is already installed on this machine (not by this test): not touching it"
  fi
done

printf '%s\n' "${pkgs[@]}" >"$state"
echo "--- dpkg -i ${pkgs[*]}"
dpkg_retry -i "${debs[@]}"

has() { [[ " ${pkgs[*]} " == *" $1 "* ]]; }
echo "--- static libraries in the multiarch directory, declared dependencies"
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
for p in libbp-nats-dev libbp-prometheus-dev; do
  has "$p" || continue
  lib=$(dpkg -L "$p" | grep -E '\.a$')
  [[ $lib == /usr/lib/$multiarch/* ]] || { echo "$p installs $lib, not under /usr/lib/$multiarch"; exit 1; }
  echo "$p: $lib"
done
depends=$(dpkg-query -W -f '${Depends}' libbp-dev)
[[ -n $depends ]] || { echo "libbp-dev declares no Depends"; exit 1; }
echo "libbp-dev Depends: $depends"

echo "--- find_package(bp) from /usr"
components=()
has libbp-nats-dev && components+=(nats)
has libbp-prometheus-dev && components+=(prometheus)
args=()
((${#components[@]})) && args+=("-DBP_CONSUMER_COMPONENTS=$(IFS=';'; echo "${components[*]}")")
timeout 120 "$BP_CMAKE" -S "$BP_SOURCE_DIR/tests/install/consumer" -B "$tmp/consumer" -G "$generator" \
  -DCMAKE_CXX_COMPILER="$BP_CXX" "${args[@]}" >"$tmp/configure.log" 2>&1 ||
  { cat "$tmp/configure.log"; exit 1; }
grep -E '^-- consumer:' "$tmp/configure.log"
grep -q 'from /usr/share/bp/cmake' "$tmp/configure.log" ||
  { echo "find_package(bp) did not use the packaged /usr/share/bp/cmake"; exit 1; }
targets=(consumer)
has libbp-nats-dev && targets+=(consumer_nats)
has libbp-prometheus-dev && targets+=(consumer_prometheus)
timeout 180 "$BP_CMAKE" --build "$tmp/consumer" --parallel 1 --target "${targets[@]}"
for t in "${targets[@]}"; do "$tmp/consumer/$t"; done

echo "--- pkg-config bp from /usr"
# shellcheck disable=SC2046
env -u PKG_CONFIG_PATH "$BP_CXX" $(env -u PKG_CONFIG_PATH pkg-config --cflags bp) \
  "$BP_SOURCE_DIR/tests/install/consumer/main.cpp" -o "$tmp/pc_consumer" \
  $(env -u PKG_CONFIG_PATH pkg-config --libs bp)
"$tmp/pc_consumer"

if has bp-console; then
  echo "--- bp-console --help"
  timeout 20 /usr/bin/bp-console --help >"$tmp/help.txt"
  head -3 "$tmp/help.txt"
fi
echo "bp Debian package test: ok (${pkgs[*]})"
