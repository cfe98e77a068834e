#!/usr/bin/env bash
# sanitize.sh - run memhound's core tests under AddressSanitizer + UBSan.
#
# Usage:
#   scripts/sanitize.sh [--in-place] [PYTHON] [-- PYTEST_ARGS...]
#
#   PYTHON         interpreter to build and test with (default: $PYTHON, else
#                  python3). Nothing needs to be installed in it: the script
#                  makes its own virtual environment from it, with setuptools,
#                  pytest and memhound's dependencies (rich, Jinja2).
#   --in-place     build in the working tree instead of a throwaway copy, and
#                  rebuild it without sanitizers when done (also on failure or
#                  Ctrl-C). The default, a copy, never touches the working
#                  tree's build, so there is nothing to restore.
#   PYTEST_ARGS    passed to pytest (e.g. -x, -k fork).
#
# What it does:
#   1. Makes a virtual environment from PYTHON in a temporary directory and
#      installs what the build and the tests need (pip). Copies the project
#      (without .git, build/, compiled modules) there too, or uses the working
#      tree with --in-place.
#   2. Builds memhound._core with MEMHOUND_SANITIZE=1 (setup.py adds
#      -fsanitize=address,undefined -fno-sanitize-recover=undefined) and checks
#      that the module really is instrumented.
#   3. Checks that a sanitizer report is caught at all (a deliberate heap
#      overflow must fail), so a silently disabled sanitizer cannot pass.
#   4. Runs tests/stress, tests/unit and the core's tests in tests/integration,
#      twice: with Python's default allocators (pymalloc) and with
#      PYTHONMALLOC=malloc, where every Python allocation goes through ASan.
#      The interpreter is not instrumented, so gcc's libasan is LD_PRELOADed
#      (found with `gcc -print-file-name=libasan.so`). ASAN_OPTIONS has
#      detect_leaks=0: CPython does not free everything at exit, by design.
#      Child processes (the stress tests run risky cases in subprocesses)
#      inherit the environment and so run sanitized too; timeouts are
#      stretched with MEMHOUND_STRESS_TIMEOUT_FACTOR.
#   5. Collects ASan reports from every process through log_path, so a report
#      in a child whose exit status is not checked still counts. UBSan (gcc's
#      libubsan next to ASan ignores log_path) aborts the process on its first
#      report (-fno-sanitize-recover, halt_on_error), so it fails whichever
#      test runs that process; the stress tests also fail on any sanitizer
#      report in their children's stderr.
#
# Exit status: 0 when every run passed and no sanitizer report was written;
# 1 when a test failed or any report was written (the reports are printed);
# 2 on a setup problem (no compiler, no libasan, no venv or pip, build failure).
set -u -o pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

IN_PLACE=0
PY="${PYTHON:-python3}"
PYTEST_ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --in-place) IN_PLACE=1 ;;
        -h|--help) usage; exit 0 ;;
        --) shift; PYTEST_ARGS=("$@"); break ;;
        -*) echo "sanitize.sh: unknown option $1" >&2; exit 2 ;;
        *) PY="$1" ;;
    esac
    shift
done

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CC_BIN="${CC:-gcc}"
if ! command -v "$PY" >/dev/null 2>&1; then
    echo "sanitize.sh: interpreter '$PY' not found" >&2; exit 2
fi
PY="$(command -v "$PY")"
if ! command -v "$CC_BIN" >/dev/null 2>&1; then
    echo "sanitize.sh: no '$CC_BIN' (set CC)" >&2; exit 2
fi
LIBASAN="$("$CC_BIN" -print-file-name=libasan.so)"
if [ ! -e "$LIBASAN" ]; then
    echo "sanitize.sh: $CC_BIN has no libasan.so ($LIBASAN)" >&2; exit 2
fi
LIBASAN="$(readlink -f "$LIBASAN")"

SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/memhound-sanitize.XXXXXX")"
REPORTS="$SCRATCH/reports"
mkdir -p "$REPORTS"

normal_build() {
    # Rebuild the working tree's module without sanitizers.
    (cd "$REPO" && env -u MEMHOUND_SANITIZE "$PY" setup.py -q build_ext --inplace --force) \
        >"$SCRATCH/restore.log" 2>&1
}

cleanup() {
    local rc=$?
    if [ "$IN_PLACE" = 1 ] && [ "$BUILT" = 1 ]; then
        echo "== restoring the normal (unsanitized) build in $REPO"
        if ! normal_build; then
            cat "$SCRATCH/restore.log" >&2
            echo "sanitize.sh: could not restore the normal build" >&2
            rc=2
        fi
    fi
    rm -rf "$SCRATCH"
    exit $rc
}
BUILT=0  # set once the working tree's module may have been rebuilt (--in-place)
trap cleanup EXIT
trap 'exit 130' INT TERM

# Step 1: a virtual environment with what the build and the tests import
# (pyproject.toml's build requirement, dependencies and test extra), so that
# the interpreter itself needs none of them.
echo "== making a virtual environment from $PY"
if ! "$PY" -m venv "$SCRATCH/venv" >"$SCRATCH/venv.log" 2>&1; then
    cat "$SCRATCH/venv.log" >&2
    echo "sanitize.sh: cannot make a virtual environment with $PY (on Debian: apt-get install python3-venv)" >&2
    exit 2
fi
if ! "$SCRATCH/venv/bin/python" -m pip install -q setuptools pytest 'rich>=12' 'Jinja2>=3.0' \
        >>"$SCRATCH/venv.log" 2>&1; then
    cat "$SCRATCH/venv.log" >&2
    echo "sanitize.sh: pip could not install setuptools, pytest, rich and Jinja2" >&2
    exit 2
