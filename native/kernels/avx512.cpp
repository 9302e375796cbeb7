// AVX-512 (F, BW, VL, DQ) versions of the inner kernels, chosen at run time like the AVX2 ones
// (per-function target attributes; called only when the CPU and OS report AVX-512).
//
// They are the AVX2 kernels' bodies (vector_kernels.inl) over 8-double / 16-float vectors: the
// last vector of a row is masked instead of padded, so the data layout and every result are the
// same as on the AVX2 path (each element gets the same operations in the same order). With 32
// registers a gather tile keeps up to 24 accumulator vectors.
//
// Kept on AVX2 here, deliberately: the dense GEMM micro-kernel (its packed panels are NR = 8
// doubles or 16 floats wide, one ZMM vector, so 4 rows would give only 4 independent
// accumulators: latency-bound, no faster than AVX2's 8), and the byte scans (compressRowBytes,
// countNonZeroBytes, nonZeroByteMasks), which are not where the time goes.
//
// With MLP_EMULATE_AVX512 (test builds only) the same code is compiled against SIMDe's portable
// AVX-512 (plus the few masked operations it lacks, below) for an AVX2 + FMA machine.
#include "simd.h"

#if MLP_HAVE_AVX512

// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on their own _mm512_undefined_*()
// pass-through operands (GCC bug 105593, fixed in 13): not about this code.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#if defined(MLP_EMULATE_AVX512)
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#else
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstring>
#include <type_traits>

#if defined(MLP_EMULATE_AVX512)
#define MLP_AVX512_INLINE __attribute__((always_inline)) inline
#else
#define MLP_AVX512_INLINE __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma"), always_inline)) inline
#endif

