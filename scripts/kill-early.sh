#!/usr/bin/env bash
# Kills rrc-record and rrc-replay with SIGKILL at random moments in their
# first 50 ms, N times each, and counts the processes left behind (a child
# forked but not yet traced with EXITKILL used to stay stopped forever).
#   scripts/kill-early.sh [N]        # default 1000; needs a release build
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
bin=target/release
[ -x "$bin/rrc-record" ] || cargo build --release --workspace
dir=$(mktemp -d /tmp/rrc-kill-early.XXXXXX)
trap 'rm -rf "$dir"' EXIT
"$bin/rrc-record" -o "$dir/base.trace" -- /bin/sleep 0.01 >/dev/null
kill_early() { # command...
  "$@" >/dev/null 2>&1 </dev/null &
  local pid=$!
  sleep "0.0$(printf '%02d' $((RANDOM % 50)))"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
for i in $(seq 1 "$n"); do
  kill_early "$bin/rrc-record" -o "$dir/t$i" -- /bin/sleep 5
  kill_early "$bin/rrc-replay" "$dir/base.trace"
  rm -f "$dir/t$i"
done
sleep 1
left=0
for p in /proc/[0-9]*; do
  if grep -qa "$dir" "$p/cmdline" 2>/dev/null; then
    left=$((left + 1))
    kill -9 "${p#/proc/}" 2>/dev/null || true
  fi
done
echo "kill-early: $n kills of rrc-record and $n of rrc-replay in their first 50 ms: $left processes left behind"
[ "$left" -eq 0 ]
