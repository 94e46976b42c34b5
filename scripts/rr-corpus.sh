#!/usr/bin/env bash
# Compatibility check against an external corpus: rr's own test programs.
#
#   scripts/rr-corpus.sh RR_CHECKOUT [OUT_DIR] [options]
#
# RR_CHECKOUT is a checkout of https://github.com/rr-debugger/rr (nothing of
# rr is kept in this repository).  Each src/test/*.c is built standalone into
# OUT_DIR/bin, run natively, and each program that passes natively is recorded
# with rrc-record and replayed with rrc-replay (twice: two recordings, one
# replay each).  Results: OUT_DIR/results.tsv (one line per program) and
# OUT_DIR/summary.md (pass rate, failures grouped by cause).  Re-running with
# the same OUT_DIR resumes: finished programs are not run again (--fresh
# forgets earlier results).
#
# rrc binaries come from $RRC_BIN_DIR, else this repository's target/release
# (or $CARGO_TARGET_DIR/release).  Options (see --help): --jobs N (default 1),
# --only REGEX, --runs N (default 2), --fresh, --rerun-failed, --report-only,
# --cflags '...'.  Needs gcc and python3 (the work is done by rr-corpus.py).
#
# Programs whose rr .run script gives them arguments, another program, a
# signal or files to work on are skipped (counted); a program passes natively
# when it exits 0 and prints rr's token (EXIT-SUCCESS).  Timeouts: native 10 s,
# rrc-record 30 s, rrc-replay 60 s with --stall-timeout 10.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ $# -lt 1 || "$1" == -h || "$1" == --help ]]; then
    exec python3 "$here/rr-corpus.py" --help
fi
if [[ -z "${RRC_BIN_DIR:-}" ]]; then
    if [[ -x "$here/../target/release/rrc-record" ]]; then
        RRC_BIN_DIR="$here/../target/release"
    elif [[ -n "${CARGO_TARGET_DIR:-}" && -x "$CARGO_TARGET_DIR/release/rrc-record" ]]; then
        RRC_BIN_DIR="$CARGO_TARGET_DIR/release"
    else
        echo "rr-corpus: no rrc binaries: set RRC_BIN_DIR or run 'cargo build --release --workspace'" >&2
        exit 1
    fi
fi
export RRC_BIN_DIR="$(cd "$RRC_BIN_DIR" && pwd)"
for b in rrc-record rrc-replay rrc-inspect; do
    [[ -x "$RRC_BIN_DIR/$b" ]] || { echo "rr-corpus: $RRC_BIN_DIR/$b missing" >&2; exit 1; }
done
command -v gcc >/dev/null || { echo "rr-corpus: gcc is needed" >&2; exit 1; }
exec python3 "$here/rr-corpus.py" "$@"
