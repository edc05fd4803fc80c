#!/usr/bin/env bash
# Compile check of the binding patch, without a GPU or an onnxruntime build (see docs/gpu.md):
#
#   scripts/onnxruntime/check-patch.sh [--ort-include DIR] [--ort-src DIR] [--lib FILE]
#
#   --ort-include DIR  folder holding onnxruntime_c_api.h (and onnxruntime_ep_c_api.h) of the
#                      pinned release: an onnxruntime checkout's include/onnxruntime/core/session,
#                      or a release archive's include/ (default with --ort-src: that tree's own)
#   --ort-src DIR      an onnxruntime source tree at the pinned release: a checkout, or just its
#                      include/onnxruntime, js/node (src, CMakeLists.txt, package-lock.json) and
#                      onnxruntime/core/framework/arena_extend_strategy.h (cuda_provider_options.h
#                      includes it). apply-patch.py runs on a copy of its js/node/src, and the
#                      patched session_options_helper.cc and main.cc are compiled as its
#                      js/node/CMakeLists.txt builds them, against node-addon-api at the version
#                      its package-lock.json pins
#   --lib FILE         a libonnxruntime.so of the same release: the patch is built into a small
#                      addon (check/harness.cc) and called with real provider entries (check/smoke.mjs);
#                      with --ort-src also the whole patched binding is built, linked to FILE, put
#                      into a copy of this checkout's onnxruntime-node and called through its own
#                      API (check/binding-smoke.mjs)
#
# node-addon-api and node-api-headers come from the npm registry into a temp dir. Our files are
# compiled as the binding compiles them (its C++ standard, NAPI_VERSION=6, C++ exceptions,
# USE_CUDA and USE_TENSORRT), with -Wall -Wextra -Werror; upstream's files without -Werror.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
ORT_INCLUDE="" ORT_SRC="" LIB=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --ort-include) ORT_INCLUDE="$2"; shift 2 ;;
    --ort-src) ORT_SRC="$2"; shift 2 ;;
    --lib) LIB="$2"; shift 2 ;;
    -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "check-patch: unknown argument \"$1\"" >&2; exit 2 ;;
  esac
done
if [[ -n "$ORT_SRC" ]]; then
  ORT_SRC="$(cd "$ORT_SRC" && pwd)"
  for f in js/node/src/session_options_helper.cc js/node/src/main.cc js/node/CMakeLists.txt; do
    [[ -f "$ORT_SRC/$f" ]] || { echo "check-patch: --ort-src $ORT_SRC has no $f" >&2; exit 2; }
  done
  [[ -n "$ORT_INCLUDE" ]] || ORT_INCLUDE="$ORT_SRC/include/onnxruntime/core/session"
fi
[[ -n "$ORT_INCLUDE" && -f "$ORT_INCLUDE/onnxruntime_c_api.h" ]] || { echo "check-patch: --ort-include DIR (or --ort-src DIR) with onnxruntime_c_api.h is required" >&2; exit 2; }
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# The binding's build pins node-addon-api in js/node/package-lock.json and sets its C++ standard in
# js/node/CMakeLists.txt (17 for 1.23); without a source tree, the current node-addon-api and C++17.
NAA_SPEC="node-addon-api@8" CXX_STD=17
if [[ -n "$ORT_SRC" ]]; then
  std="$(sed -n 's/^ *set(CMAKE_CXX_STANDARD \([0-9]*\)).*/\1/p' "$ORT_SRC/js/node/CMakeLists.txt" | head -n 1)"
  [[ -n "$std" ]] && CXX_STD="$std"
  if [[ -f "$ORT_SRC/js/node/package-lock.json" ]]; then
    pinned="$(node -p "(require('$ORT_SRC/js/node/package-lock.json').packages?.['node_modules/node-addon-api'] ?? {}).version ?? ''")"
    [[ -n "$pinned" ]] && NAA_SPEC="node-addon-api@$pinned"
  fi
