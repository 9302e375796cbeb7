#include "simd.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <new>
#include <type_traits>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "gemm.h"

namespace mlp {

namespace {
constexpr std::size_t kHugePage = std::size_t(2) << 20;
}  // namespace

void* allocateLarge(std::size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (bytes >= kHugePage) {
    // Straight from the kernel (and back to it on free, so repeated fits do not pile up freed
    // huge pages in the heap): map one huge page more than needed, keep the aligned part.
    const std::size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    void* mapped = mmap(nullptr, rounded + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapped == MAP_FAILED) throw std::bad_alloc();
    const auto start = reinterpret_cast<std::uintptr_t>(mapped);
    const std::uintptr_t aligned = (start + kHugePage - 1) / kHugePage * kHugePage;
    if (aligned > start) munmap(mapped, aligned - start);
    const std::size_t tail = start + rounded + kHugePage - (aligned + rounded);
    if (tail > 0) munmap(reinterpret_cast<void*>(aligned + rounded), tail);
    void* p = reinterpret_cast<void*>(aligned);
    madvise(p, rounded, MADV_HUGEPAGE);  // a hint: failure only means small pages
    return p;
  }
#endif
  return allocateAligned(bytes);
}

void freeLarge(void* p, std::size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (bytes >= kHugePage) {
    munmap(p, (bytes + kHugePage - 1) / kHugePage * kHugePage);
    return;
  }
#endif
  freeAligned(p, bytes);
}

template <typename T, typename X>
void sparseGatherRows(Isa isa, std::size_t rows, const SparseRow<X>* x, std::size_t b0, std::size_t b1, const T* wT,
                      std::size_t ldw, T* z, std::size_t ldz, std::size_t width) {
#if MLP_HAVE_AVX512
  if (isa == Isa::Avx512) return avx512::sparseGatherRows(rows, x, b0, b1, wT, ldw, z, ldz, width);
#endif
#if MLP_HAVE_AVX2
  if (isa == Isa::Avx2) return avx2::sparseGatherRows(rows, x, b0, b1, wT, ldw, z, ldz, width);
#endif
  (void)isa;
  for (std::size_t r = 0; r < rows; ++r) {
    const SparseRow<X>& s = x[r];
    T* zr = z + r * ldz;
    for (uint32_t k = s.bounds[b0]; k < s.bounds[b1]; ++k) {
      const T v = static_cast<T>(s.val[k]);
      const T* w = wT + static_cast<std::size_t>(s.col[k]) * ldw;
      for (std::size_t u = 0; u < width; ++u) zr[u] += v * w[u];
    }
  }
}

void nonZeroByteMasks(Isa isa, std::size_t rows, const uint8_t* const* x, std::size_t cols, uint64_t* masks) {
#if MLP_HAVE_AVX2
  if (isa >= Isa::Avx2) return avx2::nonZeroByteMasks(rows, x, cols, masks);
#endif
  (void)isa;
  const std::size_t groups = (cols + 63) / 64;
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t g = 0; g < groups; ++g) {
      uint64_t mask = 0;
      for (std::size_t i = 0, n = std::min<std::size_t>(64, cols - g * 64); i < n; ++i)
        mask |= static_cast<uint64_t>(x[r][g * 64 + i] != 0) << i;
      masks[r * groups + g] = mask;
    }
}

template <typename T>
void byteGatherRows(Isa isa, std::size_t rows, const uint8_t* const* x, const uint64_t* masks, std::size_t groups,
                    std::size_t j0, std::size_t j1, const T* wT, std::size_t ldw, T* z, std::size_t ldz,
                    std::size_t width) {
#if MLP_HAVE_AVX512
  if (isa == Isa::Avx512) return avx512::byteGatherRows(rows, x, masks, groups, j0, j1, wT, ldw, z, ldz, width);
#endif
#if MLP_HAVE_AVX2
  if (isa == Isa::Avx2) return avx2::byteGatherRows(rows, x, masks, groups, j0, j1, wT, ldw, z, ldz, width);
#endif
  (void)isa;
  for (std::size_t r = 0; r < rows; ++r) {
    T* zr = z + r * ldz;
    for (std::size_t c = j0; c < j1; c += 64) {
      for (uint64_t mask = masks[r * groups + c / 64]; mask != 0; mask &= mask - 1) {
        const std::size_t j = c + static_cast<unsigned>(__builtin_ctzll(mask));
        const T v = static_cast<T>(x[r][j]);
        const T* w = wT + j * ldw;
        for (std::size_t u = 0; u < width; ++u) zr[u] += v * w[u];
      }
    }
  }
}

