/**
 * Run as a program (by test/concurrency.test.ts, in a child process so that a crash cannot take
 * the test runner with it): starts an asynchronous prediction or fit with the compiled package
 * (dist/), then at once takes the input's memory away — shrinks its resizable ArrayBuffer to
 * nothing, or transfers (detaches) its ArrayBuffer — while the work may still be reading it.
 * Prints one JSON line: whether the results equal those computed on an untouched copy.
 *
 *   node test/helpers/robust-detach.mjs <native|js> <predictAsync|fit> <resize|detach>
 */
const { NeuralNetMLP } = await import('../../dist/index.js');
const [backend = 'native', mode = 'predictAsync', how = 'resize'] = process.argv.slice(2);

const rows = 6_000;
const cols = 784;
const bytes = rows * cols;
const buffer = how === 'resize' ? new ArrayBuffer(bytes, { maxByteLength: bytes }) : new ArrayBuffer(bytes);
const data = new Uint8Array(buffer);
// Digit-like rows: about a fifth of the pixels non-zero, as in MNIST.
for (let i = 0; i < bytes; i++) data[i] = (i * 2654435761) % 97 < 20 ? (i * 31) % 256 : 0;
const labels = new Uint8Array(rows).map((_, i) => (i * 7) % 10);
const untouched = { data: data.slice(), rows, cols };
const options = { nOutput: 10, nFeatures: cols, nHidden: 50, epochs: 2, minibatches: 10, randomState: 1, backend, threads: 2 };

const model = new NeuralNetMLP(options);
const running = mode === 'fit' ? model.fit({ data, rows, cols }, labels) : model.predictAsync({ data, rows, cols });
if (how === 'resize') buffer.resize(0);
else structuredClone(buffer, { transfer: [buffer] });
const result = await running;

let same;
if (mode === 'fit') {
  const reference = new NeuralNetMLP(options).fitSync(untouched, labels);
  same = model.weights.every((w, l) => w.data.every((v, i) => Object.is(v, reference.weights[l].data[i])));
} else {
  const reference = new NeuralNetMLP(options).predict(untouched);
  same = result.length === rows && result.every((v, i) => v === reference[i]);
}
console.log(JSON.stringify({ backend, mode, how, inputLengthAfter: data.length, same }));
