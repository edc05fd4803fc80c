#!/usr/bin/env python3
"""Applies cityedge's provider-options patch to an onnxruntime source tree's Node.js binding.

    python3 scripts/onnxruntime/apply-patch.py /src/onnxruntime

Copies cityedge_provider_options.{h,cc} into js/node/src (its CMakeLists.txt compiles every
src/*.cc) and inserts four lines at anchors that every onnxruntime release since the V2 provider
options has: before each AppendExecutionProvider_{CUDA,TensorRT}_V2 call, the call that hands the
JS entry's keys to onnxruntime; and in main.cc, the export of the marker. Each anchor must occur
exactly once, else nothing is written and the build stops here, naming the anchor (a new
onnxruntime release then needs this script checked, not a silently unpatched binding).
"""
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
INCLUDE = '#include "cityedge_provider_options.h"'

# (file, anchor line (stripped), lines to insert, before or after the anchor)
EDITS = [
    ("session_options_helper.cc", '#include "session_options_helper.h"', [INCLUDE], "after"),
    ("session_options_helper.cc", "sessionOptions.AppendExecutionProvider_CUDA_V2(*options);",
     ["CityedgeUpdateCUDAOptions(epValue, options);"], "before"),
    ("session_options_helper.cc", "sessionOptions.AppendExecutionProvider_TensorRT_V2(*options);",
     ["CityedgeUpdateTensorRTOptions(epValue, options);"], "before"),
    ("main.cc", '#include "inference_session_wrap.h"', [INCLUDE], "after"),
    ("main.cc", "InferenceSessionWrap::Init(env, exports);", ["CityedgeExportMarker(env, exports);"], "after"),
]


def fail(message):
    sys.stderr.write(f"apply-patch: {message}\n")
    sys.exit(1)


def main():
    if len(sys.argv) != 2:
        fail("usage: apply-patch.py ONNXRUNTIME_SOURCE_DIR")
    src = os.path.join(sys.argv[1], "js", "node", "src")
    if not os.path.isdir(src):
        fail(f"{src} is not a folder: not an onnxruntime source tree")
    texts = {}
    for name in {e[0] for e in EDITS}:
        path = os.path.join(src, name)
        if not os.path.isfile(path):
            fail(f"{path} not found")
        with open(path, encoding="utf-8") as f:
            texts[name] = f.read().split("\n")
        if any(line.strip() == INCLUDE for line in texts[name]):
            fail(f"{path} is already patched")
    for name, anchor, insert, where in EDITS:
        lines = texts[name]
        hits = [i for i, line in enumerate(lines) if line.strip() == anchor]
        if len(hits) != 1:
            fail(f"{name}: the anchor `{anchor}` occurs {len(hits)} times, not once: this onnxruntime version needs the patch checked")
        i = hits[0]
        indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
        new = [indent + text if not text.startswith("#") else text for text in insert]
        lines[i:i] = new if where == "before" else []
        if where == "after":
            lines[i + 1:i + 1] = new
    for name, lines in texts.items():
        with open(os.path.join(src, name), "w", encoding="utf-8") as f:
            f.write("\n".join(lines))
    for f in ("cityedge_provider_options.h", "cityedge_provider_options.cc"):
        shutil.copyfile(os.path.join(HERE, f), os.path.join(src, f))
    print(f"apply-patch: patched {src} ({len(EDITS)} insertions, 2 files added)")


if __name__ == "__main__":
    main()
