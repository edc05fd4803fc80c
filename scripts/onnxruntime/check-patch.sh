#!/usr/bin/env bash
# Compile check of the binding patch, without a GPU or an onnxruntime build (see docs/gpu.md):
#
#   scripts/onnxruntime/check-patch.sh --ort-include DIR [--ort-src DIR] [--lib FILE]
#
#   --ort-include DIR  folder holding onnxruntime_c_api.h (and onnxruntime_ep_c_api.h) of the
#                      pinned release: an onnxruntime checkout's include/onnxruntime/core/session,
#                      or a release archive's include/
#   --ort-src DIR      an onnxruntime checkout at the pinned tag: apply-patch.py runs on a copy of
#                      its js/node/src and the patched session_options_helper.cc and main.cc are
#                      compiled against the checkout's own headers
#   --lib FILE         a libonnxruntime.so of the same release: the patch is built into a small
#                      addon (check/harness.cc) and called with real provider entries (check/smoke.mjs)
#
# node-addon-api and node-api-headers come from the npm registry into a temp dir. Everything is
# compiled as the binding is: C++20, NAPI_VERSION=6, C++ exceptions, USE_CUDA and USE_TENSORRT.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ORT_INCLUDE="" ORT_SRC="" LIB=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --ort-include) ORT_INCLUDE="$2"; shift 2 ;;
    --ort-src) ORT_SRC="$2"; shift 2 ;;
    --lib) LIB="$2"; shift 2 ;;
    -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "check-patch: unknown argument \"$1\"" >&2; exit 2 ;;
  esac
done
[[ -n "$ORT_INCLUDE" && -f "$ORT_INCLUDE/onnxruntime_c_api.h" ]] || { echo "check-patch: --ort-include DIR with onnxruntime_c_api.h is required" >&2; exit 2; }
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
(cd "$TMP" && npm pack --silent node-addon-api@8 node-api-headers@1 >/dev/null 2>&1)
mkdir -p "$TMP/naa" "$TMP/nah"
tar -xzf "$TMP"/node-addon-api-*.tgz -C "$TMP/naa" --strip-components=1
tar -xzf "$TMP"/node-api-headers-*.tgz -C "$TMP/nah" --strip-components=1
API_VERSION="$(sed -n 's/^#define ORT_API_VERSION \([0-9]*\)$/\1/p' "$ORT_INCLUDE/onnxruntime_c_api.h")"
echo "check-patch: g++ $(g++ -dumpfullversion); onnxruntime C API version ${API_VERSION:-?} from $ORT_INCLUDE;" \
  "node-addon-api $(node -p "require('$TMP/naa/package.json').version"), node-api-headers $(node -p "require('$TMP/nah/package.json').version")"
FLAGS=(-std=c++20 -Wall -Wextra -Werror -DUSE_CUDA=1 -DUSE_TENSORRT=1 -DNAPI_VERSION=6 -DNAPI_CPP_EXCEPTIONS
  -I"$HERE" -I"$ORT_INCLUDE" -I"$TMP/naa" -I"$TMP/nah/include")
for f in "$HERE/cityedge_provider_options.cc" "$HERE/check/harness.cc"; do
  g++ "${FLAGS[@]}" -fsyntax-only "$f"
  echo "check-patch: ok  g++ -fsyntax-only ${f#"$HERE/"}"
done
if [[ -n "$ORT_SRC" ]]; then
  mkdir -p "$TMP/ort/js/node"
  cp -r "$ORT_SRC/js/node/src" "$TMP/ort/js/node/src"
  python3 "$HERE/apply-patch.py" "$TMP/ort"
  for f in session_options_helper.cc main.cc; do
    g++ -std=c++20 -fsyntax-only -DUSE_CUDA=1 -DUSE_TENSORRT=1 -DNAPI_VERSION=6 -DNAPI_CPP_EXCEPTIONS -DORT_API_MANUAL_INIT \
      -I"$ORT_SRC/include/onnxruntime/core/session" -I"$ORT_SRC/include/onnxruntime" -I"$ORT_SRC/onnxruntime" \
      -I"$TMP/ort/js/node/src" -I"$TMP/naa" -I"$TMP/nah/include" "$TMP/ort/js/node/src/$f"
    echo "check-patch: ok  g++ -fsyntax-only patched js/node/src/$f"
  done
fi
if [[ -n "$LIB" ]]; then
  g++ "${FLAGS[@]}" -O1 -fPIC -shared -o "$TMP/harness.node" "$HERE/cityedge_provider_options.cc" "$HERE/check/harness.cc" \
    "$LIB" -Wl,-rpath,"$(dirname "$(realpath "$LIB")")"
  node "$HERE/check/smoke.mjs" "$TMP/harness.node"
fi
echo "check-patch: done"
