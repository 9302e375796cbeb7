// numpy's legacy RandomState (MT19937, random_interval and shuffle), as lib/random.ts implements
// it, for the native backend's per-epoch shuffle of the training order: that shuffle runs between
// epochs while every training thread waits, and here it takes a fraction of its time in
// JavaScript. lib/random.ts stays the reference: the tests check that both give the same order
// and leave the same state.
#pragma once

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
    uint32_t y = mt_[pos_++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
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

  uint32_t* mt_;
  std::size_t pos_;
};

// RandomState.shuffle(order): Fisher-Yates from the end, j = random_interval(i). The same swaps
// turn arange(n) into permutation(n), so `order` becomes order[permutation(n)] (the seed's
// X[idx] each epoch). n must be below 2^32.
inline void shuffleOrder(uint32_t* state, int32_t* order, std::size_t n) {
  LegacyRandom rng(state);
  for (std::size_t i = n; i-- > 1;) {
    const std::size_t j = rng.interval(static_cast<uint32_t>(i));
    const int32_t t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  rng.save();
}

}  // namespace mlp
