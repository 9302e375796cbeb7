#!/usr/bin/env node
/**
 * Load test of the example server (examples/server.ts) on localhost with autocannon: starts the
 * server (`npx vite-node examples/server.ts`, on a free port of 127.0.0.1), checks one answer,
 * then sends POST /predict with a real MNIST test digit for a fixed time and prints throughput
 * and latency. The server is stopped at the end.
 *
 *   npm run build && node scripts/loadtest.mjs [--duration 10] [--connections 10] [--batch 1] [--model model.json]
 *
 * --batch N sends N digits per request (N >= 64 exercises the server's predictWithProbaAsync path).
 * Without --model the server trains its small demo model first (a few seconds). Client and
 * server share this machine's cores, so the figures are a floor, not the server's ceiling.
 */
import { spawn } from 'node:child_process';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { loadMnistSync, mnistDataDir } from '../dist/index.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '10' },
    batch: { type: 'string', default: '1' },
    model: { type: 'string' },
  },
});
const duration = Number(values.duration);
const connections = Number(values.connections);
const batch = Number(values.batch);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// The request: the first `batch` digits of the MNIST test set (the first one is a 7).
const test = loadMnistSync(mnistDataDir(), 't10k');
const digit = (i) => Array.from(test.images.data.subarray(i * 784, (i + 1) * 784));
const body = JSON.stringify({ pixels: batch === 1 ? digit(0) : Array.from({ length: batch }, (_, i) => digit(i)) });

function startServer() {
  const viteNode = join(root, 'node_modules', 'vite-node', 'vite-node.mjs');
  const env = { ...process.env, PORT: '0', HOST: '127.0.0.1', ...(values.model ? { MODEL: values.model } : {}) };
  const child = spawn(process.execPath, [viteNode, 'examples/server.ts'], { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`the server did not start within 180 s:\n${output}`)), 180_000);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (text) => {
      output += text;
      process.stdout.write(`  server: ${text}`);
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: match[1] });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (code ${code}) before listening:\n${output}`));
    });
  });
}

const { child, url } = await startServer();
try {
  const check = await fetch(`${url}/predict`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
  const answer = await check.json();
  if (check.status !== 200) throw new Error(`POST /predict answered ${check.status}: ${JSON.stringify(answer)}`);
  const labels = Array.isArray(answer.label) ? answer.label : [answer.label];
  console.log(`loadtest: POST ${url}/predict with ${batch} digit${batch === 1 ? '' : 's'} (${body.length} bytes) -> label ${labels.slice(0, 10).join(',')}${labels.length > 10 ? ',…' : ''} (true: ${Array.from(test.labels.subarray(0, Math.min(batch, 10))).join(',')})`);
  console.log(`loadtest: autocannon, ${connections} connections, ${duration} s; ${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown CPU'}), load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);

  const result = await autocannon({
    url: `${url}/predict`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections,
    duration,
  });
  const { requests, latency, throughput } = result;
  console.log(
    `loadtest: ${requests.total} requests in ${duration} s: ${requests.average.toFixed(0)} requests/s on average (${(requests.average * batch).toFixed(0)} digits/s); ` +
      `latency p50 ${latency.p50} ms, p99 ${latency.p99} ms, max ${latency.max} ms; ${(throughput.average / 1024 / 1024).toFixed(2)} MB/s answered; ` +
      `non-2xx ${result.non2xx}, errors ${result.errors}, timeouts ${result.timeouts}`,
  );
  if (result.non2xx > 0 || result.errors > 0) process.exitCode = 1;
} finally {
  child.kill('SIGTERM');
  await new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', resolve)));
}
