// The vectorised inner kernels, one generic version (plain C++ the compiler auto-vectorises) and
// AVX2+FMA and AVX-512 versions chosen at run time (avx2.cpp, avx512.cpp, compiled with
// per-function target attributes so the shipped build needs no -march flag). The two vector
// paths share their kernel bodies (vector_kernels.inl) and give the same bits.
//
// Layer-1 kernels work on sparse data (the non-zero features of samples, as column indices and
// values): MNIST pixels are ~80% zeros, and skipping exact zeros changes no result. Every kernel
// computes each output element with a fixed sequence of operations that depends only on the
// data, never on how the caller splits the work, so results do not depend on the thread count.
// `width` is a multiple of simdWidth<T>() (4 doubles or 8 floats: AVX2 vectors) and at most the
// row strides; rows of weights/gradients/activations are kPad-aligned in length. (The AVX-512
// path masks the last part of its 8- or 16-lane vectors, so the layout is the same on every path.)
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

#include "cpu.h"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define MLP_HAVE_AVX2 1
// Per-function ISA: the declarations carry the attribute too (GCC treats a differing one as another version).
#define MLP_AVX2 __attribute__((target("avx2,fma")))
#define MLP_HAVE_AVX512 1
#if defined(MLP_EMULATE_AVX512)
// Test builds only (CMakeLists.txt, MLP_EMULATE_AVX512=ON): the AVX-512 path runs as portable
// code (SIMDe) on any AVX2 machine, so its logic is tested where no AVX-512 CPU is at hand.
#define MLP_AVX512
#else
#define MLP_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")))
#endif
#else
#define MLP_HAVE_AVX2 0
#define MLP_HAVE_AVX512 0
#endif

