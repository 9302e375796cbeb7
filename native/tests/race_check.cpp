// A standalone check of the kernels and the thread pool, without Node: built with
// ThreadSanitizer by scripts/test-sanitizers.mjs (Node itself is not instrumented, so the addon
// cannot run under ThreadSanitizer inside it). It trains and predicts with several threads on
// sparse and dense synthetic data, in float64 and float32, and checks that the weights and
// outputs equal those of one thread bit for bit. ThreadSanitizer reports any data race on the
// way; the exit status is non-zero on a race (halt_on_error) or on differing results.
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "../kernels/cpu.h"
#include "../kernels/mlp.h"

namespace {

template <typename T, typename X>
struct Run {
  std::vector<std::vector<T>> weights, prevDelta;
  std::vector<T> logits;
  std::vector<int32_t> labels;
};

template <typename T, typename X>
Run<T, X> train(const std::vector<int32_t>& sizes, const std::vector<X>& data, std::size_t rows, std::size_t cols,
                const std::vector<int32_t>& labels, unsigned threads, mlp::Isa isa, double shift = 0) {
  Run<T, X> run;
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> uniform(-0.1, 0.1);
  for (std::size_t l = 0; l + 1 < sizes.size(); ++l) {
    const std::size_t n = static_cast<std::size_t>(sizes[l + 1]) * (static_cast<std::size_t>(sizes[l]) + 1);
    run.weights.emplace_back(n);
    for (auto& w : run.weights.back()) w = static_cast<T>(uniform(rng));
    run.prevDelta.emplace_back(n, T(0));
  }
  std::vector<T*> w, p;
  for (std::size_t l = 0; l < run.weights.size(); ++l) {
    w.push_back(run.weights[l].data());
    p.push_back(run.prevDelta[l].data());
  }
  const mlp::Input<X> input{data.data(), rows, cols};
  mlp::Trainer<T, X> trainer(sizes, input, labels.data(), threads, isa, true);
  trainer.startForwardShift(shift);
  if (shift != 0) trainer.startUpdateBoundary(shift > 0 ? 0.5 : 1e9);
  std::vector<int32_t> order(rows);
  for (std::size_t i = 0; i < rows; ++i) order[i] = static_cast<int32_t>((i * 7919) % rows);
  const mlp::StepParams params{0.001, 0.001, 0.01, 0.1};
  const std::size_t minibatches = 4;
  std::vector<double> costs(minibatches);
  const int32_t stop = 0;
  for (int epoch = 0; epoch < 2; ++epoch)
    trainer.epoch(w.data(), p.data(), order.data(), rows, minibatches, params, costs.data(), &stop);

  // Prediction as the addon's Predictor does it: weights packed once, then inputs.
  mlp::Trainer<T, X> predictor(sizes, input, nullptr, threads, isa, false);
  predictor.pack(w.data());
  predictor.setInput(input);
  run.logits.resize(rows * static_cast<std::size_t>(sizes.back()));
  run.labels.resize(rows);
  predictor.outputLogitsPacked(w.data(), run.logits.data(), run.labels.data());
  return run;
}

template <typename T, typename X>
bool same(const Run<T, X>& a, const Run<T, X>& b) {
  for (std::size_t l = 0; l < a.weights.size(); ++l)
    if (std::memcmp(a.weights[l].data(), b.weights[l].data(), a.weights[l].size() * sizeof(T)) != 0) return false;
  return std::memcmp(a.logits.data(), b.logits.data(), a.logits.size() * sizeof(T)) == 0 && a.labels == b.labels;
}

template <typename T, typename X>
int check(const char* name, double density, mlp::Isa isa) {
  // Enough rows and features that every pass is split into several tasks.
  const std::size_t rows = 2400, cols = 300;
  const std::vector<int32_t> sizes = {static_cast<int32_t>(cols), 40, 30, 10};
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::vector<X> data(rows * cols);
  for (auto& x : data) x = uniform(rng) < density ? static_cast<X>(1 + static_cast<int>(uniform(rng) * 254)) : X(0);
  std::vector<int32_t> labels(rows);
  for (std::size_t i = 0; i < rows; ++i) labels[i] = static_cast<int32_t>(i % 10);
  const Run<T, X> one = train<T, X>(sizes, data, rows, cols, labels, 1, isa);
  int failures = 0;
  for (unsigned threads : {2u, 3u}) {
    const bool ok = same(one, train<T, X>(sizes, data, rows, cols, labels, threads, isa));
    std::printf("%s, %s, %u threads: %s\n", name, mlp::isaName(isa), threads, ok ? "same bits as 1 thread" : "DIFFERENT");
    failures += !ok;
  }
  // Two threads whose forward passes start shifted as far as they go, either way, and whose
  // update's split starts at either end (a sparse input's; elsewhere both are unused).
  for (double shift : {1e9, -1e9}) {
    const bool ok = same(one, train<T, X>(sizes, data, rows, cols, labels, 2, isa, shift));
    std::printf("%s, %s, 2 threads, forward shift and update split %s: %s\n", name, mlp::isaName(isa),
                shift > 0 ? "+max" : "-max", ok ? "same bits as 1 thread" : "DIFFERENT");
    failures += !ok;
  }
  return failures;
}

}  // namespace

int main() {
  int failures = 0;
  for (mlp::Isa isa : {mlp::Isa::Generic, mlp::activeIsa()}) {
    failures += check<double, uint8_t>("float64, sparse bytes", 0.2, isa);
    failures += check<float, uint8_t>("float32, sparse bytes", 0.2, isa);
    failures += check<double, double>("float64, dense doubles", 0.9, isa);
    failures += check<float, float>("float32, dense floats", 0.9, isa);
    if (isa == mlp::Isa::Generic && mlp::activeIsa() == mlp::Isa::Generic) break;
  }
  std::printf(failures ? "race check: %d run(s) differed\n" : "race check: all runs matched\n", failures);
  return failures ? 1 : 0;
}