fi
(cd "$TMP" && npm pack --silent "$NAA_SPEC" node-api-headers@1 >/dev/null 2>&1)
mkdir -p "$TMP/naa" "$TMP/nah"
tar -xzf "$TMP"/node-addon-api-*.tgz -C "$TMP/naa" --strip-components=1
tar -xzf "$TMP"/node-api-headers-*.tgz -C "$TMP/nah" --strip-components=1
API_VERSION="$(sed -n 's/^#define ORT_API_VERSION \([0-9]*\)$/\1/p' "$ORT_INCLUDE/onnxruntime_c_api.h")"
echo "check-patch: g++ $(g++ -dumpfullversion), C++$CXX_STD; onnxruntime C API version ${API_VERSION:-?} from $ORT_INCLUDE;" \
  "node-addon-api $(node -p "require('$TMP/naa/package.json').version"), node-api-headers $(node -p "require('$TMP/nah/package.json').version")"
DEFINES=(-DUSE_CUDA=1 -DUSE_TENSORRT=1 -DNAPI_VERSION=6 -DNAPI_CPP_EXCEPTIONS)
FLAGS=(-std=c++"$CXX_STD" -Wall -Wextra -Werror "${DEFINES[@]}" -I"$HERE" -I"$ORT_INCLUDE" -I"$TMP/naa" -I"$TMP/nah/include")
for f in "$HERE/cityedge_provider_options.cc" "$HERE/check/harness.cc"; do
  g++ "${FLAGS[@]}" -fsyntax-only "$f"
  echo "check-patch: ok  g++ -fsyntax-only ${f#"$HERE/"}"
done
if [[ -n "$ORT_SRC" ]]; then
  mkdir -p "$TMP/ort/js/node"
  cp -r "$ORT_SRC/js/node/src" "$TMP/ort/js/node/src"
  python3 "$HERE/apply-patch.py" "$TMP/ort"
  # As js/node/CMakeLists.txt: its include folders and ORT_API_MANUAL_INIT.
  BINDING_FLAGS=(-std=c++"$CXX_STD" -Wall -Wextra "${DEFINES[@]}" -DORT_API_MANUAL_INIT
    -I"$ORT_INCLUDE" -I"$ORT_SRC/include/onnxruntime" -I"$ORT_SRC/onnxruntime"
    -I"$TMP/ort/js/node/src" -I"$TMP/naa" -I"$TMP/nah/include")
  for f in session_options_helper.cc main.cc; do
    g++ "${BINDING_FLAGS[@]}" -fsyntax-only "$TMP/ort/js/node/src/$f"
    echo "check-patch: ok  g++ -fsyntax-only patched js/node/src/$f"
  done
fi
if [[ -n "$LIB" ]]; then
  g++ "${FLAGS[@]}" -O1 -fPIC -shared -o "$TMP/harness.node" "$HERE/cityedge_provider_options.cc" "$HERE/check/harness.cc" \
    "$LIB" -Wl,-rpath,"$(dirname "$(realpath "$LIB")")"
  node "$HERE/check/smoke.mjs" "$TMP/harness.node"
  if [[ -n "$ORT_SRC" ]]; then
    SOURCES=("$TMP"/ort/js/node/src/*.cc)
    for f in "${SOURCES[@]}"; do
      g++ "${BINDING_FLAGS[@]}" -w -O0 -fPIC -c -o "$TMP/$(basename "$f" .cc).o" "$f"
    done
    g++ -shared -o "$TMP/onnxruntime_binding.node" "$TMP"/*.o "$LIB" -Wl,-rpath,"$(dirname "$(realpath "$LIB")")"
    echo "check-patch: ok  built the patched binding from its ${#SOURCES[@]} js/node/src/*.cc, linked to $LIB"
    ORT_NODE="$(dirname "$(cd "$ROOT" && node -p "require.resolve('onnxruntime-node/package.json')")")"
    # onnxruntime-common exports no package.json: up from its entry file to the package folder.
    ORT_COMMON="$(cd "$ORT_NODE" && node -p "const p = require('path'); let d = require.resolve('onnxruntime-common');
      while (p.basename(d) !== 'onnxruntime-common') d = p.dirname(d); d")"
    mkdir -p "$TMP/pkg/node_modules"
    cp -r "$ORT_NODE" "$ORT_COMMON" "$TMP/pkg/node_modules/"
    find "$TMP/pkg/node_modules/onnxruntime-node/bin" -name onnxruntime_binding.node -exec cp "$TMP/onnxruntime_binding.node" {} \;
    node "$HERE/check/binding-smoke.mjs" "$TMP/pkg" "$ROOT/test/fixtures/forecast/lastday_b1.onnx"
  fi
fi
echo "check-patch: done"
