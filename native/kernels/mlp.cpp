#include "mlp.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <type_traits>

#include "fpenv.h"
#include "simd.h"

namespace mlp {
namespace {

// Work below this many multiply-adds per task is not worth waking another thread for.
constexpr std::size_t kMinWorkPerTask = 1 << 18;
// Compress the input when at most this fraction of its elements is non-zero.
constexpr double kSparseDensity = 0.5;
// Rows whose density decides the path of a prediction on a larger input.
constexpr std::size_t kDensitySampleRows = 256;
// Layer 1 on sparse input. The forward pass takes kForwardRows samples at a time through the
// features in blocks of kFeatureBlock (or a few, kForwardBlockBytes), so a block's weight rows
// stay close while the samples' non-zeros in it are gathered. The gradient takes the samples in
// blocks whose delta rows (kGradientBlockBytes) stay in L1, buckets the block's non-zeros by
// feature, and sums each feature's terms in registers (no store per non-zero).
constexpr std::size_t kForwardRows = 64;
constexpr std::size_t kFeatureBlock = 64;  // a multiple of 64 (byteGatherRows; compressRow needs 32)
// Training's forward pass takes as many feature blocks at a time as have weight rows in this many
// bytes: twice L1, because each step costs a load and a store of every sample's sums and a
// mispredicted loop exit, which outweighs the L2 hits (measured on Zen 3: float32 rows went
// from 64 to 256 features a step, 4-5% faster epochs; float64 from 64 to 128, no change).
// Prediction's byte gather keeps single blocks (wider was slower in float64).
constexpr std::size_t kForwardBlockBytes = 65536;
constexpr std::size_t kGradientBlockBytes = 24576;
// The layer-1 gradient adds each non-zero's term straight to its feature's row (a load and a store
// of the row per non-zero) when rows are at most this many vectors of the path, and sums each
// feature's terms in registers after a counting sort when wider. Measured on Zen 5 (AVX-512 and
// AVX2 paths, one thread): rows of 2-4 vectors, 1.05-1.3x faster epochs by the first; rows of
// 7-8 vectors, the sort as fast or 1.08x faster (stores are the first's limit).
constexpr std::size_t kScatterVectors = 4;
// While an epoch runs, a thread that waits for the other (for its share of a pass, or for the next
// pass) spins this long before it blocks: the gaps are short, and a blocked thread has to be
// woken through the kernel. Measured on Zen 5, 2 threads, against the pool's 50 us: 1.01x faster
// epochs when the two threads' shares were even, 1.09-1.11x while the host slowed one of them.
constexpr std::chrono::microseconds kEpochSpin{1000};
// Features per step of the layer-1 gradient's transposition into the weights' layout.
constexpr std::size_t kTransposeBlock = 16;
// Layers whose weights take at most this many bytes (in both layouts) multiply with smallProduct.
constexpr std::size_t kSmallProductBytes = 32768;
// The small layers' weight gradients take this many vectors of units at a time, so that
// smallProductTile keeps several outputs' sums in registers (2 outputs x 4 vectors).
constexpr std::size_t kGradientChunkVectors = 4;
// With sparse input, every gradient sum over a minibatch is taken over this many fixed parts of
// it (each part's sum in sample order from zero), then the parts' sums are added in order. The
// parts do not depend on the thread count, so neither do the results; with two threads each
// sums the samples whose forward pass it ran, in its own cache, instead of reading half of
// them from the other core (a cache line took 215-276 ns to cross between this machine's two
// cores).
constexpr std::size_t kGradientParts = 2;
// Features per unit of layer 1's update (its split between threads, and the regularisation
// cost's partial sums): fine enough to even the threads out, where the 13 feature blocks of 64
// left them 81 and 57 us a minibatch. With 50 hidden units (float64) on Zen 5, a unit took
// 0.41-0.46 us on one thread and 1.2-1.4 us on each of two whose cores sat on different dies.
// The sums and momentum rows are not what costs (read into the cache first, the unit took as
// long); the weight rows are: the other core read them in its forward pass, and the first store
// to each line waits for it to give the line up (24-27 us a minibatch for a thread's half).
// Prefetching them for writing did not help; storing to them earlier, during the gradient, made
// epochs 5-9% slower.
constexpr std::size_t kUpdateUnit = 16;
// Rows per step of a task's forward pass when computing the output of a whole data set.
constexpr std::size_t kPredictRows = 128;

// Writes one entry of the counting sort. A byte entry is written as one 32-bit store (its padding
// byte zero): field by field, GCC issues two stores per entry, and the sort is store-bound.
template <typename X>
inline void storeEntry(ColumnEntry<X>* p, uint16_t row, X val) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  if constexpr (std::is_same<X, uint8_t>::value) {
    static_assert(sizeof(ColumnEntry<uint8_t>) == 4 && offsetof(ColumnEntry<uint8_t>, val) == 2, "entry layout");
    const uint32_t packed = static_cast<uint32_t>(row) | static_cast<uint32_t>(val) << 16;
    std::memcpy(p, &packed, sizeof packed);
    return;
  }
#endif
  *p = ColumnEntry<X>{row, val};
}

}  // namespace

template <typename T, typename X>
Trainer<T, X>::Trainer(std::vector<int32_t> sizes, Input<X> x, const int32_t* labels, unsigned threads, Isa isa,
                       bool compress)
    : sizes_(std::move(sizes)), x_(x), labels_(labels), isa_(isa) {
  ld_.resize(sizes_.size());
  for (std::size_t l = 0; l < sizes_.size(); ++l) ld_[l] = rowStride<T>(isa_, units(l));
  featureBlock_ = kFeatureBlock;
  featureBlocks_ = (x_.cols + featureBlock_ - 1) / featureBlock_;
  width1_ = std::min(ld_[1], simdPadded<T>(units(1)));
  forwardBlocks_ = std::max<std::size_t>(1, kForwardBlockBytes / (featureBlock_ * ld_[1] * sizeof(T)));
  scatterGradient_ = isa_ != Isa::Generic && width1_ <= kScatterVectors * vectorElements<T>(isa_);
  threads = std::max(1u, threads);
  if (threads > 1) pool_ = std::make_unique<ThreadPool>(threads);
  scratch_.resize(maxTasks() + 1);

  // The input is measured (and compressed) on first use, not here: the first epoch runs on a
  // worker thread, so a large data set is indexed there instead of blocking the caller.
  compress_ = compress;
}

template <typename T, typename X>
void Trainer<T, X>::prepare() {
  if (prepared_) return;
  measureInput(compress_);
  prepared_ = true;
}

