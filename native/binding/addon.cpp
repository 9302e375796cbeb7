// N-API glue: checks every argument (types, lengths, index ranges) so that no call from
// JavaScript can make the kernels read or write out of bounds, then dispatches on the weight
// dtype (float64/float32) and the input element type (float64/float32/uint8).
#include <napi.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "../kernels/cpu.h"
#include "../kernels/mlp.h"
#include "../kernels/shuffle.h"
#include "../kernels/simd.h"

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

// The first element of any typed array, whether its buffer is an ArrayBuffer or a
// SharedArrayBuffer (node-addon-api's ArrayBuffer() accepts only the former).
const void* typedArrayData(Napi::Env env, Napi::TypedArray array) {
  void* data = nullptr;
  if (napi_get_typedarray_info(env, array, nullptr, nullptr, &data, nullptr, nullptr) != napi_ok)
    throw Napi::Error::New(env, "Could not read a typed array's data");
  return data;
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
  return InputArgs{type, typedArrayData(env, data), rows, cols};
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


// Everything a run needs besides the network's arrays, type-erased over (weight dtype, input type).
class AnyTrainer {
 public:
  virtual ~AnyTrainer() = default;
  virtual std::size_t epoch(void* const* weights, void* const* prevDelta, const int32_t* order, std::size_t n,
                            std::size_t minibatches, const mlp::StepParams& params, double* costs,
                            const int32_t* stop) = 0;
  virtual double costAndGradient(void* const* weights, const int32_t* order, std::size_t n, double l1, double l2,
                                 void* const* grads) = 0;
  virtual void outputLogits(void* const* weights, void* out) = 0;
  virtual bool sparse() = 0;
  virtual void pack(void* const* weights) = 0;
  // out: rows x nOutput logits, or nullptr; labels: each row's argmax, or nullptr.
  virtual void predictPacked(const InputArgs& in, void* const* weights, void* out, int32_t* labels) = 0;
};

template <typename T, typename X>
class TrainerOf final : public AnyTrainer {
 public:
  TrainerOf(std::vector<int32_t> sizes, const InputArgs& in, const int32_t* labels, unsigned threads, bool compress)
      : impl_(std::move(sizes), mlp::Input<X>{static_cast<const X*>(in.data), in.rows, in.cols}, labels, threads,
              mlp::activeIsa(), compress) {}
  std::size_t epoch(void* const* weights, void* const* prevDelta, const int32_t* order, std::size_t n,
                    std::size_t minibatches, const mlp::StepParams& params, double* costs,
                    const int32_t* stop) override {
    return impl_.epoch(reinterpret_cast<T* const*>(weights), reinterpret_cast<T* const*>(prevDelta), order, n,
                       minibatches, params, costs, stop);
  }
  double costAndGradient(void* const* weights, const int32_t* order, std::size_t n, double l1, double l2,
                         void* const* grads) override {
    return impl_.costAndGradient(reinterpret_cast<T* const*>(weights), order, n, l1, l2,
                                 reinterpret_cast<T* const*>(grads));
  }
  void outputLogits(void* const* weights, void* out) override {
    impl_.outputLogits(reinterpret_cast<T* const*>(weights), static_cast<T*>(out));
  }
  bool sparse() override { return impl_.sparse(); }
  void pack(void* const* weights) override { impl_.pack(reinterpret_cast<T* const*>(weights)); }
  void predictPacked(const InputArgs& in, void* const* weights, void* out, int32_t* labels) override {
    impl_.setInput(mlp::Input<X>{static_cast<const X*>(in.data), in.rows, in.cols});
    impl_.outputLogitsPacked(reinterpret_cast<T* const*>(weights), static_cast<T*>(out), labels);
  }

 private:
  mlp::Trainer<T, X> impl_;
};

template <typename T>
std::unique_ptr<AnyTrainer> makeTrainer(std::vector<int32_t> sizes, const InputArgs& in, const int32_t* labels,
                                        unsigned threads, bool compress) {
  switch (in.type) {
    case napi_float64_array:
      return std::make_unique<TrainerOf<T, double>>(std::move(sizes), in, labels, threads, compress);
    case napi_float32_array:
      return std::make_unique<TrainerOf<T, float>>(std::move(sizes), in, labels, threads, compress);
    default:
      return std::make_unique<TrainerOf<T, uint8_t>>(std::move(sizes), in, labels, threads, compress);
  }
}

template <typename T>
std::vector<void*> erase(const std::vector<T*>& v) {
  return std::vector<void*>(v.begin(), v.end());
}

bool isFloat32Net(Napi::Env env, Napi::Value net) {
  if (!net.IsObject()) throwType(env, "net", "an object { sizes, weights, prevDelta }");
  Napi::Value weights = net.As<Napi::Object>().Get("weights");
  if (!weights.IsArray() || weights.As<Napi::Array>().Length() < 1) throwType(env, "net.weights", "a non-empty array");
  Napi::Value first = weights.As<Napi::Array>().Get(static_cast<uint32_t>(0));
  return first.IsTypedArray() && first.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array;
}

unsigned threadsArg(Napi::Env env, Napi::Value v) { return static_cast<unsigned>(sizeArg(env, v, "threads", 1, 1024)); }

// A training run over one data set: new Trainer(net, x, labels, threads). It compresses the input
// once and keeps its buffers and threads across epochs. It holds references to x.data and labels,
// and checks before every epoch that they are still the arrays it was built on.
class TrainerWrap : public Napi::ObjectWrap<TrainerWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Trainer",
                       {InstanceMethod<&TrainerWrap::Epoch>("epoch"), InstanceMethod<&TrainerWrap::EpochAsync>("epochAsync"),
                        InstanceMethod<&TrainerWrap::Dispose>("dispose"), InstanceAccessor<&TrainerWrap::Sparse>("sparse")});
  }

  explicit TrainerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TrainerWrap>(info) {
    Napi::Env env = info.Env();
    try {
      float32_ = isFloat32Net(env, info[0]);
      std::vector<int32_t> sizes = sizesArg(env, info[0].As<Napi::Object>().Get("sizes"));
      const InputArgs in = inputArgs(env, info[1], static_cast<std::size_t>(sizes.front()));
      const int32_t* labels = labelsArg(env, info[2], in.rows, sizes.back());
      const unsigned threads = threadsArg(env, info[3]);
      sizes_ = sizes;
      rows_ = in.rows;
      data_ = in.data;
      labels_ = labels;
      dataRef_ = Napi::Persistent(info[1].As<Napi::Object>().Get("data").As<Napi::Object>());
      labelsRef_ = Napi::Persistent(info[2].As<Napi::Object>());
      impl_ = float32_ ? makeTrainer<float>(sizes, in, labels, threads, true)
                       : makeTrainer<double>(sizes, in, labels, threads, true);
    } catch (const std::bad_alloc&) {
      throw Napi::RangeError::New(env, "Out of memory while preparing the training data");
    }
  }

 private:
  // The checked arguments of one epoch, and references that keep their arrays alive while an
  // asynchronous epoch runs on a worker thread.
  struct EpochCall {
    std::vector<void*> weights, prevDelta;
    const int32_t* order = nullptr;
    std::size_t n = 0;
    std::size_t minibatches = 0;
    mlp::StepParams params{};
    double* costs = nullptr;
    const int32_t* stop = nullptr;
    std::vector<int32_t> orderCopy;
    std::vector<Napi::ObjectReference> keepAlive;
  };

  EpochCall parseEpoch(const Napi::CallbackInfo& info, bool keepAlive) {
    Napi::Env env = info.Env();
    checkNotDisposed(env);
    if (*running_) throw Napi::Error::New(env, "This trainer is already running an epoch");
    checkInputsUnchanged(env);
    if (isFloat32Net(env, info[0]) != float32_) throwType(env, "net.weights", float32_ ? "Float32Arrays" : "Float64Arrays");
    Napi::Object netObj = info[0].As<Napi::Object>();
    if (sizesArg(env, netObj.Get("sizes")) != sizes_) throwRange(env, "Expected net.sizes to match the trainer's network");
    EpochCall call;
    if (float32_) {
      call.weights = erase(matrices<float>(env, netObj.Get("weights"), "net.weights", sizes_));
      call.prevDelta = erase(matrices<float>(env, netObj.Get("prevDelta"), "net.prevDelta", sizes_));
    } else {
      call.weights = erase(matrices<double>(env, netObj.Get("weights"), "net.weights", sizes_));
      call.prevDelta = erase(matrices<double>(env, netObj.Get("prevDelta"), "net.prevDelta", sizes_));
    }
    auto order = orderArg(env, info[1], rows_);
    call.n = order.ElementLength();
    if (keepAlive) {
      // A worker thread reads the order while JavaScript runs on: take a checked copy, so later
      // writes to the caller's array cannot lead it out of bounds.
      call.orderCopy.assign(order.Data(), order.Data() + call.n);
      call.order = call.orderCopy.data();
    } else {
      call.order = order.Data();
    }
    if (!info[2].IsObject()) throwType(env, "params", "an object");
    Napi::Object p = info[2].As<Napi::Object>();
    call.params = mlp::StepParams{finiteArg(env, p.Get("eta"), "params.eta"), finiteArg(env, p.Get("alpha"), "params.alpha"),
                                  finiteArg(env, p.Get("l1"), "params.l1"), finiteArg(env, p.Get("l2"), "params.l2")};
    call.minibatches = sizeArg(env, p.Get("minibatches"), "params.minibatches", 1, call.n);
    auto costs = typedArrayOf<double>(env, info[3], "costs", napi_float64_array, "Float64Array");
    const std::size_t costOffset = sizeArg(env, info[4], "costOffset", 0, costs.ElementLength());
    if (costs.ElementLength() - costOffset < call.minibatches) throwRange(env, "Expected room for one cost per minibatch in costs");
    call.costs = costs.Data() + costOffset;
    if (!info[5].IsUndefined() && !info[5].IsNull()) {
      auto s = typedArrayOf<int32_t>(env, info[5], "stop", napi_int32_array, "Int32Array");
      if (s.ElementLength() < 1) throwRange(env, "Expected stop to have at least one entry");
      call.stop = s.Data();
      if (keepAlive) call.keepAlive.push_back(Napi::Persistent(info[5].As<Napi::Object>()));
    }
    if (keepAlive) {
      // Every array the worker thread writes stays referenced until it finishes, even if the
      // caller replaces it in the network object meanwhile.
      for (const char* key : {"weights", "prevDelta"}) {
        Napi::Array arr = netObj.Get(key).As<Napi::Array>();
        for (uint32_t l = 0; l < arr.Length(); ++l) call.keepAlive.push_back(Napi::Persistent(arr.Get(l).As<Napi::Object>()));
      }
      call.keepAlive.push_back(Napi::Persistent(info[3].As<Napi::Object>()));
      call.keepAlive.push_back(Napi::Persistent(Value()));
      // The training data too: dispose() drops the trainer's own references.
      call.keepAlive.push_back(Napi::Persistent(dataRef_.Value()));
      call.keepAlive.push_back(Napi::Persistent(labelsRef_.Value()));
    }
    return call;
  }

  // epoch(net, order, params, costs, costOffset, stop?) -> minibatches completed
  Napi::Value Epoch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    EpochCall call = parseEpoch(info, false);
    std::size_t done = 0;
    try {
      done = impl_->epoch(call.weights.data(), call.prevDelta.data(), call.order, call.n, call.minibatches,
                          call.params, call.costs, call.stop);
    } catch (const std::bad_alloc&) {
      throw Napi::RangeError::New(env, "Out of memory for the minibatch buffers");
    }
    return Napi::Number::New(env, static_cast<double>(done));
  }

  // The same on a worker thread: epochAsync(...) -> Promise<minibatches completed>. Until it
  // settles, the caller must not touch the network's arrays (the model guarantees that).
  class EpochWorker final : public Napi::AsyncWorker {
   public:
    EpochWorker(Napi::Env env, std::shared_ptr<AnyTrainer> trainer, std::shared_ptr<std::atomic<bool>> running,
                EpochCall call)
        : Napi::AsyncWorker(env, "neuralnet-mlp:epoch"), trainer_(std::move(trainer)), running_(std::move(running)),
          call_(std::move(call)), deferred_(Napi::Promise::Deferred::New(env)) {}
    Napi::Promise promise() const { return deferred_.Promise(); }

    void Execute() override {
      try {
        done_ = trainer_->epoch(call_.weights.data(), call_.prevDelta.data(), call_.order, call_.n,
                                     call_.minibatches, call_.params, call_.costs, call_.stop);
      } catch (const std::bad_alloc&) {
        SetError("Out of memory for the minibatch buffers");
      } catch (const std::exception& e) {
        SetError(e.what());
      }
    }
    // When the environment is shutting down (a worker thread terminated mid-epoch) settling the
    // promise can fail; there is no one left to tell, so that failure is dropped.
    void OnOK() override {
      *running_ = false;
      try {
        deferred_.Resolve(Napi::Number::New(Env(), static_cast<double>(done_)));
      } catch (const Napi::Error&) {
      }
    }
    void OnError(const Napi::Error& error) override {
      *running_ = false;
      try {
        deferred_.Reject(error.Value());
      } catch (const Napi::Error&) {
      }
    }

   private:
    // Shared with the wrapper, so the trainer outlives it if the environment finalizes the wrapper
    // while this epoch is still running.
    std::shared_ptr<AnyTrainer> trainer_;
    std::shared_ptr<std::atomic<bool>> running_;
    EpochCall call_;
    Napi::Promise::Deferred deferred_;
    std::size_t done_ = 0;
  };

  Napi::Value EpochAsync(const Napi::CallbackInfo& info) {
    EpochCall call = parseEpoch(info, true);
    auto* worker = new EpochWorker(info.Env(), impl_, running_, std::move(call));  // napi owns it once queued
    *running_ = true;
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
  }

  Napi::Value Sparse(const Napi::CallbackInfo& info) {
    checkNotDisposed(info.Env());
    return Napi::Boolean::New(info.Env(), impl_->sparse());
  }

  // dispose(): releases the compressed data, buffers and threads now rather than at garbage
  // collection. A running asynchronous epoch keeps its own reference and finishes first.
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    impl_.reset();
    dataRef_.Reset();
    labelsRef_.Reset();
    return info.Env().Undefined();
  }

  void checkNotDisposed(Napi::Env env) const {
    if (!impl_) throw Napi::Error::New(env, "This trainer was disposed");
  }

  void checkInputsUnchanged(Napi::Env env) {
    Napi::TypedArray data = dataRef_.Value().As<Napi::TypedArray>();
    Napi::TypedArray labels = labelsRef_.Value().As<Napi::TypedArray>();
    const void* ptr = typedArrayData(env, data);
    if (ptr != data_ || data.ElementLength() != rows_ * static_cast<std::size_t>(sizes_.front()) ||
        labels.ElementLength() != rows_ || labels.As<Napi::TypedArrayOf<int32_t>>().Data() != labels_)
      throw Napi::Error::New(env, "The training data was detached or resized while the trainer was using it");
  }

  bool float32_ = false;
  std::shared_ptr<std::atomic<bool>> running_ = std::make_shared<std::atomic<bool>>(false);
  std::vector<int32_t> sizes_;
  std::size_t rows_ = 0;
  const void* data_ = nullptr;
  const int32_t* labels_ = nullptr;
  Napi::ObjectReference dataRef_, labelsRef_;
  std::shared_ptr<AnyTrainer> impl_;
};

