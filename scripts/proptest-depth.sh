#!/usr/bin/env bash
# The property tests at depth (part of scripts/bench.sh, not of
# scripts/test.sh, which runs them with their quick default counts): the
# convergence, consent, erasure and anonymisation (epoch replay) property
# tests, each with PROPTEST_CASES cases (default 10,000). Writes
# target/bench/results/proptest.json (cases, result and time per group),
# which tests/bench/report.mjs puts into docs/BENCHMARKS.md.
#
#   scripts/proptest-depth.sh                 10,000 cases each
#   scripts/proptest-depth.sh --cases 500     fewer
#
# A failing group is recorded (with its minimal failing input in the log,
# target/bench/results/proptest-<group>.log) and the others still run; the
# script then exits with status 1.
set -euo pipefail
cd "$(dirname "$0")/.."

cases=10000
while [[ $# -gt 0 ]]; do
  case "$1" in
    --cases) cases=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ $cases =~ ^[0-9]+$ ]] || { echo "--cases needs a number, got $cases" >&2; exit 2; }

out=target/bench/results
mkdir -p "$out"

# group | cargo test arguments (package, target) | exact test names
groups=(
  "convergence|-p rapport-sync --test convergence|random_offline_edits_and_connection_interleavings_converge_to_the_same_contacts"
  "consent|-p rapport-core --lib|consent::tests::replicas_that_sync_randomly_converge_to_the_same_ledger_and_statuses consent::tests::the_status_is_withdrawn_exactly_when_a_withdrawal_is_a_head consent::tests::a_withdrawal_is_never_lost_to_a_grant_made_concurrently_on_another_replica consent::tests::a_grant_made_after_seeing_a_withdrawal_wins consent::tests::skewed_clocks_change_no_status consent::tests::replicas_that_sync_through_automerge_converge_to_the_same_ledger"
  "erasure|-p rapport-core --lib|privacy::replica::tests::erasure_with_concurrent_edits_on_any_number_of_replicas_leaves_no_copy_of_the_subject"
  "anonymisation|-p rapport-core --lib|repo::epoch_tests::replay::no_withdrawal_or_restriction_is_lost_to_concurrent_anonymisations"
)

failed=0
entries=()
for g in "${groups[@]}"; do
  IFS='|' read -r name target tests <<< "$g"
  n=$(wc -w <<< "$tests")
  printf '\n\033[1;32m==> property tests: %s (%s tests, %s cases each)\033[0m\n' "$name" "$n" "$cases"
  # Build first, so the time below is the tests' own.
  # shellcheck disable=SC2086
  cargo test --locked $target --no-run
  log="$out/proptest-$name.log"
  start=$(date +%s%N)
  # shellcheck disable=SC2086
  if PROPTEST_CASES=$cases cargo test --locked $target -- --exact $tests > "$log" 2>&1; then
    result=passed
  else
    result=failed
    failed=1
  fi
  seconds=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
  passed=$(grep -Eo '[0-9]+ passed' "$log" | tail -1 | cut -d' ' -f1)
  printf '%s: %s (%s of %s tests passed) in %.0f s\n' "$name" "$result" "${passed:-0}" "$n" "$seconds"
  entries+=("{\"group\":\"$name\",\"tests\":$n,\"passed\":${passed:-0},\"result\":\"$result\",\"seconds\":$seconds}")
done

date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
printf '{"date":"%s","cases":%s,"groups":[%s]}\n' "$date" "$cases" "$(IFS=,; echo "${entries[*]}")" > "$out/proptest.json"
echo "Wrote $out/proptest.json"
exit "$failed"
