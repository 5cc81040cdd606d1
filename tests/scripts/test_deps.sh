#!/usr/bin/env bash
# Tests scripts/deps.sh, the check behind `make deps`: installed packages pass silently; a
# missing one, for a user who is not root, gives the exact apt-get command and exit 1 (and
# nothing is installed).
set -uo pipefail
deps=${1:?usage: test_deps.sh path/to/deps.sh}
failures=0
check() {  # check NAME CONDITION...
  local name=$1; shift
  if "$@"; then echo "ok: $name"; else echo "FAILED: $name"; failures=$((failures + 1)); fi
}

out=$("$deps" dpkg coreutils 2>&1); status=$?
check "installed packages: exit 0" test "$status" -eq 0
check "installed packages: silent" test -z "$out"

missing=coronet-no-such-package
if [ "$(id -u)" -eq 0 ]; then
  out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$deps" dpkg "$missing" 2>&1); status=$?
else
  out=$("$deps" dpkg "$missing" 2>&1); status=$?
fi
check "missing package, not root: exit 1" test "$status" -eq 1
check "missing package, not root: names it" grep -q "missing Debian packages: $missing" <<<"$out"
check "missing package, not root: prints the command" \
  grep -qF "sudo apt-get update && sudo apt-get install -y $missing" <<<"$out"

echo "$((5 - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
