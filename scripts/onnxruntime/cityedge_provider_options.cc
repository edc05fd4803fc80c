// See cityedge_provider_options.h.
#include "cityedge_provider_options.h"

#include <cmath>
#include <string>
#include <vector>

namespace {

const OrtApi& Api() {
  static const OrtApi* api = OrtGetApiBase()->GetApi(ORT_API_VERSION);
  return *api;
}

struct Pairs {
  std::vector<std::string> keys;
  std::vector<std::string> values;
};

std::string OptionError(const char* provider, const std::string& key, const char* problem) {
  return std::string("Invalid argument: ") + provider + " option \"" + key + "\" " + problem;
}

Pairs Collect(const Napi::Value& entry, const char* provider) {
  Pairs pairs;
  if (!entry.IsObject()) return pairs;
  Napi::Env env = entry.Env();
  Napi::Object object = entry.As<Napi::Object>();
  Napi::Array names = object.GetPropertyNames();
  for (uint32_t i = 0; i < names.Length(); i++) {
    std::string key = names.Get(i).ToString().Utf8Value();
    if (key == "name" || key == "deviceId") continue;
    Napi::Value value = object.Get(key);
    std::string text;
    if (value.IsUndefined()) {
      continue;
    } else if (value.IsString()) {
      text = value.As<Napi::String>().Utf8Value();
    } else if (value.IsBoolean()) {
      text = value.As<Napi::Boolean>().Value() ? "1" : "0";
    } else if (value.IsNumber()) {
      double number = value.As<Napi::Number>().DoubleValue();
      if (!std::isfinite(number) || std::floor(number) != number) {
        throw Napi::TypeError::New(env, OptionError(provider, key, "must be a whole number"));
      }
      text = std::to_string(static_cast<long long>(number));
    } else {
      throw Napi::TypeError::New(env, OptionError(provider, key, "must be a string, a boolean or a whole number"));
    }
    // onnxruntime refuses empty values ("key/value cannot be empty") without naming the key.
    if (text.empty()) throw Napi::TypeError::New(env, OptionError(provider, key, "must not be empty"));
    pairs.keys.push_back(key);
    pairs.values.push_back(text);
  }
  return pairs;
}

template <typename Options, typename Update, typename Release>
void Apply(const Napi::Value& entry, Options* options, const char* provider, Update update, Release release) {
  Pairs pairs;
  try {
    pairs = Collect(entry, provider);
  } catch (...) {
    release(options);
    throw;
  }
  if (pairs.keys.empty()) return;
  std::vector<const char*> keys;
  std::vector<const char*> values;
  for (size_t i = 0; i < pairs.keys.size(); i++) {
    keys.push_back(pairs.keys[i].c_str());
    values.push_back(pairs.values[i].c_str());
  }
  // onnxruntime copies the strings it keeps, so `pairs` may go when this returns.
  OrtStatus* status = update(options, keys.data(), values.data(), keys.size());
  if (status != nullptr) {
    std::string message = Api().GetErrorMessage(status);
    Api().ReleaseStatus(status);
    release(options);
    throw Napi::Error::New(entry.Env(), std::string(provider) + " provider options: " + message);
  }
}

}  // namespace

void CityedgeUpdateTensorRTOptions(const Napi::Value& entry, OrtTensorRTProviderOptionsV2* options) {
  Apply(
      entry, options, "tensorrt",
      [](OrtTensorRTProviderOptionsV2* o, const char* const* k, const char* const* v, size_t n) {
        return Api().UpdateTensorRTProviderOptions(o, k, v, n);
      },
      [](OrtTensorRTProviderOptionsV2* o) { Api().ReleaseTensorRTProviderOptions(o); });
}

void CityedgeUpdateCUDAOptions(const Napi::Value& entry, OrtCUDAProviderOptionsV2* options) {
  Apply(
      entry, options, "cuda",
      [](OrtCUDAProviderOptionsV2* o, const char* const* k, const char* const* v, size_t n) {
        return Api().UpdateCUDAProviderOptions(o, k, v, n);
      },
      [](OrtCUDAProviderOptionsV2* o) { Api().ReleaseCUDAProviderOptions(o); });
}

void CityedgeExportMarker(Napi::Env env, Napi::Object exports) {
  Napi::Object marker = Napi::Object::New(env);
  marker.Set("version", Napi::Number::New(env, 1));
  Napi::Array providers = Napi::Array::New(env);
  uint32_t count = 0;
#ifdef USE_TENSORRT
  providers.Set(count++, Napi::String::New(env, "tensorrt"));
#endif
#ifdef USE_CUDA
  providers.Set(count++, Napi::String::New(env, "cuda"));
#endif
  (void)count;
  marker.Set("providers", providers);
  exports.Set("cityedgeProviderOptions", marker);
}
