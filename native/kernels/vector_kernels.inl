// Kernel bodies shared by the vector paths, written once over a vector type. Each ISA file
// (avx2.cpp, avx512.cpp) includes this inside its own namespace after it defines:
//   MLP_TARGET, MLP_TARGET_INLINE   its function attributes (the second always inlines);
//   Vec<T>                          the vector of T and its operations. loadPart/storePart take a
//                                   Vec<T>::part from partOf(lanes), 1 <= lanes <= width, and
//                                   touch only those lanes where the ISA masks (AVX-512); AVX2
//                                   loads and stores the whole vector, which the layout makes
//                                   valid (rows are whole AVX2 vectors wide, simd.h).
//                                   storeFirst stores only `lanes` on every path (for outputs
//                                   whose rows are not padded);
//   kMaxTile                        accumulator vectors a gather tile keeps in registers;
//   smallProductRows(nv)            rows a small-product tile computes at once for nv vectors;
//   nonZeroBits64(p)                bit i set when byte p[i] != 0, for i < 64;
//   sigmoidVec<T>(v)                the sigmoid, lane by lane.
// Each output element is computed by the same operations in the same order on every vector
// path (one fused multiply-add per term, in the order of the terms), so the paths give the
// same bits: only how many elements one instruction holds differs.

namespace {

// Calls f(std::integral_constant<std::size_t, nv>{}) for 1 <= nv <= N: one instantiation of a
// tile per number of accumulator vectors.
template <std::size_t N, typename F>
inline void withVectors(std::size_t nv, F&& f) {
  if constexpr (N > 1) {
    if (nv < N) return withVectors<N - 1>(nv, f);
  }
  f(std::integral_constant<std::size_t, N>{});
}

// Loads/stores vector i of a tile of NV: whole except the last, which holds `tail`'s lanes.
template <typename T, std::size_t NV>
MLP_TARGET_INLINE typename Vec<T>::type loadTile(const T* p, std::size_t i, typename Vec<T>::part tail) {
  return i + 1 < NV ? Vec<T>::load(p + i * Vec<T>::width) : Vec<T>::loadPart(p + i * Vec<T>::width, tail);
}
template <typename T, std::size_t NV>
MLP_TARGET_INLINE void storeTile(T* p, std::size_t i, typename Vec<T>::type v, typename Vec<T>::part tail) {
  if (i + 1 < NV) {
    Vec<T>::store(p + i * Vec<T>::width, v);
  } else {
    Vec<T>::storePart(p + i * Vec<T>::width, v, tail);
  }
}

// Gather tiles: NV accumulator vectors stay in registers while the non-zeros stream past.
template <typename T, typename V, std::size_t NV>
MLP_TARGET void gatherRowsTile(std::size_t rows, const SparseRow<V>* x, std::size_t b0, std::size_t b1, const T* wT,
                               std::size_t ldw, T* z, std::size_t ldz, typename Vec<T>::part tail) {
  using W = Vec<T>;
  for (std::size_t r = 0; r < rows; ++r) {
    const uint32_t k0 = x[r].bounds[b0], k1 = x[r].bounds[b1];
    if (k0 == k1) continue;
    const uint16_t* col = x[r].col;
    const V* val = x[r].val;
    T* zr = z + r * ldz;
    typename W::type acc[NV];
    for (std::size_t i = 0; i < NV; ++i) acc[i] = loadTile<T, NV>(zr, i, tail);
    for (uint32_t k = k0; k < k1; ++k) {
      const typename W::type v = W::set1(static_cast<T>(val[k]));
      const T* w = wT + static_cast<std::size_t>(col[k]) * ldw;
      for (std::size_t i = 0; i < NV; ++i) acc[i] = W::fma(v, loadTile<T, NV>(w, i, tail), acc[i]);
    }
    for (std::size_t i = 0; i < NV; ++i) storeTile<T, NV>(zr, i, acc[i], tail);
  }
}

template <typename T, std::size_t NV>
MLP_TARGET void byteGatherRowsTile(std::size_t rows, const uint8_t* const* x, std::size_t j0, std::size_t j1,
                                   const T* wT, std::size_t ldw, T* z, std::size_t ldz, typename Vec<T>::part tail) {
  using W = Vec<T>;
  for (std::size_t r = 0; r < rows; ++r) {
    const uint8_t* xr = x[r];
    T* zr = z + r * ldz;
    // A mispredicted loop exit ends every row, so the next rows' bytes are requested ahead.
    if (r + 2 < rows) {
      __builtin_prefetch(x[r + 2] + j0);
      __builtin_prefetch(x[r + 2] + j1 - 1);
    }
    typename W::type acc[NV];
    for (std::size_t i = 0; i < NV; ++i) acc[i] = loadTile<T, NV>(zr, i, tail);
    for (std::size_t c = j0; c < j1; c += 64) {
      // The non-zero bytes of features [c, c + 64) as bits (the last group may be shorter): one
      // loop over them, so one hard-to-predict loop exit per 64 features.
      uint64_t mask = 0;
      if (c + 64 <= j1) {
        mask = nonZeroBits64(xr + c);
      } else {
        for (std::size_t i = 0; i < j1 - c; ++i) mask |= static_cast<uint64_t>(xr[c + i] != 0) << i;
      }
      while (mask != 0) {
        const std::size_t j = c + static_cast<unsigned>(__builtin_ctzll(mask));
        mask &= mask - 1;
        const typename W::type v = W::set1(static_cast<T>(xr[j]));
        const T* w = wT + j * ldw;
        for (std::size_t i = 0; i < NV; ++i) acc[i] = W::fma(v, loadTile<T, NV>(w, i, tail), acc[i]);
      }
    }
    for (std::size_t i = 0; i < NV; ++i) storeTile<T, NV>(zr, i, acc[i], tail);
  }
}

template <typename T, typename V, std::size_t NV>
MLP_TARGET void gatherColsTile(std::size_t n, const uint32_t* count, std::size_t slot, const uint16_t* row,
                               const V* val, const T* d, std::size_t ldd, T* gT, std::size_t ldg,
                               typename Vec<T>::part tail) {
  using W = Vec<T>;
  for (std::size_t j = 0; j < n; ++j) {
    const std::size_t e0 = j * slot, e1 = e0 + count[j];
    if (e0 == e1) continue;
    T* g = gT + j * ldg;
    typename W::type acc[NV];
    for (std::size_t i = 0; i < NV; ++i) acc[i] = loadTile<T, NV>(g, i, tail);
    for (std::size_t e = e0; e < e1; ++e) {
      const typename W::type v = W::set1(static_cast<T>(val[e]));
      const T* dr = d + static_cast<std::size_t>(row[e]) * ldd;
      for (std::size_t i = 0; i < NV; ++i) acc[i] = W::fma(v, loadTile<T, NV>(dr, i, tail), acc[i]);
    }
    for (std::size_t i = 0; i < NV; ++i) storeTile<T, NV>(g, i, acc[i], tail);
  }
}

// Splits `width` elements into tiles of at most kMaxTile vectors and calls
// tile(integral_constant<NV>, offset, tail) for each; only the last vector of all may be partial.
template <typename T, typename Tile>
MLP_TARGET_INLINE void forEachTile(std::size_t width, Tile&& tile) {
  constexpr std::size_t w = Vec<T>::width;
  std::size_t vectors = (width + w - 1) / w;
  for (std::size_t off = 0; vectors > 0;) {
    const std::size_t nv = vectors > kMaxTile ? kMaxTile : vectors;
    vectors -= nv;
    const typename Vec<T>::part tail = Vec<T>::partOf(vectors == 0 ? width - off - (nv - 1) * w : w);
    // (The lambda has no target attribute: only integers and pointers pass through it.)
    withVectors<kMaxTile>(nv, [&](auto nvc) { tile(nvc, off, tail); });
    off += nv * w;
  }
}

// The sigmoid step of biasSigmoid on one vector (or its first lanes).
template <typename T, bool Whole>
MLP_TARGET_INLINE void biasSigmoidVector(T* z, T* a, const T* bias, bool writeZ, typename Vec<T>::part part) {
  using W = Vec<T>;
  typename W::type v = Whole ? W::load(z) : W::loadPart(z, part);
  if (bias) v = W::add(v, Whole ? W::load(bias) : W::loadPart(bias, part));
  const typename W::type s = sigmoidVec<T>(v);
  if (Whole) {
    if (writeZ) W::store(z, v);
    W::store(a, s);
  } else {
    if (writeZ) W::storePart(z, v, part);
    W::storePart(a, s, part);
  }
}

// RB rows of C x NV vectors: the NV vectors of b's row k are loaded once and used for RB rows.
template <typename T, std::size_t NV, std::size_t RB>
MLP_TARGET void smallProductTile(std::size_t rows, std::size_t depth, const T* a, std::size_t ars, std::size_t acs,
                                 const T* b, std::size_t ldb, T* c, std::size_t ldc, typename Vec<T>::part tail) {
  using W = Vec<T>;
  for (std::size_t r0 = 0; r0 < rows; r0 += RB) {
    const std::size_t rb = rows - r0 < RB ? rows - r0 : RB;
    typename W::type acc[RB][NV];
    for (std::size_t rr = 0; rr < RB; ++rr)
      for (std::size_t i = 0; i < NV; ++i) acc[rr][i] = W::zero();
    const T* ar = a + r0 * ars;
    for (std::size_t k = 0; k < depth; ++k) {
      const T* bk = b + k * ldb;
      typename W::type bv[NV];
      for (std::size_t i = 0; i < NV; ++i) bv[i] = loadTile<T, NV>(bk, i, tail);
      for (std::size_t rr = 0; rr < RB; ++rr) {
        // Rows past the end repeat the last row (read, never stored).
        const typename W::type av = W::set1(ar[(rr < rb ? rr : rb - 1) * ars + k * acs]);
        for (std::size_t i = 0; i < NV; ++i) acc[rr][i] = W::fma(av, bv[i], acc[rr][i]);
      }
    }
    for (std::size_t rr = 0; rr < rb; ++rr) {
      T* cr = c + (r0 + rr) * ldc;
      for (std::size_t i = 0; i + 1 < NV; ++i) W::store(cr + i * W::width, acc[rr][i]);
      W::storeFirst(cr + (NV - 1) * W::width, acc[rr][NV - 1], tail);
    }
  }
}

}  // namespace

