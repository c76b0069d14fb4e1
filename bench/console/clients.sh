#!/usr/bin/env bash
# The risk console's cost on the engine: `vigil run` on the first RECORDS records of
# scenarios/throughput-100k.toml with CLIENTS live-stream clients reading /api/stream and
# STALLED clients that connect and never read; CLIENTS=off runs it with the console off. Every
# payment is alerted (ALERT_ALL=1, the default) so that the stream carries a decision for most
# events. Prints the engine's closing summary line, whose events/s is the figure; run it under a
# paired timer for wall and CPU:
#
#   cargo build --release
#   CLIENTS=10 bash bench/console/clients.sh
#   CLIENTS=off bash bench/console/clients.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
vigil=${VIGIL:-target/release/vigil}
records=${RECORDS:-400000}
clients=${CLIENTS:-10}
stalled=${STALLED:-0}
port=${PORT:-9187}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

settings=(--set "metrics.listen=\"127.0.0.1:0\"" --set "console.listen=\"127.0.0.1:$port\"")
if [ "${ALERT_ALL:-1}" = 1 ]; then
  settings+=(--set policy.fraud.alert=0)
fi
if [ "$clients" = off ]; then
  settings+=(--set console.enabled=false)
  clients=0
fi

# Clients connect as soon as the console listens, before the first event is read.
connect() {
  until curl -sfN "http://127.0.0.1:$port/api/stream" >"$1" 2>/dev/null; do
    [ -s "$1" ] && return
    sleep 0.01
  done
}
stall() {
  until exec 3<>"/dev/tcp/127.0.0.1/$port"; do sleep 0.01; done 2>/dev/null
  printf 'GET /api/stream HTTP/1.1\r\nHost: console\r\n\r\n' >&3
  sleep 3600
}
for i in $(seq 1 "$clients"); do connect "$work/client-$i" & done
for i in $(seq 1 "$stalled"); do stall & done

"$vigil" run --quiet --source generate:scenarios/throughput-100k.toml --max-records "$records" \
  --sink discard --dead-letter discard "${settings[@]}" 2>&1 | grep '^Done'
for i in $(seq 1 "$clients"); do
  printf 'client %s: %s decisions\n' "$i" "$(grep -c '^event: decision' "$work/client-$i" || true)"
done
