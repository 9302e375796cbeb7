// AVX2 + FMA versions of the inner kernels. Each function carries its own target attribute, so
// this file compiles in a baseline build and is only called when the CPU reports AVX2 and FMA.
#include "simd.h"

#if MLP_HAVE_AVX2

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "gemm.h"

// The vector helpers are always inlined into their AVX2 callers (no AVX values cross a call).
#define MLP_AVX2_INLINE __attribute__((target("avx2,fma"), always_inline)) inline

namespace mlp {
namespace avx2 {
namespace {

// Stores the first `lanes` elements of v (all of them with one store when the vector is whole).
// Only the small products' last vector comes here: in a row-epilogue of the gathers, the spill
// buffer this needs made the whole kernel measurably slower.
template <typename T, typename V>
MLP_AVX2_INLINE void storeLanes(T* p, V v, std::size_t lanes) {
  constexpr std::size_t width = sizeof(V) / sizeof(T);
  if (lanes == width) {
    std::memcpy(p, &v, sizeof(V));
    return;
  }
  alignas(32) T tail[width];
  std::memcpy(tail, &v, sizeof(V));
  for (std::size_t u = 0; u < lanes; ++u) p[u] = tail[u];
}

// One vector type per element type, with the few operations the kernels use (the interface
// vector_kernels.inl expects).
template <typename T>
struct Vec;

template <>
struct Vec<double> {
  using type = __m256d;
  using part = std::size_t;  // lanes
  static constexpr std::size_t width = 4;
  static constexpr bool kHalves = false;
  MLP_AVX2_INLINE static type load(const double* p) { return _mm256_loadu_pd(p); }
  MLP_AVX2_INLINE static void store(double* p, type v) { _mm256_storeu_pd(p, v); }
  MLP_AVX2_INLINE static part partOf(std::size_t lanes) { return lanes; }
  MLP_AVX2_INLINE static type loadPart(const double* p, part) { return load(p); }
  MLP_AVX2_INLINE static void storePart(double* p, type v, part) { store(p, v); }
  MLP_AVX2_INLINE static void storeFirst(double* p, type v, part lanes) { storeLanes(p, v, lanes); }
  MLP_AVX2_INLINE static type set1(double v) { return _mm256_set1_pd(v); }
  MLP_AVX2_INLINE static type zero() { return _mm256_setzero_pd(); }
  MLP_AVX2_INLINE static type fma(type a, type b, type c) { return _mm256_fmadd_pd(a, b, c); }
  MLP_AVX2_INLINE static type add(type a, type b) { return _mm256_add_pd(a, b); }
  MLP_AVX2_INLINE static type sub(type a, type b) { return _mm256_sub_pd(a, b); }
  MLP_AVX2_INLINE static type div(type a, type b) { return _mm256_div_pd(a, b); }
  MLP_AVX2_INLINE static type mul(type a, type b) { return _mm256_mul_pd(a, b); }
  MLP_AVX2_INLINE static type max(type a, type b) { return _mm256_max_pd(a, b); }
  MLP_AVX2_INLINE static type min(type a, type b) { return _mm256_min_pd(a, b); }
  MLP_AVX2_INLINE static type fnma(type a, type b, type c) { return _mm256_fnmadd_pd(a, b, c); }
  MLP_AVX2_INLINE static type roundNearest(type x) {
    return _mm256_round_pd(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  // 2^n for integral n in [-1022, 1023]: from the low bits of n + 1.5 * 2^52.
  MLP_AVX2_INLINE static type pow2(type n) {
    const __m256i bits = _mm256_castpd_si256(_mm256_add_pd(n, _mm256_set1_pd(6755399441055744.0)));
    return _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(bits, _mm256_set1_epi64x(1023)), 52));
  }
  MLP_AVX2_INLINE static type orSignBit(type v) { return _mm256_or_pd(v, _mm256_set1_pd(-0.0)); }
  using mask = __m256d;
  MLP_AVX2_INLINE static mask greater(type a, type b) { return _mm256_cmp_pd(a, b, _CMP_GT_OQ); }
  MLP_AVX2_INLINE static type select(mask m, type ifTrue, type ifFalse) { return _mm256_blendv_pd(ifFalse, ifTrue, m); }
  MLP_AVX2_INLINE static type onesWhere(mask m) { return _mm256_and_pd(m, _mm256_set1_pd(1.0)); }
  MLP_AVX2_INLINE static type notEqual(type a, type b) { return _mm256_cmp_pd(a, b, _CMP_NEQ_UQ); }
  // Lanes where |v| <= limit does not hold: NaN, or a magnitude above limit.
  MLP_AVX2_INLINE static type notWithin(type v, type limit) {
    return _mm256_cmp_pd(_mm256_andnot_pd(_mm256_set1_pd(-0.0), v), limit, _CMP_NLE_UQ);
  }
  MLP_AVX2_INLINE static type orMask(type a, type b) { return _mm256_or_pd(a, b); }
  MLP_AVX2_INLINE static bool anyMask(type m) { return _mm256_movemask_pd(m) != 0; }
  MLP_AVX2_INLINE static uint32_t nonZeroBits(type v) {
    return static_cast<uint32_t>(_mm256_movemask_pd(_mm256_cmp_pd(v, _mm256_setzero_pd(), _CMP_NEQ_UQ)));
  }
};

template <>
struct Vec<float> {
  using type = __m256;
  using part = std::size_t;  // lanes
  static constexpr std::size_t width = 8;
  static constexpr bool kHalves = false;
  MLP_AVX2_INLINE static type load(const float* p) { return _mm256_loadu_ps(p); }
  MLP_AVX2_INLINE static void store(float* p, type v) { _mm256_storeu_ps(p, v); }
  MLP_AVX2_INLINE static part partOf(std::size_t lanes) { return lanes; }
  MLP_AVX2_INLINE static type loadPart(const float* p, part) { return load(p); }
  MLP_AVX2_INLINE static void storePart(float* p, type v, part) { store(p, v); }
  MLP_AVX2_INLINE static void storeFirst(float* p, type v, part lanes) { storeLanes(p, v, lanes); }
  MLP_AVX2_INLINE static type set1(float v) { return _mm256_set1_ps(v); }
  MLP_AVX2_INLINE static type zero() { return _mm256_setzero_ps(); }
  MLP_AVX2_INLINE static type fma(type a, type b, type c) { return _mm256_fmadd_ps(a, b, c); }
  MLP_AVX2_INLINE static type add(type a, type b) { return _mm256_add_ps(a, b); }
  MLP_AVX2_INLINE static type sub(type a, type b) { return _mm256_sub_ps(a, b); }
  MLP_AVX2_INLINE static type div(type a, type b) { return _mm256_div_ps(a, b); }
  MLP_AVX2_INLINE static type mul(type a, type b) { return _mm256_mul_ps(a, b); }
  MLP_AVX2_INLINE static type max(type a, type b) { return _mm256_max_ps(a, b); }
  MLP_AVX2_INLINE static type min(type a, type b) { return _mm256_min_ps(a, b); }
  MLP_AVX2_INLINE static type fnma(type a, type b, type c) { return _mm256_fnmadd_ps(a, b, c); }
  MLP_AVX2_INLINE static type roundNearest(type x) {
    return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  // 2^n for integral n in [-126, 127]: from the low bits of n + 1.5 * 2^23.
  MLP_AVX2_INLINE static type pow2(type n) {
    const __m256i bits = _mm256_castps_si256(_mm256_add_ps(n, _mm256_set1_ps(12582912.0f)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(bits, _mm256_set1_epi32(127)), 23));
  }
  MLP_AVX2_INLINE static type orSignBit(type v) { return _mm256_or_ps(v, _mm256_set1_ps(-0.0f)); }
  using mask = __m256;
  MLP_AVX2_INLINE static mask greater(type a, type b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  MLP_AVX2_INLINE static type select(mask m, type ifTrue, type ifFalse) { return _mm256_blendv_ps(ifFalse, ifTrue, m); }
  MLP_AVX2_INLINE static type onesWhere(mask m) { return _mm256_and_ps(m, _mm256_set1_ps(1.0f)); }
  MLP_AVX2_INLINE static type notEqual(type a, type b) { return _mm256_cmp_ps(a, b, _CMP_NEQ_UQ); }
  MLP_AVX2_INLINE static type notWithin(type v, type limit) {
    return _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), v), limit, _CMP_NLE_UQ);
  }
  MLP_AVX2_INLINE static type orMask(type a, type b) { return _mm256_or_ps(a, b); }
  MLP_AVX2_INLINE static bool anyMask(type m) { return _mm256_movemask_ps(m) != 0; }
  MLP_AVX2_INLINE static uint32_t nonZeroBits(type v) {
    return static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_NEQ_UQ)));
  }
};