// A model's weights copied and packed once for many synchronous predictions:
// new Predictor(net, threads); predictor.logits(x, out) or predictor.labels(x, out). Later changes to the network's arrays do
// not reach it (the model makes a new one when its weights change).
class PredictorWrap : public Napi::ObjectWrap<PredictorWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Predictor", {InstanceMethod<&PredictorWrap::Logits>("logits"),
                                               InstanceMethod<&PredictorWrap::Labels>("labels")});
  }

  explicit PredictorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PredictorWrap>(info) {
    Napi::Env env = info.Env();
    float32_ = isFloat32Net(env, info[0]);
    Napi::Object netObj = info[0].As<Napi::Object>();
    sizes_ = sizesArg(env, netObj.Get("sizes"));
    threads_ = threadsArg(env, info[1]);
    try {
      if (float32_) copyWeights(matrices<float>(env, netObj.Get("weights"), "net.weights", sizes_));
      else copyWeights(matrices<double>(env, netObj.Get("weights"), "net.weights", sizes_));
    } catch (const std::bad_alloc&) {
      throw Napi::RangeError::New(env, "Out of memory for the model's weights");
    }
  }

 private:
  template <typename T>
  void copyWeights(const std::vector<T*>& weights) {
    for (std::size_t l = 0; l < weights.size(); ++l) {
      const std::size_t n = static_cast<std::size_t>(sizes_[l + 1]) * (static_cast<std::size_t>(sizes_[l]) + 1);
      const auto* src = reinterpret_cast<const uint8_t*>(weights[l]);
      owned_.emplace_back(src, src + n * sizeof(T));
      pointers_.push_back(owned_.back().data());
    }
  }

  // logits(x, out)
  Napi::Value Logits(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const InputArgs in = inputArgs(env, info[0], static_cast<std::size_t>(sizes_.front()));
    const std::size_t outLen = in.rows * static_cast<std::size_t>(sizes_.back());
    void* out;
    if (float32_) {
      auto o = typedArrayOf<float>(env, info[1], "out", napi_float32_array, "Float32Array");
      if (o.ElementLength() != outLen) throwRange(env, "Expected out to have x.rows * nOutput elements");
      out = o.Data();
    } else {
      auto o = typedArrayOf<double>(env, info[1], "out", napi_float64_array, "Float64Array");
      if (o.ElementLength() != outLen) throwRange(env, "Expected out to have x.rows * nOutput elements");
      out = o.Data();
    }
    predict(env, in, out, nullptr);
    return env.Undefined();
  }

  // labels(x, out): each row's argmax into the Int32Array out (x.rows elements).
  Napi::Value Labels(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const InputArgs in = inputArgs(env, info[0], static_cast<std::size_t>(sizes_.front()));
    auto o = typedArrayOf<int32_t>(env, info[1], "out", napi_int32_array, "Int32Array");
    if (o.ElementLength() != in.rows) throwRange(env, "Expected out to have x.rows elements");
    predict(env, in, nullptr, o.Data());
    return env.Undefined();
  }

  void predict(Napi::Env env, const InputArgs& in, void* out, int32_t* labels) {
    const int slot = in.type == napi_float64_array ? 0 : in.type == napi_float32_array ? 1 : 2;
    try {
      if (!trainers_[slot]) {
        // One trainer per input type, built on the first input of that type, weights packed once.
        trainers_[slot] = float32_ ? makeTrainer<float>(sizes_, in, nullptr, threads_, false)
                                   : makeTrainer<double>(sizes_, in, nullptr, threads_, false);
        trainers_[slot]->pack(pointers_.data());
      }
      trainers_[slot]->predictPacked(in, pointers_.data(), out, labels);
    } catch (const std::bad_alloc&) {
      throw Napi::RangeError::New(env, "Out of memory for the prediction buffers");
    }
  }

  bool float32_ = false;
  unsigned threads_ = 1;
  std::vector<int32_t> sizes_;
  std::vector<std::vector<uint8_t>> owned_;  // the weights, as bytes of T (vectors keep them aligned for T)
  std::vector<void*> pointers_;
  std::unique_ptr<AnyTrainer> trainers_[3];
};

