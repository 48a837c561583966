#!/bin/sh
# SPDX-License-Identifier: MIT
# Run Criterion unit test binaries; print "unit: N passed, N failed" last.
pass=0; fail=0
# An illegal state transition aborts (src/core/fsm.h); tests of the refusal set it to 0.
KEEL_FSM_STRICT=${KEEL_FSM_STRICT:-1}; export KEEL_FSM_STRICT
for t in "$@"; do
    # --timeout: a hung test fails (it held the whole run for 20 min once) instead of blocking
    out=$("$t" --jobs=2 --timeout=300 2>&1); rc=$?
    line=$(printf '%s\n' "$out" | grep -E '^\[====\] Synthesis' | tail -1)
    p=$(printf '%s' "$line" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p')
    f=$(printf '%s' "$line" | sed -n 's/.*Failing: \([0-9]*\).*/\1/p')
    c=$(printf '%s' "$line" | sed -n 's/.*Crashing: \([0-9]*\).*/\1/p')
    [ -z "$p" ] && p=0; [ -z "$f" ] && f=0; [ -z "$c" ] && c=0
    if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
        printf '%s\n' "$out" | grep -vE '^\[----\]|^\[====\]' | tail -40
        # the failed assertions themselves (Criterion prints them as [----] lines)
        printf '%s\n' "$out" | grep -E '^\[----\] [^ ]+\.c:[0-9]+:|^\[----\]   [^2]|^\[FAIL\]' |
            head -40
        [ -z "$line" ] && f=$((f + 1))
    fi
    echo "  $(basename "$t"): $p passed, $((f + c)) failed"
    pass=$((pass + p)); fail=$((fail + f + c))
done
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