template <typename T, typename X>
void sparseScatterRows(Isa isa, std::size_t rows, const SparseRow<X>* x, std::size_t b0, std::size_t b1, const T* d,
                       std::size_t ldd, T* gT, std::size_t ldg, std::size_t width) {
#if MLP_HAVE_AVX512
  if (isa == Isa::Avx512) return avx512::sparseScatterRows(rows, x, b0, b1, d, ldd, gT, ldg, width);
#endif
#if MLP_HAVE_AVX2
  if (isa == Isa::Avx2) return avx2::sparseScatterRows(rows, x, b0, b1, d, ldd, gT, ldg, width);
#endif
  (void)isa;
  for (std::size_t r = 0; r < rows; ++r) {
    const T* dr = d + r * ldd;
    for (uint32_t k = x[r].bounds[b0]; k < x[r].bounds[b1]; ++k) {
      const T v = static_cast<T>(x[r].val[k]);
      T* g = gT + static_cast<std::size_t>(x[r].col[k]) * ldg;
      for (std::size_t u = 0; u < width; ++u) g[u] += v * dr[u];
    }
  }
}

template <typename T, typename X>
void sparseGatherCols(Isa isa, std::size_t n, const uint32_t* end, std::size_t slot, const ColumnEntry<X>* entries,
                      const T* d, std::size_t ldd, T* gT, std::size_t ldg, std::size_t width, bool overwrite) {
#if MLP_HAVE_AVX512
  if (isa == Isa::Avx512) return avx512::sparseGatherCols(n, end, slot, entries, d, ldd, gT, ldg, width, overwrite);
#endif
#if MLP_HAVE_AVX2
  if (isa == Isa::Avx2) return avx2::sparseGatherCols(n, end, slot, entries, d, ldd, gT, ldg, width, overwrite);
#endif
  (void)isa;
  for (std::size_t j = 0; j < n; ++j) {
    T* g = gT + j * ldg;
    if (overwrite) std::fill(g, g + width, T(0));
    for (std::size_t e = j * slot; e < end[j]; ++e) {
      const T v = static_cast<T>(entries[e].val);
      const T* dr = d + static_cast<std::size_t>(entries[e].row) * ldd;
      for (std::size_t u = 0; u < width; ++u) g[u] += v * dr[u];
    }
  }
}

template <typename T>
std::size_t gatherTileElements(Isa isa, std::size_t width) {
#if MLP_HAVE_AVX512
  if (isa == Isa::Avx512) return avx512::gatherTileElements<T>(width);
#endif
#if MLP_HAVE_AVX2
  if (isa == Isa::Avx2) return avx2::gatherTileElements<T>(width);
#endif
  (void)isa;
  return width;
}

template <typename T>
void biasSigmoid(Isa isa, std::size_t rows, std::size_t n, std::size_t ld, const T* bias, T* z, T* a) {
#if MLP_HAVE_AVX512
  if (isa == Isa::Avx512) return avx512::biasSigmoid(rows, n, ld, bias, z, a);
#endif
#if MLP_HAVE_AVX2
  if (isa == Isa::Avx2) return avx2::biasSigmoid(rows, n, ld, bias, z, a);
#endif
  (void)isa;
  for (std::size_t r = 0; r < rows; ++r) {
    T* zr = z + r * ld;
    T* ar = a + r * ld;
    for (std::size_t u = 0; u < n; ++u) {
      const T v = bias ? zr[u] + bias[u] : zr[u];
      if (a != z) zr[u] = v;
      ar[u] = T(1) / (T(1) + std::exp(-v));
    }
    for (std::size_t u = n; u < ld; ++u) ar[u] = T(0);
  }
}

namespace {
// log(1 + e^x) without overflow, in T's arithmetic.
template <typename T>
inline T softplus(T x) {
  return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}
}  // namespace

template <typename T>
void crossEntropyTerms(Isa isa, std::size_t rows, std::size_t n, const T* z, std::size_t ldz, const int32_t* label,
                       T* terms) {
#if MLP_HAVE_AVX512
  if (isa == Isa::Avx512) return avx512::crossEntropyTerms(rows, n, z, ldz, label, terms);
#endif
#if MLP_HAVE_AVX2
  if (isa == Isa::Avx2) return avx2::crossEntropyTerms(rows, n, z, ldz, label, terms);
#endif
  (void)isa;
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t o = 0; o < n; ++o) {
      const T v = z[r * ldz + o];
      terms[r * n + o] = softplus<T>(static_cast<int32_t>(o) == label[r] ? -v : v);
    }
}

