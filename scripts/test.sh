#!/usr/bin/env bash
# The one test command: installs missing system packages, builds every
# crate in release mode (the end-to-end tests run the release binaries),
# then runs every test. Extra arguments go to `cargo test`, e.g.
#   scripts/test.sh -- --nocapture
#   RRC_TEST_REPEAT=20 scripts/test.sh     # every record/replay 20 times
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo build --release --workspace
cargo test --release --workspace "$@"
