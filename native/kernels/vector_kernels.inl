// Kernel bodies shared by the vector paths, written once over a vector type. Each ISA file
// (avx2.cpp, avx512.cpp) includes this inside its own namespace after it defines:
//   MLP_TARGET, MLP_TARGET_INLINE   its function attributes (the second always inlines);
//   Vec<T>                          the vector of T and its operations. loadPart/storePart take a
//                                   Vec<T>::part from partOf(lanes), 1 <= lanes <= width, and
//                                   touch only those lanes where the ISA masks (AVX-512); AVX2
//                                   loads and stores the whole vector, which the layout makes
//                                   valid (rows are whole AVX2 vectors wide, simd.h).
//                                   storeFirst stores only `lanes` on every path (for outputs
//                                   whose rows are not padded). kHalves: whether loadHalf/storeHalf
//                                   exist, which load (zero above) and store the first half of a
//                                   vector, for a row's last vector when its padded lanes fit in
//                                   half of one (forEachTile). The arithmetic (fma, fnma, add,
//                                   sub, mul, div, max, min, roundNearest, pow2) is lane by lane,
//                                   and so are orSignBit, greater (to a mask type), select and
//                                   onesWhere, for log1p;
//   kMaxTile                        accumulator vectors a gather tile keeps in registers;
//   kSmallProductVectors            vectors of a small product's row computed at once;
//   smallProductRows(nv)            rows a small-product tile computes at once for nv vectors.
// Each output element is computed by the same operations in the same order on every vector
// path (one fused multiply-add per term, in the order of the terms), so the paths give the
// same bits: only how many elements one instruction holds differs.

