#!/usr/bin/env bash
# Prints the folder holding the device bundle's programs and fixtures (scripts/gpu-bundle.sh): gpu-bundle/ itself, or
# where gpu-bundle/bundle.tar.xz is unpacked (${TMPDIR:-/tmp}/mdit-gpu-bundle, reused while it is from the same pack),
# so scripts/gpu-check.sh and scripts/gpu-tests.sh unpack it once between them. Messages go to stderr.
# Usage: bundle=$(bash scripts/gpu-unpack.sh) || exit 1
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bundle="$root/gpu-bundle"
if [ -f "$bundle/bundle.tar.xz" ]; then
  unpacked="${TMPDIR:-/tmp}/mdit-gpu-bundle"
  stamp=$(stat -c '%s %Y' "$bundle/bundle.tar.xz")
  if [ "$(cat "$unpacked/.pack" 2>/dev/null)" != "$stamp" ]; then
    echo "unpacking $bundle/bundle.tar.xz to $unpacked" >&2
    rm -rf "$unpacked" && mkdir -p "$unpacked"
    if ! xz -dc "$bundle/bundle.tar.xz" | tar -C "$unpacked" -xf -; then
      echo "error: could not unpack $bundle/bundle.tar.xz" >&2
      exit 1
    fi
    echo "$stamp" > "$unpacked/.pack"
  fi
  bundle="$unpacked"
fi
echo "$bundle"
