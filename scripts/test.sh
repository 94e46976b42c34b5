#!/usr/bin/env bash
# The one test command: installs missing system packages, builds every
# crate in release mode (the end-to-end tests run the release binaries),
# then runs every test, and the end-to-end tests a second time with the
# fast path off (RRC_FAST_PATH=0: every recorded call traps, as rr's suite
# runs with and without its syscallbuf). Extra arguments go to `cargo
# test`, e.g.
#   scripts/test.sh -- --nocapture
#   RRC_TEST_REPEAT=20 scripts/test.sh     # every record/replay 20 times
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo build --release --workspace
cargo test --release --workspace "$@"
echo "test.sh: the end-to-end tests again, with the fast path off (RRC_FAST_PATH=0)" >&2
RRC_FAST_PATH=0 cargo test --release -p rrc-tests "$@"
