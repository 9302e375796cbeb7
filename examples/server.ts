/**
 * A prediction server for neuralnet-mlp on plain `node:http` (no framework).
 *
 * Run it from the package root. vite-node (installed with vitest) runs this TypeScript file as it
 * is, so the example needs no build step of its own; the package itself must be built once
 * (`npm run build`), because the TypeScript backend runs its work in dist/backend/js-worker.js:
 *
 *   npx vite-node examples/server.ts                      # trains a small demo model first
 *   npx vite-node examples/server.ts model.json           # or model.safetensors
 *   MODEL=model.json PORT=8080 HOST=0.0.0.0 npx vite-node examples/server.ts
 *
 * (`npx tsc -p examples/tsconfig.json` type-checks it.) In your own project, import from
 * 'neuralnet-mlp' instead of '../lib/index.js'.
 *
 * Endpoints:
 *
 *   POST /predict   {"pixels": [784 numbers]}      -> {"label": 7, "probabilities": [10 numbers]}
 *                   {"pixels": [[784 numbers], ...]} -> {"label": [7, 2], "probabilities": [[...], [...]]}
 *   GET  /health    -> {"status": "ok", "backend": "native", "layers": [784, 50, 10]}
 *
 * Pixels are what the model was trained on (for MNIST models trained by this package: 0..255).
 * `probabilities` are the output layer's sigmoid activations (one per class; they need not sum
 * to 1); `label` is their argmax, exactly what `model.predict` returns.
 *
 * Every client mistake gets a 4xx answer with a JSON `{"error": "..."}` message: 400 for a body
 * that is not JSON or not the shape above (wrong length, strings, null, non-finite numbers such
 * as 1e400), 404 for an unknown path, 405 for a wrong method, 413 for a body over 1 MiB or more
 * than 1,000 rows. A 500 means a bug in the server, never a bad request. Small batches are
 * predicted synchronously (microseconds to a millisecond); batches of 64 rows or more go through
 * `predictWithProbaAsync`, off the main thread, so one large request does not stall the others.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NeuralNetMLP, loadMnist, mnistDataDir } from '../lib/index.js';

export interface ServerOptions {
  /** Largest request body read, in bytes (larger ones get a 413). Default 1 MiB. */
  maxBodyBytes?: number;
  /** Most rows in one batch (more get a 413). Default 1,000. */
  maxRows?: number;
  /** Batches with at least this many rows are predicted off the main thread. Default 64. */
  asyncRows?: number;
}