namespace {

// exp(x) for the sigmoid. x is clamped to [-clamp, clamp] (NaN passes through), then
// exp(x) = 2^n * p(r), n = round(x / ln 2), r = x - n ln 2 (two-part ln 2, exact with FMA),
// |r| <= ln(2)/2, and p the Taylor polynomial of degree 13 (double; truncation < 5e-18
// relative) or 7 (float; < 6e-9 relative), by Horner with FMA. Measured against a long-double
// reference on 2^20 random inputs over the sigmoid's useful range, the sigmoid
// 1 / (1 + exp(-v)) is within 2.5 ulp of the exact value (worst seen: 2.34 ulp double, 2.41 ulp
// float). The clamp keeps exp(x), and the sigmoid's 1 / (1 + exp(-v)), normal numbers: a
// saturated unit gives 3.3e-308 (double) or 1.7e-38 (float) instead of a subnormal value (or 1
// minus as little), which the CPU would compute several times slower; the clamp changes no
// result by more than that. The same input always gives the same output.
template <typename T>
struct ExpConstants;
template <>
struct ExpConstants<double> {
  static constexpr double clamp = 708.0, log2e = 1.4426950408889634074;
  static constexpr double ln2Hi = 6.93147180369123816490e-01, ln2Lo = 1.90821492927058770002e-10;
  static constexpr int degree = 13;
  static constexpr double c[14] = {1.0,           1.0,           1.0 / 2,         1.0 / 6,          1.0 / 24,
                                   1.0 / 120,     1.0 / 720,     1.0 / 5040,      1.0 / 40320,      1.0 / 362880,
                                   1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800.0};
};
template <>
struct ExpConstants<float> {
  static constexpr float clamp = 87.0f, log2e = 1.44269504088896341f;
  static constexpr float ln2Hi = 0.693359375f, ln2Lo = -2.12194440e-4f;
  static constexpr int degree = 7;
  static constexpr float c[8] = {1.0f, 1.0f, 1.0f / 2, 1.0f / 6, 1.0f / 24, 1.0f / 120, 1.0f / 720, 1.0f / 5040};
};

template <typename T>
MLP_TARGET_INLINE typename Vec<T>::type expClamped(typename Vec<T>::type x) {
  using W = Vec<T>;
  using K = ExpConstants<T>;
  x = W::max(W::set1(-K::clamp), x);
  x = W::min(W::set1(K::clamp), x);
  const typename W::type n = W::roundNearest(W::mul(x, W::set1(K::log2e)));
  typename W::type r = W::fnma(n, W::set1(K::ln2Hi), x);
  r = W::fnma(n, W::set1(K::ln2Lo), r);
  typename W::type p = W::set1(K::c[K::degree]);
  for (int k = K::degree - 1; k >= 0; --k) p = W::fma(p, r, W::set1(K::c[k]));
  return W::mul(p, W::pow2(n));
}

template <typename T>
MLP_TARGET_INLINE typename Vec<T>::type sigmoidVec(typename Vec<T>::type v) {
  using W = Vec<T>;
  const typename W::type e = expClamped<T>(W::sub(W::zero(), v));
  return W::div(W::set1(T(1)), W::add(W::set1(T(1)), e));
}

// log1pUnit's constants: fdlibm's (log1p, double) and FreeBSD's logf (float, a polynomial of lower
// degree). R(z) = z * (odd[0] + w (odd[1] + ...)) + w * (even[0] + w (even[1] + ...)), w = z^2,
// approximates log(1 + f) - f + f^2 / 2 as fdlibm's log does: |error| < 2^-58.45 (double) and
// 2^-34.24 (float) on its range.
template <typename T>
struct Log1pConstants;
template <>
struct Log1pConstants<double> {
  static constexpr double sqrt2 = 1.41421356237309504880;
  static constexpr double ln2Hi = 6.93147180369123816490e-01, ln2Lo = 1.90821492927058770002e-10;
  static constexpr int oddTerms = 4, evenTerms = 3;
  static constexpr double odd[4] = {6.666666666666735130e-01, 2.857142874366239149e-01, 1.818357216161805012e-01,
                                    1.479819860511658591e-01};
  static constexpr double even[3] = {3.999999999940941908e-01, 2.222219843214978396e-01, 1.531383769920937332e-01};
};
template <>
struct Log1pConstants<float> {
  static constexpr float sqrt2 = 1.41421356f;
  static constexpr float ln2Hi = 6.9313812256e-01f, ln2Lo = 9.0580006145e-06f;
  static constexpr int oddTerms = 2, evenTerms = 2;
  static constexpr float odd[2] = {6.6666662693e-01f, 2.8498786688e-01f};
  static constexpr float even[2] = {4.0000972152e-01f, 2.4279078841e-01f};
};

// log(1 + x) for x in [0, 1] (NaN passes through): u = 1 + x, whose rounding error c = x - (u - 1)
// is exact; log1p(x) = log(u) + c / u, and log(u) = k ln 2 + log(1 + f) with 1 + f = u / 2^k in
// [sqrt(2)/2, sqrt(2)], from s = f / (2 + f) and the polynomial of Log1pConstants.
template <typename T>
MLP_TARGET_INLINE typename Vec<T>::type log1pUnit(typename Vec<T>::type x) {
  using W = Vec<T>;
  using V = typename W::type;
  using K = Log1pConstants<T>;
  const V one = W::set1(T(1));
  const V u = W::add(one, x);
  const V c = W::sub(x, W::sub(u, one));
  const typename W::mask big = W::greater(u, W::set1(K::sqrt2));
  const V k = W::onesWhere(big);
  const V m = W::select(big, W::mul(u, W::set1(T(0.5))), u);
  const V f = W::sub(m, one);
  const V s = W::div(f, W::add(W::set1(T(2)), f));
  const V z = W::mul(s, s);
  const V w = W::mul(z, z);
  V t1 = W::set1(K::even[K::evenTerms - 1]);
  for (int i = K::evenTerms - 2; i >= 0; --i) t1 = W::fma(w, t1, W::set1(K::even[i]));
  t1 = W::mul(w, t1);
  V t2 = W::set1(K::odd[K::oddTerms - 1]);
  for (int i = K::oddTerms - 2; i >= 0; --i) t2 = W::fma(w, t2, W::set1(K::odd[i]));
  t2 = W::mul(z, t2);
  const V r = W::add(t2, t1);
  const V hfsq = W::mul(W::set1(T(0.5)), W::mul(f, f));
  // log(1 + f) = f - (hfsq - s (hfsq + R)); plus k ln 2 (two parts) and the correction c / u.
  const V log1pf = W::sub(f, W::sub(hfsq, W::mul(s, W::add(hfsq, r))));
  const V lo = W::fma(k, W::set1(K::ln2Lo), W::div(c, u));
  return W::fma(k, W::set1(K::ln2Hi), W::add(log1pf, lo));
}

// log(1 + e^v) = max(v, 0) + log1p(e^-|v|), never log(0); NaN passes through. Measured against a
// long-double reference on 2^20 random inputs in each of [-1, 1], [-10, 10], [-40, 40] and
// [-708, 708] (double) or [-87, 87] (float): within 2 ulp of T (worst seen 1.92 double, 1.91
// float). Below -708 (double) or -87 (float) it returns e^-708 (< 3.4e-308) or e^-87
// (< 1.7e-38) instead of e^v.
template <typename T>
MLP_TARGET_INLINE typename Vec<T>::type softplusVec(typename Vec<T>::type v) {
  using W = Vec<T>;
  return W::add(W::max(W::zero(), v), log1pUnit<T>(expClamped<T>(W::orSignBit(v))));
}

// Calls f(std::integral_constant<std::size_t, nv>{}) for 1 <= nv <= N: one instantiation of a
// tile per number of accumulator vectors.
template <std::size_t N, typename F>
inline void withVectors(std::size_t nv, F&& f) {
  if constexpr (N > 1) {
    if (nv < N) return withVectors<N - 1>(nv, f);
  }
  f(std::integral_constant<std::size_t, N>{});
}

// Loads/stores vector i of a tile of NV: whole except the last, which holds `tail`'s lanes, or
// with Half the first half of a vector (padded lanes included; forEachTile).
template <typename T, std::size_t NV, bool Half = false>
MLP_TARGET_INLINE typename Vec<T>::type loadTile(const T* p, std::size_t i, typename Vec<T>::part tail) {
  if (i + 1 < NV) return Vec<T>::load(p + i * Vec<T>::width);
  if constexpr (Half) {
    return Vec<T>::loadHalf(p + i * Vec<T>::width);
  } else {
    return Vec<T>::loadPart(p + i * Vec<T>::width, tail);
  }
}
template <typename T, std::size_t NV, bool Half = false>
MLP_TARGET_INLINE void storeTile(T* p, std::size_t i, typename Vec<T>::type v, typename Vec<T>::part tail) {
  if (i + 1 < NV) {
    Vec<T>::store(p + i * Vec<T>::width, v);
  } else if constexpr (Half) {
    Vec<T>::storeHalf(p + i * Vec<T>::width, v);
  } else {
    Vec<T>::storePart(p + i * Vec<T>::width, v, tail);
  }
}

// Gather tiles: NV accumulator vectors stay in registers while the non-zeros stream past.
template <typename T, typename V, std::size_t NV, bool Half>
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
    for (std::size_t i = 0; i < NV; ++i) acc[i] = loadTile<T, NV, Half>(zr, i, tail);
    // Software-pipelined like byteGatherRowsTile.
    typename W::type v = W::set1(static_cast<T>(val[k0]));
    const T* w = wT + static_cast<std::size_t>(col[k0]) * ldw;
    for (uint32_t k = k0 + 1; k < k1; ++k) {
      const typename W::type vNext = W::set1(static_cast<T>(val[k]));
      const T* wNext = wT + static_cast<std::size_t>(col[k]) * ldw;
      for (std::size_t i = 0; i < NV; ++i) acc[i] = W::fma(v, loadTile<T, NV, Half>(w, i, tail), acc[i]);
      v = vNext;
      w = wNext;
    }
    for (std::size_t i = 0; i < NV; ++i) acc[i] = W::fma(v, loadTile<T, NV, Half>(w, i, tail), acc[i]);
    for (std::size_t i = 0; i < NV; ++i) storeTile<T, NV, Half>(zr, i, acc[i], tail);
  }
}

