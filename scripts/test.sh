#!/bin/sh
# SPDX-License-Identifier: MIT
# The whole test suite, in order: unit tests, fuzz corpus replay, fuzz targets (FUZZ_TIME s
# each), system tests. Prints every step's output, then ends with exactly one line
# "N passed, N failed": unit + system test counts, where a failed fuzz step (replay or run)
# counts as 1 failed and a step that cannot run at all (build error, pytest crash) too.
# Exits non-zero if anything failed.
set -u
cd "$(dirname "$0")/.." || exit 2
FUZZ_TIME=${FUZZ_TIME:-30}
PYTHON=/usr/bin/python3
work=$(mktemp -d "${TMPDIR:-/tmp}/keel-test.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
pass=0
fail=0

# run_logged NAME CMD...: run CMD, output to the terminal and to $work/NAME.out; returns rc.
run_logged() {
    name=$1
    shift
    { "$@" 2>&1; echo $? >"$work/$name.rc"; } | tee "$work/$name.out"
    return "$(cat "$work/$name.rc")"
}

echo "== source rules (scripts/checksrc.sh)"
if run_logged checksrc scripts/checksrc.sh; then
    echo "test: source rules ok"
else
    echo "test: source rules FAILED"
    fail=$((fail + 1))
fi

echo "== unit tests (make unit)"
run_logged unit make unit
rc=$?
line=$(grep -E '^unit: [0-9]+ passed, [0-9]+ failed' "$work/unit.out" | tail -n 1)
if [ -n "$line" ]; then
    p=$(echo "$line" | sed 's/^unit: \([0-9]*\) passed.*/\1/')
    f=$(echo "$line" | sed 's/.* \([0-9]*\) failed$/\1/')
    # a non-zero exit with no failure counted (e.g. a crash after the summary) still fails
    [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
else
    echo "test: make unit printed no summary (exit $rc)"
    p=0
    f=1
fi
echo "test: unit $p passed, $f failed"
pass=$((pass + p))
fail=$((fail + f))

echo "== fuzz corpus replay (make fuzz-replay)"
if run_logged fuzz-replay make fuzz-replay; then
    echo "test: fuzz corpus replay ok"
else
    echo "test: fuzz corpus replay FAILED"
    fail=$((fail + 1))
fi

echo "== fuzz targets, ${FUZZ_TIME}s each (make fuzz)"
if run_logged fuzz make fuzz FUZZ_TIME="$FUZZ_TIME"; then
    echo "test: fuzz ok"
else
    echo "test: fuzz FAILED"
    fail=$((fail + 1))
fi

echo "== system tests ($PYTHON -m pytest -q tests/system)"
run_logged system "$PYTHON" -m pytest -q tests/system --junitxml="$work/system.xml"
rc=$?
# Count per test from the JUnit report: a test whose teardown checks failed counts once, as
# failed (pytest's summary would count it as "1 passed, 1 error").
counts=$("$PYTHON" - "$work/system.xml" <<'PY' 2>/dev/null
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
passed = failed = 0
for case in root.iter("testcase"):
    tags = {child.tag for child in case}
    if "failure" in tags or "error" in tags:
        failed += 1
    elif "skipped" not in tags:
        passed += 1
print(passed, failed)
PY
)
if [ -n "$counts" ]; then
    p=${counts% *}
    f=${counts#* }
else
    # no report: fall back to pytest's summary line ("3 failed, 40 passed, 1 error in 9.1s")
    summary=$(grep -E '[0-9]+ (passed|failed|error)' "$work/system.out" | tail -n 1)
    p=$(echo "$summary" | sed -n 's/.*\b\([0-9][0-9]*\) passed.*/\1/p')
    f=$(echo "$summary" | sed -n 's/.*\b\([0-9][0-9]*\) failed.*/\1/p')
    e=$(echo "$summary" | sed -n 's/.*\b\([0-9][0-9]*\) errors\{0,1\}\b.*/\1/p')
    p=${p:-0}
    f=$((${f:-0} + ${e:-0}))
fi
# exit 0 all passed, 1 some failed, 5 nothing collected; anything else is a broken run
if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ] || { [ "$rc" -eq 1 ] && [ "$f" -eq 0 ]; }; then
    echo "test: pytest exited with $rc"
    f=$((f + 1))
fi
echo "test: system $p passed, $f failed"
pass=$((pass + p))
fail=$((fail + f))

# The sanitizer variant: the same system tests against an ASan/UBSan build of keel (the
# harness fails a test on any sanitizer report in keel's log, leaks included). Counted as
# one step, not added to the totals, since the tests are the same ones.
if [ "${KEEL_TEST_SAN:-1}" = 1 ]; then
    echo "== sanitizer variant (ASan/UBSan build, system tests)"
    if run_logged san-build make -j2 BUILD=build-san OPT="-O1 -g" \
        SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
        build-san/keel >/dev/null &&
        run_logged san env KEEL_BIN="$PWD/build-san/keel" KEEL_DB_TRIALS=1 "$PYTHON" -m pytest -q \
            -p no:cacheprovider tests/system; then
        echo "test: sanitizer variant ok"
    else
        echo "test: sanitizer variant FAILED"
        fail=$((fail + 1))
    fi
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
