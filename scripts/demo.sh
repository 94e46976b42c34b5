#!/usr/bin/env bash
# Builds rrc, compiles the bundled demo (demo/demo.c: a multithreaded
# bakery), runs it natively twice (the story changes), records it,
# inspects the trace, and replays it twice: the replays tell the recorded
# story byte for byte.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --required-only
cargo build --release --workspace
bin=target/release
out=target/demo
mkdir -p "$out"
gcc -O2 -g -pthread -Wall -o "$out/demo" demo/demo.c

if [[ -t 1 ]]; then bold=$'\033[1m' plain=$'\033[0m'; else bold= plain=; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }

step "Two native runs of the demo: threads, locks, random numbers and clocks make them differ"
"$out/demo" >"$out/native1.out"
"$out/demo" >"$out/native2.out"
if cmp -s "$out/native1.out" "$out/native2.out"; then
    echo "(this time the two runs happened to print the same story)"
else
    diff "$out/native1.out" "$out/native2.out" || true
fi

step "Recording: $bin/rrc-record -o $out/demo.rrc -- $out/demo"
rm -f "$out/demo.rrc"
rec_status=0
"$bin/rrc-record" -o "$out/demo.rrc" -- "$out/demo" </dev/null \
    >"$out/recorded.out" 2>"$out/recorded.err" || rec_status=$?
cat "$out/recorded.out"
cat "$out/recorded.err" >&2
if [[ "$rec_status" != 0 ]]; then
    echo "rrc-record failed (exit status $rec_status)" >&2
    exit "$rec_status"
fi

step "What the trace holds: $bin/rrc-inspect $out/demo.rrc"
"$bin/rrc-inspect" "$out/demo.rrc"

status=0
for i in 1 2; do
    step "Replay $i: $bin/rrc-replay $out/demo.rrc"
    rep_status=0
    "$bin/rrc-replay" "$out/demo.rrc" </dev/null >"$out/replay$i.out" 2>"$out/replay$i.err" ||
        rep_status=$?
    cat "$out/replay$i.out"
    if [[ "$rep_status" != 0 ]]; then
        cat "$out/replay$i.err" >&2
        echo "-> rrc-replay exited with status $rep_status"
        status=1
        continue
    fi
    if cmp -s "$out/recorded.out" "$out/replay$i.out" &&
        cmp -s "$out/recorded.err" "$out/replay$i.err"; then
        echo "-> replay $i matches the recording byte for byte"
    else
        echo "-> replay $i DIFFERS from the recording:"
        diff "$out/recorded.out" "$out/replay$i.out" || true
        diff "$out/recorded.err" "$out/replay$i.err" || true
        status=1
    fi
done
exit "$status"
