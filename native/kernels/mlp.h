// The network's kernels in plain C++ (no N-API): forward pass, cost, backpropagation and the
// momentum update for whole minibatches, and pre-activations for prediction. The binding layer
// validates and converts arguments, then calls these with raw pointers and sizes.
//
// Shapes (m = samples in the minibatch, L layers, n_l = sizes[l], ld_l = rowStride(n_l)):
//   weights[l]  n_{l+1} x (n_l + 1), row-major, bias in column 0 (the seed's layout)
//   acts[l]     m x ld_l   activations of layer l, l = 1..L (layer 0 is read from the data set)
//   logits      m x ld_L   the output layer's pre-activations
//   deltas[l]   m x ld_l   error terms (the seed's sigma)
// Padding columns are kept at zero.
//
// Layer 1 reads the data set through the sample order (no shuffled copy). When at most half the
// features are non-zero (MNIST: ~19%), it works on each row's non-zeros only: compressed once per
// fit, exact (skipped terms are exact zeros), about five times less arithmetic. Each minibatch's
// rows are copied into contiguous per-task buffers; the forward pass gathers weight rows per
// non-zero, the weight gradient buckets the non-zeros by feature and gathers delta rows.
// During an epoch layer 1's non-bias weights live transposed (features x units) and are written
// back at its end.
//
// Results do not depend on the thread count: samples are independent in the forward and
// backward passes, and every sum over samples runs in sample order in one task.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include "cpu.h"
#include "gemm.h"
#include "simd.h"
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

// A grow-only buffer whose elements are not initialised (sized for the worst case, touched
// only as far as used). When it has to grow it takes half as much again as it had, if it can:
// buffers sized by the data (a minibatch's copied rows, say) then reach their largest size in a
// few steps, not with a reallocation (fresh pages, each faulted in again) at every new maximum.
template <typename E>
class RawBuffer {
 public:
  E* ensure(std::size_t n) {
    if (n > size_) {
      const std::size_t roomy = size_ <= std::size_t(-1) / 3 ? size_ + size_ / 2 : 0;
      std::size_t take = roomy > n ? roomy : n;
      std::unique_ptr<E[]> fresh;
      try {
        fresh.reset(new E[take]);
      } catch (const std::bad_alloc&) {
        if (take == n) throw;
        take = n;
        fresh.reset(new E[n]);
      }
      data_ = std::move(fresh);
      size_ = take;
    }
    return data_.get();
  }
  E* data() const { return data_.get(); }

 private:
  std::unique_ptr<E[]> data_;
  std::size_t size_ = 0;
};

template <typename T, typename X>
class Trainer {
 public:
  using V = ExactValue<X>;

  // `compress`: build the non-zero index of the whole input now (worth it for many epochs).
  Trainer(std::vector<int32_t> sizes, Input<X> x, const int32_t* labels, unsigned threads, Isa isa, bool compress);

  // Where the balance between two threads' forward passes starts (gradient() moves it after each
  // minibatch by the threads' timings; tests start it at its extremes): samples of half 1 whose
  // forward pass thread 0 runs (> 0), or of half 0 that thread 1 runs (< 0). Changes no result.
  void startForwardShift(double samples) { forwardShift_ = samples; }
  // Likewise where the update's split of layer 1's features between two threads starts (in
  // kUpdateUnit units of features, clamped to leave each thread one). Changes no result.
  void startUpdateBoundary(double units) { updateBoundary_ = units; }

  // One epoch of minibatch steps over `order`; returns the number of minibatches completed
  // (fewer when *stop becomes non-zero; it is read before each minibatch).
  std::size_t epoch(T* const* weights, T* const* prevDelta, const int32_t* order, std::size_t n,
                    std::size_t minibatches, const StepParams& params, double* costs, const int32_t* stop);
  // Cost and gradient (regularisation included) over the samples in `order`, no update.
  double costAndGradient(T* const* weights, const int32_t* order, std::size_t n, double l1, double l2,
                         T* const* grads);
  // The output layer's pre-activations of every row, rows x n_L, into out.
  void outputLogits(T* const* weights, T* out);

