#!/usr/bin/env bash
# test.sh - install what memhound's tests need, then run them.
#
# Usage: bash scripts/test.sh [PYTEST_ARGS...]
#
#   1. Installs the system packages the build and the tests use, only when
#      missing, with apt-get (`apt-get update` once; through sudo when not
#      root): libsqlite3-dev (the core's capture writer is built against it),
#      golang-go (the pprof tests read memhound's profiles with `go tool
#      pprof`) and chromium (the HTML report's tests load its pages in it).
#   2. python -m pip install '.[test]'
#   3. python -m pytest PYTEST_ARGS
#
# `python` is $PYTHON if set, else the first of python, python3 on PATH: run it
# from the virtual environment you want memhound installed in. With
# MEMHOUND_TEST_NO_APT=1 nothing is installed with apt-get (the tests that need
# a missing tool then fail and say which).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() { echo "test.sh: $*" >&2; exit 2; }

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
    for cand in python python3; do
        if command -v "$cand" >/dev/null 2>&1; then PY="$cand"; break; fi
    done
    [ -n "$PY" ] || die "no python on PATH (set PYTHON)"
fi

# -- system packages ---------------------------------------------------------
# (Kept in this one place: .ci/run calls this script for each interpreter.)
missing=()
have_header() { [ -f "/usr/include/$1" ]; }
have_header sqlite3.h || missing+=(libsqlite3-dev)
command -v go >/dev/null 2>&1 || missing+=(golang-go)
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
    || command -v google-chrome >/dev/null 2>&1 || missing+=(chromium)

if [ ${#missing[@]} -gt 0 ] && [ "${MEMHOUND_TEST_NO_APT:-}" != 1 ]; then
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 \
            || die "the tests need ${missing[*]}: not root and no sudo to install them (apt-get install ${missing[*]}, or MEMHOUND_TEST_NO_APT=1 to run without)"
        sudo=(sudo)
    fi
    command -v apt-get >/dev/null 2>&1 \
        || die "the tests need ${missing[*]} and this machine has no apt-get: install them (or MEMHOUND_TEST_NO_APT=1 to run without)"
    echo "test.sh: installing ${missing[*]} (apt-get)" >&2
    # (A failed update can still leave usable package lists: the install decides.)
    ${sudo[@]+"${sudo[@]}"} apt-get update -q >/dev/null || true
    if ! ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q "${missing[@]}" >/dev/null; then
        die "apt-get could not install ${missing[*]} (see above)"
    fi
fi

# -- memhound and its tests --------------------------------------------------
"$PY" -m pip install -q '.[test]'
exec "$PY" -m pytest "$@"
