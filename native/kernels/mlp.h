// The network's kernels in plain C++ (no N-API): forward pass, cost, backpropagation and the
// momentum update for whole minibatches, and pre-activations for prediction. The binding layer
// validates and converts arguments, then calls these with raw pointers and sizes.
//
// Shapes (m = samples in the minibatch, L layers, n_l = sizes[l], ld_l = padded(n_l)):
//   weights[l]  n_{l+1} x (n_l + 1), row-major, bias in column 0 (the seed's layout)
//   acts[l]     m x ld_l   activations of layer l, l = 1..L (layer 0 is read from the data set)
//   logits      m x ld_L   the output layer's pre-activations
//   deltas[l]   m x ld_l   error terms (the seed's sigma)
// Padding columns are kept at zero.
//
// Layer 1 reads the data set through the sample order (no shuffled copy). When at most half the
// features are non-zero (MNIST: ~19%), it works on each row's non-zeros only: compressed once per
// fit, exact (skipped terms are exact zeros), about five times less arithmetic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <vector>

#include "cpu.h"
#include "gemm.h"
#include "threadpool.h"

namespace mlp {

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

// np.array_split: start of part b when n items are split into `parts` (larger parts first).
inline std::size_t splitStart(std::size_t n, std::size_t parts, std::size_t b) {
  const std::size_t base = n / parts, extra = n % parts;
  return b * base + (b < extra ? b : extra);
}

// The value type that holds every input element exactly.
template <typename X>
using ExactValue = std::conditional_t<std::is_same<X, double>::value, double, float>;

template <typename T, typename X>
class Trainer {
 public:
  using V = ExactValue<X>;

  // `compress`: build the non-zero index of the whole input now (worth it for many epochs).
  Trainer(std::vector<int32_t> sizes, Input<X> x, const int32_t* labels, unsigned threads, Isa isa, bool compress);

  // One epoch of minibatch steps over `order`; returns the number of minibatches completed
  // (fewer when *stop becomes non-zero; it is read before each minibatch).
  std::size_t epoch(T* const* weights, T* const* prevDelta, const int32_t* order, std::size_t n,
                    std::size_t minibatches, const StepParams& params, double* costs, const int32_t* stop);
  // Cost and gradient (regularisation included) over the samples in `order`, no update.
  double costAndGradient(T* const* weights, const int32_t* order, std::size_t n, double l1, double l2,
                         T* const* grads);
  // The output layer's pre-activations of every row, rows x n_L, into out.
  void outputLogits(T* const* weights, T* out);

  bool sparse() const { return sparse_; }

 private:
  struct RowView {
    const uint32_t* col;
    const V* val;
    std::size_t nnz;
  };

  std::size_t layers() const { return sizes_.size() - 1; }
  std::size_t units(std::size_t l) const { return static_cast<std::size_t>(sizes_[l]); }
  void compressRows(const int32_t* rows, std::size_t row0, std::size_t m);
  std::size_t tasksFor(std::size_t work) const;
  void reserve(std::size_t m);
  void packFirstLayer(const T* w1);
  // `rows`: sample indices (through the order), or nullptr for the block starting at row0.
  void forward(T* const* weights, const int32_t* rows, std::size_t row0, std::size_t m);
  double gradient(T* const* weights, const int32_t* rows, std::size_t m, double l1, double l2);
  void update(T* const* weights, T* const* prevDelta, double eta, double alpha);

  std::vector<int32_t> sizes_;
  std::vector<std::size_t> ld_;
  Input<X> x_;
  const int32_t* labels_;
  Isa isa_;
  bool sparse_ = false;
  std::unique_ptr<ThreadPool> pool_;

  // The input's non-zeros, row by row (CSR), when compressed.
  std::vector<std::size_t> rowStart_;
  std::vector<uint32_t> nzCol_;
  std::vector<V> nzVal_;
  std::vector<RowView> views_;                  // the current minibatch's rows
  std::vector<uint32_t> chunkCol_;              // rows compressed on the fly (no whole index)
  std::vector<V> chunkVal_;
  std::vector<std::vector<std::size_t>> cursors_;  // per task: each row's position in its non-zeros

  std::size_t capacity_ = 0;
  std::vector<std::vector<T>> acts_, deltas_, grads_;
  std::vector<T> logits_;
  std::vector<T> w1T_, bias1_, g1T_;  // layer 1 transposed: features x ld_1
  std::vector<GemmBuffers<T>> gemm_;  // one per task
};

}  // namespace mlp