template <typename T>
RegSums regularisedStep(Isa isa, std::size_t rows, std::size_t n, std::size_t ld, T* w, T* g, const T* more,
                        T* prev, const StepRule<T>& rule) {
#if MLP_HAVE_AVX2
  if (isa >= Isa::Avx2) return avx2::regularisedStep(rows, n, ld, w, g, more, prev, rule);
#endif
  (void)isa;
  const RegSums sums = regSums(w, rows, ld, n);
  for (std::size_t r = 0; r < rows; ++r) {
    T* wr = w + r * ld;
    T* gr = g + r * ld;
    T* pr = prev + r * ld;
    const T* mr = more ? more + r * ld : nullptr;
    for (std::size_t u = 0; u < n; ++u) regularisedStepElement(wr[u], gr[u], mr ? mr + u : nullptr, pr[u], rule);
  }
  return sums;
}

template <typename X>
std::size_t compressRow(Isa isa, const X* src, std::size_t n, std::size_t block, uint16_t* col, X* val,
                        uint32_t* bounds) {
#if MLP_HAVE_AVX2
  if constexpr (std::is_same<X, uint8_t>::value) {
    if (isa >= Isa::Avx2) return avx2::compressRowBytes(src, n, block, col, val, bounds);
  } else {
    if (isa >= Isa::Avx2) return avx2::compressRowFloats(src, n, block, col, val, bounds);
  }
#endif
  (void)isa;
  std::size_t k = 0;
  for (std::size_t c = 0; c < n; ++c) {
    if (c % block == 0) bounds[c / block] = static_cast<uint32_t>(k);
    if (src[c] != X(0)) {
      col[k] = static_cast<uint16_t>(c);
      val[k] = src[c];
      ++k;
    }
  }
  bounds[(n + block - 1) / block] = static_cast<uint32_t>(k);
  return k;
}

template <typename X>
std::size_t countNonZero(Isa isa, const X* src, std::size_t n) {
#if MLP_HAVE_AVX2
  if constexpr (std::is_same<X, uint8_t>::value) {
    if (isa >= Isa::Avx2) return avx2::countNonZeroBytes(src, n);
  }
#endif
  (void)isa;
  std::size_t k = 0;
  for (std::size_t i = 0; i < n; ++i) k += src[i] != X(0);
  return k;
}

template <typename T>
std::size_t firstBeyond(Isa isa, const T* src, std::size_t n, T limit) {
#if MLP_HAVE_AVX2
  if (isa >= Isa::Avx2) return avx2::firstBeyond(src, n, limit);
#endif
  (void)isa;
  // Whole blocks are tested without a branch per element (the compiler vectorises the block),
  // then the hit is located.
  constexpr std::size_t kBlock = 64;
  std::size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    bool bad = false;
    for (std::size_t j = 0; j < kBlock; ++j) bad |= !(std::fabs(src[i + j]) <= limit);
    if (bad) break;
  }
  for (; i < n; ++i)
    if (!(std::fabs(src[i]) <= limit)) return i;
  return n;
}

template <typename T>
void smallProduct(Isa isa, std::size_t rows, std::size_t n, std::size_t depth, const T* a, std::size_t ars,
                  std::size_t acs, const T* b, std::size_t ldb, T* c, std::size_t ldc, const T* sigmoidOut) {
#if MLP_HAVE_AVX512
  if (isa == Isa::Avx512) return avx512::smallProduct(rows, n, depth, a, ars, acs, b, ldb, c, ldc, sigmoidOut);
#endif
#if MLP_HAVE_AVX2
  if (isa == Isa::Avx2) return avx2::smallProduct(rows, n, depth, a, ars, acs, b, ldb, c, ldc, sigmoidOut);
#endif
  (void)isa;
  for (std::size_t r = 0; r < rows; ++r) {
    T* cr = c + r * ldc;
    for (std::size_t j = 0; j < n; ++j) cr[j] = T(0);
    for (std::size_t k = 0; k < depth; ++k) {
      const T av = a[r * ars + k * acs];
      const T* bk = b + k * ldb;
      for (std::size_t j = 0; j < n; ++j) cr[j] += av * bk[j];
    }
    if (sigmoidOut) {
      const T* sr = sigmoidOut + r * ldc;
      for (std::size_t j = 0; j < n; ++j) cr[j] *= sr[j] * (T(1) - sr[j]);
    }
  }
}

