/**
 * The example server (examples/server.ts), started in-process on port 0: correct answers for
 * single images and batches (synchronous and asynchronous paths), 4xx answers with a message for
 * every kind of bad request, and no 500 or crash for garbage bodies or garbage HTTP.
 */
import { request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../examples/server.js';
import { NeuralNetMLP } from '../lib/index.js';
import { mnistSubset, rowsOf } from './helpers/robust-data.js';
import { mutateJsonStructure, mutateJsonText } from './helpers/robust-mutate.js';
import { Prng, fuzzSeed } from './helpers/robust-prng.js';

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: unknown;
}

const test = mnistSubset('t10k', 400);
let model: NeuralNetMLP;
let server: Server;
let port: number;

function listen(s: Server): Promise<number> {
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)));
}

function close(s: Server): Promise<void> {
  s.closeAllConnections();
  return new Promise((resolve) => s.close(() => resolve()));
}

/** One HTTP request; `body` may be sent in chunks without a Content-Length (`chunked`). */
function request(method: string, path: string, body?: string | Uint8Array, options: { chunked?: boolean; to?: number; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: options.to ?? port, method, path, headers: options.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    // The server may answer (413) and close before the whole body is written: that is fine.
    req.on('error', (error: NodeJS.ErrnoException) => (error.code === 'EPIPE' || error.code === 'ECONNRESET' ? undefined : reject(error)));
    if (body === undefined) {
      req.end();
    } else if (options.chunked) {
      const bytes = typeof body === 'string' ? Buffer.from(body) : Buffer.from(body);
      for (let at = 0; at < bytes.length; at += 64 * 1024) req.write(bytes.subarray(at, at + 64 * 1024));
      req.end();
    } else {
      req.end(body);
    }
  });
}

const post = (body: string | Uint8Array, options?: Parameters<typeof request>[3]) => request('POST', '/predict', body, options);

/** Raw bytes to the server; resolves with whatever it answered before closing. */
function raw(bytes: string | Uint8Array): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.write(bytes);
    setTimeout(() => socket.end(), 200);
  });
}

function pixels(row: number): number[] {
  return Array.from(test.X.data.subarray(row * 784, (row + 1) * 784));
}

beforeAll(async () => {
  const train = mnistSubset('train', 1000);
  model = new NeuralNetMLP({ nOutput: 10, nFeatures: 784, nHidden: 20, l2: 0.1, epochs: 3, eta: 0.001, minibatches: 10, randomState: 1 });
  model.fitSync(train.X, train.y);
  server = createServer(model);
  port = await listen(server);
});

afterAll(async () => {
  await close(server);
});

describe('examples/server.ts: answers', () => {
  it('GET /health reports the model', async () => {
    const r = await request('GET', '/health');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(r.json).toEqual({ status: 'ok', backend: model.backend, layers: [784, 20, 10] });
  });

  it('POST /predict with one image gives the label and probabilities of predict / predictProba', async () => {
    for (const i of [0, 1, 2, 3]) {
      const r = await post(JSON.stringify({ pixels: pixels(i) }));
      expect(r.status).toBe(200);
      const X = rowsOf(test.X, i, i + 1);
      expect(r.json).toEqual({ label: model.predict(X)[0], probabilities: Array.from(model.predictProba(X).data) });
    }
  });

  it.each([
    ['a small batch (synchronous predictWithProba)', 10],
    ['a large batch (predictWithProbaAsync)', 200],
  ])('POST /predict with %s gives arrays', async (_what, rows) => {
    const body = JSON.stringify({ pixels: Array.from({ length: rows }, (_, r) => pixels(r)) });
    const r = await post(body);
    expect(r.status).toBe(200);
    const X = rowsOf(test.X, 0, rows);
    const proba = model.predictProba(X).data;
    expect(r.json).toEqual({
      label: Array.from(model.predict(X)),
      probabilities: Array.from({ length: rows }, (_, k) => Array.from(proba.subarray(k * 10, (k + 1) * 10))),
    });
  });

  it('a model on the TypeScript backend answers a large batch (its worker thread) the same way', async () => {
    const jsModel = NeuralNetMLP.fromJSON(model.toJSON(), { backend: 'js' });
    const jsServer = createServer(jsModel);
    const to = await listen(jsServer);
    try {
      const rows = 100;
      const r = await post(JSON.stringify({ pixels: Array.from({ length: rows }, (_, k) => pixels(k)) }), { to });
      expect(r.status).toBe(200);
      const X = rowsOf(test.X, 0, rows);
      expect((r.json as { label: number[] }).label).toEqual(Array.from(jsModel.predict(X)));
      expect((r.json as { probabilities: number[][] }).probabilities.flat()).toEqual(Array.from(jsModel.predictProba(X).data));
    } finally {
      await close(jsServer);
    }
  });

  it('100 concurrent requests all get their own right answer', async () => {
    const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => post(JSON.stringify({ pixels: pixels(i) }))));
    replies.forEach((r, i) => {
      expect(r.status).toBe(200);
      expect((r.json as { label: number }).label).toBe(model.predict(rowsOf(test.X, i, i + 1))[0]);
    });
  });
});

