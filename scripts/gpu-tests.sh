#!/usr/bin/env bash
# The Category=Gpu tests on a GPU machine without .NET (docs/GPU.md, "The device check"), from the repository root
# with gpu-bundle/ (scripts/gpu-bundle.sh) beside it: the self-contained test assembly runs them through its own
# runner (tests/MediatorDiT.Tests/Runner), with the bundle's fixtures and its self-contained mdit for the tests that
# run the command line. With --kernels it runs instead the kernel and product tests (those CI runs on ILGPU's CPU
# accelerator) on cuda:0, against the same CPU kernels, their bit-for-bit comparisons bounded there. Run it after
# scripts/gpu-check.sh (it reuses that unpack). Writes gpu-tests.json and gpu-tests.log (--kernels:
# gpu-kernel-tests.json and .log) to ${OUT:-gpu-check-out}; exit 0 when none failed. Under 4 minutes
# (MDIT_TESTS_LIMIT: the seconds the tests may take, default 230).
#   bash scripts/gpu-tests.sh [--kernels] [--filter TEXT]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="${OUT:-$root/gpu-check-out}"
mkdir -p "$out"
name=gpu-tests
suite=(--trait Category=Gpu)
if [ "${1:-}" = "--kernels" ]; then
  shift
  name=gpu-kernel-tests
  suite=(--kernels-on-card)
fi
exec > >(tee -a "$out/$name.log") 2>&1
# The pip wheels' cuBLAS and NCCL live in this environment's nvidia/*/lib, where CudaLibraries looks.
export VIRTUAL_ENV="${VIRTUAL_ENV:-/opt/torch/.venv}"
bundle=$(bash "$root/scripts/gpu-unpack.sh") || exit 1
tests="$bundle/gpucheck/MediatorDiT.Tests"
if [ ! -x "$tests" ]; then
  echo "error: $tests is missing; run scripts/gpu-bundle.sh on the build machine and carry gpu-bundle" >&2
  exit 1
fi
echo "bundle: $bundle (commit $(cat "$bundle/commit.txt" 2>/dev/null || echo unknown))"
MDIT_FIXTURES="$bundle/fixtures" MDIT_CLI="$bundle/gpucheck/mdit" \
  timeout -k 10 "${MDIT_TESTS_LIMIT:-230}" "$tests" "${suite[@]}" --json "$out/$name.json" "$@"
rc=$?
echo "$name exit $rc$([ $rc -eq 124 ] && echo ' (timed out)')"
exit $rc
