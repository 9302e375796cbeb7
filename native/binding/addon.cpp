// N-API glue: checks every argument (types, lengths, index ranges) so that no call from
// JavaScript can make the kernels read or write out of bounds, then dispatches on the weight
// dtype (float64/float32) and the input element type (float64/float32/uint8).
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include "../kernels/mlp.h"

namespace {

constexpr std::size_t kMaxLayers = 64;

[[noreturn]] void throwType(Napi::Env env, const std::string& name, const std::string& expected) {
  throw Napi::TypeError::New(env, "Expected " + expected + " for " + name);
}

[[noreturn]] void throwRange(Napi::Env env, const std::string& message) { throw Napi::RangeError::New(env, message); }

Napi::TypedArray typedArray(Napi::Env env, Napi::Value v, const std::string& name) {
  if (!v.IsTypedArray()) throwType(env, name, "a typed array");
  return v.As<Napi::TypedArray>();
}

template <typename E>
Napi::TypedArrayOf<E> typedArrayOf(Napi::Env env, Napi::Value v, const std::string& name, napi_typedarray_type type,
                                   const char* typeName) {
  Napi::TypedArray ta = typedArray(env, v, name);
  if (ta.TypedArrayType() != type) throwType(env, name, std::string("a ") + typeName);
  return v.As<Napi::TypedArrayOf<E>>();
}

std::size_t sizeArg(Napi::Env env, Napi::Value v, const std::string& name, std::size_t min, std::size_t max) {
  if (!v.IsNumber()) throwType(env, name, "a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d) || d < static_cast<double>(min) || d > static_cast<double>(max))
    throwRange(env, "Expected an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "] for " + name);
  return static_cast<std::size_t>(d);
}

double finiteArg(Napi::Env env, Napi::Value v, const std::string& name) {
  if (!v.IsNumber()) throwType(env, name, "a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throwRange(env, "Expected a finite number for " + name);
  return d;
}

// The network as given from JavaScript: { sizes: Int32Array, weights: T[], prevDelta?: T[] }.
template <typename T>
struct NetArgs {
  std::vector<int32_t> sizes;
  std::vector<T*> weights;
  std::vector<T*> prevDelta;
  mlp::Net<T> view() const { return mlp::Net<T>{sizes.size() - 1, sizes.data(), weights.data(), prevDelta.data()}; }
};

napi_typedarray_type floatType(double) { return napi_float64_array; }
napi_typedarray_type floatType(float) { return napi_float32_array; }
const char* floatName(double) { return "Float64Array"; }
const char* floatName(float) { return "Float32Array"; }

template <typename T>
std::vector<T*> matrices(Napi::Env env, Napi::Value v, const std::string& name, const std::vector<int32_t>& sizes) {
  if (!v.IsArray()) throwType(env, name, "an array of typed arrays");
  Napi::Array arr = v.As<Napi::Array>();
  const std::size_t L = sizes.size() - 1;
  if (arr.Length() != L) throwRange(env, "Expected " + std::to_string(L) + " matrices in " + name);
  std::vector<T*> out(L);
  for (std::size_t l = 0; l < L; ++l) {
    const std::string item = name + "[" + std::to_string(l) + "]";
    auto ta = typedArrayOf<T>(env, arr.Get(static_cast<uint32_t>(l)), item, floatType(T()), floatName(T()));
    const std::size_t expected = static_cast<std::size_t>(sizes[l + 1]) * (static_cast<std::size_t>(sizes[l]) + 1);
    if (ta.ElementLength() != expected)
      throwRange(env, "Expected " + std::to_string(expected) + " elements in " + item + " but it has " +
                          std::to_string(ta.ElementLength()));
    out[l] = ta.Data();
  }
  return out;
}

std::vector<int32_t> sizesArg(Napi::Env env, Napi::Value v) {
  auto ta = typedArrayOf<int32_t>(env, v, "net.sizes", napi_int32_array, "Int32Array");
  if (ta.ElementLength() < 2 || ta.ElementLength() > kMaxLayers + 1)
    throwRange(env, "Expected 2 to " + std::to_string(kMaxLayers + 1) + " entries in net.sizes");
  std::vector<int32_t> sizes(ta.Data(), ta.Data() + ta.ElementLength());
  for (int32_t s : sizes)
    if (s < 1) throwRange(env, "Expected every layer size in net.sizes to be at least 1");
  return sizes;
}

template <typename T>
NetArgs<T> netArgs(Napi::Env env, Napi::Object net, bool withMomentum) {
  NetArgs<T> args;
  args.sizes = sizesArg(env, net.Get("sizes"));
  args.weights = matrices<T>(env, net.Get("weights"), "net.weights", args.sizes);
  if (withMomentum) args.prevDelta = matrices<T>(env, net.Get("prevDelta"), "net.prevDelta", args.sizes);
  return args;
}

// The data set matrix { data, rows, cols } with data a Float64Array, Float32Array or Uint8Array.
struct InputArgs {
  napi_typedarray_type type;
  const void* data;
  std::size_t rows;
  std::size_t cols;
};

InputArgs inputArgs(Napi::Env env, Napi::Value v, std::size_t nFeatures) {
  if (!v.IsObject()) throwType(env, "x", "a matrix { data, rows, cols }");
  Napi::Object obj = v.As<Napi::Object>();
  Napi::TypedArray data = typedArray(env, obj.Get("data"), "x.data");
  const auto type = data.TypedArrayType();
  if (type != napi_float64_array && type != napi_float32_array && type != napi_uint8_array)
    throwType(env, "x.data", "a Float64Array, Float32Array or Uint8Array");
  const std::size_t rows = sizeArg(env, obj.Get("rows"), "x.rows", 1, std::numeric_limits<int32_t>::max());
  const std::size_t cols = sizeArg(env, obj.Get("cols"), "x.cols", 1, std::numeric_limits<int32_t>::max());
  if (cols != nFeatures) throwRange(env, "Expected x.cols to equal the network's input size");
  if (data.ElementLength() != rows * cols) throwRange(env, "Expected x.data to have x.rows * x.cols elements");
  const void* ptr = static_cast<const uint8_t*>(data.ArrayBuffer().Data()) + data.ByteOffset();
  return InputArgs{type, ptr, rows, cols};
}

template <typename Fn>
void withInput(const InputArgs& in, Fn&& fn) {
  switch (in.type) {
    case napi_float64_array:
      fn(mlp::Input<double>{static_cast<const double*>(in.data), in.rows, in.cols});
      break;
    case napi_float32_array:
      fn(mlp::Input<float>{static_cast<const float*>(in.data), in.rows, in.cols});
      break;
    default:
      fn(mlp::Input<uint8_t>{static_cast<const uint8_t*>(in.data), in.rows, in.cols});
      break;
  }
}

// Labels must be Int32Array with one entry per row, each in [0, nOutput).
const int32_t* labelsArg(Napi::Env env, Napi::Value v, std::size_t rows, int32_t nOutput) {
  auto ta = typedArrayOf<int32_t>(env, v, "labels", napi_int32_array, "Int32Array");
  if (ta.ElementLength() != rows) throwRange(env, "Expected labels to have one entry per row of x");
  const int32_t* p = ta.Data();
  for (std::size_t i = 0; i < rows; ++i)
    if (p[i] < 0 || p[i] >= nOutput) throwRange(env, "Expected every label in [0, nOutput) but labels[" + std::to_string(i) + "] is " + std::to_string(p[i]));
  return p;
}

// The sample order: every entry a valid row of x.
Napi::TypedArrayOf<int32_t> orderArg(Napi::Env env, Napi::Value v, std::size_t rows) {
  auto ta = typedArrayOf<int32_t>(env, v, "order", napi_int32_array, "Int32Array");
  if (ta.ElementLength() < 1) throwRange(env, "Expected order to have at least one entry");
  const int32_t* p = ta.Data();
  for (std::size_t i = 0; i < ta.ElementLength(); ++i)
    if (p[i] < 0 || static_cast<std::size_t>(p[i]) >= rows) throwRange(env, "Expected every entry of order to be a row index of x");
  return ta;
}

// trainEpoch(net, x, labels, order, params, costs, costOffset, stop?) -> minibatches completed
template <typename T>
Napi::Value trainEpochTyped(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const NetArgs<T> net = netArgs<T>(env, info[0].As<Napi::Object>(), true);
  const InputArgs in = inputArgs(env, info[1], static_cast<std::size_t>(net.sizes.front()));
  const int32_t* labels = labelsArg(env, info[2], in.rows, net.sizes.back());
  auto order = orderArg(env, info[3], in.rows);
  const std::size_t n = order.ElementLength();
  if (!info[4].IsObject()) throwType(env, "params", "an object");
  Napi::Object p = info[4].As<Napi::Object>();
  const mlp::StepParams params{finiteArg(env, p.Get("eta"), "params.eta"), finiteArg(env, p.Get("alpha"), "params.alpha"),
                               finiteArg(env, p.Get("l1"), "params.l1"), finiteArg(env, p.Get("l2"), "params.l2")};
  const std::size_t minibatches = sizeArg(env, p.Get("minibatches"), "params.minibatches", 1, n);
  auto costs = typedArrayOf<double>(env, info[5], "costs", napi_float64_array, "Float64Array");
  const std::size_t costOffset = sizeArg(env, info[6], "costOffset", 0, costs.ElementLength());
  if (costs.ElementLength() - costOffset < minibatches) throwRange(env, "Expected room for one cost per minibatch in costs");
  const int32_t* stop = nullptr;
  if (!info[7].IsUndefined() && !info[7].IsNull()) {
    auto s = typedArrayOf<int32_t>(env, info[7], "stop", napi_int32_array, "Int32Array");
    if (s.ElementLength() < 1) throwRange(env, "Expected stop to have at least one entry");
    stop = s.Data();
  }
  std::size_t done = 0;
  withInput(in, [&](const auto& x) {
    done = mlp::trainEpoch(net.view(), x, labels, order.Data(), n, minibatches, params, costs.Data() + costOffset, stop);
  });
  return Napi::Number::New(env, static_cast<double>(done));
}

// outputLogits(net, x, out)
template <typename T>
Napi::Value outputLogitsTyped(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const NetArgs<T> net = netArgs<T>(env, info[0].As<Napi::Object>(), false);
  const InputArgs in = inputArgs(env, info[1], static_cast<std::size_t>(net.sizes.front()));
  auto out = typedArrayOf<T>(env, info[2], "out", floatType(T()), floatName(T()));
  if (out.ElementLength() != in.rows * static_cast<std::size_t>(net.sizes.back()))
    throwRange(env, "Expected out to have x.rows * nOutput elements");
  withInput(in, [&](const auto& x) { mlp::outputLogits(net.view(), x, out.Data()); });
  return env.Undefined();
}

// costAndGradient(net, x, labels, order, l1, l2, grads) -> cost
template <typename T>
Napi::Value costAndGradientTyped(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const NetArgs<T> net = netArgs<T>(env, info[0].As<Napi::Object>(), false);
  const InputArgs in = inputArgs(env, info[1], static_cast<std::size_t>(net.sizes.front()));
  const int32_t* labels = labelsArg(env, info[2], in.rows, net.sizes.back());
  auto order = orderArg(env, info[3], in.rows);
  const double l1 = finiteArg(env, info[4], "l1");
  const double l2 = finiteArg(env, info[5], "l2");
  const std::vector<T*> grads = matrices<T>(env, info[6], "grads", net.sizes);
  double cost = 0;
  withInput(in, [&](const auto& x) {
    cost = mlp::costAndGradient(net.view(), x, labels, order.Data(), order.ElementLength(), l1, l2, grads.data());
  });
  return Napi::Number::New(env, cost);
}

// Dispatch on the dtype of net.weights[0].
template <Napi::Value (*F64)(const Napi::CallbackInfo&), Napi::Value (*F32)(const Napi::CallbackInfo&)>
Napi::Value byDtype(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    if (!info[0].IsObject()) throwType(env, "net", "an object { sizes, weights, prevDelta }");
    Napi::Value weights = info[0].As<Napi::Object>().Get("weights");
    if (!weights.IsArray() || weights.As<Napi::Array>().Length() < 1) throwType(env, "net.weights", "a non-empty array");
    Napi::Value first = weights.As<Napi::Array>().Get(static_cast<uint32_t>(0));
    if (first.IsTypedArray() && first.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array) return F32(info);
    return F64(info);
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(env, "Out of memory for the network's buffers");
  }
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("trainEpoch", Napi::Function::New(env, byDtype<trainEpochTyped<double>, trainEpochTyped<float>>, "trainEpoch"));
  exports.Set("outputLogits", Napi::Function::New(env, byDtype<outputLogitsTyped<double>, outputLogitsTyped<float>>, "outputLogits"));
  exports.Set("costAndGradient",
              Napi::Function::New(env, byDtype<costAndGradientTyped<double>, costAndGradientTyped<float>>, "costAndGradient"));
  exports.Set("abiVersion", Napi::Number::New(env, 1));
  return exports;
}

}  // namespace

NODE_API_MODULE(neuralnet_mlp, Init)
