// A stand-in for the binding's call sites, for scripts/onnxruntime/check-patch.sh: the lines
// apply-patch.py inserts, in the context they land in (the loop variable `epValue`, the V2 options
// just created), built as a small addon that a Node script can call with real provider entries.
#include <napi.h>

#include <string>

#include "cityedge_provider_options.h"

namespace {

const OrtApi& Api() { return *OrtGetApiBase()->GetApi(ORT_API_VERSION); }

void Check(Napi::Env env, OrtStatus* status) {
  if (status == nullptr) return;
  std::string message = Api().GetErrorMessage(status);
  Api().ReleaseStatus(status);
  throw Napi::Error::New(env, message);
}

// update(executionProviders): for each entry, creates that provider's V2 options, hands the entry
// to the patch, and returns what onnxruntime then holds ("key=value;..."), one string per entry.
Napi::Value Update(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Napi::Array epList = info[0].As<Napi::Array>();
  Napi::Array out = Napi::Array::New(env);
  OrtAllocator* allocator = nullptr;
  Check(env, Api().GetAllocatorWithDefaultOptions(&allocator));
  for (uint32_t i = 0; i < epList.Length(); i++) {
    Napi::Value epValue = epList[i];
    std::string name = epValue.IsString() ? epValue.As<Napi::String>().Utf8Value()
                                          : epValue.As<Napi::Object>().Get("name").As<Napi::String>().Utf8Value();
    char* text = nullptr;
    if (name == "tensorrt") {
      OrtTensorRTProviderOptionsV2* options;
      Check(env, Api().CreateTensorRTProviderOptions(&options));
      CityedgeUpdateTensorRTOptions(epValue, options);
      OrtStatus* status = Api().GetTensorRTProviderOptionsAsString(options, allocator, &text);
      Api().ReleaseTensorRTProviderOptions(options);
      Check(env, status);
    } else if (name == "cuda") {
      OrtCUDAProviderOptionsV2* options;
      Check(env, Api().CreateCUDAProviderOptions(&options));
      CityedgeUpdateCUDAOptions(epValue, options);
      OrtStatus* status = Api().GetCUDAProviderOptionsAsString(options, allocator, &text);
      Api().ReleaseCUDAProviderOptions(options);
      Check(env, status);
    } else {
      throw Napi::Error::New(env, "harness: no provider " + name);
    }
    out.Set(i, Napi::String::New(env, text));
    allocator->Free(allocator, text);
  }
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("update", Napi::Function::New(env, Update));
  CityedgeExportMarker(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(cityedge_patch_harness, Init)