template <typename T, typename V>
MLP_TARGET void sparseGatherRows(std::size_t rows, const SparseRow<V>* x, std::size_t b0, std::size_t b1, const T* wT,
                                 std::size_t ldw, T* z, std::size_t ldz, std::size_t width) {
  forEachTile<T>(width, [&](auto nv, std::size_t off, typename Vec<T>::part tail) {
    gatherRowsTile<T, V, decltype(nv)::value>(rows, x, b0, b1, wT + off, ldw, z + off, ldz, tail);
  });
}

template <typename T>
MLP_TARGET void byteGatherRows(std::size_t rows, const uint8_t* const* x, std::size_t j0, std::size_t j1, const T* wT,
                               std::size_t ldw, T* z, std::size_t ldz, std::size_t width) {
  forEachTile<T>(width, [&](auto nv, std::size_t off, typename Vec<T>::part tail) {
    byteGatherRowsTile<T, decltype(nv)::value>(rows, x, j0, j1, wT + off, ldw, z + off, ldz, tail);
  });
}

template <typename T, typename V>
MLP_TARGET void sparseGatherCols(std::size_t n, const uint32_t* count, std::size_t slot, const uint16_t* row,
                                 const V* val, const T* d, std::size_t ldd, T* gT, std::size_t ldg, std::size_t width) {
  forEachTile<T>(width, [&](auto nv, std::size_t off, typename Vec<T>::part tail) {
    gatherColsTile<T, V, decltype(nv)::value>(n, count, slot, row, val, d + off, ldd, gT + off, ldg, tail);
  });
}

