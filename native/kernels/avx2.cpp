// AVX2 + FMA versions of the inner kernels. Each function carries its own target attribute, so
// this file compiles in a baseline build and is only called when the CPU reports AVX2 and FMA.
#include "simd.h"

#if MLP_HAVE_AVX2

#include <immintrin.h>

#include <algorithm>
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
  MLP_AVX2_INLINE static type notEqual(type a, type b) { return _mm256_cmp_pd(a, b, _CMP_NEQ_UQ); }
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
  MLP_AVX2_INLINE static type notEqual(type a, type b) { return _mm256_cmp_ps(a, b, _CMP_NEQ_UQ); }
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

MLP_AVX2_INLINE uint64_t nonZeroBits64(const uint8_t* p) {
  const __m256i zero = _mm256_setzero_si256();
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
  return ~((static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, zero)))) << 32) |
           static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, zero))));
}

// exp(x) for the sigmoid. x is clamped to [lo, hi] (NaN passes through), then
// exp(x) = 2^n * p(r), n = round(x / ln 2), r = x - n ln 2 (two-part ln 2, exact with FMA),
// |r| <= ln(2)/2, and p the Taylor polynomial of degree 13 (double; truncation < 5e-18
// relative) or 7 (float; < 6e-9 relative), by Horner with FMA. Measured against a long-double
// reference on 2^20 random inputs over the sigmoid's useful range, the sigmoid
// 1 / (1 + exp(-v)) is within 2.5 ulp of the exact value (worst seen: 2.34 ulp double, 2.41 ulp
// float). The clamp keeps exp(x), and the sigmoid's 1 / (1 + exp(-v)), normal numbers: a
// saturated unit gives 3.3e-308 (double) or 1.7e-38 (float) instead of a subnormal value (or 1
// minus as little), which the CPU would compute several times slower; the clamp changes no
// result by more than that. The same input always gives the same output.
MLP_AVX2_INLINE __m256d expClamped(__m256d x) {
  x = _mm256_max_pd(_mm256_set1_pd(-708.0), x);
  x = _mm256_min_pd(_mm256_set1_pd(708.0), x);
  const __m256d n = _mm256_round_pd(_mm256_mul_pd(x, _mm256_set1_pd(1.4426950408889634074)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256d r = _mm256_fnmadd_pd(n, _mm256_set1_pd(6.93147180369123816490e-01), x);
  r = _mm256_fnmadd_pd(n, _mm256_set1_pd(1.90821492927058770002e-10), r);
  static constexpr double c[14] = {1.0,
                                   1.0,
                                   1.0 / 2,
                                   1.0 / 6,
                                   1.0 / 24,
                                   1.0 / 120,
                                   1.0 / 720,
                                   1.0 / 5040,
                                   1.0 / 40320,
                                   1.0 / 362880,
                                   1.0 / 3628800,
                                   1.0 / 39916800,
                                   1.0 / 479001600,
                                   1.0 / 6227020800.0};
  __m256d p = _mm256_set1_pd(c[13]);
  for (int k = 12; k >= 0; --k) p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(c[k]));
  // 2^n from the low bits of n + 1.5 * 2^52 (n is in [-1022, 1023] after the clamp).
  const __m256i bits = _mm256_castpd_si256(_mm256_add_pd(n, _mm256_set1_pd(6755399441055744.0)));
  const __m256i scale = _mm256_slli_epi64(_mm256_add_epi64(bits, _mm256_set1_epi64x(1023)), 52);
  return _mm256_mul_pd(p, _mm256_castsi256_pd(scale));
}

MLP_AVX2_INLINE __m256 expClamped(__m256 x) {
  x = _mm256_max_ps(_mm256_set1_ps(-87.0f), x);
  x = _mm256_min_ps(_mm256_set1_ps(87.0f), x);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  static constexpr float c[8] = {1.0f, 1.0f, 1.0f / 2, 1.0f / 6, 1.0f / 24, 1.0f / 120, 1.0f / 720, 1.0f / 5040};
  __m256 p = _mm256_set1_ps(c[7]);
  for (int k = 6; k >= 0; --k) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c[k]));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

