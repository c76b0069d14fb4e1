#!/usr/bin/env bash
# Vigil against Apache Flink SQL on the same events, in one run: writes a scenario's events to a
# JSON Lines file (`vigil produce --to file:`), runs the whole Vigil engine on it (file to file,
# release build) and then the peers' Flink SQL job (PyFlink local mini-cluster, parallelism 2,
# decisions to files), and prints both throughputs and their ratio.
#
#   bench/peers/flink.sh PEERS [SCENARIO.toml] [RUNS]   # default scenarios/throughput-100k.toml, 1
#
# PEERS is the shared peers folder (the one with flink/fraud_sql.py and flink/bench.sh). Optional,
# and never part of the tests: it needs the PyFlink venv that PEERS/flink/setup_venv.sh creates
# (Python 3.11, Java 17, apache-flink from PyPI; FLINK_PY points at another venv's python).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
peers=$(cd "${1:?usage: bench/peers/flink.sh PEERS [SCENARIO.toml] [RUNS]}" && pwd)
scenario=${2:-$root/scenarios/throughput-100k.toml}
runs=${3:-1}
export FLINK_PY=${FLINK_PY:-/tmp/flinkenv/bin/python}
[ -x "$FLINK_PY" ] || { echo "no PyFlink at $FLINK_PY: run $peers/flink/setup_venv.sh first" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$root" && cargo build --release -q -p vigil)
vigil=$root/target/release/vigil
events=$work/events.jsonl
"$vigil" produce --from "generate:$scenario" --to "file:$events" 2>/dev/null
records=$(wc -l <"$events")
echo "$(basename "$scenario"): $records events in $events; $(nproc) cores"

for run in $(seq "$runs"); do
  rm -f "$work"/vigil-*.jsonl
  started=$(date +%s.%N)
  "$vigil" run --quiet --source "file:$events" --sink "file:$work/vigil-decisions.jsonl" \
      --dead-letter "file:$work/vigil-dead-letters.jsonl" --set 'metrics.listen="127.0.0.1:0"' \
      2>"$work/vigil.log"
  ended=$(date +%s.%N)
  vigil_rate=$(python3 -c "print(round($records / ($ended - $started)))")

  rm -rf "$work/flink"
  BENCH_OUT="$work/flink" bash "$peers/flink/bench.sh" "$events" 1 >"$work/flink.out"
  read -r flink_wall flink_process < <(python3 - "$work/flink" <<'PY'
import glob, json, sys
d = json.load(open(glob.glob(sys.argv[1] + "/*.json")[0]))
print(round(d["events_per_s"]), round(d["events_read"] / d["process_wall_s"]))
PY
)
  python3 - "$run" "$vigil_rate" "$flink_wall" "$flink_process" <<'PY'
import sys
run, vigil, wall, process = sys.argv[1], *map(int, sys.argv[2:])
print(f"run {run}: Vigil {vigil:,} events/s (process wall time); Flink {wall:,} events/s on its "
      f"job's wall time, {process:,} on its process's; Vigil/Flink = {vigil / wall:.1f} "
      f"(job time), {vigil / process:.1f} (process time)")
PY
done