template <typename T>
void gemmMicroKernel(Isa isa, std::size_t kc, const T* pa, const T* pb, T* c, std::size_t ldc, std::size_t mr,
                     std::size_t nr, bool accumulate) {
#if MLP_HAVE_AVX2
  // Every vector path uses AVX2's micro-kernel (see avx512.cpp).
  if (isa >= Isa::Avx2) return avx2::gemmMicroKernel(kc, pa, pb, c, ldc, mr, nr, accumulate);
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

#define MLP_SPARSE_INSTANTIATE(T, X)                                                                              \
  template void sparseGatherRows<T, X>(Isa, std::size_t, const SparseRow<X>*, std::size_t, std::size_t, const T*, \
                                       std::size_t, T*, std::size_t, std::size_t);                               \
  template void sparseScatterRows<T, X>(Isa, std::size_t, const SparseRow<X>*, std::size_t, std::size_t, const T*,  \
                                        std::size_t, T*, std::size_t, std::size_t);                               \
  template void sparseGatherCols<T, X>(Isa, std::size_t, const uint32_t*, std::size_t, const ColumnEntry<X>*,     \
                                       const T*, std::size_t, T*, std::size_t, std::size_t, bool);
MLP_SPARSE_INSTANTIATE(double, double)
MLP_SPARSE_INSTANTIATE(double, float)
MLP_SPARSE_INSTANTIATE(double, uint8_t)
MLP_SPARSE_INSTANTIATE(float, double)
MLP_SPARSE_INSTANTIATE(float, float)
MLP_SPARSE_INSTANTIATE(float, uint8_t)
template void byteGatherRows<double>(Isa, std::size_t, const uint8_t* const*, const uint64_t*, std::size_t, std::size_t,
                                     std::size_t, const double*, std::size_t, double*, std::size_t, std::size_t);
template void byteGatherRows<float>(Isa, std::size_t, const uint8_t* const*, const uint64_t*, std::size_t, std::size_t,
                                    std::size_t, const float*, std::size_t, float*, std::size_t, std::size_t);
template std::size_t gatherTileElements<double>(Isa, std::size_t);
template std::size_t gatherTileElements<float>(Isa, std::size_t);
template RegSums regularisedStep<double>(Isa, std::size_t, std::size_t, std::size_t, double*, double*, const double*, double*,
                                         const StepRule<double>&);
template RegSums regularisedStep<float>(Isa, std::size_t, std::size_t, std::size_t, float*, float*, const float*, float*,
                                        const StepRule<float>&);
template void crossEntropyTerms<double>(Isa, std::size_t, std::size_t, const double*, std::size_t, const int32_t*,
                                        double*);
template void crossEntropyTerms<float>(Isa, std::size_t, std::size_t, const float*, std::size_t, const int32_t*,
                                       float*);
template void biasSigmoid<double>(Isa, std::size_t, std::size_t, std::size_t, const double*, double*, double*);
template void biasSigmoid<float>(Isa, std::size_t, std::size_t, std::size_t, const float*, float*, float*);
template std::size_t compressRow<double>(Isa, const double*, std::size_t, std::size_t, uint16_t*, double*, uint32_t*);
template std::size_t compressRow<float>(Isa, const float*, std::size_t, std::size_t, uint16_t*, float*, uint32_t*);
template std::size_t compressRow<uint8_t>(Isa, const uint8_t*, std::size_t, std::size_t, uint16_t*, uint8_t*,
                                          uint32_t*);
template std::size_t countNonZero<double>(Isa, const double*, std::size_t);
template std::size_t countNonZero<float>(Isa, const float*, std::size_t);
template std::size_t countNonZero<uint8_t>(Isa, const uint8_t*, std::size_t);
template std::size_t firstBeyond<double>(Isa, const double*, std::size_t, double);
template std::size_t firstBeyond<float>(Isa, const float*, std::size_t, float);
template void smallProduct<double>(Isa, std::size_t, std::size_t, std::size_t, const double*, std::size_t, std::size_t,
                                   const double*, std::size_t, double*, std::size_t, const double*);
template void smallProduct<float>(Isa, std::size_t, std::size_t, std::size_t, const float*, std::size_t, std::size_t,
                                  const float*, std::size_t, float*, std::size_t, const float*);
template void gemmMicroKernel<double>(Isa, std::size_t, const double*, const double*, double*, std::size_t,
                                      std::size_t, std::size_t, bool);
template void gemmMicroKernel<float>(Isa, std::size_t, const float*, const float*, float*, std::size_t, std::size_t,
                                     std::size_t, bool);

}  // namespace mlp