// log(1 + x) for x in [0, 1] (NaN passes through): u = 1 + x, whose rounding error c = x - (u - 1)
// is exact; log1p(x) = log(u) + c / u, and log(u) = k ln 2 + log(1 + f) with 1 + f = u / 2^k in
// [sqrt(2)/2, sqrt(2)], from s = f / (2 + f) and the fdlibm polynomial in s^2 (log1p's own
// reduction and coefficients, |error| < 2^-58.45 on that range).
MLP_AVX2_INLINE __m256d log1pUnit(__m256d x) {
  const __m256d one = _mm256_set1_pd(1.0);
  const __m256d u = _mm256_add_pd(one, x);
  const __m256d c = _mm256_sub_pd(x, _mm256_sub_pd(u, one));
  const __m256d big = _mm256_cmp_pd(u, _mm256_set1_pd(1.41421356237309504880), _CMP_GT_OQ);
  const __m256d k = _mm256_and_pd(big, one);
  const __m256d m = _mm256_blendv_pd(u, _mm256_mul_pd(u, _mm256_set1_pd(0.5)), big);
  const __m256d f = _mm256_sub_pd(m, one);
  const __m256d s = _mm256_div_pd(f, _mm256_add_pd(_mm256_set1_pd(2.0), f));
  const __m256d z = _mm256_mul_pd(s, s);
  const __m256d w = _mm256_mul_pd(z, z);
  // R = z * (Lg1 + w (Lg3 + w (Lg5 + w Lg7))) + w * (Lg2 + w (Lg4 + w Lg6))
  __m256d t1 = _mm256_fmadd_pd(w, _mm256_set1_pd(1.531383769920937332e-01), _mm256_set1_pd(2.222219843214978396e-01));
  t1 = _mm256_mul_pd(w, _mm256_fmadd_pd(w, t1, _mm256_set1_pd(3.999999999940941908e-01)));
  __m256d t2 = _mm256_fmadd_pd(w, _mm256_set1_pd(1.479819860511658591e-01), _mm256_set1_pd(1.818357216161805012e-01));
  t2 = _mm256_fmadd_pd(w, t2, _mm256_set1_pd(2.857142874366239149e-01));
  t2 = _mm256_mul_pd(z, _mm256_fmadd_pd(w, t2, _mm256_set1_pd(6.666666666666735130e-01)));
  const __m256d r = _mm256_add_pd(t2, t1);
  const __m256d hfsq = _mm256_mul_pd(_mm256_set1_pd(0.5), _mm256_mul_pd(f, f));
  // log(1 + f) = f - (hfsq - s (hfsq + R)); plus k ln 2 (two parts) and the correction c / u.
  const __m256d log1pf = _mm256_sub_pd(f, _mm256_sub_pd(hfsq, _mm256_mul_pd(s, _mm256_add_pd(hfsq, r))));
  const __m256d lo = _mm256_fmadd_pd(k, _mm256_set1_pd(1.90821492927058770002e-10), _mm256_div_pd(c, u));
  return _mm256_fmadd_pd(k, _mm256_set1_pd(6.93147180369123816490e-01), _mm256_add_pd(log1pf, lo));
}

// log(1 + e^v) = max(v, 0) + log1p(e^-|v|), never log(0); NaN passes through. Measured against a
// long-double reference on 2^20 random inputs in each of [-1, 1], [-10, 10], [-40, 40] and
// [-708, 708]: within 1.9 ulp. Below -708 it returns e^-708 (< 3.4e-308) instead of e^v.
MLP_AVX2_INLINE __m256d softplusVec(__m256d v) {
  const __m256d negAbs = _mm256_or_pd(v, _mm256_set1_pd(-0.0));
  return _mm256_add_pd(_mm256_max_pd(_mm256_setzero_pd(), v), log1pUnit(expClamped(negAbs)));
}

