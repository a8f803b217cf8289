#!/usr/bin/env bash
# The benchmarks (not part of scripts/test.sh): builds the release app, the
# relay and the benchmark tools, generates seeded workspaces of 1k, 10k and
# 100k contacts, measures them in headless Chromium (cold start, search,
# scrolling, edits, memory, storage), measures the bundle, load-tests the
# relay and syncs two browsers through it, then writes docs/BENCHMARKS.md.
#
#   scripts/bench.sh                          everything (about 15 minutes the first time)
#   scripts/bench.sh --sizes 1000,10000       fewer sizes
#   scripts/bench.sh --no-build               reuse target/bench/dist and the release binaries
#   scripts/bench.sh --no-relay --no-sync     browser benchmarks only
#   scripts/bench.sh --relay-idle 2000        fewer idle relay clients
#   scripts/bench.sh --relay-hostile 200      fewer hostile relay clients
#   scripts/bench.sh --sync-sizes 1000        workspace sizes for the two-browser sync run
#   scripts/bench.sh --proptest-cases 500     fewer cases for the property tests at depth (default 10000)
#   scripts/bench.sh --no-proptest            skip them (alone: scripts/proptest-depth.sh)
#   scripts/bench.sh --soak-minutes 5         a shorter soak of two browsers and a relay (default 30)
#   scripts/bench.sh --no-soak                skip the soak
#   scripts/bench.sh --crash-cycles 20        fewer kill -9 cycles of the relay (default 100)
#   scripts/bench.sh --fuzz-iters 10000       fewer fuzz inputs per target (default 200000)
#   scripts/bench.sh --no-durability          skip the kill -9 cycles and the fuzz run
#
# Generated data is cached in target/bench/ and regenerated only when the
# generator's output would differ. Results: target/bench/results/*.json.
set -euo pipefail
cd "$(dirname "$0")/.."

sizes=1000,10000,100000
sync_sizes=1000,10000
build=1
relay=1
sync=1
relay_idle=10000
relay_hostile=1000
proptest=1
proptest_cases=10000
durability=1
crash_cycles=100
fuzz_iters=200000
soak=1
soak_minutes=30
while [[ $# -gt 0 ]]; do
  case "$1" in
    --sizes) sizes=$2; shift 2 ;;
    --sync-sizes) sync_sizes=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --no-relay) relay=0; shift ;;
    --no-sync) sync=0; shift ;;
    --relay-idle) relay_idle=$2; shift 2 ;;
    --relay-hostile) relay_hostile=$2; shift 2 ;;
    --proptest-cases) proptest_cases=$2; shift 2 ;;
    --no-proptest) proptest=0; shift ;;
    --crash-cycles) crash_cycles=$2; shift 2 ;;
    --fuzz-iters) fuzz_iters=$2; shift 2 ;;
    --no-durability) durability=0; shift ;;
    --soak-minutes) soak_minutes=$2; shift 2 ;;
    --no-soak) soak=0; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

step() { printf '\n\033[1;32m==> %s\033[0m\n' "$*"; }

scripts/setup.sh --test
export PATH="$PWD/node_modules/.bin:$PATH"
out=target/bench
mkdir -p "$out/results"

if [[ $build == 1 ]]; then
  step "release build of the app (into $out/dist)"
  trunk build --release --dist "$out/dist"
  step "release build of the relay and the benchmark tools"
  cargo build --release -p rapport-relay -p rapport-bench
fi
for f in "$out/dist/index.html" target/release/rapport-relay target/release/rapport-bench-gen target/release/rapport-relay-load; do
  [[ -e $f ]] || { echo "missing $f: run without --no-build" >&2; exit 1; }
done

step "seeded workspaces"
IFS=, read -r -a all_sizes <<< "$sizes,$sync_sizes"
for n in $(printf '%s\n' "${all_sizes[@]}" | sort -un); do
  target/release/rapport-bench-gen --contacts "$n" --out "$out/data-$n.rbd" --if-changed
done

# Other builds on the machine disturb timings less at a higher priority.
prio=()
if [[ $(id -u) == 0 ]]; then prio=(nice -n -10); fi

step "browser benchmarks: ${sizes//,/, } contacts"
"${prio[@]}" node tests/bench/run.mjs --dist "$out/dist" --data "$out" --work "$out/work" \
  --out "$out/results/browser.json" --sizes "$sizes"

if [[ $relay == 1 ]]; then
  step "relay: $relay_idle idle clients, then pushes, then pushes among $relay_hostile hostile clients"
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  "${prio[@]}" target/release/rapport-relay-load --relay target/release/rapport-relay --idle "$relay_idle" \
    --hostile "$relay_hostile" \
    > "$out/results/relay.json.tmp"
  mv "$out/results/relay.json.tmp" "$out/results/relay.json"
else
  rm -f "$out/results/relay.json"
fi

if [[ $sync == 1 ]]; then
  step "sync between two browsers: ${sync_sizes//,/, } contacts"
  "${prio[@]}" node tests/bench/sync.mjs --dist "$out/dist" --data "$out" --work "$out/work" \
    --relay target/release/rapport-relay --out "$out/results/sync.json" --sizes "$sync_sizes"
else
  rm -f "$out/results/sync.json"
fi

proptest_failed=0
if [[ $proptest == 1 ]]; then
  step "property tests at depth: $proptest_cases cases each"
  scripts/proptest-depth.sh --cases "$proptest_cases" || proptest_failed=1
else
  rm -f "$out/results/proptest.json"
fi

durability_failed=0
if [[ $durability == 1 ]]; then
  # Debug builds (the test profile): the same tests as the test command,
  # with more cycles and inputs.
  step "crash durability: $crash_cycles kill -9 cycles of the relay binary"
  rm -f "$out/results/crash.json"
  CRASH_CYCLES=$crash_cycles CRASH_REPORT="$PWD/$out/results/crash.json" \
    cargo test -p rapport-relay --test crash --locked || durability_failed=1
  step "fuzzing the decoders of outside input: $fuzz_iters inputs per target"
  rm -f "$out/results/fuzz.jsonl"
  for crate in rapport-protocol rapport-core; do
    FUZZ_ITERS=$fuzz_iters FUZZ_REPORT="$PWD/$out/results/fuzz.jsonl" \
      cargo test -p "$crate" --test fuzz --locked || durability_failed=1
  done
else
  rm -f "$out/results/crash.json" "$out/results/fuzz.jsonl"
fi

soak_failed=0
if [[ $soak == 1 ]]; then
  step "soak: two browsers and a relay for $soak_minutes minutes of edits, offline spells and relay kills"
  node tests/bench/soak.mjs --dist "$out/dist" --relay target/release/rapport-relay \
    --out "$out/results/soak.json" --minutes "$soak_minutes" || soak_failed=1
else
  rm -f "$out/results/soak.json"
fi

step "report"
node tests/bench/report.mjs --results "$out/results" --out docs
echo "Wrote docs/BENCHMARKS.md (results in $out/results/)."
if [[ $durability_failed == 1 ]]; then
  echo "The crash or fuzz run failed: see the output above (a fuzz failure prints its input)" >&2
  exit 1
fi
if [[ $soak_failed == 1 ]]; then
  echo "The soak did not end with both browsers complete and identical: see $out/results/soak.json" >&2
  exit 1
fi
if [[ $proptest_failed == 1 ]]; then
  echo "A property test failed at depth: see $out/results/proptest-*.log" >&2
  exit 1
fi