template <typename T, typename X>
void Trainer<T, X>::measureInput(bool compress) {
  if (!compress && x_.rows > kDensitySampleRows) {
    // Prediction only needs the density to choose a path: estimate it from evenly spread rows
    // (the same rows of the same input every time, so the choice is too).
    std::size_t nonZeros = 0;
    for (std::size_t i = 0; i < kDensitySampleRows; ++i)
      nonZeros += countNonZero(isa_, x_.data + (i * x_.rows / kDensitySampleRows) * x_.cols, x_.cols);
    sparse_ = x_.cols <= 65536 &&
              static_cast<double>(nonZeros) <= kSparseDensity * static_cast<double>(kDensitySampleRows * x_.cols);
    return;
  }
  // Density, then the compressed rows: both in row chunks across threads (the result does not
  // depend on the chunks).
  const std::size_t chunks = std::max<std::size_t>(1, std::min(maxTasks(), x_.rows));
  // Each row's non-zeros when an index may be built (to place its record), else each chunk's.
  std::vector<std::size_t> counts(compress ? x_.rows : 0);
  std::vector<std::size_t> chunkNonZeros(chunks + 1, 0);
  runTasks(chunks, [&](std::size_t t) {
    const std::size_t r0 = splitStart(x_.rows, chunks, t), r1 = splitStart(x_.rows, chunks, t + 1);
    if (!compress) {
      chunkNonZeros[t + 1] = countNonZero(isa_, x_.data + r0 * x_.cols, (r1 - r0) * x_.cols);
      return;
    }
    std::size_t sum = 0;
    for (std::size_t r = r0; r < r1; ++r) sum += counts[r] = countNonZero(isa_, x_.data + r * x_.cols, x_.cols);
    chunkNonZeros[t + 1] = sum;
  });
  for (std::size_t t = 0; t < chunks; ++t) chunkNonZeros[t + 1] += chunkNonZeros[t];
  const std::size_t n = x_.rows * x_.cols, nonZeros = chunkNonZeros[chunks];
  // Feature indices are stored in 16 bits.
  sparse_ = x_.cols <= 65536 && static_cast<double>(nonZeros) <= kSparseDensity * static_cast<double>(n);
  if (sparse_ && compress) {
    rowStart_.resize(x_.rows + 1);
    rowStart_[0] = 0;
    for (std::size_t r = 0; r < x_.rows; ++r) rowStart_[r + 1] = rowStart_[r] + recordWords(counts[r]);
    records_.resize(rowStart_[x_.rows]);
    runTasks(chunks, [&](std::size_t t) {
      const std::size_t r0 = splitStart(x_.rows, chunks, t), r1 = splitStart(x_.rows, chunks, t + 1);
      for (std::size_t r = r0; r < r1; ++r) {
        uint64_t* record = records_.data() + rowStart_[r];
        uint32_t* bounds = reinterpret_cast<uint32_t*>(record);
        bounds[featureBlocks_] = static_cast<uint32_t>(counts[r]);  // where recordView finds the values
        const RowView view = recordView(record);
        compressRow(isa_, x_.data + r * x_.cols, x_.cols, featureBlock_, const_cast<uint16_t*>(view.col),
                    const_cast<X*>(view.val), bounds);
      }
    });
    blockWeight_.assign(featureBlocks_, 0.0);
    for (std::size_t r = 0; r < x_.rows; ++r) {
      const uint32_t* bounds = reinterpret_cast<const uint32_t*>(records_.data() + rowStart_[r]);
      for (std::size_t b = 0; b < featureBlocks_; ++b) blockWeight_[b] += bounds[b + 1] - bounds[b];
    }
  }
}

// The non-zeros of minibatch rows [r0, r1), copied (from the whole input's index when there is
// one, otherwise compressed now) into the task's buffer: contiguous, so both passes over them
// stream through memory.
template <typename T, typename X>
void Trainer<T, X>::compressRows(Scratch& s, const int32_t* rows, std::size_t row0, std::size_t r0, std::size_t r1,
                                  std::size_t skip0, std::size_t skip1) {
  if (!rowStart_.empty()) {
    if (skip1 <= skip0) skip0 = skip1 = r1;
    std::size_t total = 0;
    for (std::size_t r = r0; r < r1; ++r) {
      if (r == skip0) r = skip1;
      if (r >= r1) break;
      const std::size_t i = sampleRow(rows, row0, r);
      total += rowStart_[i + 1] - rowStart_[i];
    }
    uint64_t* copy = copyRecords(rows, row0, r0, skip0, skip0, s.rowRecords.ensure(total));
    copyRecords(rows, row0, skip1, r1, r1, copy);
    return;
  }
  const std::size_t nb = featureBlocks_ + 1;
  uint32_t* bounds = s.rowBounds.ensure((r1 - r0) * nb);
  std::size_t k = 0;
  uint16_t* col = s.rowCol.ensure((r1 - r0) * x_.cols);
  X* val = s.rowVal.ensure((r1 - r0) * x_.cols);
  for (std::size_t r = r0; r < r1; ++r) {
    const X* src = x_.data + sampleRow(rows, row0, r) * x_.cols;
    uint32_t* bd = bounds + (r - r0) * nb;
    const std::size_t cnt = compressRow(isa_, src, x_.cols, featureBlock_, col + k, val + k, bd);
    views_[r] = RowView{col + k, val + k, bd};
    k += cnt;
  }
}

template <typename T, typename X>
uint64_t* Trainer<T, X>::copyRecords(const int32_t* rows, std::size_t row0, std::size_t r0, std::size_t r1,
                                     std::size_t rLast, uint64_t* copy) {
  constexpr std::size_t kAhead = 16;
  for (std::size_t r = r0; r < r1; ++r) {
    if (r + kAhead < rLast) {
      const std::size_t ia = sampleRow(rows, row0, r + kAhead);
      const uint64_t* a0 = records_.data() + rowStart_[ia];
      const uint64_t* a1 = records_.data() + rowStart_[ia + 1];
      for (const uint64_t* q = a0; q < a1; q += 64 / sizeof(uint64_t)) __builtin_prefetch(q);
      __builtin_prefetch(a1 - 1);
    }
    const std::size_t i = sampleRow(rows, row0, r), st = rowStart_[i], words = rowStart_[i + 1] - st;
    // Bytes, not words: the record is read as the types it holds (no aliasing through uint64_t).
    std::memcpy(copy, records_.data() + st, words * sizeof(uint64_t));
    views_[r] = recordView(copy);
    copy += words;
  }
  return copy;
}

template <typename T, typename X>
std::size_t Trainer<T, X>::tasksFor(std::size_t work) const {
  return std::max<std::size_t>(1, std::min(maxTasks(), work / kMinWorkPerTask));
}

template <typename T, typename X>
void Trainer<T, X>::runTasks(std::size_t tasks, const std::function<void(std::size_t)>& job, bool pinned) {
  if (pool_ && tasks > 1) {
    pool_->run(tasks, job, pinned);
  } else {
    for (std::size_t t = 0; t < tasks; ++t) job(t);
  }
}

template <typename T, typename X>
void Trainer<T, X>::reserve(std::size_t m, bool training) {
  if (m <= capacity_ && (trainingCapacity_ || !training)) return;
  m = std::max(m, capacity_);
  training = training || trainingCapacity_;
  const std::size_t L = layers();
  acts_.assign(L + 1, {});
  deltas_.assign(L + 1, {});
  for (std::size_t l = 1; l <= L; ++l) {
    acts_[l].assign(m * ld_[l], T(0));
    if (training) deltas_[l].assign(m * ld_[l], T(0));
  }
  logits_.assign(m * ld_[L], T(0));
  views_.resize(m);
  if (training) {
    grads_.assign(L, {});
    for (std::size_t l = 0; l < L; ++l) grads_[l].assign(units(l + 1) * (units(l) + 1), T(0));
    g1T_.assign(x_.cols * ld_[1], T(0));
    prev1T_.assign(x_.cols * ld_[1], T(0));
    costTerms_.assign(m * units(L), T(0));
  }
  capacity_ = m;
  trainingCapacity_ = training;
}