MLP_AVX2_INLINE __m256d loadAsDouble(const double* p) { return _mm256_loadu_pd(p); }
MLP_AVX2_INLINE __m256d loadAsDouble(const float* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }

template <typename T>
MLP_AVX2_INLINE typename Vec<T>::type sigmoidVec(typename Vec<T>::type v) {
  using W = Vec<T>;
  const typename W::type e = expClamped(W::sub(W::zero(), v));
  return W::div(W::set1(T(1)), W::add(W::set1(T(1)), e));
}

}  // namespace

#define MLP_TARGET MLP_AVX2
#define MLP_TARGET_INLINE MLP_AVX2_INLINE
#include "vector_kernels.inl"
#undef MLP_TARGET
#undef MLP_TARGET_INLINE

template <typename T>
MLP_AVX2 void crossEntropyTerms(std::size_t rows, std::size_t n, const T* z, std::size_t ldz, const int32_t* label,
                                double* terms) {
  const __m256i lane = _mm256_setr_epi64x(0, 1, 2, 3);
  for (std::size_t r = 0; r < rows; ++r) {
    const T* zr = z + r * ldz;
    double* tr = terms + r * n;
    const __m256i target = _mm256_set1_epi64x(label[r]);
    for (std::size_t o = 0; o < n; o += 4) {
      // ldz covers whole vectors of 4 beyond n (padding), so the load stays in the row.
      const __m256d v = loadAsDouble(zr + o);
      const __m256d flip = _mm256_castsi256_pd(
          _mm256_cmpeq_epi64(_mm256_add_epi64(lane, _mm256_set1_epi64x(static_cast<long long>(o))), target));
      const __m256d t = softplusVec(_mm256_blendv_pd(v, _mm256_sub_pd(_mm256_setzero_pd(), v), flip));
      if (o + 4 <= n) {
        _mm256_storeu_pd(tr + o, t);
      } else {
        alignas(32) double tail[4];
        _mm256_store_pd(tail, t);
        for (std::size_t i = 0; o + i < n; ++i) tr[o + i] = tail[i];
      }
    }
  }
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
MLP_AVX2 std::size_t firstNonFinite(const T* src, std::size_t n) {
  using W = Vec<T>;
  // x - x is 0 exactly when x is finite (NaN for NaN and +-infinity): eight vectors are tested
  // per branch, and only a block with a hit is searched element by element.
  constexpr std::size_t kBlock = 8 * W::width;
  const typename W::type zero = W::zero();
  std::size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    typename W::type bad = zero;
    for (std::size_t j = 0; j < kBlock; j += W::width) {
      const typename W::type v = W::load(src + i + j);
      bad = W::orMask(bad, W::notEqual(W::sub(v, v), zero));
    }
    if (W::anyMask(bad)) break;
  }
  for (; i < n; ++i)
    if (!(src[i] - src[i] == T(0))) return i;
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

template void crossEntropyTerms<double>(std::size_t, std::size_t, const double*, std::size_t, const int32_t*,
                                        double*);
template void crossEntropyTerms<float>(std::size_t, std::size_t, const float*, std::size_t, const int32_t*, double*);
template std::size_t compressRowFloats<double>(const double*, std::size_t, std::size_t, uint16_t*, double*,
                                               uint32_t*);
template std::size_t compressRowFloats<float>(const float*, std::size_t, std::size_t, uint16_t*, float*, uint32_t*);
template std::size_t firstNonFinite<double>(const double*, std::size_t);
template std::size_t firstNonFinite<float>(const float*, std::size_t);
template void gemmMicroKernel<double>(std::size_t, const double*, const double*, double*, std::size_t, std::size_t,
                                      std::size_t, bool);
template void gemmMicroKernel<float>(std::size_t, const float*, const float*, float*, std::size_t, std::size_t,
                                     std::size_t, bool);

}  // namespace avx2
}  // namespace mlp

#endif  // MLP_HAVE_AVX2