// The checked arguments of outputLogits(net, x, out, threads), and what a trainer for them needs.
struct LogitsCall {
  std::vector<void*> weights;
  void* out = nullptr;
  bool f32 = false;
  std::vector<int32_t> sizes;
  InputArgs in{};
  unsigned threads = 1;
};

LogitsCall parseLogits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LogitsCall call;
  call.f32 = isFloat32Net(env, info[0]);
  Napi::Object netObj = info[0].As<Napi::Object>();
  call.sizes = sizesArg(env, netObj.Get("sizes"));
  call.in = inputArgs(env, info[1], static_cast<std::size_t>(call.sizes.front()));
  const std::size_t outLen = call.in.rows * static_cast<std::size_t>(call.sizes.back());
  const unsigned threads = threadsArg(env, info[3]);
  // A single thread for small batches: starting threads would cost more than it saves.
  call.threads = call.in.rows >= 512 ? threads : 1;
  if (call.f32) {
    call.weights = erase(matrices<float>(env, netObj.Get("weights"), "net.weights", call.sizes));
    auto o = typedArrayOf<float>(env, info[2], "out", napi_float32_array, "Float32Array");
    if (o.ElementLength() != outLen) throwRange(env, "Expected out to have x.rows * nOutput elements");
    call.out = o.Data();
  } else {
    call.weights = erase(matrices<double>(env, netObj.Get("weights"), "net.weights", call.sizes));
    auto o = typedArrayOf<double>(env, info[2], "out", napi_float64_array, "Float64Array");
    if (o.ElementLength() != outLen) throwRange(env, "Expected out to have x.rows * nOutput elements");
    call.out = o.Data();
  }
  return call;
}

