// Blocked matrix product in the shape of the classic five loops (Goto & van de Geijn; BLIS):
// jc over NC columns, pc over KC of the shared dimension, ic over MC rows, then jr/ir over
// NR x MR micro-tiles computed by a register-blocked micro-kernel from packed panels.
//
// Operands are described by strides and an optional row index, so the same routine serves the
// forward product (weights transposed), the backward product and the weight gradient (deltas
// transposed), and reads minibatch rows straight out of the data set through the shuffled order
// (no shuffled copy), converting bytes to floats while packing.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "simd.h"

namespace mlp {

// Element (r, c) of a strided matrix lives at data[row(r) * rowStride + c * colStride], where
// row(r) = rowIndex ? rowIndex[r] : r.
template <typename E>
struct Operand {
  const E* data;
  std::ptrdiff_t rowStride;
  std::ptrdiff_t colStride;
  const int32_t* rowIndex;

  const E* row(std::size_t r) const {
    const std::ptrdiff_t rr = rowIndex ? static_cast<std::ptrdiff_t>(rowIndex[r]) : static_cast<std::ptrdiff_t>(r);
    return data + rr * rowStride;
  }
};

template <typename E>
Operand<E> dense(const E* data, std::ptrdiff_t rowStride, std::ptrdiff_t colStride, const int32_t* rowIndex = nullptr) {
  return Operand<E>{data, rowStride, colStride, rowIndex};
}

// Block sizes in one place. MR x NR accumulators stay in registers; KC x NR panels of B stay in L1,
// MC x KC blocks of A in L2.
template <typename T>
struct Blocking;
template <>
struct Blocking<double> {
  static constexpr std::size_t MR = 4, NR = 8, KC = 256, MC = 96, NC = 4096;
};
template <>
struct Blocking<float> {
  static constexpr std::size_t MR = 4, NR = 16, KC = 256, MC = 96, NC = 4096;
};

template <typename T>
struct GemmBuffers {
  AlignedVector<T> packedA;
  AlignedVector<T> packedB;
};

// Packs rows [i0, i0+mc) x cols [p0, p0+kc) of A into MR-row panels, column by column, zero-padded.
template <typename T, typename E>
void packA(const Operand<E>& a, std::size_t i0, std::size_t mc, std::size_t p0, std::size_t kc, T* dst) {
  constexpr std::size_t MR = Blocking<T>::MR;
  for (std::size_t ir = 0; ir < mc; ir += MR) {
    const std::size_t mr_cur = std::min(MR, mc - ir);
    for (std::size_t i = 0; i < MR; ++i) {
      if (i < mr_cur) {
        const E* src = a.row(i0 + ir + i) + static_cast<std::ptrdiff_t>(p0) * a.colStride;
        for (std::size_t p = 0; p < kc; ++p) dst[p * MR + i] = static_cast<T>(src[static_cast<std::ptrdiff_t>(p) * a.colStride]);
      } else {
        for (std::size_t p = 0; p < kc; ++p) dst[p * MR + i] = T(0);
      }
    }
    dst += kc * MR;
  }
}

// Packs rows [p0, p0+kc) x cols [j0, j0+nc) of B into NR-column panels, row by row, zero-padded.
template <typename T, typename E>
void packB(const Operand<E>& b, std::size_t p0, std::size_t kc, std::size_t j0, std::size_t nc, T* dst) {
  constexpr std::size_t NR = Blocking<T>::NR;
  for (std::size_t jr = 0; jr < nc; jr += NR) {
    const std::size_t nr_cur = std::min(NR, nc - jr);
    for (std::size_t p = 0; p < kc; ++p) {
      const E* src = b.row(p0 + p) + static_cast<std::ptrdiff_t>(j0 + jr) * b.colStride;
      T* out = dst + p * NR;
      std::size_t j = 0;
      for (; j < nr_cur; ++j) out[j] = static_cast<T>(src[static_cast<std::ptrdiff_t>(j) * b.colStride]);
      for (; j < NR; ++j) out[j] = T(0);
    }
    dst += kc * NR;
  }
}

// C (M x N, row stride ldc) = (accumulate ? C : 0) + A (M x K) . B (K x N).
// With accumulate false C is only written, never read (beta = 0).
template <typename T, typename EA, typename EB>
void gemm(Isa isa, std::size_t M, std::size_t N, std::size_t K, const Operand<EA>& a, const Operand<EB>& b, T* c,
          std::size_t ldc, bool accumulate, GemmBuffers<T>& buf) {
  using B = Blocking<T>;
  if (M == 0 || N == 0) return;
  if (K == 0) {
    if (!accumulate)
      for (std::size_t i = 0; i < M; ++i) std::fill(c + i * ldc, c + i * ldc + N, T(0));
    return;
  }
  const std::size_t kcMax = std::min(B::KC, K);
  const std::size_t mcMax = std::min(B::MC, M);
  const std::size_t ncMax = std::min(B::NC, N);
  buf.packedA.resize(((mcMax + B::MR - 1) / B::MR) * B::MR * kcMax);
  buf.packedB.resize(((ncMax + B::NR - 1) / B::NR) * B::NR * kcMax);
  for (std::size_t jc = 0; jc < N; jc += B::NC) {
    const std::size_t nc_cur = std::min(B::NC, N - jc);
    for (std::size_t pc = 0; pc < K; pc += B::KC) {
      const std::size_t kc_cur = std::min(B::KC, K - pc);
      const bool acc = accumulate || pc > 0;
      packB(b, pc, kc_cur, jc, nc_cur, buf.packedB.data());
      for (std::size_t ic = 0; ic < M; ic += B::MC) {
        const std::size_t mc_cur = std::min(B::MC, M - ic);
        packA(a, ic, mc_cur, pc, kc_cur, buf.packedA.data());
        for (std::size_t jr = 0; jr < nc_cur; jr += B::NR) {
          const std::size_t nr_cur = std::min(B::NR, nc_cur - jr);
          const T* pb = buf.packedB.data() + (jr / B::NR) * B::NR * kc_cur;
          for (std::size_t ir = 0; ir < mc_cur; ir += B::MR) {
            const std::size_t mr_cur = std::min(B::MR, mc_cur - ir);
            const T* pa = buf.packedA.data() + (ir / B::MR) * B::MR * kc_cur;
            gemmMicroKernel<T>(isa, kc_cur, pa, pb, c + (ic + ir) * ldc + jc + jr, ldc, mr_cur, nr_cur, acc);
          }
        }
      }
    }
  }
}

}  // namespace mlp