// Every layer's bias column as a contiguous vector, and layer 1's weights transposed (features x
// ld_1, zero padding) so one feature's weights for all units are contiguous: the vector the
// sparse kernels stream for each non-zero. With prevDelta, its layer-1 part transposed too.
template <typename T, typename X>
void Trainer<T, X>::packWeights(T* const* weights, T* const* prevDelta) {
  if (biases_.size() != layers()) {
    biases_.assign(layers(), {});
    for (std::size_t l = 0; l < layers(); ++l) biases_[l].assign(ld_[l + 1], T(0));
  }
  if (w1T_.size() != x_.cols * ld_[1]) w1T_.assign(x_.cols * ld_[1], T(0));
  for (std::size_t l = 0; l < layers(); ++l) {
    const std::size_t nIn = units(l);
    for (std::size_t o = 0; o < units(l + 1); ++o) biases_[l][o] = weights[l][o * (nIn + 1)];
  }
  if (!sparse_ && !packAlways_) return;
  const std::size_t H = units(1), K = units(0), ld = ld_[1];
  for (std::size_t j0 = 0; j0 < K; j0 += kTransposeBlock) {
    const std::size_t j1 = std::min(K, j0 + kTransposeBlock);
    for (std::size_t u = 0; u < H; ++u) {
      const T* src = weights[0] + u * (K + 1) + 1;
      for (std::size_t j = j0; j < j1; ++j) w1T_[j * ld + u] = src[j];
      if (prevDelta) {
        const T* psrc = prevDelta[0] + u * (K + 1) + 1;
        for (std::size_t j = j0; j < j1; ++j) prev1T_[j * ld + u] = psrc[j];
      }
    }
  }
}

template <typename T, typename X>
void Trainer<T, X>::unpackWeights(T* const* weights, T* const* prevDelta) {
  if (!sparse_) return;
  const std::size_t H = units(1), K = units(0), ld = ld_[1];
  for (std::size_t j0 = 0; j0 < K; j0 += kTransposeBlock) {
    const std::size_t j1 = std::min(K, j0 + kTransposeBlock);
    for (std::size_t u = 0; u < H; ++u) {
      T* dst = weights[0] + u * (K + 1) + 1;
      T* pdst = prevDelta[0] + u * (K + 1) + 1;
      for (std::size_t j = j0; j < j1; ++j) {
        dst[j] = w1T_[j * ld + u];
        pdst[j] = prev1T_[j * ld + u];
      }
    }
  }
}

template <typename T, typename X>
void Trainer<T, X>::samplePass(std::size_t task, T* const* weights, const int32_t* rows, std::size_t row0,
                               std::size_t r0, std::size_t r1, bool backward, std::size_t copied0,
                               std::size_t copied1) {
  const std::size_t L = layers(), m = r1 - r0;
  if (m == 0) return;
  Scratch& s = scratch_[task];

  // Layer 1 (always hidden): z = W1 . [1, x]; a = sigmoid(z).
  {
    const std::size_t H = units(1), K = units(0), ld = ld_[1];
    T* a1 = acts_[1].data();
    if (sparse_ && !backward && rowStart_.empty() && std::is_same<X, uint8_t>::value) {
      // Prediction on bytes: gather straight from the rows (nothing else reads them).
      const uint8_t** rowPtr = s.rowPtr.ensure(r1 - r0);
      for (std::size_t r = r0; r < r1; ++r)
        rowPtr[r - r0] = reinterpret_cast<const uint8_t*>(x_.data + sampleRow(rows, row0, r) * x_.cols);
      const std::size_t groups = (K + 63) / 64;
      uint64_t* masks = s.byteMasks.ensure(kForwardRows * groups);
      for (std::size_t s0 = r0; s0 < r1; s0 += kForwardRows) {
        const std::size_t s1 = std::min(r1, s0 + kForwardRows);
        for (std::size_t r = s0; r < s1; ++r) std::copy(biases_[0].begin(), biases_[0].end(), a1 + r * ld);
        nonZeroByteMasks(isa_, s1 - s0, rowPtr + (s0 - r0), K, masks);
        for (std::size_t j0 = 0; j0 < K; j0 += featureBlock_)
          byteGatherRows(isa_, s1 - s0, rowPtr + (s0 - r0), masks, groups, j0, std::min(K, j0 + featureBlock_),
                         w1T_.data(), ld, a1 + s0 * ld, ld, width1_);
        biasSigmoid<T>(isa_, s1 - s0, H, ld, nullptr, a1 + s0 * ld, a1 + s0 * ld);
      }
    } else if (sparse_) {
      compressRows(s, rows, row0, r0, r1, copied0, copied1);
      for (std::size_t s0 = r0; s0 < r1; s0 += kForwardRows) {
        const std::size_t s1 = std::min(r1, s0 + kForwardRows);
        for (std::size_t r = s0; r < s1; ++r) std::copy(biases_[0].begin(), biases_[0].end(), a1 + r * ld);
        for (std::size_t b = 0; b < featureBlocks_; b += forwardBlocks_)
          sparseGatherRows(isa_, s1 - s0, views_.data() + s0, b, std::min(featureBlocks_, b + forwardBlocks_),
                           w1T_.data(), ld, a1 + s0 * ld, ld, width1_);
        biasSigmoid<T>(isa_, s1 - s0, H, ld, nullptr, a1 + s0 * ld, a1 + s0 * ld);
      }
    } else {
      const T* w1 = weights[0];
      const auto wT = dense(w1 + 1, 1, static_cast<std::ptrdiff_t>(K + 1));
      const auto a = rows ? dense(x_.data, static_cast<std::ptrdiff_t>(x_.cols), 1, rows + r0)
                          : dense(x_.data + (row0 + r0) * x_.cols, static_cast<std::ptrdiff_t>(x_.cols), 1);
      gemm(isa_, m, H, K, a, wT, a1 + r0 * ld, ld, false, s.gemm);
      biasSigmoid<T>(isa_, m, H, ld, biases_[0].data(), a1 + r0 * ld, a1 + r0 * ld);
    }
  }

  for (std::size_t l = 2; l <= L; ++l) {
    const std::size_t nIn = units(l - 1), nOut = units(l), ld = ld_[l];
    const T* w = weights[l - 1];
    T* z = ((l == L) ? logits_.data() : acts_[l].data()) + r0 * ld;
    const T* aPrev = acts_[l - 1].data() + r0 * ld_[l - 1];
    if (smallLayer(l - 1)) {
      smallProduct<T>(isa_, m, nOut, nIn, aPrev, ld_[l - 1], 1, smallWT_[l - 1].data(), rowStride<T>(isa_, nOut), z,
                      ld, nullptr);
    } else {
      const auto a = dense<T>(aPrev, static_cast<std::ptrdiff_t>(ld_[l - 1]), 1);
      const auto wT = dense(w + 1, 1, static_cast<std::ptrdiff_t>(nIn + 1));
      gemm(isa_, m, nOut, nIn, a, wT, z, ld, false, s.gemm);
    }
    if (l == L && !backward) {
      // Prediction reads only the output layer's pre-activations (its callers take the argmax, or
      // apply the sigmoid themselves): add the bias, the same addition biasSigmoid makes, and skip
      // the output activations.
      const T* bias = biases_[l - 1].data();
      for (std::size_t r = 0; r < m; ++r)
        for (std::size_t o = 0; o < nOut; ++o) z[r * ld + o] += bias[o];
      continue;
    }
    biasSigmoid<T>(isa_, m, nOut, ld, biases_[l - 1].data(), z, acts_[l].data() + r0 * ld);
  }
  if (!backward) return;

  // Output layer: cross-entropy terms from pre-activations, and sigma = a - y.
  {
    const std::size_t nOutput = units(L), ldOut = ld_[L];
    int32_t* label = s.labels.ensure(m);
    for (std::size_t r = r0; r < r1; ++r) label[r - r0] = labels_[sampleRow(rows, row0, r)];
    crossEntropyTerms<T>(isa_, m, nOutput, logits_.data() + r0 * ldOut, ldOut, label,
                         costTerms_.data() + r0 * nOutput);
    const T* aOut = acts_[L].data();
    T* dOut = deltas_[L].data();
    for (std::size_t r = r0; r < r1; ++r) {
      for (std::size_t o = 0; o < nOutput; ++o) dOut[r * ldOut + o] = aOut[r * ldOut + o];
      // Labels were checked on the way in, but the caller's array may have changed since.
      const std::size_t y = static_cast<std::size_t>(static_cast<uint32_t>(label[r - r0]));
      if (y < nOutput) dOut[r * ldOut + y] -= T(1);
    }
  }
  // sigma_prev = (sigma . W[:, 1:]) * a_prev * (1 - a_prev)
  for (std::size_t l = L; l >= 2; --l) {
    const std::size_t nIn = units(l - 1), nUnits = units(l), stride = nIn + 1, ld = ld_[l], ldPrev = ld_[l - 1];
    T* dPrev = deltas_[l - 1].data() + r0 * ldPrev;
    const T* aPrev = acts_[l - 1].data() + r0 * ldPrev;
    if (smallLayer(l - 1)) {
      // The sigmoid's derivative in the product's epilogue: a second pass over the rows cost
      // more than the product (they no longer sit in L1).
      smallProduct(isa_, m, nIn, nUnits, deltas_[l].data() + r0 * ld, ld, 1, smallW_[l - 1].data(),
                   rowStride<T>(isa_, nIn), dPrev, ldPrev, aPrev);
      continue;
    }
    const auto dm = dense<T>(deltas_[l].data() + r0 * ld, static_cast<std::ptrdiff_t>(ld), 1);
    const auto wm = dense<T>(weights[l - 1] + 1, static_cast<std::ptrdiff_t>(stride), 1);
    gemm(isa_, m, nIn, nUnits, dm, wm, dPrev, ldPrev, false, s.gemm);
    for (std::size_t r = 0; r < m; ++r) {
      T* dr = dPrev + r * ldPrev;
      const T* ar = aPrev + r * ldPrev;
      for (std::size_t c = 0; c < nIn; ++c) dr[c] *= ar[c] * (T(1) - ar[c]);
    }
  }
}

