#!/usr/bin/env bash
# Sets up the machine, builds and runs the whole test suite (Release), then runs the suite again on the code
# paths this CPU does not take natively, each pass in its own test process with the runtime's switches, and
# prints a one-line summary. Arguments go to every `dotnet test` call (e.g. --filter ...).
# MDIT_TEST_PATHS=native runs the first pass only. When every pass is green, scripts/package-check.sh then packs
# the library and the mdit tool, installs and runs them from a folder feed (about 2-3 minutes); its failure fails
# the run. MDIT_PACKAGE_CHECK=0 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
dotnet build MediatorDiT.sln -c Release --nologo -v q

# name | environment. AVX-512 off: the 256-bit kernels (AVX2-only CPUs; GEMM Auto then prefers OpenBLAS).
# Vector128 only, no OpenBLAS: as on ARM64 (NEON), with the managed GEMM. DOTNET_PreferredVectorBitWidth=128
# turns Vector256 acceleration off but keeps FMA, as ARM64 has it; DOTNET_EnableAVX2=0 would also turn FMA off
# and leave every fused multiply-add to a slow software routine (VectorWidthTests runs the kernels that way too).
# OpenBLAS preferred: every product through OpenBLAS, whose results must not depend on the thread count.
# The AVX-512-off pass also has glibc fill every fresh allocation with 0x7F bytes (3.4e38 as a float; the thread
# caches off, so small blocks too): ILGPU's CPU accelerator takes its buffers from malloc, whose large blocks come
# zeroed from the OS, while a card's fresh memory holds leftovers, so a kernel reading a buffer before writing it
# fails here rather than only on a card.
paths=(
  "native|"
  "AVX-512 off, fresh memory poisoned|DOTNET_EnableAVX512=0 GLIBC_TUNABLES=glibc.malloc.tcache_count=0:glibc.malloc.perturb=128"
  "Vector128 only, managed GEMM|DOTNET_PreferredVectorBitWidth=128 MDIT_NO_OPENBLAS=1"
  "OpenBLAS preferred|MDIT_GEMM=openblas"
)
[ "${MDIT_TEST_PATHS:-all}" = native ] && paths=("${paths[0]}")

total_passed=0 total_failed=0 status=0 summary=""
for entry in "${paths[@]}"; do
  name=${entry%%|*} vars=${entry#*|}
  echo "=== test pass: ${name}${vars:+ ($vars)}"
  log=$(mktemp)
  pass_status=0
  # shellcheck disable=SC2086 # vars is a list of NAME=VALUE words
  env $vars dotnet test MediatorDiT.sln -c Release --no-build --nologo "$@" 2>&1 | tee "$log" || pass_status=$?
  passed=$(grep -oE 'Passed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
  failed=$(grep -oE 'Failed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
  rm -f "$log"
  [ "$pass_status" -ne 0 ] && status=$pass_status
  total_passed=$((total_passed + passed)) total_failed=$((total_failed + failed))
  summary+="  ${name}: ${passed} passed, ${failed} failed"$'\n'
done

package_line="package check: skipped (MDIT_PACKAGE_CHECK=0)"
if [ "$status" -ne 0 ]; then
  package_line="package check: skipped (tests failed)"
elif [ "${MDIT_PACKAGE_CHECK:-1}" != 0 ]; then
  echo "=== package check (scripts/package-check.sh)"
  package_log=$(mktemp)
  package_status=0
  bash scripts/package-check.sh 2>&1 | tee "$package_log" || package_status=$?
  if [ "$package_status" -eq 0 ]; then
    package_line=$(grep '^package check: .* packed' "$package_log" | tail -n 1)
  else
    package_line="package check: FAILED (exit $package_status; see above)"
    status=$package_status
  fi
  rm -f "$package_log"
fi

printf '%s' "$summary"
echo "$package_line"
echo "tests: ${total_passed} passed, ${total_failed} failed"
exit $status
