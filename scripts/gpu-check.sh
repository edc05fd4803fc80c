#!/usr/bin/env bash
# One-shot check of a GPU host: an x64 machine with the CUDA build of onnxruntime-node, or a
# Jetson with Dockerfile.jetson's binding (docs/gpu.md). Runs `cityedge doctor`, then every shipped
# (and --config) model on every provider that works: first start (TensorRT engine build) and a
# cached second start, latency and throughput at batch 1 and N, agreement with the CPU's result.
# Made to finish within 10 minutes on a Jetson Orin. Without a GPU it says so and exits 0 after the
# CPU part.
#
#   scripts/gpu-check.sh [--config FILE] [--batch N] [--runs N] [--json]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
CONFIG="" BATCH=4 RUNS=30 JSON=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --config) CONFIG="$2"; shift 2 ;;
    --batch) BATCH="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --json) JSON=(--json); shift ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown argument \"$1\"" >&2; exit 64 ;;
  esac
done
[[ "$BATCH" =~ ^[1-9][0-9]*$ && "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "gpu-check: --batch and --runs take whole numbers" >&2; exit 64; }
# The CLI of this tree: the sources through tsx in a checkout, else the build (an installed device).
if [[ -f "$ROOT/runtime/cli.ts" && -d "$ROOT/node_modules/tsx" ]]; then
  CLI=(node --import tsx "$ROOT/runtime/cli.ts")
elif [[ -f "$ROOT/dist/runtime/cli.js" ]]; then
  NODE=node
  if [[ -x /opt/cityedge/bin/node && "$ROOT" == /opt/cityedge/app ]]; then NODE=/opt/cityedge/bin/node; fi
  CLI=("$NODE" "$ROOT/dist/runtime/cli.js")
else
  echo "gpu-check: no cityedge in $ROOT (npm ci && npm run build)" >&2
  exit 1
fi
cd "$ROOT"
start=$SECONDS
echo "== cityedge doctor"
"${CLI[@]}" doctor ${CONFIG:+--config "$CONFIG"} "${JSON[@]}"
echo
echo "== every model on every provider that works (batch 1 and $BATCH, $RUNS runs each)"
"${CLI[@]}" bench gpu ${CONFIG:+"--config=$CONFIG"} "--batch=$BATCH" "--runs=$RUNS" "${JSON[@]}" | tee /tmp/cityedge-gpu-check.$$
if grep -q "no GPU provider works on this machine" /tmp/cityedge-gpu-check.$$; then
  echo
  echo "gpu-check: no GPU here (no working cuda or tensorrt provider); the CPU part above is all this machine can show"
fi
rm -f /tmp/cityedge-gpu-check.$$
echo "gpu-check: done in $((SECONDS - start)) s"