template <typename T, typename X>
bool Trainer<T, X>::smallLayer(std::size_t l) const {
  const std::size_t nIn = units(l), nOut = units(l + 1);
  return l >= 1 && nIn * simdPadded<T>(nOut) * sizeof(T) <= kSmallProductBytes &&
         nOut * simdPadded<T>(nIn) * sizeof(T) <= kSmallProductBytes;
}

// The small layers' weights in the two layouts smallProduct reads (the weights change every step).
template <typename T, typename X>
void Trainer<T, X>::packSmallLayers(T* const* weights) {
  smallWT_.resize(layers());
  smallW_.resize(layers());
  for (std::size_t l = 1; l < layers(); ++l) {
    if (!smallLayer(l)) continue;
    const std::size_t nIn = units(l), nOut = units(l + 1), stride = nIn + 1;
    const std::size_t ldT = rowStride<T>(isa_, nOut), ldW = rowStride<T>(isa_, nIn);
    const T* w = weights[l];
    smallWT_[l].assign(nIn * ldT, T(0));
    smallW_[l].assign(nOut * ldW, T(0));
    for (std::size_t o = 0; o < nOut; ++o)
      for (std::size_t u = 0; u < nIn; ++u) {
        smallWT_[l][u * ldT + o] = w[o * stride + 1 + u];
        smallW_[l][o * ldW + u] = w[o * stride + 1 + u];
      }
  }
}

// Every layer's activations (and with `backward` the deltas) of minibatch rows [0, m). Samples
// are independent, so they are split across threads.
template <typename T, typename X>
void Trainer<T, X>::forward(T* const* weights, const int32_t* rows, std::size_t row0, std::size_t m, bool backward) {
  packSmallLayers(weights);
  const std::size_t tasks = tasksFor(m * units(0) * units(1) / 4);
  // Pinned with sparse input: each thread's samples are the ones it sums the gradient over next
  // (kGradientParts).
  runTasks(
      tasks,
      [&](std::size_t t) {
        samplePass(t, weights, rows, row0, splitStart(m, tasks, t), splitStart(m, tasks, t + 1), backward);
      },
      sparse_);
}

// grad1[:, 1:]^T rows for the features of blocks [b0, b1), summed over the minibatch's samples
// [r0, r1), written to gT. Narrow rows (scatterGradient_): sample by sample, each non-zero adds
// its term to its feature's row, a few feature blocks at a time (their rows stay close, like the
// forward pass's weight rows). Otherwise: for each block of samples, their non-zeros in these
// features sorted by feature (counting sort, samples in order), then each feature's sum over the
// block added in sample order. Either way every feature's sum runs over the samples in order,
// whatever the blocks and tasks: the same bits.
template <typename T, typename X>
void Trainer<T, X>::firstLayerGradient(std::size_t task, std::size_t b0, std::size_t b1, std::size_t r0,
                                       std::size_t r1, T* gT) {
  const std::size_t ld = ld_[1], K = units(0);
  const std::size_t j0 = b0 * featureBlock_, j1 = std::min(K, b1 * featureBlock_);
  if (j1 <= j0) return;
  const std::size_t nJ = j1 - j0, m = r1 - r0;
  const RowView* views = views_.data() + r0;
  const T* d = deltas_[1].data() + r0 * ld;
  if (scatterGradient_) {
    std::fill(gT + j0 * ld, gT + j1 * ld, T(0));
    for (std::size_t b = b0; b < b1; b += forwardBlocks_)
      sparseScatterRows(isa_, m, views, b, std::min(b1, b + forwardBlocks_), d, ld, gT, ld, width1_);
    return;
  }
  // The first block of samples writes the rows (no samples leave them zero).
  if (m == 0) std::fill(gT + j0 * ld, gT + j1 * ld, T(0));
  Scratch& s = scratch_[task];
  // Blocks of samples whose delta rows stay in L1 while they are gathered: a tile at a time when
  // the rows are wider than a tile (the block size changes no sum).
  const std::size_t rowBytes = std::min(ld, gatherTileElements<T>(isa_, width1_)) * sizeof(T);
  // No larger than the minibatch: a small one (a gradient check's few samples, say) then needs
  // only small slots below, not a buffer sized for a full block in every call.
  const std::size_t block =
      std::max<std::size_t>(1, std::min<std::size_t>({65535, kGradientBlockBytes / rowBytes, m}));
  // Each feature's non-zeros in a block of samples: at most `block` of them, in its own slot
  // [j * block, (j + 1) * block); end[j] is where its next one goes (no multiply per non-zero).
  // nJ * block < 2^32: block * rowBytes <= kGradientBlockBytes and rows are at least 32 bytes.
  uint32_t* __restrict end = s.cscEnd.ensure(nJ);
  ColumnEntry<X>* __restrict entries = s.cscEntries.ensure(nJ * block);
  for (std::size_t s0 = 0; s0 < m; s0 += block) {
    const std::size_t s1 = std::min(m, s0 + block);
    for (std::size_t j = 0; j < nJ; ++j) end[j] = static_cast<uint32_t>(j * block);
    for (std::size_t r = s0; r < s1; ++r) {
      const uint16_t* const col = views[r].col;
      const X* const x = views[r].val;
      const uint32_t k0 = views[r].bounds[b0], k1 = views[r].bounds[b1];
      const uint16_t rr = static_cast<uint16_t>(r - s0);
      for (uint32_t k = k0; k < k1; ++k) storeEntry(entries + end[col[k] - j0]++, rr, x[k]);
    }
    sparseGatherCols(isa_, nJ, end, block, entries, d + s0 * ld, ld, gT + j0 * ld, ld, width1_, s0 == 0);
  }
}

