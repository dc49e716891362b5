#!/usr/bin/env bash
# setup.sh: everything a fresh Debian bookworm machine needs, in one command.
# Installs the missing Debian packages (as root, or through sudo), builds
# attnc and libattnrt into build/, installs them under /usr/local, then
# builds and runs the examples end to end.
set -euo pipefail
cd "$(dirname "$0")"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo

# clang-19 and libclang-rt-19-dev (libFuzzer, the sanitizer runtimes) build
# the fuzz targets of run-tests.sh; gcc's own sanitizers do the rest;
# pkg-config: the package test (tests/package) checks attnrt.pc with it;
# gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user: the aarch64
# tests cross-build the runtime and run --target aarch64-linux-gnu objects
# under qemu-aarch64
packages=(llvm-19-dev re2c lemon cmake gcc make libc6-dev clang-19 libclang-rt-19-dev pkg-config
          gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

echo "== building attnc and libattnrt"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
echo "== installing into /usr/local"
$sudo cmake --install build >/dev/null
echo "== examples"
examples/run.sh
