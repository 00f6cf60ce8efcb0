#!/usr/bin/env bash
# Installs the Debian packages the emulated platforms need (CI runs as root on
# a machine that may be fresh): the arm64 cross compiler and qemu-user for
# linux-arm64, MinGW-w64 and Wine for win32-x64. Non-interactive; packages
# already installed are left as they are. Skips apt entirely when every tool
# is already on PATH.
set -euo pipefail
need=()
command -v aarch64-linux-gnu-g++ >/dev/null || need+=(g++-aarch64-linux-gnu)
command -v qemu-aarch64-static >/dev/null || command -v qemu-aarch64 >/dev/null || need+=(qemu-user-static)
command -v x86_64-w64-mingw32-g++-posix >/dev/null || need+=(g++-mingw-w64-x86-64-posix binutils-mingw-w64-x86-64)
command -v wine >/dev/null || need+=(wine wine64)
command -v file >/dev/null || need+=(file)
if [[ ${#need[@]} -eq 0 ]]; then
  echo "cross tools already installed"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "need root to install: ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
