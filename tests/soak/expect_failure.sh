#!/usr/bin/env bash
# expect_failure.sh REASON COMMAND...: COMMAND (a coronet_soak run against a server with a
# defect) must exit 1 and name REASON, a fixed string, among the reasons of its FAIL: proof that
# the check behind REASON can fail.
set -uo pipefail
reason=$1
shift
out=$("$@" 2>&1)
status=$?
printf '%s\n' "$out"
[ "$status" -eq 1 ] || { echo "expect_failure: exit status $status, not 1" >&2; exit 1; }
grep -qF -- "$reason" <<<"$out" || { echo "expect_failure: no '$reason' among the reasons" >&2; exit 1; }
echo "expect_failure: exit status 1 with '$reason', as it should"
