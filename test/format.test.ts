/**
 * The model file (lib/format.ts): every way of saving and loading gives back the identical model,
 * and bad documents are rejected with ERR_INVALID_FILE before anything is built.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORMAT_VERSION, MODEL_LIMITS, NeuralNetMLP, type MLPOptions, type ModelJSON } from '../lib/index.js';
import { backends } from './helpers/backends.js';
import { expectBothRejectedInChild, makeFifo, printPeakRss, runCompiled } from './helpers/compiled.js';
import { expectSameBits, randomDataset, rejection, thrown } from './helpers/numeric.js';

let dir: string;
let counter = 0;
const tempPath = () => join(dir, `model-${counter++}.json`);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'neuralnet-mlp-format-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const { X, y } = randomDataset(11, 40, 6, 3);

function trained(backend: 'js' | 'native', dtype: 'float64' | 'float32', nHidden: number | number[]): NeuralNetMLP {
  const options: MLPOptions = {
    nOutput: 3,
    nFeatures: 6,
    nHidden,
    l1: 0.001,
    l2: 0.01,
    epochs: 4,
    eta: 0.1,
    alpha: 0.05,
    decreaseConst: 0.01,
    etaSchedule: 'inverse-time',
    minibatches: 4,
    randomState: 9,
    backend,
    dtype,
  };
  return new NeuralNetMLP(options).fitSync(X, y);
}

function expectSameModel(loaded: NeuralNetMLP, original: NeuralNetMLP, what: string): void {
  expect(loaded.layerSizes, what).toEqual(original.layerSizes);
  const { threads: _t1, backend: _b1, ...a } = loaded.options;
  const { threads: _t2, backend: _b2, ...b } = original.options;
  expect(a, `${what}: options`).toEqual(b);
  const lw = loaded.weights;
  const ow = original.weights;
  expect(lw.length).toBe(ow.length);
  for (let l = 0; l < ow.length; l++) {
    expect([lw[l].rows, lw[l].cols]).toEqual([ow[l].rows, ow[l].cols]);
    expect(lw[l].data.constructor).toBe(ow[l].data.constructor);
    expectSameBits(lw[l].data, ow[l].data, `${what}: weights[${l}]`);
  }
  expectSameBits(loaded.predictProba(X).data, original.predictProba(X).data, `${what}: predictProba`);
  expectSameBits(loaded.predict(X), original.predict(X), `${what}: predict`);
}

describe.each(backends)('round trips (%s backend)', (backend) => {
  describe.each([
    ['float64', 'one hidden layer', 'float64', 5],
    ['float32', 'one hidden layer', 'float32', 5],
    ['float64', 'two hidden layers', 'float64', [5, 4]],
    ['float32', 'two hidden layers', 'float32', [5, 4]],
  ] as const)('%s, %s', (_d, _l, dtype, nHidden) => {
    const original = () => trained(backend, dtype, nHidden as number | number[]);

    it('toJSON describes the model', () => {
      const model = original();
      const doc = model.toJSON();
      expect(doc.format).toBe('neuralnet-mlp');
      expect(doc.version).toBe(FORMAT_VERSION);
      expect(doc.dtype).toBe(dtype);
      expect(doc.layers).toEqual(model.layerSizes);
      expect(doc.weights.map((w) => [w.rows, w.cols])).toEqual(model.weights.map((w) => [w.rows, w.cols]));
      expect(doc.training).toMatchObject({ samples: 40, epochs: 4, finalCost: model.costs[model.costs.length - 1] });
      expect(typeof doc.training?.savedAt).toBe('string');
      expect(Object.keys(doc.options).sort()).toEqual(
        ['alpha', 'decreaseConst', 'epochs', 'eta', 'etaSchedule', 'l1', 'l2', 'minibatches', 'randomState', 'shuffle'].sort(),
      );
    });

    it('fromJSON (object and text)', () => {
      const model = original();
      expectSameModel(NeuralNetMLP.fromJSON(model.toJSON(), { backend }), model, 'fromJSON(object)');
      expectSameModel(NeuralNetMLP.fromJSON(JSON.stringify(model), { backend }), model, 'fromJSON(text)');
      expectSameModel(NeuralNetMLP.fromJSON(JSON.stringify(model.toJSON(), null, 2), { backend }), model, 'fromJSON(pretty text)');
    });

    it('save / load(path) / load(Buffer) / loadSync(path) / loadSync(Buffer) / saveSync', async () => {
      const model = original();
      const path = tempPath();
      await model.save(path);
      expectSameModel(await NeuralNetMLP.load(path, { backend }), model, 'load(path)');
      const bytes = await readFile(path);
      expectSameModel(await NeuralNetMLP.load(bytes, { backend }), model, 'load(Buffer)');
      expectSameModel(await NeuralNetMLP.load(new Uint8Array(bytes), { backend }), model, 'load(Uint8Array)');
      expectSameModel(NeuralNetMLP.loadSync(path, { backend }), model, 'loadSync(path)');
      expectSameModel(NeuralNetMLP.loadSync(bytes, { backend }), model, 'loadSync(Buffer)');
      const path2 = tempPath();
      model.saveSync(path2);
      expectSameModel(NeuralNetMLP.loadSync(path2, { backend }), model, 'saveSync + loadSync');
    });

    it('a loaded model keeps training exactly like the original would from the same weights', () => {
      const model = original();
      const copy = NeuralNetMLP.fromJSON(model.toJSON(), { backend });
      // The RNG state is not saved, so compare without shuffling.
      const a = NeuralNetMLP.fromJSON({ ...model.toJSON(), options: { ...model.toJSON().options, shuffle: false } }, { backend });
      const b = NeuralNetMLP.fromJSON({ ...copy.toJSON(), options: { ...copy.toJSON().options, shuffle: false } }, { backend });
      a.fitSync(X, y);
      b.fitSync(X, y);
      expectSameBits(a.costs, b.costs, 'costs');
      a.weights.forEach((w, l) => expectSameBits(w.data, b.weights[l].data, `weights[${l}]`));
    });
  });

  it('an untrained model round-trips too (no training info)', () => {
    const model = new NeuralNetMLP({ nOutput: 3, nFeatures: 6, nHidden: 2, randomState: null, backend });
    const doc = model.toJSON();
    expect(doc.options.randomState).toBeNull();
    expectSameModel(NeuralNetMLP.fromJSON(JSON.stringify(doc), { backend }), model, 'untrained');
    const { training: _omit, ...withoutTraining } = doc;
    expectSameModel(NeuralNetMLP.fromJSON(withoutTraining, { backend }), model, 'no training key');
  });

  it('float64 weights with awkward values survive the text form bit for bit', () => {
    const model = new NeuralNetMLP({ nOutput: 2, nFeatures: 3, nHidden: 2, randomState: 1, backend });
    const doc = model.toJSON();
    doc.weights[0].data = [0.1 + 0.2, -0, 5e-324, 1.7976931348623157e308, -2.2250738585072014e-308, 1 / 3, Math.PI, -1e-300];
    const loaded = NeuralNetMLP.fromJSON(JSON.stringify(doc), { backend });
    // JSON has no -0: it is written as 0.
    expectSameBits(loaded.weights[0].data, [0.1 + 0.2, 0, 5e-324, 1.7976931348623157e308, -2.2250738585072014e-308, 1 / 3, Math.PI, -1e-300], 'weights');
  });
});

// ---------------------------------------------------------------------------------------------
// Bad documents
// ---------------------------------------------------------------------------------------------

function validDoc(): ModelJSON {
  return new NeuralNetMLP({ nOutput: 3, nFeatures: 4, nHidden: 2, randomState: 1, backend: 'js' }).fitSync(
    randomDataset(1, 6, 4, 3).X,
    randomDataset(1, 6, 4, 3).y,
  ).toJSON() as ModelJSON;
}

type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const badDocs: [label: string, change: (d: Doc) => unknown, field: string | RegExp][] = [
  ['wrong format tag', (d) => (d.format = 'neuralnet-mlp-x'), 'format'],
  ['missing format tag', (d) => delete d.format, 'format'],
  ['version 2', (d) => (d.version = 2), 'version'],
  ["version '1'", (d) => (d.version = '1'), 'version'],
  ['unknown top-level key', (d) => (d.comment = 'hi'), /unknown key "comment"/],
  ['unknown key in options', (d) => (d.options.nHidden = 2), /options.*unknown key "nHidden"/],
  ['unknown key in a weight matrix', (d) => (d.weights[0].dtype = 'float64'), /weights\[0\].*unknown key "dtype"/],
  ['unknown key in training', (d) => (d.training.loss = 1), /training.*unknown key "loss"/],
  ['missing option', (d) => delete d.options.l2, 'options.l2'],
  ['option of the wrong type', (d) => (d.options.shuffle = 'true'), 'options.shuffle'],
  ['option out of range', (d) => (d.options.eta = 0), 'options.eta'],
  ['negative option', (d) => (d.options.l1 = -1), 'options.l1'],
  ['randomState 2**32', (d) => (d.options.randomState = 2 ** 32), 'options.randomState'],
  ['bad etaSchedule', (d) => (d.options.etaSchedule = 'linear'), 'options.etaSchedule'],
  ['bad dtype', (d) => (d.dtype = 'float16'), 'dtype'],
  ['options not an object', (d) => (d.options = []), 'options'],
  ['weights shape mismatch (rows)', (d) => (d.weights[0].rows = 3), 'weights[0]'],
  ['weights shape mismatch (cols)', (d) => (d.weights[1].cols = 4), 'weights[1]'],
  ['weights: one matrix missing', (d) => d.weights.pop(), 'weights'],
  ['weights: one matrix too many', (d) => d.weights.push(d.weights[1]), 'weights'],
  ['data length mismatch (short)', (d) => d.weights[1].data.pop(), 'weights[1].data'],
  ['data length mismatch (long)', (d) => d.weights[0].data.push(0), 'weights[0].data'],
  ['NaN (written as null) in data', (d) => (d.weights[0].data[3] = null), 'weights[0].data[3]'],
  ['a string in data', (d) => (d.weights[1].data[2] = '0.5'), 'weights[1].data[2]'],
  ['data not an array', (d) => (d.weights[0].data = { 0: 1 }), 'weights[0].data'],
  ['a weight matrix that is an array', (d) => (d.weights[0] = [1, 2, 3]), 'weights[0]'],
  ['layers too many', (d) => (d.layers = new Array(MODEL_LIMITS.maxLayers + 2).fill(2)), 'layers'],
  ['a layer too big', (d) => (d.layers = [4, MODEL_LIMITS.maxUnits + 1, 3]), 'layers[1]'],
  ['too many weights in all', (d) => (d.layers = [10_000, 10_000, 3]), /layers.*limit/],
  ['a layer of 0 units', (d) => (d.layers = [4, 0, 3]), 'layers[1]'],
  ['a layer of 1.5 units', (d) => (d.layers = [4, 1.5, 3]), 'layers[1]'],
  ['layers a single entry', (d) => (d.layers = [4]), 'layers'],
  ['training.samples negative', (d) => (d.training.samples = -1), 'training.samples'],
  ['training.savedAt a number', (d) => (d.training.savedAt = 5), 'training.savedAt'],
];

function expectInvalidFile(error: Error & { code?: string }, field: string | RegExp): void {
  expect(error.code, error.message).toBe('ERR_INVALID_FILE');
  if (typeof field === 'string') expect(error.message).toContain(field);
  else expect(error.message).toMatch(field);
}

describe('a model beyond MODEL_LIMITS is not saved', () => {
  it('refuses, before writing, a model with more weights than load reads back', async () => {
    // 1025 x 65,536 + 1 x 1,026 weights: just over MODEL_LIMITS.maxWeights (float32: 256 MiB).
    const big = new NeuralNetMLP({ nOutput: 1, nFeatures: 65_535, nHidden: 1025, dtype: 'float32', randomState: 1, backend: 'js' });
    const weights = 1025 * 65_536 + 1026;
    expect(weights).toBeGreaterThan(MODEL_LIMITS.maxWeights);
    for (const path of [tempPath(), join(dir, 'big.safetensors')]) {
      const sync = thrown(() => big.saveSync(path));
      expect(sync).toBeInstanceOf(RangeError);
      expect(sync.code).toBe('ERR_OUT_OF_RANGE');
      expect(sync.message).toContain(`at most ${MODEL_LIMITS.maxWeights} weights`);
      expect(sync.message).toContain(String(weights));
      const async = await rejection(big.save(path));
      expect(async).toBeInstanceOf(RangeError);
      expect(existsSync(path)).toBe(false);
    }
  }, 60_000);
});

describe('bad documents are rejected with ERR_INVALID_FILE', () => {
  it.each(badDocs)('%s', async (_label, change, field) => {
    const doc = structuredClone(validDoc()) as Doc;
    change(doc);
    expectInvalidFile(thrown(() => NeuralNetMLP.fromJSON(doc)), field);
    const text = JSON.stringify(doc);
    expectInvalidFile(thrown(() => NeuralNetMLP.fromJSON(text)), field);
    const path = tempPath();
    await writeFile(path, text);
    const fromFile = await rejection(NeuralNetMLP.load(path));
    expectInvalidFile(fromFile, field);
    expect(fromFile.path).toBe(path);
    expect(fromFile.message).toContain(path);
    expectInvalidFile(thrown(() => NeuralNetMLP.loadSync(Buffer.from(text))), field);
  });

  it('a document with no hidden layer (layers of length 2) is an ERR_INVALID_FILE, not an options error', () => {
    const doc = structuredClone(validDoc()) as Doc;
    doc.layers = [4, 3];
    doc.weights = [{ rows: 3, cols: 5, data: new Array(15).fill(0.1) }];
    // The format accepts 2 to 65 layer sizes, but the model needs at least one hidden layer.
    expectInvalidFile(thrown(() => NeuralNetMLP.fromJSON(doc)), 'layers');
  });

  it('documents that are not objects', () => {
    for (const doc of [null, 42, [], [validDoc()], true, new Map()]) {
      expectInvalidFile(thrown(() => NeuralNetMLP.fromJSON(doc)), 'document');
    }
    for (const text of ['null', '42', '"model"', '[]']) expectInvalidFile(thrown(() => NeuralNetMLP.fromJSON(text)), 'document');
  });

  it('"__proto__" in the JSON text is an unknown key and pollutes nothing', () => {
    const text = JSON.stringify(validDoc());
    const cases = [
      text.replace('{"format"', '{"__proto__":{"polluted":"yes"},"format"'),
      text.replace('"options":{', '"options":{"__proto__":{"polluted":"yes"},'),
      text.replace('"weights":[{', '"weights":[{"__proto__":{"polluted":"yes"},'),
      text.replace('"training":{', '"training":{"__proto__":{"polluted":"yes"},'),
    ];
    for (const bad of cases) {
      expect(bad).not.toBe(text);
      expectInvalidFile(thrown(() => NeuralNetMLP.fromJSON(bad)), /unknown key "__proto__"/);
      expectInvalidFile(thrown(() => NeuralNetMLP.loadSync(Buffer.from(bad))), /unknown key "__proto__"/);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(Object.prototype).not.toHaveProperty('polluted');
    }
    // "constructor" / "prototype" keys are unknown keys too.
    expectInvalidFile(thrown(() => NeuralNetMLP.fromJSON(text.replace('{"format"', '{"constructor":{"prototype":{"polluted":1}},"format"'))), /unknown key "constructor"/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('invalid JSON text', () => {
    for (const text of ['', '{', '{"format":', "{'format': 'neuralnet-mlp'}", 'NaN', '{"a":1,}']) {
      expectInvalidFile(thrown(() => NeuralNetMLP.fromJSON(text)), 'not valid JSON');
      // Bytes are told apart by content (JSON starts with '{', anything else is read as safetensors).
      const error = thrown(() => NeuralNetMLP.loadSync(Buffer.from(text)));
      expectInvalidFile(error, '<buffer>');
      if (text.startsWith('{')) expect(error.message).toContain('not valid JSON');
    }
  });

  it('a truncated file', async () => {
    const text = JSON.stringify(validDoc());
    for (const length of [0, 1, Math.floor(text.length / 2), text.length - 1]) {
      const path = tempPath();
      await writeFile(path, text.slice(0, length));
      const error = await rejection(NeuralNetMLP.load(path));
      expectInvalidFile(error, path);
      expect(error.path).toBe(path);
      expectInvalidFile(thrown(() => NeuralNetMLP.loadSync(path)), path);
    }
  });

  it('a file that does not exist is reported by the file system', async () => {
    const error = await rejection(NeuralNetMLP.load(join(dir, 'missing.json')));
    expect(error.code).toBe('ENOENT');
  });
});

/** Child code: prints the code and message of what `load` and `loadSync` throw for `path`, then the peak RSS in MiB. */
const loadBothInChild = (path: string) => `
  const show = (e) => console.log(e?.code + ' ' + e?.message);
  await lib.NeuralNetMLP.load(${JSON.stringify(path)}).then(() => console.log('loaded'), show);
  try { lib.NeuralNetMLP.loadSync(${JSON.stringify(path)}); console.log('loaded'); } catch (e) { show(e); }
  ${printPeakRss}
`;