// Regularisation on the non-bias columns [c0, c1) of layer l's gradient, in the seed's order:
// + l2*w, then + l1*sign(w).
template <typename T, typename X>
void Trainer<T, X>::regularise(std::size_t l, T* const* weights, std::size_t c0, std::size_t c1, double l1,
                               double l2) {
  if (l1 == 0 && l2 == 0) return;
  const T tl1 = static_cast<T>(l1), tl2 = static_cast<T>(l2);
  const std::size_t stride = units(l) + 1;
  const T* w = weights[l];
  T* g = grads_[l].data();
  c0 = std::max<std::size_t>(c0, 1);
  for (std::size_t o = 0; o < units(l + 1); ++o)
    for (std::size_t c = c0; c < c1; ++c) {
      const std::size_t k = o * stride + c;
      g[k] = regularised(g[k], w[k], tl1, tl2);
    }
}

template <typename T, typename X>
void Trainer<T, X>::updateColumns(std::size_t l, T* const* weights, T* const* prevDelta, std::size_t c0,
                                  std::size_t c1, const StepParams& p) {
  const T teta = static_cast<T>(p.eta), talpha = static_cast<T>(p.alpha);
  const std::size_t stride = units(l) + 1;
  T* w = weights[l];
  T* prev = prevDelta[l];
  const T* g = grads_[l].data();
  for (std::size_t o = 0; o < units(l + 1); ++o)
    for (std::size_t c = c0; c < c1; ++c) {
      const std::size_t k = o * stride + c;
      momentumStep(w[k], prev[k], g[k], teta, talpha);
    }
}

template <typename T, typename X>
void Trainer<T, X>::partialGradients(std::size_t task, std::size_t r0, std::size_t r1, const int32_t* rows,
                                     std::vector<AlignedVector<T>>& g) {
  const std::size_t L = layers(), m = r1 - r0;
  for (std::size_t l = L; l >= 1; --l) {
    const std::size_t nIn = units(l - 1), nUnits = units(l), stride = nIn + 1, ld = ld_[l];
    const T* d = deltas_[l].data() + r0 * ld;
    T* gl = g[l - 1].data();
    // Bias column: the sum of the deltas, in sample order.
    T* const acc = scratch_[task].biasSums.ensure(ld);
    std::fill(acc, acc + ld, T(0));
    for (std::size_t r = 0; r < m; ++r) {
      const T* dr = d + r * ld;
      for (std::size_t o = 0; o < ld; ++o) acc[o] += dr[o];
    }
    for (std::size_t o = 0; o < nUnits; ++o) gl[o * stride] = acc[o];
    if (l > 1 && smallLayer(l - 1)) {
      // g[o][1 + u] = sum over the samples of d[r][o] * a_prev[r][u], a few vectors of u at a
      // time, so that several outputs share each load of a_prev's rows (packing a_prev for the
      // GEMM cost more than the product).
      const std::size_t ldPrev = ld_[l - 1], chunk = kGradientChunkVectors * simdWidth<T>();
      for (std::size_t u0 = 0; u0 < nIn; u0 += chunk)
        smallProduct<T>(isa_, nUnits, std::min(chunk, nIn - u0), m, d, 1, ld, acts_[l - 1].data() + r0 * ldPrev + u0,
                        ldPrev, gl + 1 + u0, stride, nullptr);
    } else if (l > 1) {
      const auto dT = dense<T>(d, 1, static_cast<std::ptrdiff_t>(ld));
      const auto a = dense<T>(acts_[l - 1].data() + r0 * ld_[l - 1], static_cast<std::ptrdiff_t>(ld_[l - 1]), 1);
      gemm(isa_, nUnits, nIn, m, dT, a, gl + 1, stride, false, scratch_[task].gemm);
    } else if (!sparse_) {
      const auto dT = dense<T>(d, 1, static_cast<std::ptrdiff_t>(ld));
      const auto a = rows ? dense(x_.data, static_cast<std::ptrdiff_t>(x_.cols), 1, rows + r0)
                          : dense(x_.data + r0 * x_.cols, static_cast<std::ptrdiff_t>(x_.cols), 1);
      gemm(isa_, nUnits, nIn, m, dT, a, gl + 1, stride, false, scratch_[task].gemm);
    }
  }
}

template <typename T, typename X>
void Trainer<T, X>::featureSplit(std::size_t parts, std::vector<std::size_t>& split) const {
  split.assign(parts + 1, featureBlocks_);
  split[0] = 0;
  double total = 0;
  for (std::size_t b = 0; b < featureBlocks_; ++b) total += blockWeight_.empty() ? 1.0 : blockWeight_[b];
  double acc = 0;
  std::size_t t = 1;
  for (std::size_t b = 0; b < featureBlocks_ && t < parts; ++b) {
    acc += blockWeight_.empty() ? 1.0 : blockWeight_[b];
    while (t < parts && acc >= total * static_cast<double>(t) / static_cast<double>(parts)) split[t++] = b + 1;
  }
  for (std::size_t i = 1; i <= parts; ++i) split[i] = std::max(split[i], split[i - 1]);
  split[parts] = featureBlocks_;
}

template <typename T, typename X>
std::ptrdiff_t Trainer<T, X>::lentSamples(std::size_t m) const {
  const std::size_t mid = splitStart(m, kGradientParts, 1);
  return std::clamp<std::ptrdiff_t>(static_cast<std::ptrdiff_t>(std::lround(forwardShift_)),
                                    -static_cast<std::ptrdiff_t>(mid / 2), static_cast<std::ptrdiff_t>((m - mid) / 2));
}