  // Prediction with weights packed once and inputs that change from call to call: `pack` the
  // weights, then for each input `setInput` and `outputLogitsPacked` (same results as
  // outputLogits, without repacking the weights or rebuilding the trainer). With `labels`, also
  // each row's argmax; `out` may then be nullptr.
  void pack(T* const* weights);
  void setInput(Input<X> x);
  void outputLogitsPacked(T* const* weights, T* out, int32_t* labels = nullptr);

  bool sparse() {
    prepare();
    return sparse_;
  }

 private:
  // One sample's non-zeros, with featureBlocks_ + 1 bounds.
  using RowView = SparseRow<X>;
  // Per-task buffers (task t of a parallel pass uses scratch_[t]).
  struct Scratch {
    RawBuffer<uint64_t> rowRecords;  // the task's minibatch rows, contiguous (copied records)
    RawBuffer<uint16_t> rowCol;      // or compressed into these when there is no index
    RawBuffer<X> rowVal;
    RawBuffer<uint32_t> rowBounds;
    RawBuffer<const uint8_t*> rowPtr;  // the task's byte rows, when prediction reads them directly
    RawBuffer<uint64_t> byteMasks;     // and their non-zero bytes (nonZeroByteMasks)
    RawBuffer<int32_t> labels;         // the task's samples' labels
    RawBuffer<uint32_t> cscEnd;        // where each feature's next non-zero of a sample block goes
    RawBuffer<ColumnEntry<X>> cscEntries;
    GemmBuffers<T> gemm;
    RawBuffer<T> biasSums;  // partialGradients' bias column, a layer at a time
    RawBuffer<uint64_t> aheadRecords;  // rows of the next minibatch copied ahead (copyRowsAhead)
  };

