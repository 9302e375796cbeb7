#include "cpu.h"

#include <cstdlib>
#include <cstring>

namespace mlp {

Isa detectedIsa() {
  static const Isa isa = [] {
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
    // libgcc's checks include the OS's support for the wider register state (XCR0).
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#if defined(MLP_EMULATE_AVX512)
    // A test build: its AVX-512 path is portable code (SIMDe) compiled for AVX2 + FMA.
    if (avx2) return Isa::Avx512;
#else
    if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
      return Isa::Avx512;
#endif
    if (avx2) return Isa::Avx2;
#endif
    return Isa::Generic;
  }();
  return isa;
}

Isa activeIsa() {
  static const Isa isa = [] {
    const Isa detected = detectedIsa();
    const char* forced = std::getenv("NEURALNET_MLP_ISA");
    Isa wanted = detected;
    if (forced && std::strcmp(forced, "generic") == 0) wanted = Isa::Generic;
    if (forced && std::strcmp(forced, "avx2") == 0) wanted = Isa::Avx2;
    // Asking for a path the CPU lacks falls back to what it has: never SIGILL.
    return wanted < detected ? wanted : detected;
  }();
  return isa;
}

const char* isaName(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    default: return "generic";
  }
}

}  // namespace mlp
