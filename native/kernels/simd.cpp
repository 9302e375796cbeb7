#include "simd.h"

#include "gemm.h"

namespace mlp {

template <typename T, typename V>
void sparseGatherAxpy(Isa isa, const uint32_t* col, const V* val, std::size_t nnz, const T* wT, std::size_t ldw,
                      T* z, std::size_t width) {
#if MLP_HAVE_AVX2
  if (isa == Isa::Avx2) return avx2::sparseGatherAxpy(col, val, nnz, wT, ldw, z, width);
#endif
  (void)isa;
  for (std::size_t k = 0; k < nnz; ++k) {
    const T v = static_cast<T>(val[k]);
    const T* w = wT + static_cast<std::size_t>(col[k]) * ldw;
    for (std::size_t u = 0; u < width; ++u) z[u] += v * w[u];
  }
}

template <typename T, typename V>
void sparseScatterAxpy(Isa isa, const uint32_t* col, const V* val, std::size_t nnz, const T* d, T* gT,
                       std::size_t ldg, std::size_t width) {
#if MLP_HAVE_AVX2
  if (isa == Isa::Avx2) return avx2::sparseScatterAxpy(col, val, nnz, d, gT, ldg, width);
#endif
  (void)isa;
  for (std::size_t k = 0; k < nnz; ++k) {
    const T v = static_cast<T>(val[k]);
    T* g = gT + static_cast<std::size_t>(col[k]) * ldg;
    for (std::size_t u = 0; u < width; ++u) g[u] += v * d[u];
  }
}

template <typename T>
void gemmMicroKernel(Isa isa, std::size_t kc, const T* pa, const T* pb, T* c, std::size_t ldc, std::size_t mr,
                     std::size_t nr, bool accumulate) {
#if MLP_HAVE_AVX2
  if (isa == Isa::Avx2) return avx2::gemmMicroKernel(kc, pa, pb, c, ldc, mr, nr, accumulate);
#endif
  (void)isa;
  constexpr std::size_t MR = Blocking<T>::MR, NR = Blocking<T>::NR;
  T acc[MR][NR] = {};
  for (std::size_t p = 0; p < kc; ++p) {
    const T* bp = pb + p * NR;
    for (std::size_t i = 0; i < MR; ++i) {
      const T av = pa[p * MR + i];
      for (std::size_t j = 0; j < NR; ++j) acc[i][j] += av * bp[j];
    }
  }
  for (std::size_t i = 0; i < mr; ++i) {
    T* crow = c + i * ldc;
    for (std::size_t j = 0; j < nr; ++j) crow[j] = accumulate ? crow[j] + acc[i][j] : acc[i][j];
  }
}

template void sparseGatherAxpy<double, double>(Isa, const uint32_t*, const double*, std::size_t, const double*,
                                               std::size_t, double*, std::size_t);
template void sparseGatherAxpy<double, float>(Isa, const uint32_t*, const float*, std::size_t, const double*,
                                              std::size_t, double*, std::size_t);
template void sparseGatherAxpy<float, double>(Isa, const uint32_t*, const double*, std::size_t, const float*,
                                              std::size_t, float*, std::size_t);
template void sparseGatherAxpy<float, float>(Isa, const uint32_t*, const float*, std::size_t, const float*,
                                             std::size_t, float*, std::size_t);
template void sparseScatterAxpy<double, double>(Isa, const uint32_t*, const double*, std::size_t, const double*,
                                                double*, std::size_t, std::size_t);
template void sparseScatterAxpy<double, float>(Isa, const uint32_t*, const float*, std::size_t, const double*,
                                               double*, std::size_t, std::size_t);
template void sparseScatterAxpy<float, double>(Isa, const uint32_t*, const double*, std::size_t, const float*,
                                               float*, std::size_t, std::size_t);
template void sparseScatterAxpy<float, float>(Isa, const uint32_t*, const float*, std::size_t, const float*, float*,
                                              std::size_t, std::size_t);
template void gemmMicroKernel<double>(Isa, std::size_t, const double*, const double*, double*, std::size_t,
                                      std::size_t, std::size_t, bool);
template void gemmMicroKernel<float>(Isa, std::size_t, const float*, const float*, float*, std::size_t, std::size_t,
                                     std::size_t, bool);

}  // namespace mlp
