#!/usr/bin/env bash
# The cost of inactivity timers at a million customers (see README, "Inactivity checks and the
# watermark"). Writes two event files to DIR (default: a temporary directory):
#   quiet.jsonl  a million customers with one login each, 10 ms apart: a million 7-day checks
#                pending, nearly all of them for passivated customers (the cap is 100,000);
#   jump.jsonl   the same, then 200,000 logins of 1,000 other customers from day 8 on: the
#                watermark passes every one of the million checks at once.
# and runs each with the checks on and off, printing the run summary, wall time and peak RSS.
set -euo pipefail
vigil=${VIGIL:-target/release/vigil}
dir=${1:-$(mktemp -d)}
t0=1780272000000 # 2026-06-01T00:00:00Z
awk -v t0="$t0" 'BEGIN { for (i = 0; i < 1000000; i++)
  printf "{\"schema\":1,\"event_id\":\"e-%d\",\"customer_id\":\"c-%07d\",\"ts\":%.0f,\"kind\":\"login\"}\n", i, i, t0 + i * 10 }' \
  >"$dir/quiet.jsonl"
cp "$dir/quiet.jsonl" "$dir/jump.jsonl"
awk -v t0="$t0" 'BEGIN { for (j = 0; j < 200000; j++)
  printf "{\"schema\":1,\"event_id\":\"a-%d\",\"customer_id\":\"a-%04d\",\"ts\":%.0f,\"kind\":\"login\"}\n", j, j % 1000, t0 + 8 * 86400000 + j * 10 }' \
  >>"$dir/jump.jsonl"
printf '[metrics]\nlisten = "127.0.0.1:0"\n' >"$dir/on.toml"
printf '[policy.churn]\ncheck_after = []\n[metrics]\nlisten = "127.0.0.1:0"\n' >"$dir/off.toml"
for events in quiet jump; do
  for checks in on off; do
    echo "== $events, checks $checks"
    /usr/bin/time -f "wall %e s, peak RSS %M KiB" "$vigil" run --quiet --config "$dir/$checks.toml" \
      --source "file:$dir/$events.jsonl" --sink discard --dead-letter discard 2>&1 | grep -E '^(Done|Inactivity|wall)'
  done
done