// Tiles of up to 14 accumulators (+ 1 broadcast) for the gathers and 12 for the small
// products (+ the row of b) fit the 16 YMM registers.
constexpr std::size_t kMaxTile = 14;
constexpr std::size_t kSmallProductVectors = 12;
// One row at a time from 6 vectors on (b is then read straight from L1 by the multiply-adds).
constexpr std::size_t smallProductRows(std::size_t nv) {
  return nv == 1 ? 6 : nv == 2 ? 4 : nv == 3 ? 3 : nv <= 5 ? 2 : 1;
}

// Bit i set where p[i] != 0, for 32 and 64 bytes.
MLP_AVX2_INLINE uint32_t nonZeroBits32(const uint8_t* p) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return ~static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, _mm256_setzero_si256())));
}
MLP_AVX2_INLINE uint64_t nonZeroBits64(const uint8_t* p) {
  return static_cast<uint64_t>(nonZeroBits32(p + 32)) << 32 | nonZeroBits32(p);
}

MLP_AVX2_INLINE __m256d loadAsDouble(const double* p) { return _mm256_loadu_pd(p); }
MLP_AVX2_INLINE __m256d loadAsDouble(const float* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }

}  // namespace

#define MLP_TARGET MLP_AVX2
#define MLP_TARGET_INLINE MLP_AVX2_INLINE
#include "vector_kernels.inl"
#undef MLP_TARGET
#undef MLP_TARGET_INLINE