namespace mlp {

// Row lengths of packed buffers are rounded up to this many elements (a whole AVX2 vector of floats).
constexpr std::size_t kPad = 8;
inline std::size_t padded(std::size_t n) { return (n + kPad - 1) / kPad * kPad; }

// Buffers the kernels stream through start on a cache line: a row stride that is a multiple of
// 32 bytes then never makes a vector load straddle two lines (malloc only promises 16 bytes).
constexpr std::size_t kCacheLine = 64;
inline void* allocateAligned(std::size_t bytes) { return ::operator new(bytes, std::align_val_t(kCacheLine)); }
inline void freeAligned(void* p, std::size_t) { ::operator delete(p, std::align_val_t(kCacheLine)); }

// For the input's non-zero index (tens of MB, read at random rows every minibatch): large
// buffers start on a 2 MiB boundary and ask Linux for transparent huge pages, so those reads do
// not miss the TLB on every row. Elsewhere (or for small buffers) as allocateAligned.
void* allocateLarge(std::size_t bytes);
void freeLarge(void* p, std::size_t bytes);

// A std::vector allocator over one of the pairs above.
template <typename E, void* (*Allocate)(std::size_t), void (*Free)(void*, std::size_t)>
struct BufferAllocator {
  using value_type = E;
  template <typename U>
  struct rebind {
    using other = BufferAllocator<U, Allocate, Free>;
  };
  BufferAllocator() = default;
  template <typename U>
  BufferAllocator(const BufferAllocator<U, Allocate, Free>&) {}
  E* allocate(std::size_t n) { return static_cast<E*>(Allocate(n * sizeof(E))); }
  void deallocate(E* p, std::size_t n) { Free(p, n * sizeof(E)); }
  template <typename U>
  bool operator==(const BufferAllocator<U, Allocate, Free>&) const { return true; }
  template <typename U>
  bool operator!=(const BufferAllocator<U, Allocate, Free>&) const { return false; }
};
template <typename E>
using AlignedVector = std::vector<E, BufferAllocator<E, allocateAligned, freeAligned>>;
template <typename E>
using LargeVector = std::vector<E, BufferAllocator<E, allocateLarge, freeLarge>>;

// Elements per SIMD vector of T on the widest path (the width kernels round up to).
template <typename T>
constexpr std::size_t simdWidth() {
  return 32 / sizeof(T);
}
template <typename T>
inline std::size_t simdPadded(std::size_t n) {
  return (n + simdWidth<T>() - 1) / simdWidth<T>() * simdWidth<T>();
}

// Elements of T per vector on the path isa (1 on the generic path).
template <typename T>
inline std::size_t vectorElements(Isa isa) {
  return isa == Isa::Avx512 ? 64 / sizeof(T) : isa == Isa::Avx2 ? 32 / sizeof(T) : 1;
}

// The stride of rows of n elements of T on the path isa: whole vectors of the path, and at least
// kPad elements. On the AVX-512 path a vector is a cache line, so none of its loads straddles two
// lines (rows of 56 floats made every other row's loads do so: float32 epochs 1.13x slower on
// Zen 5).
template <typename T>
inline std::size_t rowStride(Isa isa, std::size_t n) {
  const std::size_t unit = vectorElements<T>(isa) > kPad ? vectorElements<T>(isa) : kPad;
  return (n + unit - 1) / unit * unit;
}

// The sign of v as T: -1, 0 or 1 (0 for NaN).
template <typename T>
inline T signOf(T v) {
  return static_cast<T>((v > T(0)) - (v < T(0)));
}

// Sums of |w| and of w^2 (the regularisation cost's parts), added range by range in a fixed order.
struct RegSums {
  double abs = 0, sq = 0;
  RegSums& operator+=(const RegSums& o) {
    abs += o.abs;
    sq += o.sq;
    return *this;
  }
};

// Sums of |w| and w^2 over rows x n elements (rows `stride` apart), in double: four running sums
// each, element c of a row into sum c mod 4, except the last n mod 4 of each row, which go into
// sum 0 (the order regularisedStep's vector paths follow too).
template <typename T>
RegSums regSums(const T* w, std::size_t rows, std::size_t stride, std::size_t n) {
  double a[4] = {0, 0, 0, 0}, q[4] = {0, 0, 0, 0};
  for (std::size_t o = 0; o < rows; ++o) {
    const T* wr = w + o * stride;
    std::size_t c = 0;
    for (; c + 4 <= n; c += 4)
      for (std::size_t i = 0; i < 4; ++i) {
        const double v = static_cast<double>(wr[c + i]);
        a[i] += std::fabs(v);
        q[i] += v * v;
      }
    for (; c < n; ++c) {
      const double v = static_cast<double>(wr[c]);
      a[0] += std::fabs(v);
      q[0] += v * v;
    }
  }
  return RegSums{(a[0] + a[1]) + (a[2] + a[3]), (q[0] + q[1]) + (q[2] + q[3])};
}

// The seed's update of one weight, in its order (every path and layer uses these, so the scalar
// arithmetic is written once): the gradient plus its regularisation, then the momentum step.
template <typename T>
inline T regularised(T g, T w, T l1, T l2) {
  return g + l2 * w + l1 * signOf(w);
}
template <typename T>
inline void momentumStep(T& w, T& prev, T g, T eta, T alpha) {
  const T delta = eta * g;
  w -= delta + alpha * prev;
  prev = delta;
}

// The regularised momentum step's coefficients (regularisedStep).
template <typename T>
struct StepRule {
  bool regularise;  // add l2 * w + l1 * sign(w) to the gradient
  T l1, l2;
  bool step;  // take the step (otherwise only the gradient is completed)
  T eta, alpha;
};

// One element of regularisedStep (its scalar paths and vector tails): g (+ *more), regularised,
// then the step, or else the completed gradient stored.
template <typename T>
inline void regularisedStepElement(T& w, T& g, const T* more, T& prev, const StepRule<T>& rule) {
  T gu = g;
  if (more) gu = gu + *more;
  if (rule.regularise) gu = regularised(gu, w, rule.l1, rule.l2);
  if (rule.step)
    momentumStep(w, prev, gu, rule.eta, rule.alpha);
  else
    g = gu;
}

// For the rows r < rows of n elements (ld apart) of the weights w, their gradient g and their last
// step prev, element by element in the seed's order: with `more` (rows like g's), g = g + more;
// g = g + l2 * w + l1 * sign(w) when rule.regularise; then, when rule.step, delta = eta * g,
// w = w - (delta + alpha * prev), prev = delta, and g is left as it was (nothing reads it after a
// step); otherwise g is stored. Returns regSums(w, rows, ld, n) of the weights as they were
// before. (Layer 1 in its transposed layout: one pass over its weights per minibatch instead of
// two, and none over its gradient to store it.)
template <typename T>
RegSums regularisedStep(Isa isa, std::size_t rows, std::size_t n, std::size_t ld, T* w, T* g, const T* more,
                        T* prev, const StepRule<T>& rule);

// One sample's non-zeros: feature indices and values (the input's own type), in feature order;
// bounds[b] is the position of the first one in feature block b or later (bounds[blocks] = count).
template <typename X>
struct SparseRow {
  const uint16_t* col;
  const X* val;
  const uint32_t* bounds;
};

// For every r < rows: z[r * ldz + 0:width] += sum_k val[k] * wT[col[k] * ldw + 0:width] over the
// non-zeros k of sample r in feature blocks [b0, b1), in order (forward pass of layer 1).
template <typename T, typename X>
void sparseGatherRows(Isa isa, std::size_t rows, const SparseRow<X>* x, std::size_t b0, std::size_t b1, const T* wT,
                      std::size_t ldw, T* z, std::size_t ldz, std::size_t width);

// masks[r * groups + g], groups = ceil(cols / 64): bit i set when x[r][64 g + i] != 0 (bits at
// and past cols clear).
void nonZeroByteMasks(Isa isa, std::size_t rows, const uint8_t* const* x, std::size_t cols, uint64_t* masks);

// The same sums as sparseGatherRows over the features [j0, j1), read straight from byte rows
// x[r][0:cols] instead of a compressed index: z[r * ldz + 0:width] += x[r][j] * wT[j * ldw + 0:width]
// for each non-zero x[r][j], in feature order. The non-zeros are found through `masks`
// (nonZeroByteMasks of the same rows, `groups` per row); j0 is a multiple of 64, and j1 one too or
// cols. (Prediction reads each row once, so compressing it first would only add a pass; the masks
// are computed in one pass ahead, so that no loop over a block's non-zeros waits for its bytes.)
template <typename T>
void byteGatherRows(Isa isa, std::size_t rows, const uint8_t* const* x, const uint64_t* masks, std::size_t groups,
                    std::size_t j0, std::size_t j1, const T* wT, std::size_t ldw, T* z, std::size_t ldz,
                    std::size_t width);

// Elements of a row of `width` that the widest gather tile of this path keeps in registers (the
// sparse kernels take wider rows a tile at a time; the portable path takes whole rows). Callers
// size blocks of rows by it so that a tile's share of the rows stays in L1.
template <typename T>
std::size_t gatherTileElements(Isa isa, std::size_t width);

// One non-zero of a feature's column within a block of samples: the sample's row in the block and
// the value. (Row and value side by side: the counting sort that fills the columns then writes one
// place per non-zero, not two.)
template <typename X>
struct ColumnEntry {
  uint16_t row;
  X val;
};

// For every r < rows, in order, and each non-zero k of sample r in feature blocks [b0, b1), in
// order: gT[col[k] * ldg + 0:width] += val[k] * d[r * ldd + 0:width] (weight gradient of layer 1,
// sample by sample: each feature's terms added in sample order).
template <typename T, typename X>
void sparseScatterRows(Isa isa, std::size_t rows, const SparseRow<X>* x, std::size_t b0, std::size_t b1, const T* d,
                       std::size_t ldd, T* gT, std::size_t ldg, std::size_t width);

// For every j < n: gT[j * ldg + 0:width] += sum_e e.val * d[e.row * ldd + 0:width] over the entries
// e in [j * slot, end[j]), in that order (weight gradient of layer 1, column by column).
// With `overwrite`, the sums start from zero instead of gT's rows (which are all written).
template <typename T, typename X>
void sparseGatherCols(Isa isa, std::size_t n, const uint32_t* end, std::size_t slot, const ColumnEntry<X>* entries,
                      const T* d, std::size_t ldd, T* gT, std::size_t ldg, std::size_t width, bool overwrite);

// For every r < rows: v = z[r*ld + u] (+ bias[u] when bias is given), u < n; z[r*ld + u] = v
// when a != z; a[r*ld + u] = 1 / (1 + exp(-v)); a[r*ld + u] = 0 for n <= u < ld. bias holds ld
// elements (zero padding). The vector paths use their own exp (vector_kernels.inl states its
// error bound).
template <typename T>
void biasSigmoid(Isa isa, std::size_t rows, std::size_t n, std::size_t ld, const T* bias, T* z, T* a);

// terms[r * n + o] = log(1 + e^s), s = -z[r * ldz + o] when o == label[r] and z[r * ldz + o]
// otherwise, for r < rows, o < n: the cross-entropy of a sigmoid output from its pre-activation
// (never log(0)), in T's arithmetic (float32 models' terms in float, as their pre-activations
// are; the caller sums them in double). The vector paths use their own exp and log1p (see
// vector_kernels.inl for the error bound).
template <typename T>
void crossEntropyTerms(Isa isa, std::size_t rows, std::size_t n, const T* z, std::size_t ldz, const int32_t* label,
                       T* terms);

// The non-zeros of src[0:n] (n <= 65536) as (index, value), in index order; returns how many.
// bounds[b] = how many come before index b * block, for b in [0, ceil(n / block)), and
// bounds[ceil(n / block)] = the count. block is a multiple of 32.
template <typename X>
std::size_t compressRow(Isa isa, const X* src, std::size_t n, std::size_t block, uint16_t* col, X* val,
                        uint32_t* bounds);

// How many of src[0:n] are non-zero.
template <typename X>
std::size_t countNonZero(Isa isa, const X* src, std::size_t n);

// The index of the first element of src[0:n] for which |x| <= limit does not hold (NaN, or a
// magnitude above limit: with limit the type's largest finite value, +-infinity), or n.
template <typename T>
std::size_t firstBeyond(Isa isa, const T* src, std::size_t n, T limit);

// C[r * ldc + j] = sum over k < depth, in order from zero, of a[r * ars + k * acs] * b[k * ldb + j],
// for r < rows and j < n (fused multiply-adds on the vector paths); only those elements of C are
// written. Rows of b hold simdPadded<T>(n) readable elements. With sigmoidOut (rows ldc apart,
// simdPadded<T>(n) readable elements each), each result is then multiplied by s * (1 - s) of the
// same element s of sigmoidOut (backpropagation through a sigmoid, done while the results are in
// registers). For products whose b is small (the output layer's 10 units): no packing, b stays
// in L1 and the rows of a stream past.
template <typename T>
void smallProduct(Isa isa, std::size_t rows, std::size_t n, std::size_t depth, const T* a, std::size_t ars,
                  std::size_t acs, const T* b, std::size_t ldb, T* c, std::size_t ldc, const T* sigmoidOut);

// The register-blocked GEMM micro-kernel: C tile (mr x nr of MR x NR) (+)= packed A . packed B.
template <typename T>
void gemmMicroKernel(Isa isa, std::size_t kc, const T* pa, const T* pb, T* c, std::size_t ldc, std::size_t mr,
                     std::size_t nr, bool accumulate);

#if MLP_HAVE_AVX2
namespace avx2 {
template <typename T, typename X>
MLP_AVX2 void sparseGatherRows(std::size_t rows, const SparseRow<X>* x, std::size_t b0, std::size_t b1, const T* wT,
                               std::size_t ldw, T* z, std::size_t ldz, std::size_t width);
template <typename T>
MLP_AVX2 void byteGatherRows(std::size_t rows, const uint8_t* const* x, const uint64_t* masks, std::size_t groups,
                             std::size_t j0, std::size_t j1, const T* wT, std::size_t ldw, T* z, std::size_t ldz,
                             std::size_t width);
template <typename T, typename X>
MLP_AVX2 void sparseScatterRows(std::size_t rows, const SparseRow<X>* x, std::size_t b0, std::size_t b1,
                                const T* d, std::size_t ldd, T* gT, std::size_t ldg, std::size_t width);
template <typename T, typename X>
MLP_AVX2 void sparseGatherCols(std::size_t n, const uint32_t* end, std::size_t slot, const ColumnEntry<X>* entries,
                               const T* d, std::size_t ldd, T* gT, std::size_t ldg, std::size_t width, bool overwrite);
template <typename T>
MLP_AVX2 std::size_t gatherTileElements(std::size_t width);
template <typename T>
MLP_AVX2 void biasSigmoid(std::size_t rows, std::size_t n, std::size_t ld, const T* bias, T* z, T* a);
template <typename T>
MLP_AVX2 void crossEntropyTerms(std::size_t rows, std::size_t n, const T* z, std::size_t ldz, const int32_t* label,
                                T* terms);
MLP_AVX2 std::size_t compressRowBytes(const uint8_t* src, std::size_t n, std::size_t block, uint16_t* col,
                                      uint8_t* val, uint32_t* bounds);
template <typename T>
MLP_AVX2 std::size_t compressRowFloats(const T* src, std::size_t n, std::size_t block, uint16_t* col, T* val,
                                       uint32_t* bounds);
MLP_AVX2 std::size_t countNonZeroBytes(const uint8_t* src, std::size_t n);
MLP_AVX2 void nonZeroByteMasks(std::size_t rows, const uint8_t* const* x, std::size_t cols, uint64_t* masks);
template <typename T>
MLP_AVX2 std::size_t firstBeyond(const T* src, std::size_t n, T limit);
template <typename T>
MLP_AVX2 void smallProduct(std::size_t rows, std::size_t n, std::size_t depth, const T* a, std::size_t ars,
                           std::size_t acs, const T* b, std::size_t ldb, T* c, std::size_t ldc, const T* sigmoidOut);
template <typename T>
MLP_AVX2 void gemmMicroKernel(std::size_t kc, const T* pa, const T* pb, T* c, std::size_t ldc, std::size_t mr,
                              std::size_t nr, bool accumulate);
template <typename T>
MLP_AVX2 RegSums regularisedStep(std::size_t rows, std::size_t n, std::size_t ld, T* w, T* g, const T* more,
                                 T* prev, const StepRule<T>& rule);
}  // namespace avx2
#endif

#if MLP_HAVE_AVX512
// The AVX-512 path has no kernels of its own for the scans and the dense GEMM micro-kernel:
// it uses AVX2's (see avx512.cpp).
namespace avx512 {
template <typename T, typename X>
MLP_AVX512 void sparseGatherRows(std::size_t rows, const SparseRow<X>* x, std::size_t b0, std::size_t b1, const T* wT,
                                 std::size_t ldw, T* z, std::size_t ldz, std::size_t width);
template <typename T>
MLP_AVX512 void byteGatherRows(std::size_t rows, const uint8_t* const* x, const uint64_t* masks, std::size_t groups,
                               std::size_t j0, std::size_t j1, const T* wT, std::size_t ldw, T* z, std::size_t ldz,
                               std::size_t width);
template <typename T, typename X>
MLP_AVX512 void sparseScatterRows(std::size_t rows, const SparseRow<X>* x, std::size_t b0, std::size_t b1,
                                  const T* d, std::size_t ldd, T* gT, std::size_t ldg, std::size_t width);
template <typename T, typename X>
MLP_AVX512 void sparseGatherCols(std::size_t n, const uint32_t* end, std::size_t slot, const ColumnEntry<X>* entries,
                                 const T* d, std::size_t ldd, T* gT, std::size_t ldg, std::size_t width, bool overwrite);
template <typename T>
MLP_AVX512 std::size_t gatherTileElements(std::size_t width);
template <typename T>
MLP_AVX512 void biasSigmoid(std::size_t rows, std::size_t n, std::size_t ld, const T* bias, T* z, T* a);
template <typename T>
MLP_AVX512 void crossEntropyTerms(std::size_t rows, std::size_t n, const T* z, std::size_t ldz, const int32_t* label,
                                  T* terms);
template <typename T>
MLP_AVX512 void smallProduct(std::size_t rows, std::size_t n, std::size_t depth, const T* a, std::size_t ars,
                             std::size_t acs, const T* b, std::size_t ldb, T* c, std::size_t ldc,
                             const T* sigmoidOut);
}  // namespace avx512
#endif

}  // namespace mlp
