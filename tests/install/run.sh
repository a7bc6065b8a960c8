#!/usr/bin/env bash
# One install test: builds tests/install/consumer (or one file with pkg-config) against bp
# obtained one way, runs it, and removes its temporary directory whatever happens.
#   run.sh package       cmake --install into a prefix; find_package(bp) (+ COMPONENTS nats);
#                        an unknown component, nats without libnats and nats not installed
#                        must each fail to configure with a clear message
#   run.sh subdirectory  add_subdirectory(<source tree>), bp::bp
#   run.sh fetchcontent  FetchContent from a local archive of the source tree (no network), with
#                        BP_BUILD_CONNECTORS=ON and bp::nats when the connector was built
#   run.sh pkgconfig     cmake --install into a prefix; c++ $(pkg-config --cflags --libs bp)
# Environment (set by tests/install/CMakeLists.txt): BP_SOURCE_DIR, BP_BUILD_DIR, BP_CMAKE,
# BP_CXX, BP_GENERATOR, BP_WITH_NATS (1: the connector was built, test it too), BP_JOBS.
set -euo pipefail
mode=${1:?usage: run.sh package|subdirectory|fetchcontent|pkgconfig}
: "${BP_SOURCE_DIR:?}" "${BP_BUILD_DIR:?}" "${BP_CMAKE:?}" "${BP_CXX:?}"
generator=${BP_GENERATOR:-Unix Makefiles}
with_nats=${BP_WITH_NATS:-0}
with_prometheus=${BP_WITH_PROMETHEUS:-0}
jobs=${BP_JOBS:-1}
consumer_src="$BP_SOURCE_DIR/tests/install/consumer"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bp-install-$mode.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "bp install test '$mode' in $tmp"

step() { echo "--- $*"; }
# Configures the consumer into $1 with the remaining arguments, builds it, runs its programs.
consumer() {
  local dir=$1
  shift
  step "configure consumer ($*)"
  "$BP_CMAKE" -S "$consumer_src" -B "$dir" -G "$generator" -DCMAKE_CXX_COMPILER="$BP_CXX" \
    -DCMAKE_BUILD_TYPE=Debug "$@" >"$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; return 1; }
  grep -E '^-- consumer:' "$dir.configure.log" || true
  local targets=(consumer)
  [[ " $* " == *"=nats "* ]] && targets+=(consumer_nats)
  [[ " $* " == *"=prometheus "* ]] && targets+=(consumer_prometheus)
  step "build ${targets[*]}"
  "$BP_CMAKE" --build "$dir" --parallel "$jobs" --target "${targets[@]}"
  for t in "${targets[@]}"; do
    step "run $t"
    "$dir/$t"
  done
}
# Configuring the consumer with the arguments after $1 and $2 must fail, saying $2.
expect_failure() {
  local what=$1 expected=$2 log
  shift 2
  step "$what must fail to configure"
  log=$(mktemp "$tmp/failure.XXXXXX")
  if "$BP_CMAKE" -S "$consumer_src" -B "$log.build" -G "$generator" \
    -DCMAKE_CXX_COMPILER="$BP_CXX" "$@" >"$log" 2>&1; then
    cat "$log"
    echo "configuring with $* succeeded"
    return 1
  fi
  grep -qF "$expected" "$log" || { cat "$log"; echo "no message saying: $expected"; return 1; }
  echo "failed as it should: $(tr '\n' ' ' <"$log" | grep -o "missing components: [^)]*)" | tr -s ' ')"
}
# Installs the components dev (and nats, prometheus) of the build tree into $tmp/prefix.
install_prefix() {
  local components=(dev)
  ((with_nats)) && components+=(nats)
  ((with_prometheus)) && components+=(prometheus)
  for c in "${components[@]}"; do
    step "cmake --install $BP_BUILD_DIR --prefix $tmp/prefix --component $c"
    "$BP_CMAKE" --install "$BP_BUILD_DIR" --prefix "$tmp/prefix" --component "$c" >/dev/null
  done
}