template <typename T>
MLP_AVX2 RegSums regularisedStep(std::size_t rows, std::size_t n, std::size_t ld, T* w, T* g, const T* more,
                                 T* prev, const StepRule<T>& rule) {
  using W = Vec<T>;
  // regSums' four running sums are the four lanes of a and q; a row's last n mod 4 elements go
  // into lane 0 (adding +0 to the other lanes leaves them as they are: the sums are never -0).
  __m256d a = _mm256_setzero_pd(), q = _mm256_setzero_pd();
  const __m256d absMask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffLL));
  const std::size_t quads = n / 4 * 4, whole = n / W::width * W::width;
  const typename W::type l1 = W::set1(rule.l1), l2 = W::set1(rule.l2), eta = W::set1(rule.eta),
                         alpha = W::set1(rule.alpha), zero = W::zero();
  for (std::size_t r = 0; r < rows; ++r) {
    T* wr = w + r * ld;
    T* gr = g + r * ld;
    T* pr = prev + r * ld;
    const T* mr = more ? more + r * ld : nullptr;
    for (std::size_t c = 0; c < quads; c += 4) {
      const __m256d v = loadAsDouble(wr + c);
      a = _mm256_add_pd(a, _mm256_and_pd(v, absMask));
      q = _mm256_add_pd(q, _mm256_mul_pd(v, v));
    }
    for (std::size_t c = quads; c < n; ++c) {
      const double v = static_cast<double>(wr[c]);
      a = _mm256_add_pd(a, _mm256_setr_pd(std::fabs(v), 0, 0, 0));
      q = _mm256_add_pd(q, _mm256_setr_pd(v * v, 0, 0, 0));
    }
    // regularised and momentumStep (simd.h), a vector at a time (no contraction into FMAs).
    std::size_t u = 0;
    for (; u < whole; u += W::width) {
      const typename W::type wv = W::load(wr + u);
      typename W::type gv = W::load(gr + u);
      if (mr) gv = W::add(gv, W::load(mr + u));
      if (rule.regularise) {
        const typename W::type sign = W::sub(W::onesWhere(W::greater(wv, zero)), W::onesWhere(W::greater(zero, wv)));
        gv = W::add(W::add(gv, W::mul(l2, wv)), W::mul(l1, sign));
      }
      if (rule.step) {
        const typename W::type delta = W::mul(eta, gv);
        W::store(wr + u, W::sub(wv, W::add(delta, W::mul(alpha, W::load(pr + u)))));
        W::store(pr + u, delta);
      } else {
        W::store(gr + u, gv);
      }
    }
    for (; u < n; ++u) regularisedStepElement(wr[u], gr[u], mr ? mr + u : nullptr, pr[u], rule);
  }
  alignas(32) double as[4], qs[4];
  _mm256_store_pd(as, a);
  _mm256_store_pd(qs, q);
  return RegSums{(as[0] + as[1]) + (as[2] + as[3]), (qs[0] + qs[1]) + (qs[2] + qs[3])};
}

