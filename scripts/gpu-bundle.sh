#!/usr/bin/env bash
# Builds what the device check needs on a GPU machine without .NET (docs/GPU.md, "The device check"): the test
# assembly published self-contained for linux-x64 (untrimmed: ILGPU emits IL at run time and reflects), which brings
# MediatorDiT.GpuCheck and mdit beside it on one shared runtime, so one folder runs scripts/gpu-check.sh (GpuCheck)
# and scripts/gpu-tests.sh (the Category=Gpu tests); the small golden fixtures both read; and the PyTorch reference
# script; into gpu-bundle/ (ignored by git). Over 60 MiB the bundle is packed as gpu-bundle/bundle.tar.xz, which the
# two scripts unpack.
# Usage: scripts/gpu-bundle.sh            (fixtures from ../shared/fixtures, or MDIT_FIXTURES=DIR)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bundle="$root/gpu-bundle"
fixtures="${MDIT_FIXTURES:-$root/../shared/fixtures}"
limit=$((60 * 1024 * 1024))

rm -rf "$bundle"
mkdir -p "$bundle/fixtures"
echo "publishing MediatorDiT.Tests with MediatorDiT.GpuCheck and mdit (linux-x64, self-contained, untrimmed)"
dotnet publish "$root/tests/MediatorDiT.Tests/MediatorDiT.Tests.csproj" -c Release -r linux-x64 --self-contained true \
  -p:PublishTrimmed=false -p:DebugType=none -p:GenerateDocumentationFile=false -o "$bundle/gpucheck" -v quiet -nologo
# Not needed there: the test SDK's coverage tools and their native engines, and the shipped models (12-20 MiB).
rm -rf "$bundle/gpucheck/"{CodeCoverage,alpine,arm64,macos,ubuntu,x64,x86,models}
for program in MediatorDiT.GpuCheck MediatorDiT.Tests mdit; do
  [ -x "$bundle/gpucheck/$program" ] || { echo "error: the publish did not produce $program" >&2; exit 1; }
done
# The fixture cases ParityChecks.FixtureCases reads (each model's weights and its inputs and official outputs), and
# the fixture VAE of the Category=Gpu tests.
for case in mediator_grid4_m4 mediator_grid8_m16 full_grid8 dit_model vae; do
  for kind in weights io; do
    cp "$fixtures/$case.$kind.safetensors" "$bundle/fixtures/"
  done
done
cp "$fixtures/manifest.json" "$fixtures/README.md" "$bundle/fixtures/"
cp "$root/bench/pytorch/sit_reference.py" "$bundle/"
git -C "$root" rev-parse HEAD > "$bundle/commit.txt" 2>/dev/null || echo unknown > "$bundle/commit.txt"

size=$(du -sb "$bundle" | cut -f1)
echo "bundle: $bundle, $((size / 1024 / 1024)) MiB ($size bytes)"
if [ "$size" -gt "$limit" ]; then
  echo "over 60 MiB: packing as gpu-bundle/bundle.tar.xz"
  tar -C "$bundle" -cf - gpucheck fixtures sit_reference.py commit.txt | xz -T0 -6 > "$root/gpu-bundle.tar.xz.tmp"
  rm -rf "$bundle"
  mkdir -p "$bundle"
  mv "$root/gpu-bundle.tar.xz.tmp" "$bundle/bundle.tar.xz"
  size=$(du -sb "$bundle" | cut -f1)
  echo "packed: $((size / 1024 / 1024)) MiB ($size bytes)"
fi
if [ "$size" -gt $((64 * 1024 * 1024)) ]; then
  echo "error: the bundle ($size bytes) is over the 64 MiB a device run can carry" >&2
  exit 1
fi
echo "carry gpu-bundle with the working tree and run scripts/gpu-check.sh (then scripts/gpu-tests.sh) on the GPU machine"