template <typename T, std::size_t NV, bool Half>
MLP_TARGET void byteGatherRowsTile(std::size_t rows, const uint8_t* const* x, const uint64_t* masks,
                                   std::size_t groups, std::size_t j0, std::size_t j1, const T* wT, std::size_t ldw,
                                   T* z, std::size_t ldz, typename Vec<T>::part tail) {
  using W = Vec<T>;
  for (std::size_t r = 0; r < rows; ++r) {
    const uint8_t* xr = x[r];
    const uint64_t* mr = masks + r * groups;
    T* zr = z + r * ldz;
    typename W::type acc[NV];
    uint64_t any = 0;
    for (std::size_t c = j0; c < j1; c += 64) any |= mr[c / 64];
    if (any == 0) continue;
    for (std::size_t i = 0; i < NV; ++i) acc[i] = loadTile<T, NV, Half>(zr, i, tail);
    // One loop over the set bits of each 64 features: one hard-to-predict loop exit per group,
    // after which the next group's bits are at hand (the pixels are only needed for the sums).
    // Software-pipelined: the next non-zero's pixel and weight row are fetched before this one's
    // multiply-adds are issued, so those never wait on the chain that finds them (same sums, same
    // order).
    for (std::size_t c = j0; c < j1; c += 64) {
      uint64_t mask = mr[c / 64];
      if (mask == 0) continue;
      std::size_t j = c + static_cast<unsigned>(__builtin_ctzll(mask));
      typename W::type v = W::set1(static_cast<T>(xr[j]));
      const T* w = wT + j * ldw;
      for (mask &= mask - 1; mask != 0; mask &= mask - 1) {
        j = c + static_cast<unsigned>(__builtin_ctzll(mask));
        const typename W::type vNext = W::set1(static_cast<T>(xr[j]));
        const T* wNext = wT + j * ldw;
        for (std::size_t i = 0; i < NV; ++i) acc[i] = W::fma(v, loadTile<T, NV, Half>(w, i, tail), acc[i]);
        v = vNext;
        w = wNext;
      }
      for (std::size_t i = 0; i < NV; ++i) acc[i] = W::fma(v, loadTile<T, NV, Half>(w, i, tail), acc[i]);
    }
    for (std::size_t i = 0; i < NV; ++i) storeTile<T, NV, Half>(zr, i, acc[i], tail);
  }
}