MLP_AVX2 std::size_t compressRowBytes(const uint8_t* src, std::size_t n, std::size_t block, uint16_t* col,
                                      uint8_t* val, uint32_t* bounds) {
  std::size_t k = 0, c = 0;
  const __m256i zero = _mm256_setzero_si256();
  for (; c + 32 <= n; c += 32) {
    if (c % block == 0) bounds[c / block] = static_cast<uint32_t>(k);
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + c));
    uint32_t mask = ~static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(x, zero)));
    while (mask != 0) {
      const unsigned i = static_cast<unsigned>(__builtin_ctz(mask));
      col[k] = static_cast<uint16_t>(c + i);
      val[k] = src[c + i];
      ++k;
      mask &= mask - 1;
    }
  }
  for (; c < n; ++c) {
    if (c % block == 0) bounds[c / block] = static_cast<uint32_t>(k);
    if (src[c] != 0) {
      col[k] = static_cast<uint16_t>(c);
      val[k] = src[c];
      ++k;
    }
  }
  bounds[(n + block - 1) / block] = static_cast<uint32_t>(k);
  return k;
}

// compressRowBytes for float input: 32 elements' non-zero bits at a time (NaN counts as non-zero,
// as in the portable version), then one loop over the set bits.
template <typename T>
MLP_AVX2 std::size_t compressRowFloats(const T* src, std::size_t n, std::size_t block, uint16_t* col, T* val,
                                       uint32_t* bounds) {
  using W = Vec<T>;
  std::size_t k = 0, c = 0;
  for (; c + 32 <= n; c += 32) {
    if (c % block == 0) bounds[c / block] = static_cast<uint32_t>(k);
    uint32_t mask = 0;
    for (std::size_t j = 0; j < 32; j += W::width) mask |= W::nonZeroBits(W::load(src + c + j)) << j;
    while (mask != 0) {
      const unsigned i = static_cast<unsigned>(__builtin_ctz(mask));
      col[k] = static_cast<uint16_t>(c + i);
      val[k] = src[c + i];
      ++k;
      mask &= mask - 1;
    }
  }
  for (; c < n; ++c) {
    if (c % block == 0) bounds[c / block] = static_cast<uint32_t>(k);
    if (src[c] != T(0)) {
      col[k] = static_cast<uint16_t>(c);
      val[k] = src[c];
      ++k;
    }
  }
  bounds[(n + block - 1) / block] = static_cast<uint32_t>(k);
  return k;
}

