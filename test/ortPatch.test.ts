import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { REPO_ROOT } from "./helpers/sharedData.js";

/**
 * scripts/onnxruntime/apply-patch.py on a stand-in for onnxruntime's js/node/src: the same anchor
 * lines as the real files, in the same places, and nothing else of theirs. (The real files are
 * patched by Dockerfile.jetson's onnxruntime stage; scripts/onnxruntime/check-patch.sh compiles
 * the result against onnxruntime's headers where they are at hand.)
 */
const SCRIPT = path.join(REPO_ROOT, "scripts/onnxruntime/apply-patch.py");

const HELPER = `#include "onnxruntime_cxx_api.h"
#include "session_options_helper.h"

void ParseExecutionProviders(const Napi::Array epList, Ort::SessionOptions& sessionOptions) {
  for (uint32_t i = 0; i < epList.Length(); i++) {
    Napi::Value epValue = epList[i];
    if (name == "cpu") {
#ifdef USE_CUDA
    } else if (name == "cuda") {
      OrtCUDAProviderOptionsV2* options;
      sessionOptions.AppendExecutionProvider_CUDA_V2(*options);
#endif
#ifdef USE_TENSORRT
    } else if (name == "tensorrt") {
      OrtTensorRTProviderOptionsV2* options;
      sessionOptions.AppendExecutionProvider_TensorRT_V2(*options);
#endif
    }
  }
}
`;
const MAIN = `#include <napi.h>

#include "inference_session_wrap.h"

Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  InferenceSessionWrap::Init(env, exports);
  return exports;
}
`;

describe("apply-patch.py", () => {
  let root: string;
  let src: string;
  beforeEach(() => {
    root = mkdtempSync(path.join(os.tmpdir(), "cityedge-ortpatch-"));
    src = path.join(root, "js/node/src");
    mkdirSync(src, { recursive: true });
    writeFileSync(path.join(src, "session_options_helper.cc"), HELPER);
    writeFileSync(path.join(src, "main.cc"), MAIN);
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const apply = () => spawnSync("python3", [SCRIPT, root], { encoding: "utf8" });

  it("inserts the calls before each V2 append and the marker after Init, and adds our two files", () => {
    const r = apply();
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const helper = readFileSync(path.join(src, "session_options_helper.cc"), "utf8").split("\n");
    const at = (line: string) => helper.findIndex((l) => l === line);
    expect(at('#include "cityedge_provider_options.h"')).toBe(at('#include "session_options_helper.h"') + 1);
    expect(at("      CityedgeUpdateCUDAOptions(epValue, options);")).toBe(at("      sessionOptions.AppendExecutionProvider_CUDA_V2(*options);") - 1);
    expect(at("      CityedgeUpdateTensorRTOptions(epValue, options);")).toBe(
      at("      sessionOptions.AppendExecutionProvider_TensorRT_V2(*options);") - 1,
    );
    const main = readFileSync(path.join(src, "main.cc"), "utf8");
    expect(main).toContain('#include "inference_session_wrap.h"\n#include "cityedge_provider_options.h"\n');
    expect(main).toContain("  InferenceSessionWrap::Init(env, exports);\n  CityedgeExportMarker(env, exports);\n  return exports;");
    for (const f of ["cityedge_provider_options.h", "cityedge_provider_options.cc"]) {
      expect(readFileSync(path.join(src, f), "utf8")).toBe(readFileSync(path.join(REPO_ROOT, "scripts/onnxruntime", f), "utf8"));
    }
  });

  it("refuses a tree it already patched", () => {
    expect(apply().status).toBe(0);
    const again = apply();
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/is already patched\n$/);
  });

  it("stops, writing nothing, when an anchor is missing or doubled (a release that needs the patch checked)", () => {
    writeFileSync(
      path.join(src, "session_options_helper.cc"),
      HELPER.replace("AppendExecutionProvider_TensorRT_V2", "AppendExecutionProvider_TensorRT_V3"),
    );
    const missing = apply();
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain("the anchor `sessionOptions.AppendExecutionProvider_TensorRT_V2(*options);` occurs 0 times, not once");
    expect(readFileSync(path.join(src, "main.cc"), "utf8")).toBe(MAIN);
    expect(existsSync(path.join(src, "cityedge_provider_options.cc"))).toBe(false);
    writeFileSync(path.join(src, "session_options_helper.cc"), HELPER + HELPER);
    expect(apply().stderr).toContain("occurs 2 times, not once");
  });

  it("names a folder that is not an onnxruntime tree", () => {
    const r = spawnSync("python3", [SCRIPT, path.join(root, "nope")], { encoding: "utf8" });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`apply-patch: ${path.join(root, "nope", "js/node/src")} is not a folder: not an onnxruntime source tree\n`);
  });
});