fi
PY="$SCRATCH/venv/bin/python"

if [ "$IN_PLACE" = 1 ]; then
    WORK="$REPO"
else
    WORK="$SCRATCH/tree"
    mkdir -p "$WORK"
    (cd "$REPO" && tar cf - --exclude=./.git --exclude=./build --exclude='*.so' \
        --exclude='__pycache__' --exclude=.pytest_cache --exclude='*.egg-info' .) \
        | (cd "$WORK" && tar xf -) || { echo "sanitize.sh: copy failed" >&2; exit 2; }
fi

BUILT=1
echo "== building memhound._core with ASan+UBSan in $WORK ($("$PY" -c 'import sys; print(sys.version.split()[0])'))"
if ! (cd "$WORK" && MEMHOUND_SANITIZE=1 "$PY" setup.py -q build_ext --inplace --force) \
        >"$SCRATCH/build.log" 2>&1; then
    cat "$SCRATCH/build.log" >&2
    echo "sanitize.sh: sanitized build failed" >&2
    exit 2
fi
SO="$(cd "$WORK" && "$PY" -c 'import importlib.machinery as m; print("src/memhound/_core" + m.EXTENSION_SUFFIXES[0])')"
# (nm's whole output first: `grep -q` closing the pipe early would fail under pipefail.)
undefined="$(nm -D --undefined-only "$WORK/$SO" 2>/dev/null || true)"
if ! grep -q '__asan_\|__ubsan_' <<<"$undefined"; then
    echo "sanitize.sh: $SO is not instrumented" >&2
    exit 2
fi

export LD_PRELOAD="$LIBASAN${LD_PRELOAD:+:$LD_PRELOAD}"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1:log_path=$REPORTS/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1"
export MEMHOUND_STRESS_TIMEOUT_FACTOR="${MEMHOUND_STRESS_TIMEOUT_FACTOR:-4}"
export PYTHONPATH="$WORK/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1

# Step 3: a deliberate heap overflow must be reported and must fail.
echo "== checking that a sanitizer report is caught"
# (A subshell that waits for the aborting child, so that bash's "Aborted"
# notice goes to /dev/null too.)
(PYTHONMALLOC=malloc "$PY" -c '
import ctypes, memhound._core
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
p = libc.malloc(16)
ctypes.memset(p, 0, 64)
' >/dev/null 2>&1; exit $?) 2>/dev/null
probe_rc=$?
if [ "$probe_rc" = 0 ] || ! ls "$REPORTS"/asan.* >/dev/null 2>&1; then
    echo "sanitize.sh: a deliberate overflow went unreported (exit $probe_rc): ASan is not active" >&2
    exit 2
fi
rm -f "$REPORTS"/*

# The core's tests. The `memhound run` tests (test_run_*, test_json_schema) are
# left out: under ASan, glibc's mallinfo2 reports nothing and ASan's quarantine
# makes RSS climb, so their heap and RSS expectations do not hold there; their
# code is not the C core. Neither are the HTML report's and the exports' tests,
# which run chromium and go (they would inherit ASan's LD_PRELOAD); the capture's
# tests (the background thread and the SQLite writer) stay in.
SUITES=()
for d in tests/stress tests/unit; do
    [ -d "$WORK/$d" ] && SUITES+=("$d")
done
for f in "$WORK"/tests/integration/test_*.py; do
    case "$(basename "$f")" in
        test_run_*|test_json_schema.py|test_html_report.py|test_pprof_go.py|test_exports_cli.py) ;;
        *) SUITES+=("tests/integration/$(basename "$f")") ;;
    esac
done

status=0
failed_runs=0
report_count=0
message_count=0
for alloc in default malloc; do
    echo "== pytest ${SUITES[*]} (allocators: $alloc)"
    if [ "$alloc" = malloc ]; then
        run_env=(env PYTHONMALLOC=malloc)
    else
        run_env=(env -u PYTHONMALLOC)
    fi
    (cd "$WORK" && "${run_env[@]}" "$PY" -m pytest -q -p no:cacheprovider "${SUITES[@]}" \
        -k "not html and not exports" \
        ${PYTEST_ARGS[@]+"${PYTEST_ARGS[@]}"}) 2>&1 | tee "$SCRATCH/pytest-$alloc.log"
    rc=$?
    # Sanitizer reports that reached the output (UBSan, and ASan aborts shown
    # in a failed test's captured output).
    found=$(grep -c -e 'runtime error: ' -e 'ERROR: AddressSanitizer' "$SCRATCH/pytest-$alloc.log")
    message_count=$((message_count + found))
    if [ $rc -ne 0 ]; then
        echo "sanitize.sh: pytest failed (allocators: $alloc, exit $rc)" >&2
        failed_runs=$((failed_runs + 1))
        status=1
    fi
    reports=$(ls "$REPORTS" 2>/dev/null | wc -l)
    report_count=$((report_count + reports))
    if [ "$reports" -gt 0 ]; then
        echo "sanitize.sh: $reports sanitizer report(s) (allocators: $alloc):" >&2
        for f in "$REPORTS"/*; do
            echo "---- $(basename "$f")" >&2
            head -c 20000 "$f" >&2
        done
        mkdir -p "$SCRATCH/kept"
        mv "$REPORTS"/* "$SCRATCH/kept/"
        status=1
    fi
done

if [ $status -eq 0 ]; then
    echo "== sanitize.sh: clean (no failures, no sanitizer reports)"
else
    echo "== sanitize.sh: FAILED: $failed_runs of 2 pytest runs failed;" \
         "$report_count ASan report file(s); $message_count sanitizer message(s) in the test output" >&2
fi
exit $status