template <typename T, typename X>
typename Trainer<T, X>::HalfPlan Trainer<T, X>::halfPlan(std::size_t m, std::ptrdiff_t lent, std::size_t p) const {
  static_assert(kGradientParts == 2, "the forward shift lends samples between two halves");
  const std::size_t mid = splitStart(m, kGradientParts, 1), moved = static_cast<std::size_t>(lent < 0 ? -lent : lent);
  HalfPlan plan{splitStart(m, kGradientParts, p), splitStart(m, kGradientParts, p + 1), 0, 0};
  // With lent > 0, thread 0 runs half 1's first samples; with lent < 0, thread 1 runs half 0's last.
  if (lent > 0) {
    if (p == 0) plan.lent0 = mid, plan.lent1 = mid + moved;
    else plan.own0 = mid + moved;
  } else if (lent < 0) {
    if (p == 1) plan.lent0 = mid - moved, plan.lent1 = mid;
    else plan.own1 = mid - moved;
  }
  return plan;
}

// Rows [first, second) of half p of an m-sample minibatch: those whose forward pass its own
// thread runs whatever the forward shift (lentSamples' clamp).
template <typename T, typename X>
std::pair<std::size_t, std::size_t> Trainer<T, X>::aheadRows(std::size_t m, std::size_t p) const {
  const std::size_t mid = splitStart(m, kGradientParts, 1);
  return p == 0 ? std::make_pair(std::size_t{0}, mid - mid / 2) : std::make_pair(mid + (m - mid) / 2, m);
}

// On the thread of half p of an m-sample minibatch, once it is done: copies rows of the next
// minibatch's aheadRows (nextM samples of `next`) until the other half's thread is done too.
// Their views go where no thread reads now: rows of half p (which the other thread does not
// read) away from the middle (where it may have run some of half p's forward pass), in the next
// minibatch as in this one.
template <typename T, typename X>
void Trainer<T, X>::copyRowsAhead(std::size_t p, std::size_t m, const int32_t* next, std::size_t nextM,
                                  const std::atomic<std::size_t>& partsDone) {
  constexpr std::size_t kChunk = 8;  // rows between checks (about half a microsecond's copy)
  const std::size_t mid = splitStart(m, kGradientParts, 1);
  const auto [a0, a1] = aheadRows(nextM, p);
  if (a1 <= a0 || (p == 0 ? a1 > mid : a0 < mid)) return;
  if (partsDone.load(std::memory_order_acquire) >= kGradientParts) return;
  std::size_t words = 0;
  for (std::size_t r = a0; r < a1; ++r) {
    const std::size_t i = static_cast<std::size_t>(next[r]);
    words += rowStart_[i + 1] - rowStart_[i];
  }
  uint64_t* out;
  try {
    out = scratch_[p].aheadRecords.ensure(words);
  } catch (const std::bad_alloc&) {
    return;  // the next pass copies them all
  }
  std::size_t r = a0;
  while (r < a1 && partsDone.load(std::memory_order_relaxed) < kGradientParts) {
    const std::size_t e = std::min(a1, r + kChunk);
    out = copyRecords(next, 0, r, e, a1, out);
    r = e;
  }
  if (r > a0) ahead_[p] = Ahead{next, nextM, a0, r};
}

