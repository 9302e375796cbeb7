// numpy's legacy RandomState (MT19937, random_interval and shuffle), as lib/random.ts implements
// it, for the native backend's per-epoch shuffle of the training order: that shuffle runs between
// epochs while every training thread waits, and here it takes a fraction of its time in
// JavaScript. lib/random.ts stays the reference: the tests check that both give the same order
// and leave the same state.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace mlp {

// The generator's state as RandomState.getState() gives it: the 624 words, then the position of
// the next word to use (624: all used, twist first).
constexpr std::size_t kMtWords = 624;

class LegacyRandom {
 public:
  // Works on `state` (kMtWords + 1 words, position <= kMtWords) in place; save() writes the
  // position back.
  explicit LegacyRandom(uint32_t* state) : mt_(state), pos_(state[kMtWords]) {}
  void save() { mt_[kMtWords] = static_cast<uint32_t>(pos_); }

  // genrand_int32.
  uint32_t next() {
    if (pos_ >= kMtWords) twist();
    return temper(mt_[pos_++]);
  }

  // random_interval(max): a uniform integer in [0, max] by masked rejection.
  uint32_t interval(uint32_t max) {
    if (max == 0) return 0;
    uint32_t mask = max;
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
    uint32_t value;
    do {
      value = next() & mask;
    } while (value > max);
    return value;
  }

  // out[k] = interval(max - k) for k < count (max - count + 1 >= 1), drawing exactly as those
  // calls would, but one draw per step whether it is kept or not: no branch on which draws are
  // rejected (about a quarter of them, unpredictably), which costs more than the draws.
  void intervalsDown(uint32_t max, std::size_t count, uint32_t* out) {
    std::size_t k = 0;
    uint32_t current = max, mask = 0xffffffffu >> __builtin_clz(max);
    while (k < count) {
      if (pos_ >= kMtWords) twist();
      std::size_t d = pos_;
      for (; d < kMtWords && k < count; ++d) {
        const uint32_t value = temper(mt_[d]) & mask;
        out[k] = value;
        const uint32_t keep = value <= current ? 1 : 0;
        k += keep;
        current -= keep;
        // The next interval's mask: half as wide once current falls below its top half.
        mask = current <= (mask >> 1) ? mask >> 1 : mask;
      }
      pos_ = d;
    }
  }

 private:
  void twist() {
    constexpr std::size_t n = kMtWords, m = 397;
    constexpr uint32_t upper = 0x80000000u, lower = 0x7fffffffu, matrixA = 0x9908b0dfu;
    auto mix = [&](uint32_t a, uint32_t b, uint32_t far) {
      const uint32_t y = (a & upper) | (b & lower);
      return far ^ (y >> 1) ^ ((0u - (y & 1u)) & matrixA);
    };
    std::size_t k = 0;
    for (; k < n - m; ++k) mt_[k] = mix(mt_[k], mt_[k + 1], mt_[k + m]);
    for (; k < n - 1; ++k) mt_[k] = mix(mt_[k], mt_[k + 1], mt_[k + m - n]);
    mt_[n - 1] = mix(mt_[n - 1], mt_[0], mt_[m - 1]);
    pos_ = 0;
  }

  static uint32_t temper(uint32_t y) {
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
  }

  uint32_t* mt_;
  std::size_t pos_;
};

// RandomState.shuffle(order): Fisher-Yates from the end, j = random_interval(i). The same swaps
// turn arange(n) into permutation(n), so `order` becomes order[permutation(n)] (the seed's
// X[idx] each epoch). n must be below 2^32.
inline void shuffleOrder(uint32_t* state, int32_t* order, std::size_t n) {
  LegacyRandom rng(state);
  // A block of j's at a time (intervalsDown), then their swaps, whose loads then need not wait
  // for the draws.
  constexpr std::size_t kBlock = 1024;
  uint32_t js[kBlock];
  for (std::size_t i = n; i > 1;) {  // swaps for i - 1 down to 1 remain
    const std::size_t count = std::min(kBlock, i - 1);
    rng.intervalsDown(static_cast<uint32_t>(i - 1), count, js);
    for (std::size_t k = 0; k < count; ++k) {
      const std::size_t a = i - 1 - k, b = js[k];
      const int32_t t = order[a];
      order[a] = order[b];
      order[b] = t;
    }
    i -= count;
  }
  rng.save();
}

}  // namespace mlp
