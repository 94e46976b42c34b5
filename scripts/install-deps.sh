#!/usr/bin/env bash
# Installs the system packages rrc's tests need, when missing, with apt.
#
#   gcc g++                  required: the end-to-end tests and the demo
#                            compile C and C++ programs; failing is an error.
#   memcached redis-server   wanted by later test suites (servers under
#   redis-tools lighttpd     record/replay); failing to get them is a warning.
#   nginx libmemcached-tools (memaslap, for rrc-bench)
#
# Usage: scripts/install-deps.sh [--required-only]
set -euo pipefail

REQUIRED=(gcc g++)
LATER=(memcached redis-server redis-tools lighttpd nginx libmemcached-tools)
if [[ "${1:-}" == "--required-only" ]]; then
    LATER=()
fi

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
    for pkg in "${REQUIRED[@]}" "${LATER[@]}"; do
        installed "$pkg" || missing+=("$pkg")
    done
elif ! command -v gcc >/dev/null 2>&1; then
    missing+=(gcc)
fi

if ((${#missing[@]})); then
    sudo=()
    if [[ "$(id -u)" != 0 ]] && command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    fi
    if command -v apt-get >/dev/null 2>&1; then
        echo "install-deps: installing ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        "${sudo[@]}" apt-get update -qq || echo "install-deps: warning: apt-get update failed" >&2
        if ! "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null; then
            # One unavailable package must not keep the others out.
            for pkg in "${missing[@]}"; do
                "${sudo[@]}" apt-get install -y -qq "$pkg" >/dev/null ||
                    echo "install-deps: warning: could not install $pkg" >&2
            done
        fi
    else
        echo "install-deps: warning: apt-get not available; cannot install ${missing[*]}" >&2
    fi
fi

if ! command -v gcc >/dev/null 2>&1; then
    echo "install-deps: error: gcc is required (the tests and the demo compile C programs) and could not be installed" >&2
    exit 1
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "install-deps: error: cargo not found; install a Rust toolchain first (https://rustup.rs)" >&2
    exit 1
fi
