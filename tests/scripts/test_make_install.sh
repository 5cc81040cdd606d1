#!/usr/bin/env bash
# Tests `make install PREFIX=...` itself (the README's install command): headers, library and
# CMake package land under the prefix, and nothing outside it is needed to find them.
set -uo pipefail
source_dir=${1:?usage: test_make_install.sh SOURCE_DIR}
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
failures=0
check() {  # check NAME CONDITION...
  local name=$1; shift
  if "$@"; then echo "ok: $name"; else echo "FAILED: $name"; failures=$((failures + 1)); fi
}

make -C "$source_dir" --no-print-directory install PREFIX="$prefix" >"$prefix.log" 2>&1
status=$?
[ $status -eq 0 ] || cat "$prefix.log"
rm -f "$prefix.log"
check "make install exits 0" test "$status" -eq 0
check "umbrella header installed" test -f "$prefix/include/coronet/coronet.hpp"
check "internals installed for the templates" test -f "$prefix/include/coronet/detail/timed.hpp"
check "library installed" test -f "$prefix/lib/libcoronet.a"
check "package config installed" test -f "$prefix/lib/cmake/coronet/coronetConfig.cmake"
check "Findasio shipped with the package" test -f "$prefix/lib/cmake/coronet/Findasio.cmake"
check "exported targets name coronet::coronet" grep -q "coronet::coronet" "$prefix/lib/cmake/coronet/coronetTargets.cmake"

echo "$((7 - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
