#!/usr/bin/env bash
# Installs NVIDIA's PTX assembler (ptxas) and disassembler (nvdisasm) for the tests that assemble every device
# kernel for Hopper (sm_90) without a GPU (PtxAssemblyTests: the PTX a card's driver would be given must assemble, the
# fused attention kernels must need no stack frame and spill nothing, and nvdisasm counts their machine
# instructions). Only those two binaries (and the licence) are taken out of Debian's nvidia-cuda-toolkit package
# (component non-free), downloaded through a source list of this script's own, on the machine's own Debian mirror and
# release, so the machine's apt configuration is left as it is. They go to
# ${MDIT_PTXAS_DIR:-/usr/local/lib/mediatordit/cuda}/bin; the tests look there (or at $MDIT_PTXAS, or on PATH).
set -euo pipefail
dest=${MDIT_PTXAS_DIR:-/usr/local/lib/mediatordit/cuda}
if [ -x "$dest/bin/ptxas" ] && [ -x "$dest/bin/nvdisasm" ]; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
  echo "install-ptxas: apt-get and dpkg-deb are needed (a Debian machine)" >&2; exit 1
fi
# shellcheck disable=SC1091
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
# The machine's Debian mirror: the first URIs of a deb822 source that is not the security archive, else the first
# "deb" line of sources.list.
mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}')
if [ -z "$mirror" ]; then
  mirror=$(grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | grep -v security \
    | sed -E 's/^deb (\[[^]]*\] )?//' | awk '{print $1; exit}')
fi
if [ -z "$codename" ] || [ -z "$mirror" ]; then
  echo "install-ptxas: could not tell this machine's Debian release and mirror from /etc/os-release and /etc/apt" >&2; exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/archives/partial"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $codename non-free" > "$work/sources.list"
apt_options=(-o Dir::Etc::SourceList="$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o Dir::State::Lists="$work/lists" -o Dir::Cache::Archives="$work/archives" -o Debug::NoLocking=1
  -o APT::Sandbox::User=root -qq)
apt-get "${apt_options[@]}" update
(cd "$work" && apt-get "${apt_options[@]}" download nvidia-cuda-toolkit)
mkdir -p "$work/x"
dpkg-deb -x "$work"/nvidia-cuda-toolkit_*.deb "$work/x"
mkdir -p "$dest/bin"
install -m 0755 "$work/x/usr/bin/ptxas" "$work/x/usr/bin/nvdisasm" "$dest/bin/"
cp "$work/x/usr/share/doc/nvidia-cuda-toolkit/copyright" "$dest/copyright" 2>/dev/null || true
echo "install-ptxas: $("$dest/bin/ptxas" --version | grep -o "release [0-9.]*") (ptxas, nvdisasm) installed in $dest/bin" >&2
