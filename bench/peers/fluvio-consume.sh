#!/usr/bin/env bash
# Vigil's Fluvio source against Fluvio's own consumer, on the same topic in one run: writes a
# scenario's events to a fresh topic (`vigil produce`), then reads every record with
# `fluvio consume` (printing values, counted by `wc -l`) and with `vigil-source-rate` (the
# engine's source and nothing else), and prints both rates, each over its whole process's wall
# time (connecting included), and their ratio.
#
#   bench/peers/fluvio-consume.sh [SCENARIO.toml] [PARTITIONS] [RUNS]
#       # defaults: scenarios/throughput-100k.toml, 1 partition, 3 runs
#
# Needs a running cluster (FLUVIO_ENDPOINT, as the cluster script sets it) and the fluvio CLI:
# FLUVIO_CLI names it, run as `$FLUVIO_CLI --cluster $FLUVIO_ENDPOINT`. Never part of the tests.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
scenario=${1:-$root/scenarios/throughput-100k.toml}
partitions=${2:-1}
runs=${3:-3}
: "${FLUVIO_ENDPOINT:?start a cluster first; FLUVIO_ENDPOINT is not set}"
cli=${FLUVIO_CLI:-fluvio}
fluvio() { $cli --cluster "$FLUVIO_ENDPOINT" "$@"; }

(cd "$root" && cargo build --release -q -p vigil -p vigil-bench)
bin=$root/target/release
topic=vigil-source-rate-$$
work=$(mktemp -d)
fluvio topic create "$topic" --partitions "$partitions" >/dev/null
trap 'fluvio topic delete "$topic" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
"$bin/vigil" produce --from "generate:$scenario" --to "file:$work/events.jsonl" 2>/dev/null
records=$(wc -l <"$work/events.jsonl")
"$bin/vigil" produce --from "file:$work/events.jsonl" --to "fluvio:$topic" 2>/dev/null
echo "$(basename "$scenario"): $records records on $topic ($partitions partitions); $(nproc) cores"

for run in $(seq "$runs"); do
  started=$(date +%s.%N)
  consumed=$(fluvio consume "$topic" --all-partitions -B -d 2>/dev/null | wc -l)
  ended=$(date +%s.%N)
  cli_rate=$(python3 -c "print(round($consumed / ($ended - $started)))")
  started=$(date +%s.%N)
  "$bin/vigil-source-rate" "fluvio:$topic" --records "$records" >/dev/null
  ended=$(date +%s.%N)
  vigil_rate=$(python3 -c "print(round($records / ($ended - $started)))")
  python3 - "$run" "$vigil_rate" "$cli_rate" "$consumed" "$records" <<'PY'
import sys
run, vigil, cli, consumed, records = sys.argv[1], *map(int, sys.argv[2:])
print(f"run {run}: Vigil source {vigil:,} records/s; fluvio consume {cli:,} records/s "
      f"(it printed {consumed:,} of {records:,}); Vigil/fluvio = {vigil / cli:.2f}")
PY
done
