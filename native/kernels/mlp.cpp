#include "mlp.h"

#include <algorithm>
#include <cmath>

#include "simd.h"

namespace mlp {
namespace {

template <typename T>
inline T sigmoid(T z) {
  return T(1) / (T(1) + std::exp(-z));
}

// log(1 + e^x) without overflow: the cross-entropy from a pre-activation, never log(0).
inline double softplus(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }

template <typename T>
inline T signOf(T v) {
  return static_cast<T>((v > T(0)) - (v < T(0)));
}

// Work below this many multiply-adds per task is not worth waking another thread for.
constexpr std::size_t kMinWorkPerTask = 1 << 16;
// Features per block of the layer-1 gradient: 64 rows of 56 doubles stay in a 32 KiB L1.
constexpr std::size_t kFeatureBlock = 64;
// Compress the input when at most this fraction of its elements is non-zero.
constexpr double kSparseDensity = 0.5;

}  // namespace

template <typename T, typename X>
Trainer<T, X>::Trainer(std::vector<int32_t> sizes, Input<X> x, const int32_t* labels, unsigned threads, Isa isa,
                       bool compress)
    : sizes_(std::move(sizes)), x_(x), labels_(labels), isa_(isa) {
  ld_.resize(sizes_.size());
  for (std::size_t l = 0; l < sizes_.size(); ++l) ld_[l] = padded(units(l));
  const std::size_t n = x_.rows * x_.cols;
  std::size_t nonZeros = 0;
  for (std::size_t i = 0; i < n; ++i) nonZeros += x_.data[i] != X(0);
  sparse_ = static_cast<double>(nonZeros) <= kSparseDensity * static_cast<double>(n);
  if (sparse_ && compress) {
    rowStart_.resize(x_.rows + 1);
    nzCol_.resize(nonZeros);
    nzVal_.resize(nonZeros);
    std::size_t k = 0;
    for (std::size_t r = 0; r < x_.rows; ++r) {
      rowStart_[r] = k;
      const X* src = x_.data + r * x_.cols;
      for (std::size_t c = 0; c < x_.cols; ++c) {
        if (src[c] != X(0)) {
          nzCol_[k] = static_cast<uint32_t>(c);
          nzVal_[k] = static_cast<V>(src[c]);
          ++k;
        }
      }
    }
    rowStart_[x_.rows] = k;
  }
  threads = std::max(1u, threads);
  if (threads > 1) pool_ = std::make_unique<ThreadPool>(threads);
  cursors_.resize(threads);
  gemm_.resize(threads);
}

// The non-zeros of the m rows about to be used: views into the whole input's index when there is
// one, otherwise compressed now into a buffer for just these rows.
template <typename T, typename X>
void Trainer<T, X>::compressRows(const int32_t* rows, std::size_t row0, std::size_t m) {
  views_.resize(m);
  const auto sampleRow = [&](std::size_t r) { return rows ? static_cast<std::size_t>(rows[r]) : row0 + r; };
  if (!rowStart_.empty()) {
    for (std::size_t r = 0; r < m; ++r) {
      const std::size_t i = sampleRow(r), s = rowStart_[i];
      views_[r] = RowView{nzCol_.data() + s, nzVal_.data() + s, rowStart_[i + 1] - s};
    }
    return;
  }
  chunkCol_.resize(m * x_.cols);
  chunkVal_.resize(m * x_.cols);
  std::size_t k = 0;
  for (std::size_t r = 0; r < m; ++r) {
    const X* src = x_.data + sampleRow(r) * x_.cols;
    const std::size_t start = k;
    for (std::size_t c = 0; c < x_.cols; ++c) {
      if (src[c] != X(0)) {
        chunkCol_[k] = static_cast<uint32_t>(c);
        chunkVal_[k] = static_cast<V>(src[c]);
        ++k;
      }
    }
    views_[r] = RowView{chunkCol_.data() + start, chunkVal_.data() + start, k - start};
  }
}

template <typename T, typename X>
std::size_t Trainer<T, X>::tasksFor(std::size_t work) const {
  const std::size_t threads = pool_ ? pool_->threads() : 1;
  return std::max<std::size_t>(1, std::min(threads, work / kMinWorkPerTask));
}

template <typename T, typename X>
void Trainer<T, X>::reserve(std::size_t m) {
  if (m <= capacity_) return;
  const std::size_t L = layers();
  acts_.assign(L + 1, {});
  deltas_.assign(L + 1, {});
  for (std::size_t l = 1; l <= L; ++l) {
    acts_[l].assign(m * ld_[l], T(0));
    deltas_[l].assign(m * ld_[l], T(0));
  }
  logits_.assign(m * ld_[L], T(0));
  for (auto& c : cursors_) c.assign(m, 0);
  grads_.assign(L, {});
  for (std::size_t l = 0; l < L; ++l) grads_[l].assign(units(l + 1) * (units(l) + 1), T(0));
  w1T_.assign(x_.cols * ld_[1], T(0));
  g1T_.assign(x_.cols * ld_[1], T(0));
  bias1_.assign(ld_[1], T(0));
  capacity_ = m;
}

// Layer 1's weights transposed (features x ld_1, zero padding), so one feature's weights for
// all units are contiguous: the vector the sparse kernel streams for each non-zero.
template <typename T, typename X>
void Trainer<T, X>::packFirstLayer(const T* w1) {
  const std::size_t H = units(1), K = units(0), ld = ld_[1];
  for (std::size_t u = 0; u < H; ++u) {
    const T* src = w1 + u * (K + 1);
    bias1_[u] = src[0];
    for (std::size_t j = 0; j < K; ++j) w1T_[j * ld + u] = src[1 + j];
  }
}

template <typename T, typename X>
void Trainer<T, X>::forward(T* const* weights, const int32_t* rows, std::size_t row0, std::size_t m) {
  const std::size_t L = layers();

  // Layer 1 (always hidden): z = W1 . [1, x]; a = sigmoid(z). Samples are independent, so they are
  // split across threads.
  {
    const std::size_t H = units(1), K = units(0), ld = ld_[1];
    T* a1 = acts_[1].data();
    const T* w1 = weights[0];
    if (sparse_) {
      packFirstLayer(w1);
      compressRows(rows, row0, m);
      const std::size_t tasks = tasksFor(m * K * H / 4);
      auto job = [&](std::size_t t) {
        for (std::size_t r = splitStart(m, tasks, t); r < splitStart(m, tasks, t + 1); ++r) {
          T* z = a1 + r * ld;
          std::copy(bias1_.begin(), bias1_.end(), z);
          const RowView& v = views_[r];
          sparseGatherAxpy(isa_, v.col, v.val, v.nnz, w1T_.data(), ld, z, ld);
          for (std::size_t u = 0; u < H; ++u) z[u] = sigmoid(z[u]);
          for (std::size_t u = H; u < ld; ++u) z[u] = T(0);
        }
      };
      if (pool_) pool_->run(tasks, job); else job(0);
    } else {
      const auto wT = dense(w1 + 1, 1, static_cast<std::ptrdiff_t>(K + 1));
      const auto a = rows ? dense(x_.data, static_cast<std::ptrdiff_t>(x_.cols), 1, rows)
                          : dense(x_.data + row0 * x_.cols, static_cast<std::ptrdiff_t>(x_.cols), 1);
      gemm(isa_, m, H, K, a, wT, a1, ld, false, gemm_[0]);
      for (std::size_t r = 0; r < m; ++r)
        for (std::size_t u = 0; u < H; ++u) a1[r * ld + u] = sigmoid(a1[r * ld + u] + w1[u * (K + 1)]);
    }
  }

  for (std::size_t l = 2; l <= L; ++l) {
    const std::size_t nIn = units(l - 1), nOut = units(l), ld = ld_[l];
    const T* w = weights[l - 1];
    T* z = (l == L) ? logits_.data() : acts_[l].data();
    const auto a = dense<T>(acts_[l - 1].data(), static_cast<std::ptrdiff_t>(ld_[l - 1]), 1);
    const auto wT = dense(w + 1, 1, static_cast<std::ptrdiff_t>(nIn + 1));
    gemm(isa_, m, nOut, nIn, a, wT, z, ld, false, gemm_[0]);
    T* act = acts_[l].data();
    for (std::size_t r = 0; r < m; ++r) {
      for (std::size_t o = 0; o < nOut; ++o) {
        const T v = z[r * ld + o] + w[o * (nIn + 1)];
        z[r * ld + o] = v;
        act[r * ld + o] = sigmoid(v);
      }
    }
  }
}

template <typename T, typename X>
double Trainer<T, X>::gradient(T* const* weights, const int32_t* rows, std::size_t m, double l1, double l2) {
  const std::size_t L = layers();
  forward(weights, rows, 0, m);

  // Output layer: cross-entropy from pre-activations, and sigma = a - y.
  const std::size_t nOutput = units(L), ldOut = ld_[L];
  const T* aOut = acts_[L].data();
  T* dOut = deltas_[L].data();
  double cost = 0;
  for (std::size_t r = 0; r < m; ++r) {
    const std::size_t label = static_cast<std::size_t>(labels_[rows[r]]);
    for (std::size_t o = 0; o < nOutput; ++o) {
      const std::size_t k = r * ldOut + o;
      const double z = static_cast<double>(logits_[k]);
      if (o == label) {
        cost += softplus(-z);
        dOut[k] = aOut[k] - T(1);
      } else {
        cost += softplus(z);
        dOut[k] = aOut[k];
      }
    }
  }
  // The seed's regularisation cost over the non-bias weights of every layer.
  double absSum = 0, sqSum = 0;
  for (std::size_t l = 0; l < L; ++l) {
    const std::size_t nIn = units(l);
    const T* w = weights[l];
    for (std::size_t o = 0; o < units(l + 1); ++o)
      for (std::size_t c = 1; c <= nIn; ++c) {
        const double v = static_cast<double>(w[o * (nIn + 1) + c]);
        absSum += std::fabs(v);
        sqSum += v * v;
      }
  }
  cost += (l1 / 2) * absSum + (l2 / 2) * sqSum;

  for (std::size_t l = L; l >= 1; --l) {
    const std::size_t nIn = units(l - 1), nUnits = units(l), stride = nIn + 1, ld = ld_[l];
    const T* d = deltas_[l].data();
    const T* w = weights[l - 1];
    T* g = grads_[l - 1].data();
    // Bias column: the sum of the deltas over the minibatch, in sample order.
    for (std::size_t o = 0; o < nUnits; ++o) g[o * stride] = T(0);
    for (std::size_t r = 0; r < m; ++r)
      for (std::size_t o = 0; o < nUnits; ++o) g[o * stride] += d[r * ld + o];

    if (l > 1) {
      // grad[:, 1:] = sigma^T . a_prev
      const auto dT = dense<T>(d, 1, static_cast<std::ptrdiff_t>(ld));
      const auto a = dense<T>(acts_[l - 1].data(), static_cast<std::ptrdiff_t>(ld_[l - 1]), 1);
      gemm(isa_, nUnits, nIn, m, dT, a, g + 1, stride, false, gemm_[0]);
      // sigma_prev = (sigma . W[:, 1:]) * a_prev * (1 - a_prev)
      T* dPrev = deltas_[l - 1].data();
      const std::size_t ldPrev = ld_[l - 1];
      const auto dm = dense<T>(d, static_cast<std::ptrdiff_t>(ld), 1);
      const auto wm = dense<T>(w + 1, static_cast<std::ptrdiff_t>(stride), 1);
      gemm(isa_, m, nIn, nUnits, dm, wm, dPrev, ldPrev, false, gemm_[0]);
      const T* aPrev = acts_[l - 1].data();
      for (std::size_t r = 0; r < m; ++r)
        for (std::size_t c = 0; c < nIn; ++c) {
          const T av = aPrev[r * ldPrev + c];
          dPrev[r * ldPrev + c] *= av * (T(1) - av);
        }
    } else if (sparse_) {
      // grad1[:, 1:]^T = sum over samples of x_r^T sigma_r. Features are taken in blocks whose
      // gradient rows stay in L1 while every sample of the minibatch adds into them; each task
      // owns whole blocks and adds the samples in order, so the sums do not depend on the threads.
      const std::size_t K = nIn;
      const std::size_t blocks = (K + kFeatureBlock - 1) / kFeatureBlock;
      const std::size_t tasks = std::min(blocks, tasksFor(m * K * nUnits / 4));
      auto job = [&](std::size_t t) {
        const std::size_t b0 = splitStart(blocks, tasks, t), b1 = splitStart(blocks, tasks, t + 1);
        const std::size_t j0 = b0 * kFeatureBlock, jEnd = std::min(K, b1 * kFeatureBlock);
        std::fill(g1T_.begin() + j0 * ld, g1T_.begin() + jEnd * ld, T(0));
        std::vector<std::size_t>& cursor = cursors_[t];
        for (std::size_t r = 0; r < m; ++r) {
          const RowView& v = views_[r];
          cursor[r] = static_cast<std::size_t>(std::lower_bound(v.col, v.col + v.nnz, static_cast<uint32_t>(j0)) - v.col);
        }
        for (std::size_t b = b0; b < b1; ++b) {
          const uint32_t j1 = static_cast<uint32_t>(std::min(K, (b + 1) * kFeatureBlock));
          for (std::size_t r = 0; r < m; ++r) {
            const RowView& v = views_[r];
            const std::size_t c = cursor[r];
            std::size_t e = c;
            while (e < v.nnz && v.col[e] < j1) ++e;
            if (e > c) sparseScatterAxpy(isa_, v.col + c, v.val + c, e - c, d + r * ld, g1T_.data(), ld, ld);
            cursor[r] = e;
          }
        }
      };
      if (pool_) pool_->run(tasks, job); else job(0);
      for (std::size_t u = 0; u < nUnits; ++u)
        for (std::size_t j = 0; j < K; ++j) g[u * stride + 1 + j] = g1T_[j * ld + u];
    } else {
      const auto dT = dense<T>(d, 1, static_cast<std::ptrdiff_t>(ld));
      const auto a = dense(x_.data, static_cast<std::ptrdiff_t>(x_.cols), 1, rows);
      gemm(isa_, nUnits, nIn, m, dT, a, g + 1, stride, false, gemm_[0]);
    }
    // Regularisation on the non-bias columns, in the seed's order: + l2*w, then + l1*sign(w).
    if (l1 != 0 || l2 != 0) {
      const T tl1 = static_cast<T>(l1), tl2 = static_cast<T>(l2);
      for (std::size_t o = 0; o < nUnits; ++o)
        for (std::size_t c = 1; c < stride; ++c) {
          const std::size_t k = o * stride + c;
          g[k] = g[k] + tl2 * w[k] + tl1 * signOf(w[k]);
        }
    }
  }
  return cost;
}

template <typename T, typename X>
void Trainer<T, X>::update(T* const* weights, T* const* prevDelta, double eta, double alpha) {
  const T teta = static_cast<T>(eta), talpha = static_cast<T>(alpha);
  for (std::size_t l = 0; l < layers(); ++l) {
    T* w = weights[l];
    T* prev = prevDelta[l];
    const T* g = grads_[l].data();
    const std::size_t n = grads_[l].size();
    for (std::size_t k = 0; k < n; ++k) {
      const T delta = teta * g[k];
      w[k] -= delta + talpha * prev[k];
      prev[k] = delta;
    }
  }
}

template <typename T, typename X>
std::size_t Trainer<T, X>::epoch(T* const* weights, T* const* prevDelta, const int32_t* order, std::size_t n,
                                 std::size_t minibatches, const StepParams& params, double* costs,
                                 const int32_t* stop) {
  reserve((n + minibatches - 1) / minibatches);
  for (std::size_t b = 0; b < minibatches; ++b) {
    if (stop && __atomic_load_n(stop, __ATOMIC_ACQUIRE) != 0) return b;
    const std::size_t start = splitStart(n, minibatches, b);
    const std::size_t end = splitStart(n, minibatches, b + 1);
    costs[b] = gradient(weights, order + start, end - start, params.l1, params.l2);
    update(weights, prevDelta, params.eta, params.alpha);
  }
  return minibatches;
}

template <typename T, typename X>
double Trainer<T, X>::costAndGradient(T* const* weights, const int32_t* order, std::size_t n, double l1, double l2,
                                      T* const* grads) {
  reserve(n);
  const double cost = gradient(weights, order, n, l1, l2);
  for (std::size_t l = 0; l < layers(); ++l) std::copy(grads_[l].begin(), grads_[l].end(), grads[l]);
  return cost;
}

template <typename T, typename X>
void Trainer<T, X>::outputLogits(T* const* weights, T* out) {
  constexpr std::size_t chunk = 1024;
  reserve(std::min(chunk, x_.rows));
  const std::size_t nOutput = units(layers()), ld = ld_[layers()];
  for (std::size_t r0 = 0; r0 < x_.rows; r0 += chunk) {
    const std::size_t m = std::min(chunk, x_.rows - r0);
    forward(weights, nullptr, r0, m);
    for (std::size_t r = 0; r < m; ++r)
      std::copy(logits_.begin() + r * ld, logits_.begin() + r * ld + nOutput, out + (r0 + r) * nOutput);
  }
}

template class Trainer<double, double>;
template class Trainer<double, float>;
template class Trainer<double, uint8_t>;
template class Trainer<float, double>;
template class Trainer<float, float>;
template class Trainer<float, uint8_t>;

}  // namespace mlp
