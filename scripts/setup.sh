#!/usr/bin/env bash
# Installs what MediatorDiT needs on a fresh Debian machine: the .NET SDK is expected on PATH;
# OpenBLAS is optional (a managed SIMD GEMM is always available) but installed when we can; MPICH is
# installed for data-parallel training.
set -euo pipefail
if ! command -v dotnet >/dev/null 2>&1; then
  echo "error: the .NET 10 SDK (dotnet) is not on PATH; install it from your distribution or dotnet.microsoft.com." >&2
  exit 1
fi
if ! ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so\.0'; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing libopenblas0-pthread ..." >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas0-pthread >/dev/null) \
      || echo "warning: could not install OpenBLAS; the managed GEMM will be used." >&2
  else
    echo "note: OpenBLAS not found and apt-get not usable; the managed GEMM will be used." >&2
  fi
fi
# Debian's Chromium drives the browser test of `mdit serve`'s page (Playwright cannot download a browser here).
if [ ! -x /usr/bin/chromium ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing chromium (for the browser test of mdit serve) ..." >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "warning: could not install chromium; the browser test of mdit serve will fail." >&2
  else
    echo "note: /usr/bin/chromium not found and apt-get not usable; the browser test of mdit serve will fail." >&2
  fi
fi
# MPICH runs data-parallel training (`mpiexec -n N mdit train`; docs/DISTRIBUTED.md) and its tests; mdit binds
# libmpich.so.12 at run time, so only the library and the launcher are needed.
if ! ldconfig -p 2>/dev/null | grep -q 'libmpich\.so\.12' || ! command -v mpiexec >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing mpich (for data-parallel training and its tests) ..." >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mpich >/dev/null) \
      || echo "warning: could not install mpich; mpiexec runs and their tests will fail." >&2
  else
    echo "note: MPICH (libmpich.so.12, mpiexec) not found and apt-get not usable; mpiexec runs and their tests will fail." >&2
  fi
fi
# NVIDIA's PTX assembler and disassembler, taken out of Debian's nvidia-cuda-toolkit (non-free) without changing the
# machine's apt sources: the tests assemble every device kernel for Hopper with them, without a GPU
# (scripts/install-ptxas.sh).
if [ "$(id -u)" = 0 ] && [ -z "${MDIT_PTXAS:-}" ] && ! { command -v ptxas && command -v nvdisasm; } >/dev/null 2>&1; then
  bash "$(dirname "$0")/install-ptxas.sh" \
    || echo "warning: could not install ptxas; the PTX assembly tests will fail." >&2
fi