  // A compressed row's record: its featureBlocks_ + 1 bounds (uint32), then the features of its
  // `count` non-zeros (uint16), then their values (X, aligned), in 64-bit words.
  std::size_t recordColumnsAt() const { return (featureBlocks_ + 1) * sizeof(uint32_t); }
  std::size_t recordValuesAt(std::size_t count) const {
    return (recordColumnsAt() + count * sizeof(uint16_t) + sizeof(X) - 1) / sizeof(X) * sizeof(X);
  }
  std::size_t recordWords(std::size_t count) const {
    return (recordValuesAt(count) + count * sizeof(X) + sizeof(uint64_t) - 1) / sizeof(uint64_t);
  }
  RowView recordView(const uint64_t* record) const {
    const auto* bytes = reinterpret_cast<const unsigned char*>(record);
    const auto* bounds = reinterpret_cast<const uint32_t*>(bytes);
    const std::size_t count = bounds[featureBlocks_];
    return RowView{reinterpret_cast<const uint16_t*>(bytes + recordColumnsAt()),
                   reinterpret_cast<const X*>(bytes + recordValuesAt(count)), bounds};
  }
  std::size_t layers() const { return sizes_.size() - 1; }
  std::size_t units(std::size_t l) const { return static_cast<std::size_t>(sizes_[l]); }
  std::size_t sampleRow(const int32_t* rows, std::size_t row0, std::size_t r) const {
    return rows ? static_cast<std::size_t>(rows[r]) : row0 + r;
  }
  // With several threads, passes are cut into a few tasks per thread, claimed as threads come
  // free (a thread that is held up does not hold up the others); training's passes on sparse
  // input are pinned instead, so that each thread works on the samples whose rows it holds.
  std::size_t threads() const { return pool_ ? pool_->threads() : 1; }
  std::size_t maxTasks() const { return threads() * kTasksPerThread; }
  static constexpr std::size_t kTasksPerThread = 4;
  std::size_t tasksFor(std::size_t work) const;
  // With `pinned`, task t runs on the same thread in every pass of as many tasks (ThreadPool::run).
  void runTasks(std::size_t tasks, const std::function<void(std::size_t)>& job, bool pinned = false);
  void reserve(std::size_t m, bool training);
  // Rows [skip0, skip1) (within [r0, r1)) are in views_ already (copied ahead, with the index).
  void compressRows(Scratch& s, const int32_t* rows, std::size_t row0, std::size_t r0, std::size_t r1,
                    std::size_t skip0 = 0, std::size_t skip1 = 0);
  // Copies the records of rows [r0, r1) to `copy` (prefetching up to row rLast), sets their views;
  // returns the end of the copy.
  uint64_t* copyRecords(const int32_t* rows, std::size_t row0, std::size_t r0, std::size_t r1, std::size_t rLast,
                        uint64_t* copy);
  void packWeights(T* const* weights, T* const* prevDelta);
  // Counts the input's non-zeros, decides sparse_, and with `compress` builds the row index.
  void measureInput(bool compress);
  void prepare();
  void unpackWeights(T* const* weights, T* const* prevDelta);
  // Per-sample work for rows [r0, r1): forward pass, and with labels the output error and the
  // deltas of every layer. `rows`: sample indices (through the order), or nullptr for row0 + r.
  // Rows [copied0, copied1) are in views_ already (copied ahead).
  void samplePass(std::size_t task, T* const* weights, const int32_t* rows, std::size_t row0, std::size_t r0,
                  std::size_t r1, bool backward, std::size_t copied0 = 0, std::size_t copied1 = 0);
  void forward(T* const* weights, const int32_t* rows, std::size_t row0, std::size_t m, bool backward);
  // Whether layer l (weights[l], l >= 1) is small enough for smallProduct, and its packed copies.
  bool smallLayer(std::size_t l) const;
  void packSmallLayers(T* const* weights);
  void firstLayerGradient(std::size_t task, std::size_t b0, std::size_t b1, std::size_t r0, std::size_t r1, T* gT);
  // Sums over samples [r0, r1) into g (the weights' layout): every layer's bias column, and the
  // non-bias columns of every layer but a sparse layer 1 (with scratch_[task]).
  void partialGradients(std::size_t task, std::size_t r0, std::size_t r1, const int32_t* rows,
                        std::vector<AlignedVector<T>>& g);
  // Feature blocks [0, featureBlocks_) cut into `parts` ranges of about equal non-zeros.
  void featureSplit(std::size_t parts, std::vector<std::size_t>& split) const;
  void regularise(std::size_t l, T* const* weights, std::size_t c0, std::size_t c1, double l1, double l2);
  void updateColumns(std::size_t l, T* const* weights, T* const* prevDelta, std::size_t c0, std::size_t c1,
                     const StepParams& p);
  // Cost and gradient of the minibatch; with `step`, also the momentum update of the weights.
  // `nextRows` and `nextM`: the minibatch the next call will take, if known (a thread that waits
  // for the other at the end of the sums' pass then copies some of its rows: copyRowsAhead).
  double gradient(T* const* weights, const int32_t* rows, std::size_t m, double l1, double l2, T* const* prevDelta,
                  const StepParams* step, const int32_t* nextRows = nullptr, std::size_t nextM = 0);
  // The samples [own0, own1) whose forward pass half p's thread runs with its own scratch, and
  // [lent0, lent1) those of the other half it runs with scratch kGradientParts + p (gradient()).
  struct HalfPlan {
    std::size_t own0, own1, lent0, lent1;
  };
  HalfPlan halfPlan(std::size_t m, std::ptrdiff_t lent, std::size_t p) const;
  std::pair<std::size_t, std::size_t> aheadRows(std::size_t m, std::size_t p) const;
  void copyRowsAhead(std::size_t p, std::size_t m, const int32_t* next, std::size_t nextM,
                     const std::atomic<std::size_t>& partsDone);
  std::ptrdiff_t lentSamples(std::size_t m) const;