template <typename T, typename V, std::size_t NV, bool Half>
MLP_TARGET void gatherColsTile(std::size_t n, const uint32_t* end, std::size_t slot, const ColumnEntry<V>* entries,
                               const T* d, std::size_t ldd, T* gT, std::size_t ldg, bool overwrite,
                               typename Vec<T>::part tail) {
  using W = Vec<T>;
  for (std::size_t j = 0; j < n; ++j) {
    const std::size_t e0 = j * slot, e1 = end[j];
    T* g = gT + j * ldg;
    if (e0 == e1) {
      if (overwrite)
        for (std::size_t i = 0; i < NV; ++i) storeTile<T, NV, Half>(g, i, W::zero(), tail);
      continue;
    }
    typename W::type acc[NV];
    for (std::size_t i = 0; i < NV; ++i) acc[i] = overwrite ? W::zero() : loadTile<T, NV, Half>(g, i, tail);
    // Software-pipelined like byteGatherRowsTile.
    typename W::type v = W::set1(static_cast<T>(entries[e0].val));
    const T* dr = d + static_cast<std::size_t>(entries[e0].row) * ldd;
    for (std::size_t e = e0 + 1; e < e1; ++e) {
      const typename W::type vNext = W::set1(static_cast<T>(entries[e].val));
      const T* drNext = d + static_cast<std::size_t>(entries[e].row) * ldd;
      for (std::size_t i = 0; i < NV; ++i) acc[i] = W::fma(v, loadTile<T, NV, Half>(dr, i, tail), acc[i]);
      v = vNext;
      dr = drNext;
    }
    for (std::size_t i = 0; i < NV; ++i) acc[i] = W::fma(v, loadTile<T, NV, Half>(dr, i, tail), acc[i]);
    for (std::size_t i = 0; i < NV; ++i) storeTile<T, NV, Half>(g, i, acc[i], tail);
  }
}

// Scatter tiles: the NV vectors of one sample's delta row stay in registers while each of its
// non-zeros adds to the gradient row it names (a load and a store of that row per non-zero).
template <typename T, typename V, std::size_t NV, bool Half>
MLP_TARGET void scatterRowsTile(std::size_t rows, const SparseRow<V>* x, std::size_t b0, std::size_t b1, const T* d,
                                std::size_t ldd, T* gT, std::size_t ldg, typename Vec<T>::part tail) {
  using W = Vec<T>;
  for (std::size_t r = 0; r < rows; ++r) {
    const uint32_t k0 = x[r].bounds[b0], k1 = x[r].bounds[b1];
    if (k0 == k1) continue;
    const T* dr = d + r * ldd;
    typename W::type dv[NV];
    for (std::size_t i = 0; i < NV; ++i) dv[i] = loadTile<T, NV, Half>(dr, i, tail);
    const uint16_t* col = x[r].col;
    const V* val = x[r].val;
    for (uint32_t k = k0; k < k1; ++k) {
      const typename W::type v = W::set1(static_cast<T>(val[k]));
      T* g = gT + static_cast<std::size_t>(col[k]) * ldg;
      for (std::size_t i = 0; i < NV; ++i) storeTile<T, NV, Half>(g, i, W::fma(v, dv[i], loadTile<T, NV, Half>(g, i, tail)), tail);
    }
  }
}

