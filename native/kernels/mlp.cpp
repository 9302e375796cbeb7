#include "mlp.h"

#include <algorithm>
#include <cmath>

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

template <typename T>
double regularisationCost(const Net<T>& net, double l1, double l2) {
  double abs = 0, sq = 0;
  for (std::size_t l = 0; l < net.layers; ++l) {
    const std::size_t nIn = static_cast<std::size_t>(net.sizes[l]);
    const std::size_t nOut = static_cast<std::size_t>(net.sizes[l + 1]);
    const T* w = net.weights[l];
    for (std::size_t o = 0; o < nOut; ++o) {
      const T* row = w + o * (nIn + 1) + 1;
      for (std::size_t c = 0; c < nIn; ++c) {
        const double v = static_cast<double>(row[c]);
        abs += std::fabs(v);
        sq += v * v;
      }
    }
  }
  return (l1 / 2) * abs + (l2 / 2) * sq;
}

}  // namespace

template <typename T>
Workspace<T>::Workspace(const Net<T>& net, std::size_t maxRows)
    : acts_(net.layers + 1), deltas_(net.layers + 1), grads_(net.layers) {
  for (std::size_t l = 1; l <= net.layers; ++l) {
    acts_[l].resize(maxRows * static_cast<std::size_t>(net.sizes[l]));
    deltas_[l].resize(maxRows * static_cast<std::size_t>(net.sizes[l]));
  }
  for (std::size_t l = 0; l < net.layers; ++l)
    grads_[l].resize(static_cast<std::size_t>(net.sizes[l + 1]) * (static_cast<std::size_t>(net.sizes[l]) + 1));
  logits_.resize(maxRows * static_cast<std::size_t>(net.sizes[net.layers]));
}

// Rows of layer 0 come from the data set: through `rows` (the shuffled order) when given,
// otherwise the contiguous block starting at row0.
template <typename T>
template <typename X>
void Workspace<T>::forward(const Net<T>& net, const Input<X>& x, const int32_t* rows, std::size_t row0,
                           std::size_t m) {
  const std::size_t L = net.layers;
  for (std::size_t l = 1; l <= L; ++l) {
    const std::size_t nIn = static_cast<std::size_t>(net.sizes[l - 1]);
    const std::size_t nOut = static_cast<std::size_t>(net.sizes[l]);
    const T* w = net.weights[l - 1];
    T* z = (l == L) ? logits_.data() : acts_[l].data();
    // z = a_prev . W[:, 1:]^T, then + bias and the sigmoid.
    const auto wT = dense(w + 1, 1, static_cast<std::ptrdiff_t>(nIn + 1));
    if (l == 1) {
      const auto a = dense(x.data + row0 * x.cols, static_cast<std::ptrdiff_t>(x.cols), 1, rows);
      gemm(m, nOut, nIn, a, wT, z, nOut, false, gemm_);
    } else {
      const auto a = dense<T>(acts_[l - 1].data(), static_cast<std::ptrdiff_t>(nIn), 1);
      gemm(m, nOut, nIn, a, wT, z, nOut, false, gemm_);
    }
    T* act = acts_[l].data();
    for (std::size_t r = 0; r < m; ++r) {
      for (std::size_t o = 0; o < nOut; ++o) {
        const T v = z[r * nOut + o] + w[o * (nIn + 1)];
        z[r * nOut + o] = v;
        act[r * nOut + o] = sigmoid(v);
      }
    }
  }
}