template <typename T>
MLP_TARGET void biasSigmoid(std::size_t rows, std::size_t n, std::size_t ld, const T* bias, T* z, T* a) {
  using W = Vec<T>;
  // The same elements on every vector path: up to n rounded up to whole AVX2 vectors (the
  // padding beyond them is set to zero, not computed).
  const std::size_t end = std::min(ld, simdPadded<T>(n));
  const std::size_t whole = end / W::width * W::width;
  const typename W::part part = W::partOf(end - whole == 0 ? W::width : end - whole);
  for (std::size_t r = 0; r < rows; ++r) {
    T* zr = z + r * ld;
    T* ar = a + r * ld;
    for (std::size_t u = 0; u < whole; u += W::width)
      biasSigmoidVector<T, true>(zr + u, ar + u, bias ? bias + u : nullptr, a != z, part);
    if (whole < end) biasSigmoidVector<T, false>(zr + whole, ar + whole, bias ? bias + whole : nullptr, a != z, part);
    for (std::size_t u = n; u < ld; ++u) ar[u] = T(0);
  }
}

template <typename T>
MLP_TARGET void smallProduct(std::size_t rows, std::size_t n, std::size_t depth, const T* a, std::size_t ars,
                             std::size_t acs, const T* b, std::size_t ldb, T* c, std::size_t ldc) {
  constexpr std::size_t w = Vec<T>::width;
  for (std::size_t off = 0; off < n;) {
    const std::size_t vectors = (n - off + w - 1) / w;
    const std::size_t nv = vectors > kSmallProductVectors ? kSmallProductVectors : vectors;
    const std::size_t lanes = std::min(n - off, nv * w);
    const typename Vec<T>::part tail = Vec<T>::partOf(lanes - (nv - 1) * w);
    withVectors<kSmallProductVectors>(nv, [&](auto nvc) {
      constexpr std::size_t NV = decltype(nvc)::value;
      smallProductTile<T, NV, smallProductRows(NV)>(rows, depth, a, ars, acs, b + off, ldb, c + off, ldc, tail);
    });
    off += nv * w;
  }
}