// How many tiles a row of `vectors` vectors is cut into: as few as hold at most kMaxTile each.
MLP_TARGET_INLINE std::size_t tileCount(std::size_t vectors) { return (vectors + kMaxTile - 1) / kMaxTile; }

// Splits `width` elements into tileCount tiles of sizes as equal as can be (the first ones one
// vector larger: 38 vectors as 13 + 13 + 12, not 16 + 16 + 6, which would pass over the
// non-zeros once more for little work) and calls tile(integral_constant<NV>, offset, tail, half)
// for each; only the last vector of all may be partial. `width` is a padded row width (simd.h:
// whole AVX2 vectors). half (a bool_constant) is true when the last vector's lanes fit in half a
// vector of the path (AVX-512 rows of 8 floats or 4 doubles past the last whole vector): the
// tile then loads and stores that half whole, padding included, like the AVX2 path, and not the
// whole vector masked: half the bytes for the gathers' loads and the scatter's loads and stores.
// Measured on Zen 5 (50 units, one thread / two): float32 epochs 1.04x / 1.04x faster, float64
// 1.03x / 1.02x.
template <typename T, typename Tile>
MLP_TARGET_INLINE void forEachTile(std::size_t width, Tile&& tile) {
  constexpr std::size_t w = Vec<T>::width;
  std::size_t vectors = (width + w - 1) / w;
  for (std::size_t off = 0, tiles = tileCount(vectors); tiles > 0; --tiles) {
    const std::size_t nv = (vectors + tiles - 1) / tiles;
    vectors -= nv;
    const std::size_t lanes = vectors == 0 ? width - off - (nv - 1) * w : w;
    const typename Vec<T>::part tail = Vec<T>::partOf(lanes);
    // (The lambda has no target attribute: only integers and pointers pass through it.)
    withVectors<kMaxTile>(nv, [&](auto nvc) {
      if constexpr (Vec<T>::kHalves) {
        if (lanes <= w / 2) return tile(nvc, off, tail, std::true_type{});
      }
      tile(nvc, off, tail, std::false_type{});
    });
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
                                 const T* b, std::size_t ldb, T* c, std::size_t ldc, const T* sigmoidOut,
                                 typename Vec<T>::part tail) {
  using W = Vec<T>;
  for (std::size_t r0 = 0; r0 < rows; r0 += RB) {
    const std::size_t rb = rows - r0 < RB ? rows - r0 : RB;
    typename W::type acc[RB][NV];
    for (std::size_t rr = 0; rr < RB; ++rr)
      for (std::size_t i = 0; i < NV; ++i) acc[rr][i] = W::zero();
    // Rows past the end repeat the last row (read, never stored). Every loop over rr runs to RB
    // (a constant): a loop to rb made GCC keep the sums in memory, stored and reloaded at every
    // step (3x slower).
    const T* ar[RB];
    for (std::size_t rr = 0; rr < RB; ++rr) ar[rr] = a + (r0 + (rr < rb ? rr : rb - 1)) * ars;
    const T* bk = b;
    for (std::size_t k = 0; k < depth; ++k, bk += ldb) {
      typename W::type bv[NV];
      for (std::size_t i = 0; i < NV; ++i) bv[i] = loadTile<T, NV>(bk, i, tail);
      for (std::size_t rr = 0; rr < RB; ++rr) {
        const typename W::type av = W::set1(ar[rr][k * acs]);
        for (std::size_t i = 0; i < NV; ++i) acc[rr][i] = W::fma(av, bv[i], acc[rr][i]);
      }
    }
    for (std::size_t rr = 0; rr < RB; ++rr) {
      if (rr >= rb) break;
      T* cr = c + (r0 + rr) * ldc;
      if (sigmoidOut) {
        // The scalar kernel's c * (s * (1 - s)), operation for operation.
        const T* sr = sigmoidOut + (r0 + rr) * ldc;
        for (std::size_t i = 0; i < NV; ++i) {
          const typename W::type s = loadTile<T, NV>(sr, i, tail);
          acc[rr][i] = W::mul(acc[rr][i], W::mul(s, W::sub(W::set1(T(1)), s)));
        }
      }
      for (std::size_t i = 0; i + 1 < NV; ++i) W::store(cr + i * W::width, acc[rr][i]);
      W::storeFirst(cr + (NV - 1) * W::width, acc[rr][NV - 1], tail);
    }
  }
}

}  // namespace

