// Instruction-set selection at run time: one shipped build, the best path the CPU supports.
// NEURALNET_MLP_ISA=generic|avx2 forces a path (tests use it to exercise each one here).
#pragma once

namespace mlp {

enum class Isa { Generic = 0, Avx2 = 1 };

// What the CPU supports (detected once).
Isa detectedIsa();
// The path in use: the detected one unless the environment asks for a supported lower one.
Isa activeIsa();
const char* isaName(Isa isa);

}  // namespace mlp
