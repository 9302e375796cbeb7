// The network's kernels in plain C++ (no N-API): forward pass, cost, backpropagation and the
// momentum update for whole minibatches, and pre-activations for prediction. The binding layer
// validates and converts arguments, then calls these with raw pointers and sizes.
//
// Shapes (m = samples in the minibatch, L layers, n_l = sizes[l]):
//   weights[l]  n_{l+1} x (n_l + 1), row-major, bias in column 0 (the seed's layout)
//   acts[l]     m x n_l   activations of layer l, l = 1..L (layer 0 is read from the data set)
//   logits      m x n_L   the output layer's pre-activations
//   deltas[l]   m x n_l   error terms (the seed's sigma)
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "gemm.h"

namespace mlp {

template <typename T>
struct Net {
  std::size_t layers;      // L
  const int32_t* sizes;    // L + 1 entries
  T* const* weights;       // L matrices
  T* const* prevDelta;     // L matrices (momentum)
};

template <typename X>
struct Input {
  const X* data;
  std::size_t rows;
  std::size_t cols;
};

struct StepParams {
  double eta;
  double alpha;
  double l1;
  double l2;
};

// Buffers sized once per call and reused for every minibatch.
template <typename T>
class Workspace {
 public:
  Workspace(const Net<T>& net, std::size_t maxRows);

  template <typename X>
  double minibatchGradient(const Net<T>& net, const Input<X>& x, const int32_t* labels, const int32_t* rows,
                           std::size_t m, double l1, double l2);
  void applyUpdate(const Net<T>& net, double eta, double alpha);
  template <typename X>
  void outputLogits(const Net<T>& net, const Input<X>& x, std::size_t row0, std::size_t m, T* out);

  const std::vector<T>& grad(std::size_t l) const { return grads_[l]; }

 private:
  template <typename X>
  void forward(const Net<T>& net, const Input<X>& x, const int32_t* rows, std::size_t row0, std::size_t m);

  std::vector<std::vector<T>> acts_;
  std::vector<std::vector<T>> deltas_;
  std::vector<std::vector<T>> grads_;
  std::vector<T> logits_;
  GemmBuffers<T> gemm_;
};

// np.array_split: start of part b when n items are split into `parts` (larger parts first).
inline std::size_t splitStart(std::size_t n, std::size_t parts, std::size_t b) {
  const std::size_t base = n / parts, extra = n % parts;
  return b * base + (b < extra ? b : extra);
}

// One epoch of minibatch steps over `order`; returns the number of minibatches completed
// (fewer when *stop becomes non-zero; it is read before each minibatch).
template <typename T, typename X>
std::size_t trainEpoch(const Net<T>& net, const Input<X>& x, const int32_t* labels, const int32_t* order,
                       std::size_t n, std::size_t minibatches, const StepParams& params, double* costs,
                       const int32_t* stop);

template <typename T, typename X>
double costAndGradient(const Net<T>& net, const Input<X>& x, const int32_t* labels, const int32_t* order,
                       std::size_t n, double l1, double l2, T* const* grads);

template <typename T, typename X>
void outputLogits(const Net<T>& net, const Input<X>& x, T* out);

}  // namespace mlp
