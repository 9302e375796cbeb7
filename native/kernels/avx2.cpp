// AVX2 + FMA versions of the inner kernels. Each function carries its own target attribute, so
// this file compiles in a baseline build and is only called when the CPU reports AVX2 and FMA.
#include "simd.h"

#if MLP_HAVE_AVX2

#include <immintrin.h>

#include "gemm.h"

// The vector helpers are always inlined into their AVX2 callers (no AVX values cross a call).
#define MLP_AVX2_INLINE __attribute__((target("avx2,fma"), always_inline)) inline

namespace mlp {
namespace avx2 {
namespace {

// One vector type per element type, with the few operations the kernels use.
template <typename T>
struct Vec;

template <>
struct Vec<double> {
  using type = __m256d;
  static constexpr std::size_t width = 4;
  MLP_AVX2_INLINE static type load(const double* p) { return _mm256_loadu_pd(p); }
  MLP_AVX2_INLINE static void store(double* p, type v) { _mm256_storeu_pd(p, v); }
  MLP_AVX2_INLINE static type set1(double v) { return _mm256_set1_pd(v); }
  MLP_AVX2_INLINE static type zero() { return _mm256_setzero_pd(); }
  MLP_AVX2_INLINE static type fma(type a, type b, type c) { return _mm256_fmadd_pd(a, b, c); }
  MLP_AVX2_INLINE static type add(type a, type b) { return _mm256_add_pd(a, b); }
};

template <>
struct Vec<float> {
  using type = __m256;
  static constexpr std::size_t width = 8;
  MLP_AVX2_INLINE static type load(const float* p) { return _mm256_loadu_ps(p); }
  MLP_AVX2_INLINE static void store(float* p, type v) { _mm256_storeu_ps(p, v); }
  MLP_AVX2_INLINE static type set1(float v) { return _mm256_set1_ps(v); }
  MLP_AVX2_INLINE static type zero() { return _mm256_setzero_ps(); }
  MLP_AVX2_INLINE static type fma(type a, type b, type c) { return _mm256_fmadd_ps(a, b, c); }
  MLP_AVX2_INLINE static type add(type a, type b) { return _mm256_add_ps(a, b); }
};

// NV accumulator vectors stay in registers while the row's non-zeros stream past.
template <typename T, typename V, std::size_t NV>
MLP_AVX2 void gatherTile(const uint32_t* col, const V* val, std::size_t nnz, const T* wT, std::size_t ldw, T* z) {
  using W = Vec<T>;
  typename W::type acc[NV];
  for (std::size_t i = 0; i < NV; ++i) acc[i] = W::load(z + i * W::width);
  for (std::size_t k = 0; k < nnz; ++k) {
    const typename W::type v = W::set1(static_cast<T>(val[k]));
    const T* w = wT + static_cast<std::size_t>(col[k]) * ldw;
    for (std::size_t i = 0; i < NV; ++i) acc[i] = W::fma(v, W::load(w + i * W::width), acc[i]);
  }
  for (std::size_t i = 0; i < NV; ++i) W::store(z + i * W::width, acc[i]);
}

template <typename T, typename V, std::size_t NV>
MLP_AVX2 void scatterTile(const uint32_t* col, const V* val, std::size_t nnz, const T* d, T* gT, std::size_t ldg) {
  using W = Vec<T>;
  typename W::type dv[NV];
  for (std::size_t i = 0; i < NV; ++i) dv[i] = W::load(d + i * W::width);
  for (std::size_t k = 0; k < nnz; ++k) {
    const typename W::type v = W::set1(static_cast<T>(val[k]));
    T* g = gT + static_cast<std::size_t>(col[k]) * ldg;
    for (std::size_t i = 0; i < NV; ++i) W::store(g + i * W::width, W::fma(v, dv[i], W::load(g + i * W::width)));
  }
}

// Widths are multiples of kPad; tiles of up to kMaxTile vectors (14 accumulators + 1 broadcast
// fit the 16 YMM registers).
constexpr std::size_t kMaxTile = 14;

#define MLP_TILE_SWITCH(KERNEL, NV, ...) \
  switch (NV) {                          \
    case 1: KERNEL<T, V, 1>(__VA_ARGS__); break;   \
    case 2: KERNEL<T, V, 2>(__VA_ARGS__); break;   \
    case 3: KERNEL<T, V, 3>(__VA_ARGS__); break;   \
    case 4: KERNEL<T, V, 4>(__VA_ARGS__); break;   \
    case 5: KERNEL<T, V, 5>(__VA_ARGS__); break;   \
    case 6: KERNEL<T, V, 6>(__VA_ARGS__); break;   \
    case 7: KERNEL<T, V, 7>(__VA_ARGS__); break;   \
    case 8: KERNEL<T, V, 8>(__VA_ARGS__); break;   \
    case 9: KERNEL<T, V, 9>(__VA_ARGS__); break;   \
    case 10: KERNEL<T, V, 10>(__VA_ARGS__); break; \
    case 11: KERNEL<T, V, 11>(__VA_ARGS__); break; \
    case 12: KERNEL<T, V, 12>(__VA_ARGS__); break; \
    case 13: KERNEL<T, V, 13>(__VA_ARGS__); break; \
    default: KERNEL<T, V, 14>(__VA_ARGS__); break; \
  }

}  // namespace

template <typename T, typename V>
MLP_AVX2 void sparseGatherAxpy(const uint32_t* col, const V* val, std::size_t nnz, const T* wT, std::size_t ldw, T* z,
                               std::size_t width) {
  for (std::size_t off = 0, vectors = width / Vec<T>::width; vectors > 0;) {
    const std::size_t nv = vectors > kMaxTile ? kMaxTile : vectors;
    MLP_TILE_SWITCH(gatherTile, nv, col, val, nnz, wT + off, ldw, z + off)
    off += nv * Vec<T>::width;
    vectors -= nv;
  }
}

template <typename T, typename V>
MLP_AVX2 void sparseScatterAxpy(const uint32_t* col, const V* val, std::size_t nnz, const T* d, T* gT,
                                std::size_t ldg, std::size_t width) {
  for (std::size_t off = 0, vectors = width / Vec<T>::width; vectors > 0;) {
    const std::size_t nv = vectors > kMaxTile ? kMaxTile : vectors;
    MLP_TILE_SWITCH(scatterTile, nv, col, val, nnz, d + off, gT + off, ldg)
    off += nv * Vec<T>::width;
    vectors -= nv;
  }
}

template <typename T>
MLP_AVX2 void gemmMicroKernel(std::size_t kc, const T* pa, const T* pb, T* c, std::size_t ldc, std::size_t mr,
                              std::size_t nr, bool accumulate) {
  using W = Vec<T>;
  constexpr std::size_t MR = Blocking<T>::MR, NR = Blocking<T>::NR, NV = NR / W::width;
  static_assert(NR % W::width == 0, "NR must be whole vectors");
  typename W::type acc[MR][NV];
  for (std::size_t i = 0; i < MR; ++i)
    for (std::size_t j = 0; j < NV; ++j) acc[i][j] = W::zero();
  for (std::size_t p = 0; p < kc; ++p) {
    typename W::type b[NV];
    for (std::size_t j = 0; j < NV; ++j) b[j] = W::load(pb + p * NR + j * W::width);
    for (std::size_t i = 0; i < MR; ++i) {
      const typename W::type a = W::set1(pa[p * MR + i]);
      for (std::size_t j = 0; j < NV; ++j) acc[i][j] = W::fma(a, b[j], acc[i][j]);
    }
  }
  if (mr == MR && nr == NR) {
    for (std::size_t i = 0; i < MR; ++i)
      for (std::size_t j = 0; j < NV; ++j) {
        T* p = c + i * ldc + j * W::width;
        W::store(p, accumulate ? W::add(W::load(p), acc[i][j]) : acc[i][j]);
      }
    return;
  }
  // Edge tile: spill to a buffer and copy the valid part.
  alignas(32) T tile[MR][NR];
  for (std::size_t i = 0; i < MR; ++i)
    for (std::size_t j = 0; j < NV; ++j) W::store(&tile[i][j * W::width], acc[i][j]);
  for (std::size_t i = 0; i < mr; ++i)
    for (std::size_t j = 0; j < nr; ++j) c[i * ldc + j] = accumulate ? c[i * ldc + j] + tile[i][j] : tile[i][j];
}

#define MLP_SPARSE_INSTANTIATE(T, V)                                                                                 \
  template void sparseGatherAxpy<T, V>(const uint32_t*, const V*, std::size_t, const T*, std::size_t, T*,           \
                                       std::size_t);                                                                 \
  template void sparseScatterAxpy<T, V>(const uint32_t*, const V*, std::size_t, const T*, T*, std::size_t,          \
                                        std::size_t);
MLP_SPARSE_INSTANTIATE(double, double)
MLP_SPARSE_INSTANTIATE(double, float)
MLP_SPARSE_INSTANTIATE(float, double)
MLP_SPARSE_INSTANTIATE(float, float)
template void gemmMicroKernel<double>(std::size_t, const double*, const double*, double*, std::size_t, std::size_t,
                                      std::size_t, bool);
template void gemmMicroKernel<float>(std::size_t, const float*, const float*, float*, std::size_t, std::size_t,
                                     std::size_t, bool);

}  // namespace avx2
}  // namespace mlp

#endif  // MLP_HAVE_AVX2