template <typename T>
MLP_TARGET std::size_t gatherTileElements(std::size_t width) {
  const std::size_t vectors = (width + Vec<T>::width - 1) / Vec<T>::width, tiles = tileCount(vectors);
  return (vectors + tiles - 1) / tiles * Vec<T>::width;
}

template <typename T, typename V>
MLP_TARGET void sparseGatherRows(std::size_t rows, const SparseRow<V>* x, std::size_t b0, std::size_t b1, const T* wT,
                                 std::size_t ldw, T* z, std::size_t ldz, std::size_t width) {
  forEachTile<T>(width, [&](auto nv, std::size_t off, typename Vec<T>::part tail, auto half) {
    gatherRowsTile<T, V, decltype(nv)::value, decltype(half)::value>(rows, x, b0, b1, wT + off, ldw, z + off, ldz, tail);
  });
}

template <typename T>
MLP_TARGET void byteGatherRows(std::size_t rows, const uint8_t* const* x, const uint64_t* masks, std::size_t groups,
                               std::size_t j0, std::size_t j1, const T* wT, std::size_t ldw, T* z, std::size_t ldz,
                               std::size_t width) {
  forEachTile<T>(width, [&](auto nv, std::size_t off, typename Vec<T>::part tail, auto half) {
    byteGatherRowsTile<T, decltype(nv)::value, decltype(half)::value>(rows, x, masks, groups, j0, j1, wT + off, ldw, z + off, ldz, tail);
  });
}

template <typename T, typename V>
MLP_TARGET void sparseScatterRows(std::size_t rows, const SparseRow<V>* x, std::size_t b0, std::size_t b1, const T* d,
                                  std::size_t ldd, T* gT, std::size_t ldg, std::size_t width) {
  forEachTile<T>(width, [&](auto nv, std::size_t off, typename Vec<T>::part tail, auto half) {
    scatterRowsTile<T, V, decltype(nv)::value, decltype(half)::value>(rows, x, b0, b1, d + off, ldd, gT + off, ldg, tail);
  });
}