// Builds a trainer for the call (with its thread pool) and computes the logits into call.out.
void runLogits(const LogitsCall& call) {
  std::unique_ptr<AnyTrainer> trainer = call.f32 ? makeTrainer<float>(call.sizes, call.in, nullptr, call.threads, false)
                                                 : makeTrainer<double>(call.sizes, call.in, nullptr, call.threads, false);
  trainer->outputLogits(call.weights.data(), call.out);
}

// outputLogits(net, x, out, threads)
Napi::Value OutputLogits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    runLogits(parseLogits(info));
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(env, "Out of memory for the prediction buffers");
  }
  return env.Undefined();
}

// outputLogitsAsync(net, x, out, threads) -> Promise<undefined>: outputLogits on a worker thread.
// The caller hands over arrays nothing else touches until the promise settles (the model passes a
// copy of the weights); references keep them alive meanwhile. The trainer and its thread pool are
// built on the worker thread and released there when it is done, so however many calls are
// pending, only those running (at most the libuv thread pool's size) hold threads and buffers.
class LogitsWorker final : public Napi::AsyncWorker {
 public:
  LogitsWorker(Napi::Env env, LogitsCall call, std::vector<Napi::ObjectReference> keepAlive)
      : Napi::AsyncWorker(env, "neuralnet-mlp:predict"), call_(std::move(call)), keepAlive_(std::move(keepAlive)),
        deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() const { return deferred_.Promise(); }
  void Execute() override {
    try {
      runLogits(call_);
    } catch (const std::bad_alloc&) {
      SetError("Out of memory for the prediction buffers");
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    try {
      deferred_.Resolve(Env().Undefined());
    } catch (const Napi::Error&) {  // the environment is shutting down
    }
  }
  void OnError(const Napi::Error& error) override {
    try {
      deferred_.Reject(error.Value());
    } catch (const Napi::Error&) {  // the environment is shutting down
    }
  }

 private:
  LogitsCall call_;
  std::vector<Napi::ObjectReference> keepAlive_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value OutputLogitsAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    LogitsCall call = parseLogits(info);
    // The arrays themselves stay referenced (not just their containers, which callers may change).
    std::vector<Napi::ObjectReference> keepAlive;
    Napi::Array weightArrays = info[0].As<Napi::Object>().Get("weights").As<Napi::Array>();
    for (uint32_t l = 0; l < weightArrays.Length(); ++l) keepAlive.push_back(Napi::Persistent(weightArrays.Get(l).As<Napi::Object>()));
    keepAlive.push_back(Napi::Persistent(info[1].As<Napi::Object>().Get("data").As<Napi::Object>()));
    keepAlive.push_back(Napi::Persistent(info[2].As<Napi::Object>()));
    auto* worker = new LogitsWorker(env, std::move(call), std::move(keepAlive));
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(env, "Out of memory for the prediction buffers");
  }
}

