// The vectorised inner kernels, one generic version (plain C++ the compiler auto-vectorises) and
// one AVX2+FMA version chosen at run time (avx2.cpp, compiled with per-function target
// attributes so the shipped build needs no -march flag).
//
// Layer-1 kernels work on sparse rows (the non-zero features of one sample, as column indices
// and values): MNIST pixels are ~80% zeros, and skipping exact zeros changes no result.
// `width` is always a multiple of kPad; rows of weights/gradients are kPad-aligned in length.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cpu.h"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define MLP_HAVE_AVX2 1
// Per-function ISA: the declarations carry the attribute too (GCC treats a differing one as another version).
#define MLP_AVX2 __attribute__((target("avx2,fma")))
#else
#define MLP_HAVE_AVX2 0
#endif

namespace mlp {

// Row lengths of packed buffers are rounded up to this many elements (a whole AVX2 vector of floats).
constexpr std::size_t kPad = 8;
inline std::size_t padded(std::size_t n) { return (n + kPad - 1) / kPad * kPad; }

// z[0:width] += sum_k val[k] * wT[col[k] * ldw + 0:width]   (forward pass of layer 1)
template <typename T, typename V>
void sparseGatherAxpy(Isa isa, const uint32_t* col, const V* val, std::size_t nnz, const T* wT, std::size_t ldw,
                      T* z, std::size_t width);

// gT[col[k] * ldg + 0:width] += val[k] * d[0:width], for every k   (weight gradient of layer 1)
template <typename T, typename V>
void sparseScatterAxpy(Isa isa, const uint32_t* col, const V* val, std::size_t nnz, const T* d, T* gT,
                       std::size_t ldg, std::size_t width);

// The register-blocked GEMM micro-kernel: C tile (mr x nr of MR x NR) (+)= packed A . packed B.
template <typename T>
void gemmMicroKernel(Isa isa, std::size_t kc, const T* pa, const T* pb, T* c, std::size_t ldc, std::size_t mr,
                     std::size_t nr, bool accumulate);

#if MLP_HAVE_AVX2
namespace avx2 {
template <typename T, typename V>
MLP_AVX2 void sparseGatherAxpy(const uint32_t* col, const V* val, std::size_t nnz, const T* wT, std::size_t ldw, T* z,
                      std::size_t width);
template <typename T, typename V>
MLP_AVX2 void sparseScatterAxpy(const uint32_t* col, const V* val, std::size_t nnz, const T* d, T* gT, std::size_t ldg,
                       std::size_t width);
template <typename T>
MLP_AVX2 void gemmMicroKernel(std::size_t kc, const T* pa, const T* pb, T* c, std::size_t ldc, std::size_t mr, std::size_t nr,
                     bool accumulate);
}  // namespace avx2
#endif

}  // namespace mlp
