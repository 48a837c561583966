#!/bin/sh
# SPDX-License-Identifier: MIT
# The rules of STYLE.md that a compiler does not check: banned functions (§12), tabs,
# 100 columns, and an SPDX line at the top of every C file. Prints each violation as
# file:line: message and exits 1 if there is any.
cd "$(dirname "$0")/.." || exit 2
files=$(find src tests/unit tests/fuzz -name '*.[ch]' | sort)
bad=0
# shellcheck disable=SC2086
out=$(grep -nE '(^|[^_a-zA-Z0-9.>])(strcpy|strcat|strncat|sprintf|vsprintf|gets|strtok|atoi|atol|alloca)[[:space:]]*\(' $files)
if [ -n "$out" ]; then
    echo "$out" | sed 's/$/  <- banned function (STYLE.md section 12)/'
    bad=1
fi
# shellcheck disable=SC2086
out=$(grep -nP '\t' $files)
if [ -n "$out" ]; then
    echo "$out" | sed 's/:.*/: tab character (indent with 4 spaces)/' | sort -u
    bad=1
fi
# shellcheck disable=SC2086
out=$(awk 'length($0) > 100 { print FILENAME ":" FNR ": line longer than 100 columns" }' $files)
if [ -n "$out" ]; then
    echo "$out"
    bad=1
fi
for f in $files; do
    if ! head -1 "$f" | grep -q 'SPDX-License-Identifier'; then
        echo "$f:1: missing SPDX-License-Identifier line"
        bad=1
    fi
done
[ "$bad" -eq 0 ] && echo "checksrc: $(echo "$files" | wc -l) files ok"
exit "$bad"