template <typename T>
template <typename X>
double Workspace<T>::minibatchGradient(const Net<T>& net, const Input<X>& x, const int32_t* labels,
                                       const int32_t* rows, std::size_t m, double l1, double l2) {
  const std::size_t L = net.layers;
  forward(net, x, rows, 0, m);

  const std::size_t nOutput = static_cast<std::size_t>(net.sizes[L]);
  const T* aOut = acts_[L].data();
  T* dOut = deltas_[L].data();
  double cost = 0;
  for (std::size_t r = 0; r < m; ++r) {
    const std::size_t label = static_cast<std::size_t>(labels[rows[r]]);
    for (std::size_t o = 0; o < nOutput; ++o) {
      const std::size_t k = r * nOutput + o;
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
  cost += regularisationCost(net, l1, l2);

  for (std::size_t l = L; l >= 1; --l) {
    const std::size_t nIn = static_cast<std::size_t>(net.sizes[l - 1]);
    const std::size_t nUnits = static_cast<std::size_t>(net.sizes[l]);
    const std::size_t stride = nIn + 1;
    const T* d = deltas_[l].data();
    const T* w = net.weights[l - 1];
    T* g = grads_[l - 1].data();
    // Bias column: the sum of the deltas over the minibatch, in sample order.
    for (std::size_t o = 0; o < nUnits; ++o) g[o * stride] = T(0);
    for (std::size_t r = 0; r < m; ++r)
      for (std::size_t o = 0; o < nUnits; ++o) g[o * stride] += d[r * nUnits + o];
    // grad[:, 1:] = sigma^T . a_prev
    const auto dT = dense<T>(d, 1, static_cast<std::ptrdiff_t>(nUnits));
    if (l == 1) {
      const auto a = dense(x.data, static_cast<std::ptrdiff_t>(x.cols), 1, rows);
      gemm(nUnits, nIn, m, dT, a, g + 1, stride, false, gemm_);
    } else {
      const auto a = dense<T>(acts_[l - 1].data(), static_cast<std::ptrdiff_t>(nIn), 1);
      gemm(nUnits, nIn, m, dT, a, g + 1, stride, false, gemm_);
    }
    if (l > 1) {
      // sigma_prev = (sigma . W[:, 1:]) * a_prev * (1 - a_prev)
      T* dPrev = deltas_[l - 1].data();
      const auto dm = dense<T>(d, static_cast<std::ptrdiff_t>(nUnits), 1);
      const auto wm = dense<T>(w + 1, static_cast<std::ptrdiff_t>(stride), 1);
      gemm(m, nIn, nUnits, dm, wm, dPrev, nIn, false, gemm_);
      const T* aPrev = acts_[l - 1].data();
      for (std::size_t k = 0; k < m * nIn; ++k) dPrev[k] *= aPrev[k] * (T(1) - aPrev[k]);
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

template <typename T>
void Workspace<T>::applyUpdate(const Net<T>& net, double eta, double alpha) {
  const T teta = static_cast<T>(eta), talpha = static_cast<T>(alpha);
  for (std::size_t l = 0; l < net.layers; ++l) {
    T* w = net.weights[l];
    T* prev = net.prevDelta[l];
    const T* g = grads_[l].data();
    const std::size_t n = grads_[l].size();
    for (std::size_t k = 0; k < n; ++k) {
      const T delta = teta * g[k];
      w[k] -= delta + talpha * prev[k];
      prev[k] = delta;
    }
  }
}

template <typename T>
template <typename X>
void Workspace<T>::outputLogits(const Net<T>& net, const Input<X>& x, std::size_t row0, std::size_t m, T* out) {
  forward(net, x, nullptr, row0, m);
  const std::size_t nOutput = static_cast<std::size_t>(net.sizes[net.layers]);
  std::copy(logits_.begin(), logits_.begin() + static_cast<std::ptrdiff_t>(m * nOutput), out);
}

template <typename T, typename X>
std::size_t trainEpoch(const Net<T>& net, const Input<X>& x, const int32_t* labels, const int32_t* order,
                       std::size_t n, std::size_t minibatches, const StepParams& params, double* costs,
                       const int32_t* stop) {
  Workspace<T> ws(net, (n + minibatches - 1) / minibatches);
  for (std::size_t b = 0; b < minibatches; ++b) {
    if (stop && __atomic_load_n(stop, __ATOMIC_ACQUIRE) != 0) return b;
    const std::size_t start = splitStart(n, minibatches, b);
    const std::size_t end = splitStart(n, minibatches, b + 1);
    costs[b] = ws.minibatchGradient(net, x, labels, order + start, end - start, params.l1, params.l2);
    ws.applyUpdate(net, params.eta, params.alpha);
  }
  return minibatches;
}

template <typename T, typename X>
double costAndGradient(const Net<T>& net, const Input<X>& x, const int32_t* labels, const int32_t* order,
                       std::size_t n, double l1, double l2, T* const* grads) {
  Workspace<T> ws(net, n);
  const double cost = ws.minibatchGradient(net, x, labels, order, n, l1, l2);
  for (std::size_t l = 0; l < net.layers; ++l) std::copy(ws.grad(l).begin(), ws.grad(l).end(), grads[l]);
  return cost;
}

template <typename T, typename X>
void outputLogits(const Net<T>& net, const Input<X>& x, T* out) {
  constexpr std::size_t chunk = 512;
  Workspace<T> ws(net, std::min(chunk, x.rows));
  const std::size_t nOutput = static_cast<std::size_t>(net.sizes[net.layers]);
  for (std::size_t r = 0; r < x.rows; r += chunk) {
    const std::size_t m = std::min(chunk, x.rows - r);
    ws.outputLogits(net, x, r, m, out + r * nOutput);
  }
}

#define MLP_INSTANTIATE(T, X)                                                                                    \
  template std::size_t trainEpoch<T, X>(const Net<T>&, const Input<X>&, const int32_t*, const int32_t*,         \
                                        std::size_t, std::size_t, const StepParams&, double*, const int32_t*); \
  template double costAndGradient<T, X>(const Net<T>&, const Input<X>&, const int32_t*, const int32_t*,          \
                                        std::size_t, double, double, T* const*);                                 \
  template void outputLogits<T, X>(const Net<T>&, const Input<X>&, T*);

MLP_INSTANTIATE(double, double)
MLP_INSTANTIATE(double, float)
MLP_INSTANTIATE(double, uint8_t)
MLP_INSTANTIATE(float, double)
MLP_INSTANTIATE(float, float)
MLP_INSTANTIATE(float, uint8_t)

}  // namespace mlp