template <typename T, typename V>
MLP_TARGET void sparseGatherCols(std::size_t n, const uint32_t* end, std::size_t slot,
                                 const ColumnEntry<V>* entries, const T* d, std::size_t ldd, T* gT, std::size_t ldg,
                                 std::size_t width, bool overwrite) {
  forEachTile<T>(width, [&](auto nv, std::size_t off, typename Vec<T>::part tail, auto half) {
    gatherColsTile<T, V, decltype(nv)::value, decltype(half)::value>(n, end, slot, entries, d + off, ldd, gT + off, ldg, overwrite, tail);
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

// In two passes over the terms, which are contiguous (n per row): the signed pre-activations
// first, row by row, then the softplus over whole vectors of them (a row of n = 10 outputs is not
// a whole number of vectors: 2.5 AVX2 vectors of doubles, not 3; the softplus is most of the
// work).
template <typename T>
MLP_TARGET void crossEntropyTerms(std::size_t rows, std::size_t n, const T* z, std::size_t ldz, const int32_t* label,
                                  T* terms) {
  using W = Vec<T>;
  for (std::size_t r = 0; r < rows; ++r) {
    const T* zr = z + r * ldz;
    T* tr = terms + r * n;
    std::copy(zr, zr + n, tr);
    // The label's output enters as 0 - z.
    const std::size_t y = static_cast<std::size_t>(static_cast<uint32_t>(label[r]));
    if (y < n) tr[y] = T(0) - tr[y];
  }
  const std::size_t total = rows * n, whole = total / W::width * W::width;
  for (std::size_t i = 0; i < whole; i += W::width) W::store(terms + i, softplusVec<T>(W::load(terms + i)));
  if (whole < total) {
    alignas(64) T tail[W::width] = {};
    std::copy(terms + whole, terms + total, tail);
    W::store(tail, softplusVec<T>(W::load(tail)));
    std::copy(tail, tail + (total - whole), terms + whole);
  }
}

template <typename T>
MLP_TARGET void smallProduct(std::size_t rows, std::size_t n, std::size_t depth, const T* a, std::size_t ars,
                             std::size_t acs, const T* b, std::size_t ldb, T* c, std::size_t ldc,
                             const T* sigmoidOut) {
  constexpr std::size_t w = Vec<T>::width;
  for (std::size_t off = 0; off < n;) {
    const std::size_t vectors = (n - off + w - 1) / w;
    const std::size_t nv = vectors > kSmallProductVectors ? kSmallProductVectors : vectors;
    const std::size_t lanes = std::min(n - off, nv * w);
    const typename Vec<T>::part tail = Vec<T>::partOf(lanes - (nv - 1) * w);
    withVectors<kSmallProductVectors>(nv, [&](auto nvc) {
      constexpr std::size_t NV = decltype(nvc)::value;
      smallProductTile<T, NV, smallProductRows(NV)>(rows, depth, a, ars, acs, b + off, ldb, c + off, ldc,
                                                    sigmoidOut ? sigmoidOut + off : nullptr, tail);
    });
    off += nv * w;
  }
}

#define MLP_VECTOR_SPARSE_INSTANTIATE(T, V)                                                                        \
  template void sparseGatherRows<T, V>(std::size_t, const SparseRow<V>*, std::size_t, std::size_t, const T*,      \
                                       std::size_t, T*, std::size_t, std::size_t);                                 \
  template void sparseScatterRows<T, V>(std::size_t, const SparseRow<V>*, std::size_t, std::size_t, const T*,     \
                                        std::size_t, T*, std::size_t, std::size_t);                                \
  template void sparseGatherCols<T, V>(std::size_t, const uint32_t*, std::size_t, const ColumnEntry<V>*,         \
                                       const T*, std::size_t, T*, std::size_t, std::size_t, bool);
MLP_VECTOR_SPARSE_INSTANTIATE(double, double)
MLP_VECTOR_SPARSE_INSTANTIATE(double, float)
MLP_VECTOR_SPARSE_INSTANTIATE(double, uint8_t)
MLP_VECTOR_SPARSE_INSTANTIATE(float, double)
MLP_VECTOR_SPARSE_INSTANTIATE(float, float)
MLP_VECTOR_SPARSE_INSTANTIATE(float, uint8_t)
#undef MLP_VECTOR_SPARSE_INSTANTIATE
template void byteGatherRows<double>(std::size_t, const uint8_t* const*, const uint64_t*, std::size_t, std::size_t,
                                     std::size_t, const double*, std::size_t, double*, std::size_t, std::size_t);
template void byteGatherRows<float>(std::size_t, const uint8_t* const*, const uint64_t*, std::size_t, std::size_t,
                                    std::size_t, const float*, std::size_t, float*, std::size_t, std::size_t);
template std::size_t gatherTileElements<double>(std::size_t);
template std::size_t gatherTileElements<float>(std::size_t);
template void crossEntropyTerms<double>(std::size_t, std::size_t, const double*, std::size_t, const int32_t*,
                                        double*);
template void crossEntropyTerms<float>(std::size_t, std::size_t, const float*, std::size_t, const int32_t*, float*);
template void biasSigmoid<double>(std::size_t, std::size_t, std::size_t, const double*, double*, double*);
template void biasSigmoid<float>(std::size_t, std::size_t, std::size_t, const float*, float*, float*);
template void smallProduct<double>(std::size_t, std::size_t, std::size_t, const double*, std::size_t, std::size_t,
                                   const double*, std::size_t, double*, std::size_t, const double*);
template void smallProduct<float>(std::size_t, std::size_t, std::size_t, const float*, std::size_t, std::size_t,
                                  const float*, std::size_t, float*, std::size_t, const float*);
