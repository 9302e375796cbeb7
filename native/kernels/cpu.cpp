#include "cpu.h"

#include <cstdlib>
#include <cstring>

namespace mlp {

Isa detectedIsa() {
  static const Isa isa = [] {
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::Avx2;
#endif
    return Isa::Generic;
  }();
  return isa;
}

Isa activeIsa() {
  static const Isa isa = [] {
    const Isa detected = detectedIsa();
    const char* forced = std::getenv("NEURALNET_MLP_ISA");
    if (forced && std::strcmp(forced, "generic") == 0) return Isa::Generic;
    // Asking for a path the CPU lacks falls back to what it has: never SIGILL.
    return detected;
  }();
  return isa;
}

const char* isaName(Isa isa) { return isa == Isa::Avx2 ? "avx2" : "generic"; }

}  // namespace mlp