describe('load reads only regular files, within the size limits', () => {
  it.runIf(existsSync('/dev/zero'))('/dev/zero (endless) is rejected without reading it', () => {
    expectBothRejectedInChild(runCompiled(loadBothInChild('/dev/zero')), /\/dev\/zero: not a regular file but a character device/);
  });

  it('a FIFO is rejected without opening it (opening would wait for a writer)', (ctx) => {
    const fifo = join(dir, `fifo-${counter++}`);
    const unavailable = makeFifo(fifo);
    if (unavailable) {
      console.log(`[format.test] skipping the FIFO test: ${unavailable}`);
      return ctx.skip();
    }
    expectBothRejectedInChild(runCompiled(loadBothInChild(fifo)), /not a regular file but a FIFO/);
  });

  it('a directory is ERR_INVALID_FILE', async () => {
    expectInvalidFile(await rejection(NeuralNetMLP.load(dir)), /not a regular file but a directory/);
    expectInvalidFile(thrown(() => NeuralNetMLP.loadSync(dir)), /not a regular file but a directory/);
  });

  it('a file over MODEL_LIMITS.maxFileBytes is rejected from its size, without reading it', async () => {
    const path = join(dir, `big-${counter++}.safetensors`);
    await writeFile(path, '');
    await truncate(path, MODEL_LIMITS.maxFileBytes + 1); // sparse: no disk used
    try {
      const size = MODEL_LIMITS.maxFileBytes + 1;
      // Peak memory well under the file's 512 MiB: it was not read.
      expectBothRejectedInChild(runCompiled(loadBothInChild(path)), new RegExp(`${size} bytes, larger than the limit of ${MODEL_LIMITS.maxFileBytes} bytes`), 400);
    } finally {
      await rm(path, { force: true });
    }
  });
});

