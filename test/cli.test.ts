/**
 * The `mlp` command line end to end: each test runs the compiled CLI (dist/cli/main.js) as a child
 * process on a short run and checks what it prints and the files it writes, pictures included.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NeuralNetMLP, loadMnist, mnistDataDir, nativeAvailable, type MnistSet } from '../lib/index.js';
import { COST_PLOT_SIZE, gridCell, gridSize } from '../lib/cli/plots.js';
import { gzip, idxUint8 } from './helpers/idx.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'dist', 'cli', 'main.js');
const hasNative = nativeAvailable();
/** The backend of the main end-to-end run: native when it is built, else TypeScript. */
const mainBackend = hasNative ? 'native' : 'js';

let tmp: string;
let test: MnistSet;

function* tsFiles(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* tsFiles(path);
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) yield path;
  }
}

/** True when some lib/ source is newer than its compiled file in dist/ (or that file is missing). */
function distIsStale(): boolean {
  const lib = join(root, 'lib');
  for (const source of tsFiles(lib)) {
    const compiled = join(root, 'dist', relative(lib, source)).replace(/\.ts$/, '.js');
    if (!existsSync(compiled) || statSync(compiled).mtimeMs < statSync(source).mtimeMs) return true;
  }
  return false;
}

beforeAll(async () => {
  // `npm ci` builds dist/ (the prepare script); rebuild only when lib/ changed since, as during
  // development. Type errors elsewhere do not stop tsc from emitting, so only the output counts.
  if (distIsStale()) {
    spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: 'ignore' });
  }
  expect(existsSync(cli), `${cli} is missing: run npx tsc -p tsconfig.json`).toBe(true);
  tmp = await mkdtemp(join(tmpdir(), 'mlp-cli-'));
  test = await loadMnist(mnistDataDir(), 't10k');
});

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function start(args: readonly string[], cwd = tmp): ChildProcess {
  return spawn(process.execPath, [cli, ...args], { cwd, env: { ...process.env, MLP_DEBUG: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Resolves once a `train --epochs 100000` child has printed its first epoch line. */
function firstEpochLine(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`no epoch line; stderr so far: ${seen}`)), 60_000);
    child.stderr!.on('data', (s: string) => {
      seen += s;
      if (/^Epoch\s+1\/100000 /m.test(seen)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

function finished(child: ChildProcess): Promise<Result> {
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Runs `mlp ...args` to the end. */
function mlp(args: readonly string[], cwd = tmp): Promise<Result> {
  return finished(start(args, cwd));
}

async function newDir(name: string): Promise<string> {
  const dir = join(tmp, name);
  await mkdir(dir, { recursive: true });
  return dir;
}

function decodePng(bytes: Buffer): PNG {
  return PNG.sync.read(bytes);
}

/** Grey level (0 black .. 255 white) of pixel (x, y), the mean of its RGB. */
function grey(png: PNG, x: number, y: number): number {
  const i = (y * png.width + x) * 4;
  return (png.data[i] + png.data[i + 1] + png.data[i + 2]) / 3;
}

function countPixels(png: PNG, rect: { x: number; y: number; w: number; h: number }, test: (r: number, g: number, b: number) => boolean): number {
  let n = 0;
  for (let y = rect.y; y < rect.y + rect.h; y++) {
    for (let x = rect.x; x < rect.x + rect.w; x++) {
      const i = (y * png.width + x) * 4;
      if (test(png.data[i], png.data[i + 1], png.data[i + 2])) n++;
    }
  }
  return n;
}

const dark = (r: number, g: number, b: number) => r + g + b < 3 * 128;

/**
 * stderr without the library's one-time warning that the addon is unavailable (printed when the
 * tests run without a built addon; it is a notice, not part of an error message).
 */
function withoutFallbackWarning(stderr: string): string {
  return stderr.replace(/^mlp: note: The native addon of neuralnet-mlp is not available:[\s\S]*?Using the pure-TypeScript backend \(slower\)\.\n/m, '');
}

/** The single line an error must be: `mlp...: message`, no stack trace. */
function expectOneLineError(result: Result, pattern: RegExp): void {
  expect(result.code).not.toBe(0);
  expect(result.code).not.toBeNull();
  const lines = withoutFallbackWarning(result.stderr).trim().split('\n');
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^mlp( \w+)?: /);
  expect(lines[0]).toMatch(pattern);
  expect(result.stderr).not.toMatch(/^\s+at /m);
}

describe('mlp --help', () => {
  it('lists the commands and how to start', async () => {
    const r = await mlp(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: mlp <command> \[options\]/);
    for (const command of ['train', 'predict', 'gradcheck']) expect(r.stdout).toContain(`  ${command} `);
  });

  it.each(['train', 'predict', 'gradcheck'])('mlp %s --help shows its flags and examples', async (command) => {
    const r = await mlp([command, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Usage: mlp ${command} \\[options\\]`));
    expect(r.stdout).toContain('--backend NAME');
    expect(r.stdout).toContain('Examples:');
    expect(r.stdout.split('\n').every((line) => line.length <= 100)).toBe(true);
    expect((await mlp(['help', command])).stdout).toBe(r.stdout);
  });

  it('documents every seed hyperparameter as a train flag with the seed default', async () => {
    const { stdout } = await mlp(['train', '-h']);
    for (const [flag, value] of [
      ['--hidden', '50'],
      ['--l1', '0'],
      ['--l2', '0.1'],
      ['--epochs', '1000'],
      ['--eta', '0.001'],
      ['--alpha', '0.001'],
      ['--decrease-const', '0.00001'],
      ['--minibatches', '50'],
      ['--seed', '1'],
    ]) {
      expect(stdout).toMatch(new RegExp(`${flag} [^\\n]*(\\n {20,}[^\\n]*)*\\(default: ${value.replace('.', '\\.')}\\)`));
    }
    expect(stdout).toContain('--no-shuffle');
  });
});

describe(`mlp train (short run, ${mainBackend} backend)`, () => {
  let out: string;
  let result: Result;
  let summary: any;
  const subset = 2000;
  const testSubset = 1000;

  beforeAll(async () => {
    out = join(tmp, 'short-run');
    result = await mlp(['train', '--epochs', '2', '--subset', String(subset), '--test-subset', String(testSubset), '--backend', mainBackend, '--out', out]);
    summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8'));
  });

  it("prints the seed's result lines, timing and where the files went", () => {
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^Training accuracy: \d{1,3}\.\d\d%$/m);
    expect(result.stdout).toMatch(/^Test accuracy: \d{1,3}\.\d\d%$/m);
    expect(result.stdout).toMatch(/^Time: \d+\.\d s .* for 2 epochs, \d+\.\d{3} s per epoch/m);
    expect(result.stdout).toMatch(/^Wrote model\.json, cost\.png, misclassified\.png, summary\.json to /m);
    const test = /^Test accuracy: (.*)%$/m.exec(result.stdout)![1];
    expect(Number(test) / 100).toBeCloseTo(summary.results.testAccuracy, 4);
  });

  it('reports progress on stderr as plain lines when stderr is not a terminal', () => {
    expect(result.stderr).toMatch(/^Epoch 1\/2 {2}elapsed \d+:\d\d {2}ETA \d+:\d\d {2}cost \d/m);
    expect(result.stderr).toMatch(/^Epoch 2\/2 /m);
    expect(result.stderr).not.toContain('\r');
  });

  it('writes exactly the four outputs', async () => {
    expect((await readdir(out)).sort()).toEqual(['cost.png', 'misclassified.png', 'model.json', 'summary.json']);
  });

  it('summary.json holds configuration, results, timings, machine and versions', () => {
    expect(summary.interrupted).toBe(false);
    expect(summary.config).toMatchObject({
      layers: [784, 50, 10],
      l1: 0,
      l2: 0.1,
      epochs: 2,
      eta: 0.001,
      alpha: 0.001,
      decreaseConst: 1e-5,
      minibatches: 50,
      shuffle: true,
      randomState: 1,
      backend: mainBackend,
      dtype: 'float64',
    });
    expect(summary.data.train).toEqual({ samples: subset, available: 60000 });
    expect(summary.data.test).toEqual({ samples: testSubset, available: 10000 });
    expect(summary.results.epochsCompleted).toBe(2);
    expect(summary.results.minibatchesCompleted).toBe(100);
    expect(summary.timing.trainSeconds).toBeGreaterThan(0);
    expect(summary.timing.secondsPerEpoch).toBeCloseTo(summary.timing.trainSeconds / 2, 3);
    expect(summary.machine.cpu).toEqual(expect.any(String));
    expect(summary.machine.cores).toBeGreaterThanOrEqual(1);
    expect(summary.machine).toMatchObject({ backend: mainBackend, dtype: 'float64' });
    expect(summary.versions['neuralnet-mlp']).toMatch(/^\d+\.\d+\.\d+/);
    expect(summary.versions.node).toBe(process.versions.node);
  });

  it('model.json loads back and predicts exactly what the summary says', async () => {
    const nn = await NeuralNetMLP.load(join(out, 'model.json'), { backend: mainBackend });
    const images = { data: test.images.data.subarray(0, testSubset * 784), rows: testSubset, cols: 784 };
    const predicted = nn.predict(images);
    let correct = 0;
    const wrong: { index: number; label: number; predicted: number }[] = [];
    for (let i = 0; i < testSubset; i++) {
      if (predicted[i] === test.labels[i]) correct++;
      else wrong.push({ index: i, label: test.labels[i], predicted: predicted[i] });
    }
    expect(correct).toBe(summary.results.testCorrect);
    expect(correct / testSubset).toBe(summary.results.testAccuracy);
    expect(createHash('sha256').update(Uint8Array.from(predicted)).digest('hex')).toBe(summary.results.testPredictionsSha256);
    expect(wrong.length).toBe(summary.results.misclassified.count);
    expect(wrong.slice(0, 25)).toEqual(summary.results.misclassified.first);
  });

  it('mlp predict with the saved model gives the same predictions and accuracy', async () => {
    const r = await mlp(['predict', '--model', join(out, 'model.json'), '--subset', String(testSubset), '--format', 'json', '--backend', mainBackend]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.samples).toBe(testSubset);
    expect(doc.correct).toBe(summary.results.testCorrect);
    expect(createHash('sha256').update(Uint8Array.from(doc.predicted)).digest('hex')).toBe(summary.results.testPredictionsSha256);
    expect(r.stderr).toMatch(/^Accuracy: \d+\.\d\d% \(\d+ of 1000 correct\)$/m);
  });

  it('cost.png has both panels with their curves', async () => {
    const png = decodePng(await readFile(join(out, 'cost.png')));
    expect([png.width, png.height]).toEqual([COST_PLOT_SIZE.width, COST_PLOT_SIZE.height]);
    const half = png.width / 2;
    const left = { x: 0, y: 0, w: half, h: png.height };
    const right = { x: half, y: 0, w: half, h: png.height };
    // Axes, ticks and labels are dark; the per-minibatch curve is blue, the epoch averages red.
    expect(countPixels(png, left, dark)).toBeGreaterThan(500);
    expect(countPixels(png, right, dark)).toBeGreaterThan(500);
    const blue = (r: number, g: number, b: number) => b > 120 && b - r > 60;
    const red = (r: number, g: number, b: number) => r > 150 && r - g > 80 && r - b > 80;
    expect(countPixels(png, left, blue)).toBeGreaterThan(100);
    expect(countPixels(png, right, red)).toBeGreaterThan(50);
    expect(countPixels(png, right, blue)).toBe(0);
    expect(countPixels(png, left, red)).toBe(0);
  });

  it('misclassified.png shows the first 25 misclassified test digits in a 5 x 5 grid', async () => {
    const png = decodePng(await readFile(join(out, 'misclassified.png')));
    const size = gridSize(28);
    expect([png.width, png.height]).toEqual([size.width, size.height]);
    const first = summary.results.misclassified.first as { index: number }[];
    expect(first).toHaveLength(25);
    for (let i = 0; i < 25; i++) {
      const cell = gridCell(i, 28);
      // Ink in the title and in the digit, and the digit is the right test image, pixel for pixel.
      expect(countPixels(png, cell.title, dark), `title of cell ${i}`).toBeGreaterThan(20);
      expect(countPixels(png, cell.image, dark), `digit of cell ${i}`).toBeGreaterThan(40);
      const image = test.images.data.subarray(first[i].index * 784, (first[i].index + 1) * 784);
      for (const [r, c] of [
        [14, 14],
        [7, 10],
        [20, 16],
        [0, 0],
      ]) {
        expect(grey(png, cell.image.x + c * 3 + 1, cell.image.y + r * 3 + 1)).toBe(255 - image[r * 28 + c]);
      }
    }
    // Between the cells the picture is blank.
    const a = gridCell(0, 28);
    const b = gridCell(1, 28);
    const gutter = { x: a.image.x + a.image.w + 2, y: a.image.y, w: b.image.x - a.image.x - a.image.w - 4, h: a.image.h };
    expect(countPixels(png, gutter, (r, g, bl) => r + g + bl < 3 * 250)).toBe(0);
  });
});

describe('mlp train, other ways of running it', () => {
  it('runs on the TypeScript backend with gzipped IDX data from --data, printing JSON', async () => {
    const train = await loadMnist(mnistDataDir(), 'train');
    const data = await newDir('gz-data');
    const n = 300;
    const m = 100;
    await writeFile(join(data, 'train-images-idx3-ubyte.gz'), gzip(idxUint8([n, 28, 28], train.images.data.subarray(0, n * 784))));
    await writeFile(join(data, 'train-labels-idx1-ubyte.gz'), gzip(idxUint8([n], train.labels.subarray(0, n))));
    await writeFile(join(data, 't10k-images-idx3-ubyte.gz'), gzip(idxUint8([m, 28, 28], test.images.data.subarray(0, m * 784))));
    await writeFile(join(data, 't10k-labels-idx1-ubyte.gz'), gzip(idxUint8([m], test.labels.subarray(0, m))));
    const out = join(tmp, 'js-run');
    const r = await mlp(['train', '--data', data, '--backend', 'js', '--epochs', '3', '--hidden', '20,10', '--minibatches', '5', '--dtype', 'float32', '--json', '--quiet', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const doc = JSON.parse(r.stdout);
    expect(doc).toEqual(JSON.parse(await readFile(join(out, 'summary.json'), 'utf8')));
    expect(doc.config).toMatchObject({ layers: [784, 20, 10, 10], backend: 'js', dtype: 'float32', minibatches: 5, epochs: 3 });
    expect(doc.data).toMatchObject({ dir: data, train: { samples: n, available: n }, test: { samples: m, available: m } });
    expect(doc.results.minibatchesCompleted).toBe(15);
    const nn = await NeuralNetMLP.load(join(out, 'model.json'), { backend: 'js' });
    expect(nn.layerSizes).toEqual([784, 20, 10, 10]);
    expect(nn.options.dtype).toBe('float32');
  });

  it('defaults to a new folder under ./runs and never reuses one', async () => {
    const cwd = await newDir('default-out');
    const args = ['train', '--epochs', '1', '--subset', '200', '--test-subset', '100', '--minibatches', '2', '--backend', 'js', '--quiet'];
    const first = await mlp(args, cwd);
    const second = await mlp(args, cwd);
    expect(first.code, first.stderr).toBe(0);
    expect(second.code, second.stderr).toBe(0);
    const runs = (await readdir(join(cwd, 'runs'))).sort();
    expect(runs).toHaveLength(2);
    for (const run of runs) {
      expect(run).toMatch(/^train-\d{8}-\d{6}(-\d+)?$/);
      expect((await readdir(join(cwd, 'runs', run))).sort()).toEqual(['cost.png', 'misclassified.png', 'model.json', 'summary.json']);
    }
  });

  it('refuses an --out folder that holds files unless --force', async () => {
    const out = await newDir('full');
    await writeFile(join(out, 'notes.txt'), 'mine');
    const args = ['train', '--epochs', '1', '--subset', '100', '--test-subset', '50', '--minibatches', '2', '--backend', 'js', '--quiet', '--out', out];
    const refused = await mlp(args);
    expectOneLineError(refused, /already exists and is not empty.*--force/);
    expect(await readdir(out)).toEqual(['notes.txt']);
    const forced = await mlp([...args, '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect((await readdir(out)).sort()).toEqual(['cost.png', 'misclassified.png', 'model.json', 'notes.txt', 'summary.json']);
  });

  it('stops on Ctrl-C after the current minibatch, keeps what was learned and writes the outputs', async () => {
    const out = join(tmp, 'interrupted');
    const child = start(['train', '--epochs', '100000', '--subset', '2000', '--test-subset', '500', '--backend', mainBackend, '--out', out]);
    const done = finished(child);
    await firstEpochLine(child);
    child.kill('SIGINT');
    const r = await done;
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/^Interrupted: stopping after the current minibatch/m);
    expect(r.stdout).toMatch(/^Interrupted after \d+ of 100000 epochs/m);
    expect(r.stdout).toMatch(/^Test accuracy: \d+\.\d\d%$/m);
    const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8'));
    expect(summary.interrupted).toBe(true);
    expect(summary.results.epochsCompleted).toBeGreaterThanOrEqual(1);
    expect(summary.results.epochsCompleted).toBeLessThan(100000);
    expect(summary.results.minibatchesCompleted).toBeGreaterThanOrEqual(50 * summary.results.epochsCompleted);
    const nn = await NeuralNetMLP.load(join(out, 'model.json'), { backend: mainBackend });
    const predicted = nn.predict({ data: test.images.data.subarray(0, 500 * 784), rows: 500, cols: 784 });
    expect(createHash('sha256').update(Uint8Array.from(predicted)).digest('hex')).toBe(summary.results.testPredictionsSha256);
    expect(decodePng(await readFile(join(out, 'cost.png'))).width).toBe(COST_PLOT_SIZE.width);
  });

  it.each([0, 30, 150])(
    'a second Ctrl-C %i ms after the first quits with 130 and leaves each output whole or absent, no temporary file',
    async (delayMs) => {
      const out = join(tmp, `twice-${delayMs}`);
      const child = start(['train', '--epochs', '100000', '--subset', '2000', '--test-subset', '500', '--backend', mainBackend, '--out', out]);
      const done = finished(child);
      await firstEpochLine(child);
      child.kill('SIGINT');
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      if (child.exitCode === null) child.kill('SIGINT');
      const r = await done;
      // 130 from the CLI, or (a second Ctrl-C after train() has finished and let go of SIGINT, while
      // the process winds down) the signal's default action, which a shell reports as 130 too.
      expect(r.code === 130 || (r.code === null && r.signal === 'SIGINT'), `${r.code} ${r.signal} ${r.stderr}`).toBe(true);
      const files = (await readdir(out)).sort();
      expect(files.filter((f) => f.startsWith('.partial-'))).toEqual([]);
      // The outputs are written together once training has stopped: all of them, or none.
      expect(files.length === 0 || files.join() === 'cost.png,misclassified.png,model.json,summary.json', files.join()).toBe(true);
      if (files.length) {
        const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8'));
        expect(summary.interrupted).toBe(true);
        await NeuralNetMLP.load(join(out, 'model.json'), { backend: mainBackend });
        expect(decodePng(await readFile(join(out, 'misclassified.png'))).width).toBeGreaterThan(0);
      }
    },
  );
});

describe('errors are one line and a non-zero exit, never a stack trace', () => {
  const quick = ['--epochs', '1', '--subset', '100', '--test-subset', '50', '--minibatches', '2', '--backend', 'js', '--quiet'];

  it('an unknown flag (with a suggestion)', async () => {
    const r = await mlp(['train', '--epoch', '3']);
    expectOneLineError(r, /unknown option --epoch \(did you mean --epochs\?\)/);
    expect(r.code).toBe(2);
  });

  it.each([
    [['train', '--epochs', '-1'], /--epochs expects an integer >= 1, got "-1"/],
    [['train', '--epochs', 'ten'], /--epochs expects an integer >= 1, got "ten"/],
    [['train', '--eta', '0'], /--eta expects a number > 0, got "0"/],
    [['train', '--hidden', '100,,50'], /--hidden expects integers separated by commas/],
    [['train', '--backend', 'gpu'], /--backend expects one of auto, native, js, got "gpu"/],
    [['train', '--seed', 'x'], /--seed expects an integer/],
    [['train', '--epochs'], /--epochs needs a value/],
    [['train', 'now'], /unexpected argument "now"/],
    [['predict'], /--model FILE is required/],
    [['fly'], /unknown command "fly"/],
  ])('a bad value or usage: mlp %s', async (args, pattern) => {
    const r = await mlp(args);
    expectOneLineError(r, pattern);
    expect(r.code).toBe(2);
  });

  it('a missing data folder', async () => {
    const r = await mlp(['train', '--data', join(tmp, 'no-such-dir'), ...quick]);
    expectOneLineError(r, /no-such-dir: no MNIST train images file found .*does not exist/);
    expect(r.code).toBe(1);
  });

  it.each([
    ['truncated', 'train-images-idx3-ubyte', () => idxUint8([100, 28, 28], new Uint8Array(500)), /train-images-idx3-ubyte: truncated/],
    ['not IDX', 'train-images-idx3-ubyte', () => new TextEncoder().encode('<html>not found</html>'), /train-images-idx3-ubyte: not an IDX file/],
    ['corrupt gzip', 'train-images-idx3-ubyte.gz', () => Uint8Array.from([0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7]), /train-images-idx3-ubyte\.gz: /],
  ])('a corrupt IDX file (%s)', async (name, file, bytes, pattern) => {
    const data = await newDir(`corrupt-${name.replace(/\W/g, '-')}`);
    await writeFile(join(data, file), bytes());
    await writeFile(join(data, 'train-labels-idx1-ubyte'), idxUint8([100], new Uint8Array(100)));
    const r = await mlp(['train', '--data', data, ...quick, '--out', join(tmp, `never-${name.replace(/\W/g, '-')}`)]);
    expectOneLineError(r, pattern);
    expect(r.code).toBe(1);
    expect(existsSync(join(tmp, `never-${name.replace(/\W/g, '-')}`))).toBe(false);
  });

  it('test images of another size than the training images, before any training', async () => {
    const data = await newDir('mismatched-sizes');
    await writeFile(join(data, 'train-images-idx3-ubyte'), idxUint8([30, 28, 28], new Uint8Array(30 * 784).fill(9)));
    await writeFile(join(data, 'train-labels-idx1-ubyte'), idxUint8([30], new Uint8Array(30)));
    await writeFile(join(data, 't10k-images-idx3-ubyte'), idxUint8([10, 20, 20], new Uint8Array(10 * 400).fill(9)));
    await writeFile(join(data, 't10k-labels-idx1-ubyte'), idxUint8([10], new Uint8Array(10)));
    const out = join(tmp, 'never-mismatched');
    const r = await mlp(['train', '--data', data, '--epochs', '1', '--minibatches', '1', '--quiet', '--out', out]);
    expectOneLineError(r, /test images have 400 pixels each \(20x20\) but the training images 784 \(28x28\)/);
    expect(r.code).toBe(1);
    expect(existsSync(out)).toBe(false);
  });

  it('an --out that cannot be created (under a regular file)', async () => {
    const file = join(tmp, 'a-file');
    await writeFile(file, 'x');
    const r = await mlp(['train', ...quick, '--out', join(file, 'out')]);
    expectOneLineError(r, /cannot use output folder .*a-file\/out: .*not a folder \(ENOTDIR\)/);
    expect(r.code).toBe(1);
  });

  // Node's own recursive mkdir never returns for this path; /proc is Linux's.
  it.runIf(existsSync('/proc/self'))('an --out that cannot be created although its parent exists (/proc/self/x, Linux only)', async () => {
    const child = start(['train', ...quick, '--out', '/proc/self/x/run']);
    // A hang (what Node's recursive mkdir does here) fails the test, and leaves no process behind.
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const r = await finished(child).finally(() => clearTimeout(timer));
    expect(r.signal, 'mlp train hung and was killed').toBeNull();
    expectOneLineError(r, /cannot use output folder \/proc\/self\/x\/run: .*(ENOENT)/);
    expect(r.code).toBe(1);
  });

  it('an --out that is a file', async () => {
    const file = join(tmp, 'b-file');
    await writeFile(file, 'x');
    expectOneLineError(await mlp(['train', ...quick, '--out', file]), /b-file is a file, not a folder/);
  });

  it('a model file that does not exist or is not a model', async () => {
    expectOneLineError(await mlp(['predict', '--model', join(tmp, 'none.json')]), /cannot read the model: .*none\.json: no such file/);
    const bad = join(tmp, 'bad-model.json');
    await writeFile(bad, '{"format":"neuralnet-mlp","version":99}');
    expectOneLineError(await mlp(['predict', '--model', bad]), /bad-model\.json: version: expected 1/);
  });
});

describe('mlp predict', () => {
  let model: string;

  beforeAll(async () => {
    model = join(tmp, 'predict-model', 'model.json');
    const r = await mlp(['train', '--epochs', '3', '--subset', '1000', '--test-subset', '100', '--backend', 'js', '--quiet', '--out', dirname(model)]);
    expect(r.code, r.stderr).toBe(0);
  });

  it('reads --images and --labels IDX files and writes CSV with the accuracy on stderr', async () => {
    const n = 20;
    const images = join(tmp, 'some-images-idx3-ubyte');
    const labels = join(tmp, 'some-labels-idx1-ubyte.gz');
    await writeFile(images, idxUint8([n, 28, 28], test.images.data.subarray(0, n * 784)));
    await writeFile(labels, gzip(idxUint8([n], test.labels.subarray(0, n))));
    const r = await mlp(['predict', '--model', model, '--images', images, '--labels', labels, '--backend', 'js']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('index,predicted,label');
    expect(lines).toHaveLength(n + 1);
    const nn = await NeuralNetMLP.load(model, { backend: 'js' });
    const predicted = nn.predict({ data: test.images.data.subarray(0, n * 784), rows: n, cols: 784 });
    let correct = 0;
    lines.slice(1).forEach((line, i) => {
      expect(line).toBe(`${i},${predicted[i]},${test.labels[i]}`);
      if (predicted[i] === test.labels[i]) correct++;
    });
    expect(r.stderr.trim()).toBe(`Accuracy: ${((100 * correct) / n).toFixed(2)}% (${correct} of ${n} correct)`);
  });

  it('predicts without labels, with probabilities, into a file', async () => {
    const n = 5;
    const images = join(tmp, 'five-images-idx3-ubyte');
    await writeFile(images, idxUint8([n, 28, 28], test.images.data.subarray(0, n * 784)));
    const output = join(tmp, 'predictions.json');
    const r = await mlp(['predict', '--model', model, '--images', images, '--format', 'json', '--proba', '--output', output]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    const doc = JSON.parse(await readFile(output, 'utf8'));
    expect(doc).toMatchObject({ samples: n, accuracy: null, correct: null });
    expect(doc.predicted).toHaveLength(n);
    expect(doc.probabilities).toHaveLength(n);
    doc.probabilities.forEach((row: number[], i: number) => {
      expect(row).toHaveLength(10);
      expect(row.indexOf(Math.max(...row))).toBe(doc.predicted[i]);
    });
  });

  it('names the IDX file whose images hold a value the model cannot take', async () => {
    // A float64 IDX file (type 0x0e) of 2 images, one pixel NaN.
    const values = new Float64Array(2 * 784).fill(0.5);
    values[784 + 116] = NaN;
    const header = Buffer.from([0, 0, 0x0e, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28]);
    const body = Buffer.alloc(values.length * 8);
    values.forEach((v, i) => body.writeDoubleBE(v, i * 8));
    const images = join(tmp, 'nan-images-idx3-double');
    await writeFile(images, Buffer.concat([header, body]));
    expectOneLineError(
      await mlp(['predict', '--model', model, '--images', images]),
      /nan-images-idx3-double: .*X \(row 1, column 116\).*NaN/,
    );
  });

  it('says so when the images do not fit the model', async () => {
    const images = join(tmp, 'small-images-idx3-ubyte');
    await writeFile(images, idxUint8([2, 3, 3], new Uint8Array(18)));
    expectOneLineError(await mlp(['predict', '--model', model, '--images', images]), /images have 9 values each but the model takes 784/);
  });
});

describe('mlp gradcheck', () => {
  const backends = hasNative ? ['js', 'native'] : ['js'];

  it.each(backends)("prints the seed's verdict lines on the %s backend", async (backend) => {
    const r = await mlp(['gradcheck', '--epochs', '2', '--backend', backend]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      const [, verdict, value] = /^(Ok|Warning|PROBLEM): (\d\.\d\de[-+]\d+)$/.exec(line) ?? [];
      expect(verdict, line).toBe('Ok');
      expect(Number(value)).toBeLessThanOrEqual(1e-7);
    }
    expect(r.stderr).toContain(`784-10-10 on the first 5 training images, 2 epochs (${backend} backend)`);
  });
});