describe('examples/server.ts: client errors', () => {
  const good = pixels(0);
  const withValue = (i: number, text: string) => `{"pixels":[${good.slice(0, i).join(',')}${i > 0 ? ',' : ''}${text}${i + 1 < good.length ? ',' : ''}${good.slice(i + 1).join(',')}]}`;

  it.each([
    ['an empty body', '', /empty/],
    ['text that is not JSON', 'hello', /not valid JSON/],
    ['truncated JSON', JSON.stringify({ pixels: good }).slice(0, 100), /not valid JSON/],
    ['NaN', withValue(3, 'NaN'), /not valid JSON/],
    ['JSON null', 'null', /expected a JSON object/],
    ['a JSON array', JSON.stringify(good), /expected a JSON object/],
    ['a JSON string', '"pixels"', /expected a JSON object/],
    ['no pixels field', '{}', /missing field "pixels"/],
    ['an extra field', JSON.stringify({ pixels: good, threshold: 1 }), /unknown field "threshold"/],
    ['a __proto__ field', `{"__proto__":{"polluted":true},"pixels":${JSON.stringify(good)}}`, /unknown field "__proto__"/],
    ['pixels null', '{"pixels":null}', /"pixels" must be an array/],
    ['pixels empty', '{"pixels":[]}', /"pixels" must be an array/],
    ['pixels an object', '{"pixels":{"0":1,"length":784}}', /"pixels" must be an array/],
    ['too few pixels', JSON.stringify({ pixels: good.slice(0, 100) }), /has 100 values; expected 784/],
    ['too many pixels', JSON.stringify({ pixels: [...good, 0] }), /has 785 values; expected 784/],
    ['a string pixel', withValue(5, '"5"'), /pixels\[5\] must be a finite number, found a string/],
    ['a null pixel', withValue(0, 'null'), /pixels\[0\] must be a finite number, found null/],
    ['a boolean pixel', withValue(783, 'true'), /pixels\[783\] must be a finite number/],
    ['an infinite pixel (1e400)', withValue(10, '1e400'), /pixels\[10\] must be a finite number, found Infinity/],
    ['a nested array pixel', withValue(1, '[1]'), /pixels\[1\] must be a finite number/],
    ['a ragged batch', JSON.stringify({ pixels: [good, good.slice(1)] }), /pixels\[1\] has 783 values/],
    ['a batch with a number row', JSON.stringify({ pixels: [good, 3] }), /pixels\[1\] must be an array/],
    ['deep nesting', `{"pixels":${'['.repeat(10_000)}${']'.repeat(10_000)}}`, /pixels\[0\] has 1 values/],
  ])('%s: 400 with a message', async (_what, body, message) => {
    const r = await post(body);
    expect(r.status, r.text).toBe(400);
    expect((r.json as { error: string }).error).toMatch(message);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it.each([
    ['GET', '/'],
    ['POST', '/predict/extra'],
    ['GET', '/predictions'],
    ['GET', '/%zz'],
    ['DELETE', '/model'],
  ])('%s %s: 404', async (method, path) => {
    const r = await request(method, path);
    expect(r.status).toBe(404);
    expect((r.json as { error: string }).error).toMatch(/no such endpoint/);
  });

  it.each([
    ['GET', '/predict', 'POST'],
    ['PUT', '/predict', 'POST'],
    ['POST', '/health', 'GET, HEAD'],
  ])('%s %s: 405 naming the allowed methods', async (method, path, allow) => {
    const r = await request(method, path, method === 'GET' ? undefined : '{}');
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe(allow);
  });

  it('a body over 1 MiB gets 413, with or without a Content-Length, and the server carries on', async () => {
    const big = JSON.stringify({ pixels: Array.from({ length: 800 }, () => good) });
    expect(big.length).toBeGreaterThan(1024 * 1024);
    const declared = await post(big);
    expect(declared.status).toBe(413);
    expect((declared.json as { error: string }).error).toMatch(/limit/);
    const chunked = await post(big, { chunked: true });
    expect(chunked.status).toBe(413);
    expect((await request('GET', '/health')).status).toBe(200);
  });

  it('more rows than allowed gets 413', async () => {
    const small = createServer(model, { maxRows: 3 });
    const to = await listen(small);
    try {
      const r = await post(JSON.stringify({ pixels: [good, good, good, good] }), { to });
      expect(r.status).toBe(413);
      expect((r.json as { error: string }).error).toMatch(/4 rows in one request; the limit is 3/);
    } finally {
      await close(small);
    }
  });
});

describe('examples/server.ts: garbage', () => {
  it('500 seeded garbage and mutated bodies never get a 500 and never crash it', async () => {
    const seed = fuzzSeed('server bodies', 0x5e7e);
    const rng = new Prng(seed);
    const valid = JSON.stringify({ pixels: good3() });
    const batch = JSON.stringify({ pixels: [good3(), good3()] });
    const bodies: { what: string; body: Uint8Array | string }[] = [];
    for (let i = 0; i < 500; i++) {
      const r = rng.next();
      if (r < 0.2) bodies.push({ what: 'random bytes', body: rng.bytes(rng.int(2000)) });
      else if (r < 0.6) {
        const m = mutateJsonText(rng, rng.chance(0.5) ? valid : batch);
        bodies.push({ what: m.what, body: m.bytes });
      } else {
        try {
          const m = mutateJsonStructure(rng, rng.chance(0.5) ? valid : batch);
          bodies.push({ what: m.what, body: m.text });
        } catch {
          bodies.push({ what: 'valid', body: valid });
        }
      }
    }
    const statuses = new Map<number, number>();
    const bad: string[] = [];
    for (let i = 0; i < bodies.length; i += 25) {
      const replies = await Promise.all(bodies.slice(i, i + 25).map((b) => post(b.body)));
      replies.forEach((r, k) => {
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        const ok = r.status === 200 || ((r.status === 400 || r.status === 413) && typeof (r.json as { error?: unknown })?.error === 'string');
        if (!ok) bad.push(`[seed ${seed}] ${bodies[i + k].what}: ${r.status} ${r.text.slice(0, 200)}`);
      });
    }
    console.log(`[fuzz] server bodies: ${bodies.length} requests, statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
    expect(bad).toEqual([]);
    expect((await request('GET', '/health')).status).toBe(200);
  });

  it('malformed HTTP gets a 400 (or 431) and the connection closed; the server carries on', async () => {
    const answers = await Promise.all([
      raw('GARBAGE\r\n\r\n'),
      raw(new Uint8Array(Array.from({ length: 512 }, (_, i) => (i * 131) % 256))),
      raw('POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n'),
      raw('POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n'),
      raw(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`),
    ]);
    for (const a of answers) expect(a).toMatch(/^HTTP\/1\.1 (400|431) /);
    expect((await request('GET', '/health')).status).toBe(200);
  });

  it('clients that hang up mid-body do not disturb it', async () => {
    await Promise.all(
      Array.from(
        { length: 20 },
        () =>
          new Promise<void>((resolve) => {
            const socket = connect(port, '127.0.0.1', () => {
              socket.write('POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{"pixels":[1,2,');
              setTimeout(() => socket.destroy(), 20);
            });
            socket.on('error', () => undefined);
            socket.on('close', () => resolve());
          }),
      ),
    );
    const r = await post(JSON.stringify({ pixels: pixels(5) }));
    expect(r.status).toBe(200);
  });
});

function good3(): number[] {
  return pixels(3);
}
