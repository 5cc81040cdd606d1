#!/usr/bin/env bash
# fuzz.sh BUILD_DIR SECONDS: runs each libFuzzer target of BUILD_DIR (`cmake --preset fuzz`,
# programs in BUILD_DIR/bin) for SECONDS, one after the other.
#
# Each target starts from a copy of tests/fuzz/corpus/<target> and regressions/<target> in a
# temporary directory, so the repository is never written to; the inputs it finds and any crash
# files stay in that directory, whose path is printed first. Prints one summary line per target.
# Exits 1 when a target crashed or broke an invariant, naming the target and its crash file
# (replay it with BUILD_DIR/bin/fuzz_<target> FILE; keep it in tests/fuzz/regressions/<target>/
# once fixed), 2 for a usage or setup mistake.
set -euo pipefail

if [ $# -ne 2 ] || ! [[ "$2" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 BUILD_DIR SECONDS" >&2
  exit 2
fi
build=$1
seconds=$2
source_dir=$(cd "$(dirname "$0")/.." && pwd)
targets=(endpoint stream_reader chat_command)

for target in "${targets[@]}"; do
  if [ ! -x "$build/bin/fuzz_$target" ]; then
    echo "fuzz: $build/bin/fuzz_$target is not built (cmake --preset fuzz && cmake --build --preset fuzz)" >&2
    exit 2
  fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/coronet-fuzz.XXXXXX")
echo "fuzz: ${#targets[@]} targets, ${seconds} s each; corpora, logs and crash files in $work"

failed=()
for target in "${targets[@]}"; do
  corpus="$work/corpus/$target"          # the working copy: libFuzzer adds what it finds here
  seeds="$work/regressions/$target"      # read only
  artifacts="$work/artifacts/$target"
  log="$work/$target.log"
  mkdir -p "$corpus" "$seeds" "$artifacts"
  cp -R "$source_dir/tests/fuzz/corpus/$target/." "$corpus/"
  cp -R "$source_dir/tests/fuzz/regressions/$target/." "$seeds/"
  seed_count=$(find "$corpus" "$seeds" -type f | wc -l)

  # -timeout: one input running longer is a finding (a hang); -rss_limit_mb: so is memory
  # growing past it. A crash stops the target; the others still run.
  status=0
  "$build/bin/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" "$seeds" >"$log" 2>&1 ||
    status=$?

  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  # The last progress line ("#N DONE cov: C ft: F corp: K/Bb ..."): coverage and corpus size.
  progress=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$progress")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$progress")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$progress")
  execs=$(sed -n 's/.* exec\/s: \([0-9]*\).*/\1/p' <<<"$progress")
  crashes=$(find "$artifacts" -type f | sort)

  if [ "$status" -ne 0 ] || [ -n "$crashes" ]; then
    failed+=("$target")
    printf 'fuzz: %-13s FAILED (exit %s) after %s runs, cov %s, ft %s\n' \
      "$target" "$status" "${runs:-?}" "${cov:-?}" "${ft:-?}"
    { grep -E 'ERROR: |invariant violated|SUMMARY: |runtime error: ' "$log" || true; } |
      head -n 5 | sed 's/^/fuzz:   /'
    for crash in $crashes; do echo "fuzz:   crash file: $crash"; done
    echo "fuzz:   log: $log"
  else
    printf 'fuzz: %-13s ok: %s runs in %s s (%s exec/s), cov %s, ft %s, corpus %s -> %s inputs\n' \
      "$target" "${runs:-?}" "$seconds" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$seed_count" \
      "${corp:-?}"
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in: ${failed[*]} (files and logs under $work)" >&2
  exit 1
fi
echo "fuzz: no crash in ${#targets[@]} targets; new inputs under $work/corpus"