describe('JSON models are held to MODEL_LIMITS.maxJsonBytes and a model\'s shape before parsing', () => {
  it('MODEL_LIMITS.maxJsonBytes is 200 MiB, below what could hold an array too long for V8 (2^27 elements)', () => {
    expect(MODEL_LIMITS.maxJsonBytes).toBe(200 * 1024 * 1024);
    expect(MODEL_LIMITS.maxJsonBytes / 2).toBeLessThan(2 ** 27 - 3);
    expect(MODEL_LIMITS.maxJsonBytes).toBeLessThan(MODEL_LIMITS.maxFileBytes);
    expect(Object.isFrozen(MODEL_LIMITS)).toBe(true);
  });

  it('a JSON file just over the cap is rejected from its size, without reading or parsing it', async () => {
    // Before the cap, V8 ended the process ("Fatal JavaScript invalid size error") parsing
    // {"pad":[0,0,...]} with 150 million elements, a file under maxFileBytes.
    const path = join(dir, `big-${counter++}.json`);
    await writeFile(path, '{"format":"neuralnet-mlp","pad":[');
    await truncate(path, MODEL_LIMITS.maxJsonBytes + 1); // sparse: no disk used
    try {
      const started = Date.now();
      const message = new RegExp(`a JSON model of ${MODEL_LIMITS.maxJsonBytes + 1} bytes, larger than the limit .*MODEL_LIMITS\\.maxJsonBytes`);
      expectInvalidFile(await rejection(NeuralNetMLP.load(path)), message);
      expectInvalidFile(thrown(() => NeuralNetMLP.loadSync(path)), message);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await rm(path, { force: true });
    }
  });

  it('JSON with more arrays, objects or strings than a model has is rejected before parsing', () => {
    const objects = `{"format":"neuralnet-mlp","pad":[${new Array(2000).fill('{}').join(',')}]}`;
    const strings = `{"format":"neuralnet-mlp","pad":[${new Array(5000).fill('"\\\\\\"{["').join(',')}]}`;
    expectInvalidFile(thrown(() => NeuralNetMLP.fromJSON(objects)), 'document: more than 1024 arrays and objects');
    expectInvalidFile(thrown(() => NeuralNetMLP.loadSync(Buffer.from(objects))), 'document: more than 1024 arrays and objects');
    expectInvalidFile(thrown(() => NeuralNetMLP.fromJSON(strings)), 'document: more than 4096 strings');
    // Brackets inside strings (after escaped quotes) are not counted as arrays or objects.
    const quoted = `{"format":"neuralnet-mlp","pad":[${new Array(2000).fill('"\\\\\\"{["').join(',')}]}`;
    expectInvalidFile(thrown(() => NeuralNetMLP.fromJSON(quoted)), /unknown key "pad"/);
  });
});

describe('a file that is not a model says so', () => {
  it('text that is neither JSON nor safetensors', async () => {
    const path = join(dir, `passwd-${counter++}`);
    await writeFile(path, 'root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n');
    const message = /not a model file: neither a JSON model \(which starts with "\{"\) nor a safetensors file/;
    expectInvalidFile(await rejection(NeuralNetMLP.load(path)), message);
    expectInvalidFile(thrown(() => NeuralNetMLP.loadSync(path)), message);
    expectInvalidFile(thrown(() => NeuralNetMLP.loadSync(Buffer.from('hi'))), message);
  });

  it('a safetensors file cut inside its header is still called truncated', () => {
    const bytes = new Uint8Array(16);
    new DataView(bytes.buffer).setBigUint64(0, 100n, true);
    expectInvalidFile(thrown(() => NeuralNetMLP.loadSync(bytes)), /truncated: the safetensors header length 100 exceeds the file/);
  });
});