// costAndGradient(net, x, labels, order, l1, l2, grads) -> cost
Napi::Value CostAndGradient(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    const bool f32 = isFloat32Net(env, info[0]);
    Napi::Object netObj = info[0].As<Napi::Object>();
    std::vector<int32_t> sizes = sizesArg(env, netObj.Get("sizes"));
    const InputArgs in = inputArgs(env, info[1], static_cast<std::size_t>(sizes.front()));
    const int32_t* labels = labelsArg(env, info[2], in.rows, sizes.back());
    auto order = orderArg(env, info[3], in.rows);
    const double l1 = finiteArg(env, info[4], "l1");
    const double l2 = finiteArg(env, info[5], "l2");
    double cost;
    if (f32) {
      auto weights = erase(matrices<float>(env, netObj.Get("weights"), "net.weights", sizes));
      auto grads = erase(matrices<float>(env, info[6], "grads", sizes));
      cost = makeTrainer<float>(sizes, in, labels, 1, false)
                 ->costAndGradient(weights.data(), order.Data(), order.ElementLength(), l1, l2, grads.data());
    } else {
      auto weights = erase(matrices<double>(env, netObj.Get("weights"), "net.weights", sizes));
      auto grads = erase(matrices<double>(env, info[6], "grads", sizes));
      cost = makeTrainer<double>(sizes, in, labels, 1, false)
                 ->costAndGradient(weights.data(), order.Data(), order.ElementLength(), l1, l2, grads.data());
    }
    return Napi::Number::New(env, cost);
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(env, "Out of memory for the gradient buffers");
  }
}