/** An error to answer with `status` and `message` (a client error unless it is a 5xx). */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const JSON_TYPE = 'application/json; charset=utf-8';

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Reads the whole body, refusing (413) more than `limit` bytes without buffering them. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    // Declared too large: answer at once and close, rather than read what was announced.
    return Promise.reject(new HttpError(413, `the request body is ${declared} bytes; the limit is ${limit}`, { connection: 'close' }));
  }
  return new Promise((resolveBody, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        // Stop keeping the body; node:http discards the rest once the 413 has been sent.
        req.off('data', onData);
        chunks.length = 0;
        reject(new HttpError(413, `the request body is larger than the limit of ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolveBody(Buffer.concat(chunks, size)));
    req.once('error', reject);
  });
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  if (typeof v === 'string') return `a string ${JSON.stringify(v.length > 20 ? v.slice(0, 20) + '…' : v)}`;
  if (typeof v === 'number') return String(v);
  return typeof v === 'object' ? 'an object' : String(v);
}

/** The request's pixels as a row-major matrix, or a 400/413 saying what is wrong. */
function parsePixels(body: Buffer, nFeatures: number, maxRows: number): { data: Float64Array; rows: number; batch: boolean } {
  if (body.length === 0) throw new HttpError(400, 'empty request body; expected JSON {"pixels": [...]}');
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new HttpError(400, `the request body is not valid JSON (${(error as Error).message})`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new HttpError(400, `expected a JSON object {"pixels": [...]}, found ${describeValue(doc)}`);
  }
  const extra = Object.keys(doc).filter((k) => k !== 'pixels');
  if (extra.length > 0) throw new HttpError(400, `unknown field ${JSON.stringify(extra[0])}; expected only "pixels"`);
  if (!Object.hasOwn(doc, 'pixels')) throw new HttpError(400, 'missing field "pixels"');
  const pixels = (doc as { pixels: unknown }).pixels;
  if (!Array.isArray(pixels) || pixels.length === 0) {
    throw new HttpError(400, `"pixels" must be an array of ${nFeatures} numbers or an array of such arrays, found ${describeValue(pixels)}`);
  }
  const batch = Array.isArray(pixels[0]);
  const rows: unknown[] = batch ? pixels : [pixels];
  if (rows.length > maxRows) throw new HttpError(413, `${rows.length} rows in one request; the limit is ${maxRows}`);
  const data = new Float64Array(rows.length * nFeatures);
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r];
    const where = batch ? `pixels[${r}]` : 'pixels';
    if (!Array.isArray(row)) throw new HttpError(400, `${where} must be an array of ${nFeatures} numbers, found ${describeValue(row)}`);
    if (row.length !== nFeatures) throw new HttpError(400, `${where} has ${row.length} values; expected ${nFeatures}`);
    for (let c = 0; c < nFeatures; c++) {
      const v: unknown = row[c];
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new HttpError(400, `${where}[${c}] must be a finite number, found ${describeValue(v)}`);
      }
      data[r * nFeatures + c] = v;
    }
  }
  return { data, rows: rows.length, batch };
}

/**
 * An HTTP server answering with `model`'s predictions (not yet listening: call `listen`).
 * Safe to call several times (one server per model).
 */
export function createServer(model: NeuralNetMLP, options: ServerOptions = {}): Server {
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
  const maxRows = options.maxRows ?? 1000;
  const asyncRows = options.asyncRows ?? 64;
  const layers = model.layerSizes;
  const nFeatures = layers[0];

  async function predict(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req, maxBodyBytes);
    const { data, rows, batch } = parsePixels(body, nFeatures, maxRows);
    const X = { data, rows, cols: nFeatures };
    // Labels and probabilities from one forward pass; large batches off the main thread.
    const { labels, proba } = rows >= asyncRows ? await model.predictWithProbaAsync(X) : model.predictWithProba(X);
    const nOut = proba.cols;
    const probabilities = (r: number) => Array.from(proba.data.subarray(r * nOut, (r + 1) * nOut));
    if (!batch) send(res, 200, { label: labels[0], probabilities: probabilities(0) });
    else send(res, 200, { label: Array.from(labels), probabilities: Array.from({ length: rows }, (_, r) => probabilities(r)) });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/predict') {
      if (req.method !== 'POST') throw new HttpError(405, `${req.method} is not allowed on /predict; use POST`, { allow: 'POST' });
      return predict(req, res);
    }
    if (path === '/health') {
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, `${req.method} is not allowed on /health; use GET`, { allow: 'GET, HEAD' });
      return send(res, 200, { status: 'ok', backend: model.backend, layers });
    }
    throw new HttpError(404, `no such endpoint: ${req.method} ${path.length > 100 ? path.slice(0, 100) + '…' : path}; try POST /predict or GET /health`);
  }

  const server = createHttpServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException | null)?.code === 'ECONNRESET' || res.destroyed) {
        // The client hung up (mid-body, say): nobody to answer.
        res.destroy();
        return;
      }
      if (error instanceof HttpError) {
        send(res, error.status, { error: error.message }, error.headers);
      } else {
        console.error('neuralnet-mlp server: internal error', error);
        send(res, 500, { error: 'internal server error' });
      }
      // Discard whatever is left of the body (a no-op when it was read).
      req.resume();
    });
  });
  // Malformed HTTP (bad request line, oversized headers): answer 400 and drop the connection.
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const status = error.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  });
  // Slow clients cannot hold a connection forever.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  return server;
}

/** A small model trained on the spot, for trying the server without a model file. */
async function trainDemoModel(): Promise<NeuralNetMLP> {
  const rows = 5000;
  const train = await loadMnist(mnistDataDir(), 'train');
  const test = await loadMnist(mnistDataDir(), 't10k');
  const X = { data: train.images.data.slice(0, rows * 784), rows, cols: 784 };
  const model = new NeuralNetMLP({
    nOutput: 10,
    nFeatures: 784,
    nHidden: 50,
    l2: 0.1,
    epochs: 30,
    eta: 0.001,
    alpha: 0.001,
    decreaseConst: 1e-5,
    minibatches: 50,
    randomState: 1,
  });
  const started = performance.now();
  await model.fit(X, train.labels.slice(0, rows));
  const predicted = model.predict(test.images);
  const correct = predicted.reduce((n, p, i) => n + (p === test.labels[i] ? 1 : 0), 0);
  console.log(
    `No model given (argument or MODEL): trained a demo model on ${rows} MNIST images, 30 epochs, in ` +
      `${((performance.now() - started) / 1000).toFixed(1)} s (${model.backend} backend); test accuracy ${((100 * correct) / predicted.length).toFixed(1)}%`,
  );
  return model;
}

async function main(): Promise<void> {
  const modelPath = process.argv[2] ?? process.env.MODEL;
  let model: NeuralNetMLP;
  if (modelPath) {
    model = await NeuralNetMLP.load(modelPath);
    console.log(`Loaded ${modelPath}: layers ${model.layerSizes.join('-')} (${model.backend} backend)`);
  } else {
    model = await trainDemoModel();
  }
  const host = process.env.HOST ?? '127.0.0.1';
  const port = Number(process.env.PORT ?? 3000);
  const server = createServer(model);
  server.listen(port, host, () => {
    const address = server.address();
    const actual = typeof address === 'object' && address ? address.port : port;
    console.log(`neuralnet-mlp server listening on http://${host}:${actual} (POST /predict, GET /health)`);
  });
  const stop = () => {
    server.close();
    server.closeIdleConnections();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

/**
 * True when this file is the program being run: `node`/`tsx` put its path in argv[1]; vite-node
 * puts its own there (and removes the script's), so being run by vite-node counts too. Imported
 * (by the tests, say), it only defines `createServer`.
 */
function isMain(): boolean {
  const entry = process.argv[1];
  if (!entry || process.env.VITEST) return false;
  return resolve(entry) === fileURLToPath(import.meta.url) || /[\\/]vite-node(\.m?js)?$/.test(entry);
}

if (isMain()) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