  std::vector<int32_t> sizes_;
  std::vector<std::size_t> ld_;
  Input<X> x_;
  const int32_t* labels_;
  Isa isa_;
  bool sparse_ = false;
  bool packAlways_ = false;
  bool compress_ = false;
  bool prepared_ = false;
  std::unique_ptr<ThreadPool> pool_;

  // Layer 1 works on blocks of featureBlock_ features, whose weight rows stay in L1 (training's
  // forward pass takes forwardBlocks_ of them at a time: kForwardBlockBytes in mlp.cpp).
  std::size_t featureBlock_ = 0, featureBlocks_ = 0;
  std::size_t forwardBlocks_ = 1;  // feature blocks per step of the forward pass
  std::size_t width1_ = 0;  // the vector width of layer-1 rows (units rounded up to whole vectors)
  bool scatterGradient_ = false;  // how firstLayerGradient works (kScatterVectors in mlp.cpp)
  std::vector<double> blockWeight_;  // non-zeros per feature block (to balance the gradient's tasks)
  // Samples of one half whose forward pass the other half's thread runs (gradient(); a balance
  // of the threads' speeds, changing no result): > 0 half 1's first, < 0 half 0's last.
  double forwardShift_ = 0;
  std::vector<RegSums> unitSums_;   // layer 1's regularisation sums by update unit (sparse input)
  // The update's split of layer 1's units between tasks, and on two threads where the boundary
  // goes next (gradient(); moved by the threads' busy times, changing no result).
  std::vector<std::size_t> updateSplit_;
  std::vector<std::size_t> partSplit_;  // each part's layer-1 sums split by feature blocks (gradient())
  double updateBoundary_ = 0;
  // Per half, rows [r0, r1) of the next minibatch (m samples of `rows`) copied ahead into the
  // half's aheadRecords (copyRowsAhead). Set and used only within one epoch().
  struct Ahead {
    const int32_t* rows = nullptr;
    std::size_t m = 0, r0 = 0, r1 = 0;
  };
  std::vector<Ahead> ahead_;

  // The input's non-zeros when compressed: one record per row (recordWords), row r's at word
  // rowStart_[r] of records_, so that a minibatch's copy reads each (random) row in one piece.
  // (64-bit words only for alignment: records are written and read as the types they hold, and
  // copied with memcpy.)
  std::vector<std::size_t> rowStart_;
  LargeVector<uint64_t> records_;
  std::vector<RowView> views_;  // the current minibatch's rows
  std::vector<Scratch> scratch_;

  std::size_t capacity_ = 0;
  bool trainingCapacity_ = false;
  std::vector<AlignedVector<T>> acts_, deltas_, grads_, biases_;
  AlignedVector<T> logits_;
  std::vector<T> costTerms_;  // summed in double
  // Layer 1's non-bias weights transposed (features x ld_1): during an epoch the working copy of
  // the weights and their last update (prev1T_), written back to the caller's layout at its end.
  AlignedVector<T> w1T_, g1T_, prev1T_;
  // With sparse input, the sums over parts 1.. of the minibatch (kGradientParts in mlp.cpp):
  // layer 1's non-bias columns transposed (like g1T_), the rest like grads_. Part 0's are
  // g1T_ and grads_ themselves, to which the others are added.
  std::vector<AlignedVector<T>> g1TParts_;
  std::vector<std::vector<AlignedVector<T>>> gradParts_;
  // Small layers (smallLayer): weights[l]'s non-bias columns transposed (n_l x rowStride(n_{l+1}))
  // for the forward product, and as rows (n_{l+1} x rowStride(n_l)) for the backward product.
  std::vector<AlignedVector<T>> smallWT_, smallW_;
};

}  // namespace mlp