// firstNonFinite(data, maxMagnitude?): the index of the first NaN or +-Infinity in a
// Float64Array or Float32Array, or of magnitude above maxMagnitude when it is given (a finite
// number >= 0); -1 when there is none (the model's validation of float input, vectorised).
Napi::Value FirstNonFinite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::TypedArray ta = typedArray(env, info[0], "data");
  const bool bounded = info.Length() > 1 && !info[1].IsUndefined();
  const double limit = bounded ? finiteArg(env, info[1], "maxMagnitude") : HUGE_VAL;
  if (limit < 0) throwRange(env, "Expected a number >= 0 for maxMagnitude");
  const std::size_t n = ta.ElementLength();
  std::size_t first;
  if (ta.TypedArrayType() == napi_float64_array) {
    first = mlp::firstBeyond(mlp::activeIsa(), ta.As<Napi::Float64Array>().Data(), n,
                             std::min(limit, std::numeric_limits<double>::max()));
  } else if (ta.TypedArrayType() == napi_float32_array) {
    // The bound in float: never above float's largest finite value (which would let infinity by),
    // and rounded down, so that no float above the double bound passes.
    const double fmax = std::numeric_limits<float>::max();
    float bound = static_cast<float>(std::min(limit, fmax));
    if (static_cast<double>(bound) > limit) bound = std::nextafter(bound, 0.0f);
    first = mlp::firstBeyond(mlp::activeIsa(), ta.As<Napi::Float32Array>().Data(), n, bound);
  } else {
    throwType(env, "data", "a Float64Array or Float32Array");
  }
  return Napi::Number::New(env, first == n ? -1.0 : static_cast<double>(first));
}