case $mode in
package)
  install_prefix
  consumer "$tmp/plain" -DCMAKE_PREFIX_PATH="$tmp/prefix"
  grep -q "from $tmp/prefix/" "$tmp/plain.configure.log" ||
    { echo "find_package(bp) did not find the test prefix"; exit 1; }
  expect_failure "an unknown component" "unknown; bp's components are: nats" \
    -DCMAKE_PREFIX_PATH="$tmp/prefix" -DBP_CONSUMER_COMPONENTS=bogus
  if ((with_nats)); then
    PKG_CONFIG_LIBDIR=/nonexistent expect_failure "nats without libnats" "needs libnats" \
      -DCMAKE_PREFIX_PATH="$tmp/prefix" -DBP_CONSUMER_COMPONENTS=nats
    "$BP_CMAKE" --install "$BP_BUILD_DIR" --prefix "$tmp/dev-only" --component dev >/dev/null
    expect_failure "nats not installed" "'nats' (not installed" \
      -DCMAKE_PREFIX_PATH="$tmp/dev-only" -DBP_CONSUMER_COMPONENTS=nats
    consumer "$tmp/nats" -DCMAKE_PREFIX_PATH="$tmp/prefix" -DBP_CONSUMER_COMPONENTS=nats
  else
    echo "(connector not built: COMPONENTS nats not tested)"
  fi
  if ((with_prometheus)); then
    "$BP_CMAKE" --install "$BP_BUILD_DIR" --prefix "$tmp/dev-only" --component dev >/dev/null
    expect_failure "prometheus not installed" "'prometheus' (not installed" \
      -DCMAKE_PREFIX_PATH="$tmp/dev-only" -DBP_CONSUMER_COMPONENTS=prometheus
    consumer "$tmp/prometheus" -DCMAKE_PREFIX_PATH="$tmp/prefix" -DBP_CONSUMER_COMPONENTS=prometheus
  else
    echo "(exporter not built: COMPONENTS prometheus not tested)"
  fi
  ;;
subdirectory)
  # bp::bp only: building the connector from source is install.fetchcontent's part (one
  # compile of it per run keeps these tests short on a loaded machine).
  consumer "$tmp/build" -DBP_CONSUMER_MODE=subdirectory -DBP_SOURCE_DIR="$BP_SOURCE_DIR"
  ;;
fetchcontent)
  step "archive the source tree (without build trees and .git)"
  tar -C "$BP_SOURCE_DIR" --exclude='./build*' --exclude=./.git --exclude=node_modules \
    -czf "$tmp/bp-src.tar.gz" .
  args=(-DBP_CONSUMER_MODE=fetchcontent -DBP_SOURCE_URL="file://$tmp/bp-src.tar.gz")
  ((with_nats)) && args+=(-DBP_CONSUMER_COMPONENTS=nats)
  consumer "$tmp/build" "${args[@]}"
  ;;
pkgconfig)
  install_prefix
  export PKG_CONFIG_PATH="$tmp/prefix/share/pkgconfig"
  step "pkg-config --modversion bp: $(pkg-config --modversion bp)"
  step "c++ \$(pkg-config --cflags bp) main.cpp \$(pkg-config --libs bp)"
  # shellcheck disable=SC2046
  "$BP_CXX" $(pkg-config --cflags bp) -Wall -Wextra -Wpedantic -Werror \
    "$consumer_src/main.cpp" -o "$tmp/consumer" $(pkg-config --libs bp)
  "$tmp/consumer"
  if ((with_nats)); then
    step "c++ \$(pkg-config --cflags bp-nats) nats_main.cpp \$(pkg-config --libs bp-nats)"
    # shellcheck disable=SC2046
    "$BP_CXX" $(pkg-config --cflags bp-nats) -Wall -Wextra -Wpedantic -Werror \
      "$consumer_src/nats_main.cpp" -o "$tmp/consumer_nats" $(pkg-config --libs bp-nats)
    "$tmp/consumer_nats"
  fi
  if ((with_prometheus)); then
    step "c++ \$(pkg-config --cflags bp-prometheus) prometheus_main.cpp \$(pkg-config --libs bp-prometheus)"
    # shellcheck disable=SC2046
    "$BP_CXX" $(pkg-config --cflags bp-prometheus) -Wall -Wextra -Wpedantic -Werror \
      "$consumer_src/prometheus_main.cpp" -o "$tmp/consumer_prometheus" \
      $(pkg-config --libs bp-prometheus)
    "$tmp/consumer_prometheus"
  fi
  ;;
*)
  echo "unknown mode $mode"
  exit 2
  ;;
esac
echo "bp install test '$mode': ok"