MLP_AVX2 void nonZeroByteMasks(std::size_t rows, const uint8_t* const* x, std::size_t cols, uint64_t* masks) {
  const std::size_t groups = (cols + 63) / 64, whole = cols / 64;
  for (std::size_t r = 0; r < rows; ++r) {
    const uint8_t* xr = x[r];
    uint64_t* mr = masks + r * groups;
    for (std::size_t g = 0; g < whole; ++g) mr[g] = nonZeroBits64(xr + g * 64);
    if (whole < groups) {
      // The last, partial group: 32 and 16 bytes at a time while they lie within the row (MNIST's
      // 784 = 12 * 64 + 16), the rest byte by byte.
      const std::size_t base = whole * 64;
      std::size_t i = base;
      uint64_t mask = 0;
      if (i + 32 <= cols) {
        mask |= static_cast<uint64_t>(nonZeroBits32(xr + i)) << (i - base);
        i += 32;
      }
      if (i + 16 <= cols) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(xr + i));
        const uint32_t bits = static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128())));
        mask |= static_cast<uint64_t>(~bits & 0xffffu) << (i - base);
        i += 16;
      }
      for (; i < cols; ++i) mask |= static_cast<uint64_t>(xr[i] != 0) << (i - base);
      mr[whole] = mask;
    }
  }
}

MLP_AVX2 std::size_t countNonZeroBytes(const uint8_t* src, std::size_t n) {
  std::size_t zeros = 0, c = 0;
  const __m256i zero = _mm256_setzero_si256();
  while (c + 32 <= n) {
    // Per-byte counters of zero bytes, folded into 64-bit sums before they can wrap.
    __m256i counts = zero;
    for (std::size_t i = 0; i < 255 && c + 32 <= n; ++i, c += 32) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + c));
      counts = _mm256_sub_epi8(counts, _mm256_cmpeq_epi8(x, zero));
    }
    const __m256i sums = _mm256_sad_epu8(counts, zero);
    zeros += static_cast<std::size_t>(_mm256_extract_epi64(sums, 0)) + static_cast<std::size_t>(_mm256_extract_epi64(sums, 1)) +
             static_cast<std::size_t>(_mm256_extract_epi64(sums, 2)) + static_cast<std::size_t>(_mm256_extract_epi64(sums, 3));
  }
  for (; c < n; ++c) zeros += src[c] == 0;
  return n - zeros;
}

template <typename T>
MLP_AVX2 std::size_t firstBeyond(const T* src, std::size_t n, T limit) {
  using W = Vec<T>;
  // Eight vectors are tested per branch, and only a block with a hit is searched element by element.
  constexpr std::size_t kBlock = 8 * W::width;
  const typename W::type lim = W::set1(limit);
  std::size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    typename W::type bad = W::zero();
    for (std::size_t j = 0; j < kBlock; j += W::width) bad = W::orMask(bad, W::notWithin(W::load(src + i + j), lim));
    if (W::anyMask(bad)) break;
  }
  for (; i < n; ++i)
    if (!(std::fabs(src[i]) <= limit)) return i;
  return n;
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

template RegSums regularisedStep<double>(std::size_t, std::size_t, std::size_t, double*, double*, const double*, double*,
                                         const StepRule<double>&);
template RegSums regularisedStep<float>(std::size_t, std::size_t, std::size_t, float*, float*, const float*, float*,
                                        const StepRule<float>&);
template std::size_t compressRowFloats<double>(const double*, std::size_t, std::size_t, uint16_t*, double*,
                                               uint32_t*);
template std::size_t compressRowFloats<float>(const float*, std::size_t, std::size_t, uint16_t*, float*, uint32_t*);
template std::size_t firstBeyond<double>(const double*, std::size_t, double);
template std::size_t firstBeyond<float>(const float*, std::size_t, float);
template void gemmMicroKernel<double>(std::size_t, const double*, const double*, double*, std::size_t, std::size_t,
                                      std::size_t, bool);
template void gemmMicroKernel<float>(std::size_t, const float*, const float*, float*, std::size_t, std::size_t,
                                     std::size_t, bool);

}  // namespace avx2
}  // namespace mlp

#endif  // MLP_HAVE_AVX2