#define MLP_VECTOR_SPARSE_INSTANTIATE(T, V)                                                                        \
  template void sparseGatherRows<T, V>(std::size_t, const SparseRow<V>*, std::size_t, std::size_t, const T*,      \
                                       std::size_t, T*, std::size_t, std::size_t);                                 \
  template void sparseGatherCols<T, V>(std::size_t, const uint32_t*, std::size_t, const uint16_t*, const V*,      \
                                       const T*, std::size_t, T*, std::size_t, std::size_t);
MLP_VECTOR_SPARSE_INSTANTIATE(double, double)
MLP_VECTOR_SPARSE_INSTANTIATE(double, float)
MLP_VECTOR_SPARSE_INSTANTIATE(double, uint8_t)
MLP_VECTOR_SPARSE_INSTANTIATE(float, double)
MLP_VECTOR_SPARSE_INSTANTIATE(float, float)
MLP_VECTOR_SPARSE_INSTANTIATE(float, uint8_t)
#undef MLP_VECTOR_SPARSE_INSTANTIATE
template void byteGatherRows<double>(std::size_t, const uint8_t* const*, std::size_t, std::size_t, const double*,
                                     std::size_t, double*, std::size_t, std::size_t);
template void byteGatherRows<float>(std::size_t, const uint8_t* const*, std::size_t, std::size_t, const float*,
                                    std::size_t, float*, std::size_t, std::size_t);
template void biasSigmoid<double>(std::size_t, std::size_t, std::size_t, const double*, double*, double*);
template void biasSigmoid<float>(std::size_t, std::size_t, std::size_t, const float*, float*, float*);
template void smallProduct<double>(std::size_t, std::size_t, std::size_t, const double*, std::size_t, std::size_t,
                                   const double*, std::size_t, double*, std::size_t);
template void smallProduct<float>(std::size_t, std::size_t, std::size_t, const float*, std::size_t, std::size_t,
                                  const float*, std::size_t, float*, std::size_t);
