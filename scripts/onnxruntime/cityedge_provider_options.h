// cityedge's addition to onnxruntime's Node.js binding (js/node/src), applied by
// scripts/onnxruntime/apply-patch.py in Dockerfile.jetson's onnxruntime stage.
//
// The stock binding gives the TensorRT and CUDA providers only `deviceId`, through the V2 options,
// and once V2 options are set TensorRT no longer reads its ORT_TENSORRT_* environment variables:
// precision, engine and timing caches, profiles and workspace never arrive. These functions hand
// every other key of the JS provider entry to onnxruntime's own string key/value update
// (UpdateTensorRTProviderOptions / UpdateCUDAProviderOptions), which knows and checks the keys.
#pragma once

#include <napi.h>

#include "onnxruntime_c_api.h"

// `entry` is the element of sessionOptions.executionProviders: a string (nothing to add) or an
// object. Keys other than "name" and "deviceId" go to onnxruntime as strings (booleans as "1"/"0",
// whole numbers in decimal). On a bad value or a key onnxruntime refuses, `options` is released
// and a JS error naming the key is thrown (the caller's own release is then skipped).
void CityedgeUpdateTensorRTOptions(const Napi::Value& entry, OrtTensorRTProviderOptionsV2* options);
void CityedgeUpdateCUDAOptions(const Napi::Value& entry, OrtCUDAProviderOptionsV2* options);

// Exports `cityedgeProviderOptions = { version: 1, providers: [...] }` (the providers compiled in
// whose options pass through), so the runtime can tell this binding from a stock one.
void CityedgeExportMarker(Napi::Env env, Napi::Object exports);
