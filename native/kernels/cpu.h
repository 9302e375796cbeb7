// Instruction-set selection at run time: one shipped build, the best path the CPU supports.
// NEURALNET_MLP_ISA=generic|avx2|avx512 forces a path (tests use it to exercise each one); a
// path the CPU lacks is never taken.
#pragma once

namespace mlp {

// Ordered: each path needs what the one before it needs.
enum class Isa { Generic = 0, Avx2 = 1, Avx512 = 2 };

// The best path this build can run on this CPU (detected once).
Isa detectedIsa();
// The path in use: the detected one unless the environment asks for a supported lower one.
Isa activeIsa();
const char* isaName(Isa isa);

}  // namespace mlp
