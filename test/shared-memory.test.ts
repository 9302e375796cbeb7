// Inputs backed by a SharedArrayBuffer (common when data is shared with worker threads) work
// like ordinary ones on every path: fit, fitSync, predict and predictAsync.
import { describe, expect, it } from 'vitest';
import { NeuralNetMLP } from '../lib/index.js';
import { backends } from './helpers/backends.js';

function inputs(shared: boolean) {
  const rows = 60;
  const cols = 5;
  const bytes = rows * cols * Float64Array.BYTES_PER_ELEMENT;
  const data = new Float64Array(shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
  for (let i = 0; i < data.length; i++) data[i] = ((i * 37) % 11) / 11;
  const labels = new Int32Array(shared ? new SharedArrayBuffer(rows * 4) : new ArrayBuffer(rows * 4));
  for (let i = 0; i < rows; i++) labels[i] = i % 3;
  return { X: { data, rows, cols }, y: labels };
}

describe.each(backends)('%s backend: SharedArrayBuffer-backed inputs', (backend) => {
  const options = { nOutput: 3, nFeatures: 5, nHidden: 4, epochs: 3, minibatches: 4, eta: 0.1, randomState: 5, backend } as const;

  it('train and predict exactly as ordinary arrays do', async () => {
    const plain = inputs(false);
    const shared = inputs(true);
    const a = new NeuralNetMLP(options).fitSync(plain.X, plain.y);
    const b = new NeuralNetMLP(options).fitSync(shared.X, shared.y);
    const c = await new NeuralNetMLP(options).fit(shared.X, shared.y);
    for (const m of [b, c]) {
      expect(Array.from(m.weights[0].data)).toEqual(Array.from(a.weights[0].data));
      expect(Array.from(m.costs)).toEqual(Array.from(a.costs));
    }
    expect(Array.from(b.predict(shared.X))).toEqual(Array.from(a.predict(plain.X)));
    expect(Array.from(await b.predictAsync(shared.X))).toEqual(Array.from(a.predict(plain.X)));
  });
});