template <typename T, typename X>
double Trainer<T, X>::gradient(T* const* weights, const int32_t* rows, std::size_t m, double l1, double l2,
                               T* const* prevDelta, const StepParams* step, const int32_t* nextRows,
                               std::size_t nextM) {
  const std::size_t L = layers();

  // The seed's regularisation cost over the non-bias weights of every layer, as sums of |w| and
  // w^2 (four running sums per range). With sparse input, layer 1's share is summed by feature
  // block in the update's tasks (from its transposed copy, before the update) and the other
  // layers' in task 0: the sums do not depend on the thread count.
  RegSums sums;
  if (!sparse_)
    for (std::size_t l = 0; l < L; ++l) sums += regSums(weights[l] + 1, units(l + 1), units(l) + 1, units(l));

  // Regularisation and update of every layer but a sparse layer 1's non-bias columns (from the
  // gradient in grads_).
  auto smallUpdate = [&]() {
    for (std::size_t l = L; l >= 1; --l) {
      const std::size_t stride = units(l - 1) + 1, nUnits = units(l);
      const bool whole = l > 1 || !sparse_;
      if (whole) regularise(l - 1, weights, 1, stride, l1, l2);
      if (step) {
        updateColumns(l - 1, weights, prevDelta, 0, whole ? stride : 1, *step);
        T* b = biases_[l - 1].data();
        for (std::size_t o = 0; o < nUnits; ++o) b[o] = weights[l - 1][o * stride];
      }
    }
  };

  if (!sparse_) {
    forward(weights, rows, 0, m, true);
    // The cross-entropy terms' sum, in sample order.
    double cost = 0;
    for (std::size_t k = 0, n = m * units(L); k < n; ++k) cost += costTerms_[k];
    partialGradients(0, 0, m, rows, grads_);
    smallUpdate();
    return cost + ((l1 / 2) * sums.abs + (l2 / 2) * sums.sq);
  }

  // Sparse input. First every sum over the minibatch, in kGradientParts parts of it (each part's
  // layer-1 sums split by feature blocks when there are threads to spare): part p's task(s) run on
  // the thread(s) that ran the forward pass of its samples. With one task per part, the task runs
  // that forward pass itself, just before (one pass fewer to wait for, and a thread that is held
  // up in one half may catch up in the other).
  const std::size_t K = units(0), H = units(1), ld = ld_[1], stride = K + 1;
  if (gradParts_.size() != kGradientParts - 1) {
    gradParts_.assign(kGradientParts - 1, {});
    g1TParts_.assign(kGradientParts - 1, {});
  }
  for (std::size_t p = 0; p + 1 < kGradientParts; ++p) {
    if (g1TParts_[p].size() != g1T_.size()) g1TParts_[p].assign(g1T_.size(), T(0));
    if (gradParts_[p].size() != L) {
      gradParts_[p].clear();
      for (std::size_t l = 0; l < L; ++l) gradParts_[p].emplace_back(grads_[l].size(), T(0));
    }
  }
  const bool parallel = tasksFor(m * K * H / 4) > 1;
  const std::size_t perPart =
      parallel ? std::min(featureBlocks_, std::max<std::size_t>(1, (threads() + kGradientParts - 1) / kGradientParts))
               : 1;
  std::vector<std::size_t>& partSplit = partSplit_;
  featureSplit(perPart, partSplit);
  double partCost[kGradientParts] = {};
  if (perPart == 1)
    packSmallLayers(weights);
  else
    forward(weights, rows, 0, m, true);
  // On two threads that both run, the halves' forward passes need not meet at the middle: a
  // shared host often slows one core for a while, so the thread that was ahead in the last
  // minibatch first runs the forward pass of `lent` samples of the other half (at its edge) and
  // then flags them done; the other thread sums its half once they are. Every sum is still taken
  // by one thread over one fixed half in order, so no result depends on the shift.
  const bool shifting = perPart == 1 && parallel && pool_ && pool_->running() >= 2;
  const std::ptrdiff_t lent = shifting ? lentSamples(m) : 0;
  // The rows of each half that the last call's threads copied ahead (always the half's own).
  Ahead ahead[kGradientParts];
  ahead_.resize(kGradientParts);
  for (std::size_t p = 0; p < kGradientParts; ++p) {
    if (shifting && rows && ahead_[p].rows == rows && ahead_[p].m == m) ahead[p] = ahead_[p];
    ahead_[p] = Ahead{};
  }
  // A thread that is done waits for the other: it copies rows of the next minibatch meanwhile,
  // of the part of its half that is its own whatever the shift is then (see aheadRows), and
  // stops as soon as the other thread is done.
  const bool copyAhead = shifting && rows && nextRows && nextM > 0 && nextM <= capacity_ && !rowStart_.empty();
  std::atomic<std::size_t> partsDone{0};
  // 0: the lent samples' forward pass is running, 1: done, 2: it threw (the pool rethrows that).
  std::atomic<int> lentState{0};
  double busy[kGradientParts] = {};
  const auto sumsTask = [&](std::size_t task) {
    const auto started = std::chrono::steady_clock::now();
    std::chrono::steady_clock::duration waited{};
    const std::size_t p = task / perPart, f = task % perPart;
    const std::size_t r0 = splitStart(m, kGradientParts, p), r1 = splitStart(m, kGradientParts, p + 1);
    if (perPart == 1) {
      const HalfPlan plan = halfPlan(m, lent, p);
      const bool helper = plan.lent1 > plan.lent0, helped = lent != 0 && !helper;
      if (helper) {
        struct Flag {
          std::atomic<int>& state;
          int value = 2;
          ~Flag() { state.store(value, std::memory_order_release); }
        } flag{lentState};
        // Its own scratch: the helped thread reads these samples' copied rows after this returns.
        samplePass(kGradientParts + p, weights, rows, 0, plan.lent0, plan.lent1, true);
        flag.value = 1;
      }
      const bool inside = plan.own0 <= ahead[p].r0 && ahead[p].r1 <= plan.own1;
      samplePass(task, weights, rows, 0, plan.own0, plan.own1, true, inside ? ahead[p].r0 : 0,
                 inside ? ahead[p].r1 : 0);
      if (helped) {
        const auto from = std::chrono::steady_clock::now();
        int state;
        while ((state = lentState.load(std::memory_order_acquire)) == 0) MLP_SPIN_PAUSE();
        waited = std::chrono::steady_clock::now() - from;
        if (state != 1) return;  // the helper's exception reaches the caller
      }
    }
    struct Busy {
      double& seconds;
      std::chrono::steady_clock::time_point started;
      const std::chrono::steady_clock::duration& waited;
      ~Busy() { seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started - waited).count(); }
    } timing{busy[p], started, waited};
    if (f == 0) {
      // The cross-entropy terms' sum, in sample order.
      double cost = 0;
      for (std::size_t k = r0 * units(L), n = r1 * units(L); k < n; ++k) cost += costTerms_[k];
      partCost[p] = cost;
      partialGradients(task, r0, r1, rows, p == 0 ? grads_ : gradParts_[p - 1]);
    }
    firstLayerGradient(task, partSplit[f], partSplit[f + 1], r0, r1,
                       p == 0 ? g1T_.data() : g1TParts_[p - 1].data());
  };
  runTasks(
      kGradientParts * perPart,
      [&](std::size_t task) {
        {
          struct Done {
            std::atomic<std::size_t>& count;
            ~Done() { count.fetch_add(1, std::memory_order_acq_rel); }
          } done{partsDone};
          sumsTask(task);
        }
        if (copyAhead) copyRowsAhead(task / perPart, m, nextRows, nextM, partsDone);
      },
      true);
  if (shifting && busy[0] > 0 && busy[1] > 0) {
    // Half of the samples that would even the two threads' busy times out next time, counting a
    // sample's forward pass as about half of its work in a task.
    forwardShift_ = static_cast<double>(lent) +
                    0.5 * static_cast<double>(m) * (busy[1] - busy[0]) / (busy[0] + busy[1]);
  }
  double cost = 0;
  for (std::size_t p = 0; p < kGradientParts; ++p) cost += partCost[p];

  // Then the parts' sums added in order, the regularisation and the update: layer 1's non-bias
  // columns in units of kUpdateUnit features, split into one task per thread, the other layers in
  // task 0. Every element's sum is within one task and the regularisation cost is summed by unit:
  // the split changes no result. The work is per feature, so the units are split evenly, except
  // on two threads that both run: there the boundary follows the two threads' busy times (thread 0
  // also runs task 0, and a shared host often runs one core slower for a while).
  const std::size_t units1 = (K + kUpdateUnit - 1) / kUpdateUnit;
  const std::size_t featureTasks = std::min(units1, parallel ? threads() : 1);
  std::vector<std::size_t>& split = updateSplit_;
  split.resize(featureTasks + 1);
  for (std::size_t t = 0; t <= featureTasks; ++t) split[t] = splitStart(units1, featureTasks, t);
  // (Two update tasks on two threads: the pool pins tasks 0 and 1 to thread 0, task 2 to thread 1.)
  const bool balancing = featureTasks == 2 && threads() == 2 && pool_ && pool_->running() >= 2;
  if (balancing) {
    if (!(updateBoundary_ > 0)) updateBoundary_ = static_cast<double>(split[1]);
    split[1] = std::clamp<std::size_t>(static_cast<std::size_t>(std::lround(updateBoundary_)), 1, units1 - 1);
  }
  double taskBusy[3] = {}, unitsBusy[2] = {};
  const StepRule<T> rule{l1 != 0 || l2 != 0, static_cast<T>(l1), static_cast<T>(l2), step != nullptr,
                         static_cast<T>(step ? step->eta : 0), static_cast<T>(step ? step->alpha : 0)};
  RegSums otherLayers;
  unitSums_.resize(units1);
  runTasks(
      featureTasks + 1,
      [&](std::size_t task) {
        struct Busy {
          double* seconds;
          std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
          ~Busy() {
            if (seconds) *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
          }
        } timing{balancing ? &taskBusy[task] : nullptr};
        if (task == 0) {
          for (std::size_t l = 1; l < L; ++l)
            otherLayers += regSums(weights[l] + 1, units(l + 1), units(l) + 1, units(l));
          for (const auto& part : gradParts_)
            for (std::size_t l = 0; l < L; ++l) {
              T* g = grads_[l].data();
              const T* q = part[l].data();
              if (l > 0) {
                for (std::size_t k = 0, n = grads_[l].size(); k < n; ++k) g[k] += q[k];
              } else {
                for (std::size_t o = 0; o < H; ++o) g[o * stride] += q[o * stride];
              }
            }
          return smallUpdate();
        }
        const std::size_t t = task - 1;
        // Regularisation and update in the transposed layout, with the regularisation cost's sums
        // of the weights before it, unit by unit.
        const auto started = std::chrono::steady_clock::now();
        for (std::size_t u = split[t]; u < split[t + 1]; ++u) {
          const std::size_t f0 = u * kUpdateUnit, f1 = std::min(K, f0 + kUpdateUnit);
          // The parts' sums in order, the last one added in the step itself, which stores the sum
          // only when it takes no step: a step reads the sums' rows (half of them written by the
          // other core) and writes none of them.
          T* g = g1T_.data() + f0 * ld;
          const T* last = nullptr;
          for (std::size_t i = 0; i < g1TParts_.size(); ++i) {
            const T* q = g1TParts_[i].data() + f0 * ld;
            if (i + 1 == g1TParts_.size()) {
              last = q;
              break;
            }
            for (std::size_t k = 0, n = (f1 - f0) * ld; k < n; ++k) g[k] += q[k];
          }
          unitSums_[u] = regularisedStep(isa_, f1 - f0, H, ld, w1T_.data() + f0 * ld, g, last,
                                         prev1T_.data() + f0 * ld, rule);
        }
        if (balancing) unitsBusy[t] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      },
      true);
  if (balancing && unitsBusy[0] > 0 && unitsBusy[1] > 0) {
    // Half of the move (in units, at the average time per unit) that would even the threads out.
    const double perUnit = (unitsBusy[0] + unitsBusy[1]) / static_cast<double>(units1);
    const double ahead = taskBusy[0] + taskBusy[1] - taskBusy[2];  // thread 0's extra time
    updateBoundary_ = std::clamp(static_cast<double>(split[1]) - 0.25 * ahead / perUnit, 1.0,
                                 static_cast<double>(units1 - 1));
  }
  for (std::size_t u = 0; u < units1; ++u) sums += unitSums_[u];
  sums += otherLayers;
  if (!step) {
    // The gradient in the weights' layout.
    T* g = grads_[0].data();
    for (std::size_t j0 = 0; j0 < K; j0 += kTransposeBlock) {
      const std::size_t j1 = std::min(K, j0 + kTransposeBlock);
      for (std::size_t u = 0; u < H; ++u)
        for (std::size_t j = j0; j < j1; ++j) g[u * stride + 1 + j] = g1T_[j * ld + u];
    }
  }
  return cost + ((l1 / 2) * sums.abs + (l2 / 2) * sums.sq);
}