// memcpy of a large input, split over a few short-lived threads. Why: this copy runs on the
// JavaScript thread (fit() takes its snapshot of the caller's data before it returns), and the
// first write to fresh pages dominates it: on a virtual machine here one thread took 45 ms for
// MNIST's 47 MB of pixels in fresh memory, two threads 6-17 ms. A thread that cannot start leaves
// its part to the caller's thread.
void parallelCopy(void* dest, const void* source, std::size_t bytes) {
  constexpr std::size_t kMinPart = std::size_t{8} << 20;
  constexpr unsigned kMaxThreads = 4;
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const std::size_t parts = std::min<std::size_t>({bytes / kMinPart, cores, kMaxThreads});
  if (parts < 2) {
    std::memcpy(dest, source, bytes);
    return;
  }
  auto* d = static_cast<unsigned char*>(dest);
  const auto* s = static_cast<const unsigned char*>(source);
  const std::size_t per = (bytes + parts - 1) / parts;
  std::vector<std::thread> helpers;
  try {
    helpers.reserve(parts);
  } catch (const std::bad_alloc&) {
    std::memcpy(dest, source, bytes);
    return;
  }
  std::size_t mine = bytes;  // where the caller's own part (the last) starts
  for (std::size_t p = 0; p + 1 < parts; ++p) {
    const std::size_t begin = p * per, end = std::min(bytes, begin + per);
    try {
      helpers.emplace_back([=] { std::memcpy(d + begin, s + begin, end - begin); });
    } catch (const std::system_error&) {
      mine = begin;
      break;
    }
    mine = end;
  }
  std::memcpy(d + mine, s + mine, bytes - mine);
  for (std::thread& t : helpers) t.join();
}

