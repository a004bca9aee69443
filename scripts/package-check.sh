#!/usr/bin/env bash
# Checks the two NuGet packages as a user gets them (docs/PACKAGING.md):
#   1. packs MediatorDiT (the library), MediatorDiT.Cuda (its CUDA backend) and MediatorDiT.Cli (the mdit .NET
#      tool), Release, into a temporary folder feed, and checks their metadata;
#   2. installs the tool from that feed into a temporary tool path and, from a folder outside the repository
#      (so the models it finds are the ones inside the tool package), runs `mdit flops`,
#      `mdit demo --per-class 1` and `mdit serve` (one job through its API with curl);
#   3. builds examples/SampleLadder against the package (-p:UsePackage=true) and runs it;
#   4. creates a fresh console project (`dotnet new console`), puts the example's Program.cs in it, adds the
#      MediatorDiT package from the feed, restores, builds and runs it.
# Restores and installs read only the temporary feed and this machine's NuGet package folder (where the
# packs' own restore left the dependencies), through a temporary nuget.config and package folder: no network,
# and nothing checked here is left in, or taken from, the machine's package cache.
# MDIT_PACKAGE_CHECK_KEEP=1 keeps the temporary folder (its path is printed) for inspection.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
started=$SECONDS

work="$(mktemp -d "${TMPDIR:-/tmp}/mdit-package-check.XXXXXX")"
cleanup() {
  if [ "${MDIT_PACKAGE_CHECK_KEEP:-0}" = 1 ]; then echo "package check: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
case "$work/" in "$root"/*) echo "package check: the temporary folder $work is inside the repository; set TMPDIR elsewhere." >&2; exit 1 ;; esac

step() { echo "=== package check [$((SECONDS - started)) s]: $*"; }
fail() { echo "package check FAILED: $*" >&2; exit 1; }
# Runs a command quietly into a log, printing the log only when it fails.
quiet() {
  local what=$1 log="$work/log.txt"; shift
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    fail "$what (command: $*)"
  fi
}

feed="$work/feed" tools="$work/tools" outside="$work/outside" app="$work/app"
mkdir -p "$feed" "$outside"

version="$(dotnet msbuild "$root/src/MediatorDiT/MediatorDiT.csproj" -getProperty:Version -p:Configuration=Release)"
lib_id=MediatorDiT cuda_id=MediatorDiT.Cuda tool_id=MediatorDiT.Cli
[ -n "$version" ] || fail "could not read the package version from src/MediatorDiT/MediatorDiT.csproj"

# --- 1. pack ---------------------------------------------------------------------------------------------
step "pack $lib_id, $cuda_id and $tool_id $version (Release) into $feed"
# The tool's pack builds the library and the CUDA backend too; their packs then reuse that build.
quiet "dotnet pack $tool_id" dotnet pack "$root/src/MediatorDiT.Cli/MediatorDiT.Cli.csproj" -c Release -o "$feed" --nologo
quiet "dotnet pack $lib_id" dotnet pack "$root/src/MediatorDiT/MediatorDiT.csproj" -c Release --no-build -o "$feed" --nologo
quiet "dotnet pack $cuda_id" dotnet pack "$root/src/MediatorDiT.Cuda/MediatorDiT.Cuda.csproj" -c Release --no-build -o "$feed" --nologo
for pkg in "$lib_id.$version.nupkg" "$lib_id.$version.snupkg" "$cuda_id.$version.nupkg" "$tool_id.$version.nupkg"; do
  [ -f "$feed/$pkg" ] || fail "$pkg is missing from the feed (found: $(ls "$feed"))"
done
ls -l "$feed" | tail -n +2
# The CUDA backend's package depends on the library (same version) and on ILGPU, pinned.
cuda_nuspec="$(python3 -c 'import sys, zipfile; print(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]).decode())' "$feed/$cuda_id.$version.nupkg" "$cuda_id.nuspec")" || fail "cannot read the nuspec of $cuda_id.$version.nupkg"
echo "$cuda_nuspec" | grep -q "id=\"$lib_id\" version=\"$version\"" || fail "$cuda_id does not depend on $lib_id $version"
echo "$cuda_nuspec" | grep -q 'id="ILGPU" version="\[1.5.3\]"' || fail "$cuda_id does not pin ILGPU 1.5.3"

# The package folder of this machine (before it is swapped for a temporary one below): the packs restored the
# dependencies (System.Numerics.Tensors, ...) into it, and it is laid out as a folder feed.
machine_packages="$(dotnet nuget locals global-packages --list | sed -n 's/^global-packages: //p')"
[ -d "$machine_packages" ] || fail "cannot find this machine's NuGet package folder ('dotnet nuget locals global-packages --list' said '$machine_packages')"
cat >"$work/nuget.config" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="package-check-feed" value="$feed" />
    <add key="machine-packages" value="$machine_packages" />
  </packageSources>
</configuration>
EOF
export NUGET_PACKAGES="$work/packages"
# The example finds the shipped models through this variable only where asked to below.
unset MDIT_MODELS_DIR

# The library package as restored: README, licence, repository, XML documentation.
nuspec_check() {
  local dir="$NUGET_PACKAGES/$(echo "$lib_id" | tr '[:upper:]' '[:lower:]')/$version" nuspec
  nuspec="$dir/$(echo "$lib_id" | tr '[:upper:]' '[:lower:]').nuspec"
  [ -f "$nuspec" ] || fail "the restored $lib_id package has no nuspec at $nuspec"
  for field in '<license type="expression">MIT</license>' '<readme>README.md</readme>' '<repository type="git"' '<authors>MediatorDiT contributors</authors>'; do
    grep -qF "$field" "$nuspec" || fail "$lib_id's nuspec lacks $field"
  done
  for file in README.md lib/net10.0/MediatorDiT.dll lib/net10.0/MediatorDiT.xml; do
    [ -f "$dir/$file" ] || fail "the $lib_id package lacks $file"
  done
}

# --- 2. the tool -----------------------------------------------------------------------------------------
step "install $tool_id $version into $tools"
quiet "dotnet tool install $tool_id" dotnet tool install "$tool_id" --version "$version" --tool-path "$tools" --configfile "$work/nuget.config"
[ -x "$tools/mdit" ] || fail "the tool install made no $tools/mdit"

step "mdit flops (from $outside)"
(cd "$outside" && "$tools/mdit" flops --model SiT-S/2 --mediators 16) | tee "$work/flops.txt" || fail "mdit flops failed"
grep -q '^total' "$work/flops.txt" || fail "mdit flops printed no total"

step "mdit demo --per-class 1 (from $outside, with the models inside the tool package)"
(cd "$outside" && "$tools/mdit" demo --per-class 1 --out "$outside/demo" --no-progress) 2>&1 | tee "$work/demo.txt" || fail "mdit demo failed"
for file in demo.png demo.json; do [ -s "$outside/demo/$file" ] || fail "mdit demo wrote no $file"; done
grep -q "^ladder $tools/" "$work/demo.txt" || fail "mdit demo did not take the ladder from the tool package under $tools"

step "mdit serve (from $outside, the shipped ladder inside the tool package) answers /api/info and a job"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 18731)
(cd "$outside" && exec "$tools/mdit" serve --port "$port") >"$work/serve.txt" 2>&1 &
serve_pid=$!
for _ in $(seq 1 120); do grep -q "listening on" "$work/serve.txt" && break; kill -0 "$serve_pid" 2>/dev/null || break; sleep 0.5; done
serve_ok=1
info=$(curl -sf "http://127.0.0.1:$port/api/info") || serve_ok=0
job=$(curl -sf -H 'Content-Type: application/json' -d '{"classes":["Bag"],"images":1,"steps":4}' "http://127.0.0.1:$port/api/jobs") || serve_ok=0
id=$(echo "$job" | sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p')
events=$(curl -sfN --max-time 60 "http://127.0.0.1:$port/api/jobs/$id/events" | grep '^event:' | tail -n 1) || serve_ok=0
# TERM, not INT: a background job of a script that itself runs in the background (nohup) starts with SIGINT ignored.
kill -TERM "$serve_pid" 2>/dev/null; wait "$serve_pid" 2>/dev/null || true
cat "$work/serve.txt"
[ "$serve_ok" = 1 ] || fail "mdit serve did not answer on port $port"
echo "$info" | grep -q '"models":\["m4","m16","m64"\]' || fail "mdit serve's /api/info did not list the shipped ladder: $info"
[ "$events" = "event: done" ] || fail "mdit serve's job did not end with 'event: done' (last: '$events')"

# --- 3. the repository's example against the package -----------------------------------------------------
step "build examples/SampleLadder against the $lib_id package (-p:UsePackage=true)"
quiet "build examples/SampleLadder with the package" dotnet build "$root/examples/SampleLadder/SampleLadder.csproj" -c Release --nologo \
  -p:UsePackage=true -p:MediatorDiTPackageVersion="$version" -p:RestoreConfigFile="$work/nuget.config"
nuspec_check
example_dll="$root/examples/SampleLadder/bin/package/Release/net10.0/SampleLadder.dll"
[ -f "$example_dll" ] || fail "the package build of the example made no $example_dll"
(cd "$outside" && MDIT_MODELS_DIR="$root/models" dotnet "$example_dll" "$outside/example") >"$work/example.txt" || { cat "$work/example.txt" >&2; fail "examples/SampleLadder (package build) failed"; }
cat "$work/example.txt"
[ "$(find "$outside/example" -name '*.png' | wc -l)" -eq 8 ] || fail "examples/SampleLadder wrote $(find "$outside/example" -name '*.png' | wc -l) PNGs, not 8"
grep -q "% saved" "$work/example.txt" || fail "examples/SampleLadder printed no FLOPs saving"

# --- 4. a fresh console project ---------------------------------------------------------------------------
step "fresh console project in $app with $lib_id $version from the feed"
quiet "dotnet new console" dotnet new console --output "$app" --name PackageCheckApp --framework net10.0 --no-restore
cp "$root/examples/SampleLadder/Program.cs" "$app/Program.cs"
quiet "dotnet add package $lib_id" dotnet add "$app/PackageCheckApp.csproj" package "$lib_id" --version "$version"
quiet "build the fresh project" dotnet build "$app/PackageCheckApp.csproj" -c Release --nologo
(cd "$outside" && MDIT_MODELS_DIR="$root/models" dotnet "$app/bin/Release/net10.0/PackageCheckApp.dll" "$outside/app") | tee "$work/app.txt" \
  || fail "the fresh project failed"
# Same images, schedule and FLOPs; only the wall time may differ.
cmp -s <(grep -v " images in " "$work/example.txt") <(grep -v " images in " "$work/app.txt") \
  || fail "the fresh project and examples/SampleLadder printed different output"
for png in "$outside"/example/*.png; do cmp -s "$png" "$outside/app/$(basename "$png")" || fail "the fresh project's $(basename "$png") differs from the example's"; done

echo "package check: $lib_id, $cuda_id and $tool_id $version packed; tool installed, mdit flops, mdit demo and mdit serve ran from it; example built from the package and from a fresh project, ran ($((SECONDS - started)) s)"