template <typename T, typename X>
std::size_t Trainer<T, X>::epoch(T* const* weights, T* const* prevDelta, const int32_t* order, std::size_t n,
                                 std::size_t minibatches, const StepParams& params, double* costs,
                                 const int32_t* stop) {
  const SubnormalsFlushed flushed;
  // The pool spins longer until this call returns (or throws).
  struct SpinGuard {
    ThreadPool* pool;
    explicit SpinGuard(ThreadPool* p) : pool(p) {
      if (pool) pool->setSpin(kEpochSpin);
    }
    ~SpinGuard() {
      if (pool) pool->setSpin(ThreadPool::kDefaultSpin);
    }
  } spin(pool_.get());
  // Rows copied ahead are for this call's next minibatch only.
  struct AheadGuard {
    std::vector<Ahead>& ahead;
    explicit AheadGuard(std::vector<Ahead>& a) : ahead(a) { ahead.assign(kGradientParts, Ahead{}); }
    ~AheadGuard() { ahead.assign(kGradientParts, Ahead{}); }
  } aheadGuard{ahead_};
  prepare();
  reserve((n + minibatches - 1) / minibatches, true);
  packWeights(weights, prevDelta);
  std::size_t b = 0;
  for (; b < minibatches; ++b) {
    if (stop && __atomic_load_n(stop, __ATOMIC_ACQUIRE) != 0) break;
    const std::size_t start = splitStart(n, minibatches, b);
    const std::size_t end = splitStart(n, minibatches, b + 1);
    const bool last = b + 1 == minibatches;
    costs[b] = gradient(weights, order + start, end - start, params.l1, params.l2, prevDelta, &params,
                        last ? nullptr : order + end, last ? 0 : splitStart(n, minibatches, b + 2) - end);
  }
  unpackWeights(weights, prevDelta);
  return b;
}

template <typename T, typename X>
double Trainer<T, X>::costAndGradient(T* const* weights, const int32_t* order, std::size_t n, double l1, double l2,
                                      T* const* grads) {
  const SubnormalsFlushed flushed;
  prepare();
  reserve(n, true);
  packWeights(weights, nullptr);
  const double cost = gradient(weights, order, n, l1, l2, nullptr, nullptr);
  for (std::size_t l = 0; l < layers(); ++l) std::copy(grads_[l].begin(), grads_[l].end(), grads[l]);
  return cost;
}

template <typename T, typename X>
void Trainer<T, X>::outputLogits(T* const* weights, T* out) {
  const SubnormalsFlushed flushed;
  prepare();
  packWeights(weights, nullptr);
  outputLogitsPacked(weights, out);
}

template <typename T, typename X>
void Trainer<T, X>::pack(T* const* weights) {
  // The input may turn out sparse or dense from call to call: keep layer 1 in both layouts.
  packAlways_ = true;
  prepare();
  packWeights(weights, nullptr);
}

template <typename T, typename X>
void Trainer<T, X>::setInput(Input<X> x) {
  x_ = x;
  rowStart_.clear();
  measureInput(false);
  prepared_ = true;
}

template <typename T, typename X>
void Trainer<T, X>::outputLogitsPacked(T* const* weights, T* out, int32_t* labels) {
  const SubnormalsFlushed flushed;
  const std::size_t n = x_.rows, nOutput = units(layers()), ld = ld_[layers()];
  if (n == 0) return;
  packSmallLayers(weights);
  // One pass over the whole input: each task takes a contiguous range of rows through the layers
  // kPredictRows at a time, in its own rows of the activations, and writes its outputs itself.
  const std::size_t tasks = std::min(tasksFor(n * units(0) * units(1) / 4), n);
  const std::size_t piece = std::min(kPredictRows, (n + tasks - 1) / tasks);
  reserve(tasks * piece, false);
  runTasks(tasks, [&](std::size_t t) {
    const std::size_t a0 = t * piece;  // the task's rows of the activations
    for (std::size_t i0 = splitStart(n, tasks, t), end = splitStart(n, tasks, t + 1); i0 < end; i0 += piece) {
      const std::size_t m = std::min(piece, end - i0);
      // Activation row a0 + r holds input row i0 + r: row0 = i0 - a0 (modulo 2^64, which
      // sampleRow's row0 + r undoes exactly).
      samplePass(t, weights, nullptr, i0 - a0, a0, a0 + m, false);
      const T* z = logits_.data() + a0 * ld;
      for (std::size_t r = 0; r < m; ++r) {
        const T* zr = z + r * ld;
        if (out) std::copy(zr, zr + nOutput, out + (i0 + r) * nOutput);
        if (labels) {
          // The first largest value (ties go to the lower label; comparisons with NaN are
          // false), exactly as the TypeScript argmax.
          std::size_t best = 0;
          T bestValue = zr[0];
          for (std::size_t o = 1; o < nOutput; ++o) {
            if (zr[o] > bestValue) {
              bestValue = zr[o];
              best = o;
            }
          }
          labels[i0 + r] = static_cast<int32_t>(best);
        }
      }
    }
  });
}

template class Trainer<double, double>;
template class Trainer<double, float>;
template class Trainer<double, uint8_t>;
template class Trainer<float, double>;
template class Trainer<float, float>;
template class Trainer<float, uint8_t>;

}  // namespace mlp