// copyInput(data): an ArrayBuffer holding a copy of `data` (a Uint8Array, Float32Array or
// Float64Array) in memory of the addon's own: what an asynchronous fit or prediction reads while
// the caller's code runs on (the caller's buffer could be detached or shrunk meanwhile). Large
// copies go to huge pages where Linux grants them: a fresh 47 MB copy in 4 KB pages costs the
// main thread some 40 ms of page faults, in 2 MB pages a few. Where the runtime refuses external
// buffers, the copy is an ordinary ArrayBuffer.
Napi::Value CopyInput(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::TypedArray ta = typedArray(env, info[0], "data");
  const napi_typedarray_type type = ta.TypedArrayType();
  if (type != napi_uint8_array && type != napi_float32_array && type != napi_float64_array)
    throwType(env, "data", "a Uint8Array, Float32Array or Float64Array");
  const std::size_t bytes = ta.ByteLength();
  const void* source = typedArrayData(env, ta);
  if (bytes == 0) return Napi::ArrayBuffer::New(env, 0);
  void* copy = nullptr;
  try {
    copy = mlp::allocateLarge(bytes);
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(env, "Out of memory for a copy of the input");
  }
  parallelCopy(copy, source, bytes);
  napi_value result;
  const napi_status status = napi_create_external_arraybuffer(
      env, copy, bytes, [](napi_env, void* data, void* hint) { mlp::freeLarge(data, reinterpret_cast<std::size_t>(hint)); },
      reinterpret_cast<void*>(bytes), &result);
  if (status == napi_ok) return Napi::Value(env, result);
  // Not an exception pending from the call above: clear any, then copy the plain way.
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
  }
  Napi::ArrayBuffer plain = Napi::ArrayBuffer::New(env, bytes);
  std::memcpy(plain.Data(), copy, bytes);
  mlp::freeLarge(copy, bytes);
  return plain;
}

// shuffleOrder(state, order): RandomState.shuffle(order) with the generator state `state` (a
// Uint32Array of 625: RandomState.getState()), which it advances in place.
Napi::Value ShuffleOrder(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto state = typedArrayOf<uint32_t>(env, info[0], "state", napi_uint32_array, "Uint32Array");
  if (state.ElementLength() != mlp::kMtWords + 1)
    throwRange(env, "Expected state to have " + std::to_string(mlp::kMtWords + 1) + " entries, got " +
                        std::to_string(state.ElementLength()));
  if (state.Data()[mlp::kMtWords] > mlp::kMtWords)
    throwRange(env, "Expected the position state[" + std::to_string(mlp::kMtWords) + "] to be at most " +
                        std::to_string(mlp::kMtWords) + ", got " + std::to_string(state.Data()[mlp::kMtWords]));
  auto order = typedArrayOf<int32_t>(env, info[1], "order", napi_int32_array, "Int32Array");
  const std::size_t n = order.ElementLength();
  if (n > static_cast<std::size_t>(std::numeric_limits<int32_t>::max()))
    throwRange(env, "Expected order to have at most 2^31 - 1 entries, got " + std::to_string(n));
  // The two arrays may share memory; the loops stay within each one's bounds either way.
  mlp::shuffleOrder(state.Data(), order.Data(), n);
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Trainer", TrainerWrap::Define(env));
  exports.Set("Predictor", PredictorWrap::Define(env));
  exports.Set("outputLogits", Napi::Function::New<OutputLogits>(env, "outputLogits"));
  exports.Set("outputLogitsAsync", Napi::Function::New<OutputLogitsAsync>(env, "outputLogitsAsync"));
  exports.Set("costAndGradient", Napi::Function::New<CostAndGradient>(env, "costAndGradient"));
  exports.Set("firstNonFinite", Napi::Function::New<FirstNonFinite>(env, "firstNonFinite"));
  exports.Set("shuffleOrder", Napi::Function::New<ShuffleOrder>(env, "shuffleOrder"));
  exports.Set("copyInput", Napi::Function::New<CopyInput>(env, "copyInput"));
  exports.Set("isa", Napi::String::New(env, mlp::isaName(mlp::activeIsa())));
  exports.Set("bestIsa", Napi::String::New(env, mlp::isaName(mlp::detectedIsa())));
  // Bumped whenever the exports change, so a stale build is reported as such, not half-used.
  exports.Set("abiVersion", Napi::Number::New(env, 7));
  return exports;
}

}  // namespace

NODE_API_MODULE(neuralnet_mlp, Init)