namespace mlp {
namespace avx512 {
namespace {

#if defined(MLP_EMULATE_AVX512)
// Masked loads and stores SIMDe 0.7 does not provide, lane by lane as the hardware defines them:
// masked-off lanes are neither read nor written (so an out-of-bounds lane would show up here).
template <typename V, typename T, typename M>
inline V maskedLoad(M k, const T* p) {
  alignas(64) T lanes[sizeof(V) / sizeof(T)] = {};
  for (std::size_t i = 0; i < sizeof(V) / sizeof(T); ++i)
    if ((k >> i) & 1) lanes[i] = p[i];
  V v;
  std::memcpy(&v, lanes, sizeof(V));
  return v;
}
template <typename V, typename T, typename M>
inline void maskedStore(T* p, M k, V v) {
  alignas(64) T lanes[sizeof(V) / sizeof(T)];
  std::memcpy(lanes, &v, sizeof(V));
  for (std::size_t i = 0; i < sizeof(V) / sizeof(T); ++i)
    if ((k >> i) & 1) p[i] = lanes[i];
}
inline __m512d _mm512_maskz_loadu_pd(__mmask8 k, const void* p) {
  return maskedLoad<__m512d>(k, static_cast<const double*>(p));
}
inline __m512 _mm512_maskz_loadu_ps(__mmask16 k, const void* p) {
  return maskedLoad<__m512>(k, static_cast<const float*>(p));
}
inline void _mm512_mask_storeu_pd(void* p, __mmask8 k, __m512d v) { maskedStore(static_cast<double*>(p), k, v); }
inline void _mm512_mask_storeu_ps(void* p, __mmask16 k, __m512 v) { maskedStore(static_cast<float*>(p), k, v); }
#endif

// One vector type per element type (the interface vector_kernels.inl expects).
template <typename T>
struct Vec;

template <>
struct Vec<double> {
  using type = __m512d;
  using part = __mmask8;
  static constexpr std::size_t width = 8;
  static constexpr bool kHalves = true;
  MLP_AVX512_INLINE static type load(const double* p) { return _mm512_loadu_pd(p); }
  MLP_AVX512_INLINE static type loadHalf(const double* p) { return _mm512_insertf64x4(_mm512_setzero_pd(), _mm256_loadu_pd(p), 0); }
  MLP_AVX512_INLINE static void storeHalf(double* p, type v) { _mm256_storeu_pd(p, _mm512_castpd512_pd256(v)); }
  MLP_AVX512_INLINE static void store(double* p, type v) { _mm512_storeu_pd(p, v); }
  MLP_AVX512_INLINE static part partOf(std::size_t lanes) { return static_cast<part>((1u << lanes) - 1); }
  MLP_AVX512_INLINE static type loadPart(const double* p, part k) { return _mm512_maskz_loadu_pd(k, p); }
  MLP_AVX512_INLINE static void storePart(double* p, type v, part k) { _mm512_mask_storeu_pd(p, k, v); }
  MLP_AVX512_INLINE static void storeFirst(double* p, type v, part k) { storePart(p, v, k); }
  MLP_AVX512_INLINE static type set1(double v) { return _mm512_set1_pd(v); }
  MLP_AVX512_INLINE static type zero() { return _mm512_setzero_pd(); }
  MLP_AVX512_INLINE static type fma(type a, type b, type c) { return _mm512_fmadd_pd(a, b, c); }
  MLP_AVX512_INLINE static type add(type a, type b) { return _mm512_add_pd(a, b); }
  MLP_AVX512_INLINE static type sub(type a, type b) { return _mm512_sub_pd(a, b); }
  MLP_AVX512_INLINE static type div(type a, type b) { return _mm512_div_pd(a, b); }
  MLP_AVX512_INLINE static type mul(type a, type b) { return _mm512_mul_pd(a, b); }
  MLP_AVX512_INLINE static type max(type a, type b) { return _mm512_max_pd(a, b); }
  MLP_AVX512_INLINE static type min(type a, type b) { return _mm512_min_pd(a, b); }
  MLP_AVX512_INLINE static type fnma(type a, type b, type c) { return _mm512_fnmadd_pd(a, b, c); }
  MLP_AVX512_INLINE static type roundNearest(type x) {
    return _mm512_roundscale_pd(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  // 2^n for integral n in [-1022, 1023]: from the low bits of n + 1.5 * 2^52.
  MLP_AVX512_INLINE static type pow2(type n) {
    const __m512i bits = _mm512_castpd_si512(_mm512_add_pd(n, _mm512_set1_pd(6755399441055744.0)));
    return _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_add_epi64(bits, _mm512_set1_epi64(1023)), 52));
  }
  MLP_AVX512_INLINE static type orSignBit(type v) { return _mm512_or_pd(v, _mm512_set1_pd(-0.0)); }
  using mask = __mmask8;
  MLP_AVX512_INLINE static mask greater(type a, type b) { return _mm512_cmp_pd_mask(a, b, _CMP_GT_OQ); }
  MLP_AVX512_INLINE static type select(mask m, type ifTrue, type ifFalse) {
    return _mm512_mask_blend_pd(m, ifFalse, ifTrue);
  }
  MLP_AVX512_INLINE static type onesWhere(mask m) { return _mm512_maskz_mov_pd(m, _mm512_set1_pd(1.0)); }
};

template <>
struct Vec<float> {
  using type = __m512;
  using part = __mmask16;
  static constexpr std::size_t width = 16;
  static constexpr bool kHalves = true;
  MLP_AVX512_INLINE static type load(const float* p) { return _mm512_loadu_ps(p); }
  MLP_AVX512_INLINE static type loadHalf(const float* p) { return _mm512_insertf32x8(_mm512_setzero_ps(), _mm256_loadu_ps(p), 0); }
  MLP_AVX512_INLINE static void storeHalf(float* p, type v) { _mm256_storeu_ps(p, _mm512_castps512_ps256(v)); }
  MLP_AVX512_INLINE static void store(float* p, type v) { _mm512_storeu_ps(p, v); }
  MLP_AVX512_INLINE static part partOf(std::size_t lanes) { return static_cast<part>((1u << lanes) - 1); }
  MLP_AVX512_INLINE static type loadPart(const float* p, part k) { return _mm512_maskz_loadu_ps(k, p); }
  MLP_AVX512_INLINE static void storePart(float* p, type v, part k) { _mm512_mask_storeu_ps(p, k, v); }
  MLP_AVX512_INLINE static void storeFirst(float* p, type v, part k) { storePart(p, v, k); }
  MLP_AVX512_INLINE static type set1(float v) { return _mm512_set1_ps(v); }
  MLP_AVX512_INLINE static type zero() { return _mm512_setzero_ps(); }
  MLP_AVX512_INLINE static type fma(type a, type b, type c) { return _mm512_fmadd_ps(a, b, c); }
  MLP_AVX512_INLINE static type add(type a, type b) { return _mm512_add_ps(a, b); }
  MLP_AVX512_INLINE static type sub(type a, type b) { return _mm512_sub_ps(a, b); }
  MLP_AVX512_INLINE static type div(type a, type b) { return _mm512_div_ps(a, b); }
  MLP_AVX512_INLINE static type mul(type a, type b) { return _mm512_mul_ps(a, b); }
  MLP_AVX512_INLINE static type max(type a, type b) { return _mm512_max_ps(a, b); }
  MLP_AVX512_INLINE static type min(type a, type b) { return _mm512_min_ps(a, b); }
  MLP_AVX512_INLINE static type fnma(type a, type b, type c) { return _mm512_fnmadd_ps(a, b, c); }
  MLP_AVX512_INLINE static type roundNearest(type x) {
    return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  // 2^n for integral n in [-126, 127]: from the low bits of n + 1.5 * 2^23.
  MLP_AVX512_INLINE static type pow2(type n) {
    const __m512i bits = _mm512_castps_si512(_mm512_add_ps(n, _mm512_set1_ps(12582912.0f)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(127)), 23));
  }
  MLP_AVX512_INLINE static type orSignBit(type v) { return _mm512_or_ps(v, _mm512_set1_ps(-0.0f)); }
  using mask = __mmask16;
  MLP_AVX512_INLINE static mask greater(type a, type b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  MLP_AVX512_INLINE static type select(mask m, type ifTrue, type ifFalse) {
    return _mm512_mask_blend_ps(m, ifFalse, ifTrue);
  }
  MLP_AVX512_INLINE static type onesWhere(mask m) { return _mm512_maskz_mov_ps(m, _mm512_set1_ps(1.0f)); }
};

// Of the 32 ZMM registers: up to 16 accumulators + 1 broadcast for the gathers (GCC unrolls
// loops of at most 16 steps completely; with tiles of 17-24 it kept the sums in memory: hidden
// layers of 150-1000 units trained 1.2-2.2x slower); for the small products nv x rows
// accumulators + the nv vectors of b's row + 1 broadcast (up to 8 rows; one row from 11 vectors
// on, b then read straight from L1 by the multiply-adds).
constexpr std::size_t kMaxTile = 16;
constexpr std::size_t kSmallProductVectors = 16;
constexpr std::size_t smallProductRows(std::size_t nv) {
  return nv >= 11 ? 1 : std::min<std::size_t>(8, (31 - nv) / nv);
}

}  // namespace

#define MLP_TARGET MLP_AVX512
#define MLP_TARGET_INLINE MLP_AVX512_INLINE
#include "vector_kernels.inl"
#undef MLP_TARGET
#undef MLP_TARGET_INLINE

}  // namespace avx512
}  // namespace mlp

#endif  // MLP_HAVE_AVX512
