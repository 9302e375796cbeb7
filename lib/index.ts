/**
 * neuralnet-mlp: a multi-layer perceptron for Node.js, trained by minibatch gradient descent,
 * computed by a C++ addon with a pure-TypeScript fallback.
 */
export { NeuralNetMLP, gradientCheck, learningRates } from './model.js';
export type { MLPOptions, ResolvedOptions, FitOptions, EpochInfo, EtaSchedule, WeightMatrix, LabelsAndProba } from './model.js';
export type { Dtype, FloatArray, InputArray, Matrix, BackendName } from './backend/types.js';
export type { BackendChoice } from './backend/index.js';
export { nativeAvailable, nativeAddonInfo, type NativeAddonInfo } from './backend/index.js';
export type { IsaName } from './backend/native.js';
export type { MatrixLike, LabelsLike } from './validate.js';
export { RandomState } from './random.js';
export { loadIdx, loadIdxSync, parseIdx, loadMnist, loadMnistSync, mnistDataDir } from './idx.js';
export type { IdxArray, IdxDtype, IdxDataTypes, IdxOptions, MnistKind, MnistSet } from './idx.js';
export type { ErrorCode } from './errors.js';
export type { LoadOptions } from './model.js';
export type { ModelJSON, StoredOptions, TrainingInfo } from './format.js';
export { MODEL_LIMITS, FORMAT_VERSION } from './format.js';
