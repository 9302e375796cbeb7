#!/usr/bin/env node
/**
 * `npm run bench [-- --quick] [-- --only=id,id] [-- --no-extras]`
 *
 * Runs every contender of bench/contenders.mjs on the same MNIST workload, each trial in a fresh
 * process, then prints a table (seconds per epoch, GFLOP/s, speed relative to native float64,
 * prediction throughput, single-sample latency, peak RSS), the targets, a threads section and a
 * scaling section, and writes bench/results/<UTC date and time>Z.json (full mode also bench/results/latest.md).
 *
 *   --quick       a few seconds per contender on 6,000 images (CI keeps the benchmark working with it)
 *   --only=a,b    only these contender ids (see bench/contenders.mjs)
 *   --no-extras   skip the threads, kernel-paths and scaling sections
 *
 * Optional contenders are skipped with a message when absent: TensorFlow.js and brain.js need
 * `npm install --prefix bench`; the seed's numpy code needs its script (NEURALNET_MLP_SEED_SCRIPT,
 * default ../shared/seed/seed_mlp.py beside the repository) and a Python with numpy and scipy
 * (NEURALNET_MLP_PYTHON, default python3); PyTorch and scikit-learn need a Python that imports
 * them (NEURALNET_MLP_PYTHON, else python3, else /usr/bin/python3: Debian's python3-torch and
 * python3-sklearn).
 */
import { fork, spawn, spawnSync, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { join, relative, resolve } from 'node:path';
import { lineTransferNs } from './line-transfer.mjs';
import { COMPUTE_FLOOR, CONTENDERS, DTYPES, KERNEL_PATHS, MODES, SCALING, THREADS, scalingEpochs } from './contenders.mjs';
import { BENCH_DIR, FLOP_FORMULA, MODEL, PACKAGE_ENTRY, REPO_DIR, BATCH_SIZE, flopPerSample, median, minibatchesFor } from './workload.mjs';

const RESULTS_DIR = join(BENCH_DIR, 'results');
const SEED_SCRIPT_ENV = 'NEURALNET_MLP_SEED_SCRIPT';
const PYTHON_ENV = 'NEURALNET_MLP_PYTHON';
/** Environment variables that pin OpenBLAS to one kernel or cache size; unset for the numpy trial only. */
const OPENBLAS_PINS = ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'];

// ---------------------------------------------------------------------------------------------
// Arguments and environment

function parseArgs(argv) {
  const args = { quick: false, only: null, extras: true };
  for (const a of argv) {
    if (a === '--quick') args.quick = true;
    else if (a === '--no-extras') args.extras = false;
    else if (a.startsWith('--only=')) args.only = a.slice('--only='.length).split(',').filter(Boolean);
    else if (a === '--help' || a === '-h') {
      console.log('usage: npm run bench [-- --quick] [-- --only=id,id] [-- --no-extras]');
      console.log(`contender ids: ${CONTENDERS.map((c) => c.id).join(', ')}`);
      process.exit(0);
    } else {
      console.error(`unknown argument ${a} (try --help)`);
      process.exit(2);
    }
  }
  if (args.only) {
    const unknown = args.only.filter((id) => !CONTENDERS.some((c) => c.id === id));
    if (unknown.length) {
      console.error(`unknown contender id(s): ${unknown.join(', ')}; known: ${CONTENDERS.map((c) => c.id).join(', ')}`);
      process.exit(2);
    }
  }
  return args;
}

const log = (message) => process.stderr.write(`${message}\n`);

/** What is available on this machine, probed once; every missing piece comes with a reason. */
async function probe() {
  if (!existsSync(PACKAGE_ENTRY)) {
    console.error(`${relative(process.cwd(), PACKAGE_ENTRY)} is missing: build the package first (npm run build).`);
    process.exit(1);
  }
  for (const warning of staleBuilds()) log(`warning: ${warning}`);
  const pkg = await import(PACKAGE_ENTRY);
  const env = { pkg, mnistDir: pkg.mnistDataDir() };

  const addon = pkg.nativeAddonInfo();
  env.addon = addon.available
    ? { path: addon.path, isa: addon.isa, bestIsa: addon.bestIsa }
    : { missing: `the native addon is not built (npm run build:addon): ${addon.failures.join('; ')}` };

  env.benchModules = existsSync(join(BENCH_DIR, 'node_modules'));
  const benchRequire = createRequire(join(BENCH_DIR, 'package.json'));
  env.hasPackage = (name) => {
    try {
      benchRequire.resolve(name);
      return true;
    } catch {
      return false;
    }
  };

  const seedScript = process.env[SEED_SCRIPT_ENV] || resolve(REPO_DIR, '..', 'shared', 'seed', 'seed_mlp.py');
  if (!existsSync(seedScript)) {
    env.seed = { missing: `the seed's script is not at ${seedScript} (set ${SEED_SCRIPT_ENV} to its seed_mlp.py)` };
  } else {
    const pythons = process.env[PYTHON_ENV] ? [process.env[PYTHON_ENV]] : ['python3', '/usr/bin/python3'];
    const python = pythons.find(
      (p) => spawnSync(p, ['-c', 'import numpy, scipy'], { stdio: 'ignore', env: numpyEnv() }).status === 0,
    );
    env.seed = python
      ? { script: seedScript, python }
      : { missing: `no Python with numpy and scipy (tried ${pythons.join(', ')}; set ${PYTHON_ENV})` };
  }
  // Other Python contenders: the first interpreter that imports what they need.
  const pythonFound = new Map();
  env.pythonWith = (modules) => {
    const key = modules.join(',');
    if (!pythonFound.has(key)) {
      const pythons = process.env[PYTHON_ENV] ? [process.env[PYTHON_ENV]] : ['python3', '/usr/bin/python3'];
      const python = pythons.find(
        (p) => spawnSync(p, ['-c', `import ${key}`], { stdio: 'ignore', env: numpyEnv() }).status === 0,
      );
      pythonFound.set(key, python ? { python } : { missing: `no Python with ${modules.join(' and ')} (tried ${pythons.join(', ')}; set ${PYTHON_ENV})` });
    }
    return pythonFound.get(key);
  };
  return env;
}

/** Newest modification time under `dir` of files whose names pass `keep` (0 when there are none). */
function newestMtime(dir, keep) {
  let newest = 0;
  if (!existsSync(dir)) return newest;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && keep(entry.name)) newest = Math.max(newest, statSync(join(entry.parentPath ?? entry.path, entry.name)).mtimeMs);
  }
  return newest;
}

/** The benchmark measures dist/ and the built addon as they are: say when the sources are newer. */
function staleBuilds() {
  const warnings = [];
  const lib = newestMtime(join(REPO_DIR, 'lib'), (n) => n.endsWith('.ts'));
  const dist = newestMtime(join(REPO_DIR, 'dist'), (n) => n.endsWith('.js'));
  if (lib > dist) warnings.push('lib/ has changes newer than dist/ (npm run build)');
  const addon = join(REPO_DIR, 'build', 'Release', 'neuralnet_mlp.node');
  if (existsSync(addon) && newestMtime(join(REPO_DIR, 'native'), () => true) > statSync(addon).mtimeMs) {
    warnings.push('native/ has changes newer than build/Release/neuralnet_mlp.node (npm run build:addon)');
  }
  return warnings;
}

/** This process's environment without the OpenBLAS pins (numpy then picks its kernel for this CPU). */
function numpyEnv() {
  const env = { ...process.env };
  for (const name of OPENBLAS_PINS) delete env[name];
  return env;
}

/** Why a contender cannot run here, or null when it can. */
function missingFor(contender, env) {
  const needs = contender.needs ?? {};
  if (needs.addon && env.addon.missing) return env.addon.missing;
  if (needs.packages) {
    if (!env.benchModules) return 'bench/node_modules is missing (npm install --prefix bench)';
    const absent = needs.packages.filter((p) => !env.hasPackage(p));
    if (absent.length) return `${absent.join(', ')} not installed in bench/ (npm install --prefix bench)`;
  }
  if (needs.seed && env.seed.missing) return env.seed.missing;
  if (needs.python && env.pythonWith(needs.python).missing) return env.pythonWith(needs.python).missing;
  return null;
}

function machine(env) {
  const cpus = os.cpus();
  let commit = null;
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_DIR, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    // The benchmark's own results files do not count as changes to what it measures.
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no', '--', '.', ':(exclude)bench/results'], { cwd: REPO_DIR, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    if (dirty.trim()) commit += ' (with uncommitted changes)';
  } catch {
    // not a git checkout
  }
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    logicalCores: cpus.length,
    availableParallelism: os.availableParallelism(),
    memoryGB: Math.round(os.totalmem() / 1e8) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    v8: process.versions.v8,
    addonIsa: env.addon.isa ?? null,
    addonPath: env.addon.path ? relative(REPO_DIR, env.addon.path) : null,
    loadAverageAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
    commit,
  };
}

// ---------------------------------------------------------------------------------------------
// Trials

/** Runs one trial in a fresh process; resolves to its result object ({ ok: false, error } on failure). */
function runTrial(contender, workload, env, timeoutMs) {
  const spec = { contender: { id: contender.id, module: contender.module, options: contender.options ?? {} }, model: MODEL, workload };
  const started = performance.now();
  return new Promise((resolveTrial) => {
    let result = null;
    let output = '';
    const child =
      contender.kind === 'python'
        ? spawn(
            contender.needs.seed ? env.seed.python : env.pythonWith(contender.needs.python).python,
            [join(BENCH_DIR, contender.module), ...(contender.needs.seed ? [env.seed.script] : []), env.mnistDir, JSON.stringify(spec)],
            { env: numpyEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
          )
        : fork(join(BENCH_DIR, 'trial.mjs'), [JSON.stringify(spec)], {
            silent: true,
            execArgv: [],
            env: { ...process.env, ...(contender.env ?? {}) },
          });
    const keep = (chunk) => {
      output = (output + chunk).slice(-20000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('message', (m) => {
      result = m;
    });
    const timer = setTimeout(() => {
      result = { ok: false, error: `timed out after ${timeoutMs / 1000} s` };
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (!result && contender.kind === 'python') {
        const last = output.trim().split('\n').pop();
        try {
          result = JSON.parse(last);
        } catch {
          // reported below
        }
      }
      if (!result) result = { ok: false, error: `exited with ${signal ?? `code ${code}`} without a result` };
      if (!result.ok && !result.skip) result.output = output.trim().split('\n').slice(-15).join('\n');
      result.trialSeconds = (performance.now() - started) / 1000;
      resolveTrial(result);
    });
    child.on('error', (error) => {
      result = { ok: false, error: error.message };
    });
  });
}

function workloadFor(contender, mode, modeName, overrides = {}) {
  /** A per-mode setting ({ full, quick }) or one value for both. */
  const pick = (v) => (v !== null && typeof v === 'object' ? v[modeName] : v);
  const samples = overrides.samples ?? mode.samples;
  const trainSamples = Math.min(samples, pick(contender.maxSamples) ?? samples);
  const warmup = contender.warmup.epochs ? { epochs: contender.warmup.epochs } : { samples: pick(contender.warmup.samples) };
  return {
    samples: trainSamples,
    fullSamples: samples,
    nHidden: overrides.nHidden ?? MODEL.nHidden,
    minibatches: minibatchesFor(trainSamples),
    warmup,
    timedEpochs: overrides.epochs ?? pick(contender.epochs),
    predict: overrides.measure === false ? null : mode.predict,
    latency: overrides.measure === false ? null : mode.latency,
    hashWeights: true,
  };
}

/** Adds the derived numbers: full-epoch seconds (scaled when trained on a subset) and GFLOP/s. */
function derive(result, workload) {
  if (!result.ok) return result;
  const scale = workload.fullSamples / result.trainedSamples;
  result.fullSamples = workload.fullSamples;
  result.nHidden = workload.nHidden;
  result.scaledFrom = scale === 1 ? null : result.trainedSamples;
  result.sPerFullEpoch = result.sPerEpoch * scale;
  result.gflops = (flopPerSample(workload.nHidden) * result.trainedSamples) / result.sPerEpoch / 1e9;
  return result;
}

// ---------------------------------------------------------------------------------------------
// Formatting

function fmt(x, digits = 3) {
  if (x === null || x === undefined || Number.isNaN(x)) return 'n/a';
  if (x === 0) return '0';
  const mag = Math.floor(Math.log10(Math.abs(x)));
  const decimals = Math.max(0, digits - 1 - mag);
  return x.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}
const times = (x) => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : `${fmt(x, 3)}×`);
const kilo = (n) => (n % 1000 === 0 ? `${n / 1000}k` : String(n));

/** How many epochs each scaling cell's median is of (more for the small cells: SCALING.minWork). */
function scalingEpochText(section) {
  const counts = [...new Set(section.cells.map((c) => c.epochs ?? section.epochs))].sort((a, b) => a - b);
  if (counts.length === 1) return counts[0] === 1 ? 'one epoch' : `median of ${counts[0]} epochs`;
  const most = section.cells.reduce((a, c) => ((c.epochs ?? 0) > (a.epochs ?? 0) ? c : a));
  return (
    `median of ${counts[0]} epochs, or for the smaller cells of as many as hold the 60k-image, 50-unit cell's work, ` +
    `up to ${most.epochs} (${kilo(most.samples)} images, ${most.nHidden} units)`
  );
}

function mdTable(headers, rows, align) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => `| ${cells.map((c, i) => (align?.[i] === 'r' ? String(c).padStart(widths[i]) : String(c).padEnd(widths[i]))).join(' | ')} |`;
  const rule = `| ${widths.map((w, i) => (align?.[i] === 'r' ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w))).join(' | ')} |`;
  return [line(headers), rule, ...rows.map(line)].join('\n');
}

function threadsOf(r) {
  const t = r.details?.threads;
  return t === undefined || t === null ? '' : String(t);
}

function mainTable(rows, baseline, predictImages) {
  const headers = ['contender', 'threads', 's/epoch', 'GFLOP/s', 'vs native f64', `predict ${kilo(predictImages)} (ms)`, 'predict (images/s)', '1-sample p50 (µs)', 'p99 (µs)', 'peak RSS (MB)'];
  const body = rows.map(({ contender, result: r }) => {
    if (!r.ok) return [contender.label, '', r.skip ? 'skipped' : 'failed', '', '', '', '', '', '', ''];
    const note = r.scaledFrom ? ` (${kilo(r.scaledFrom)}-image run, scaled)` : '';
    return [
      contender.label,
      threadsOf(r),
      fmt(r.sPerFullEpoch) + note,
      fmt(r.gflops),
      baseline ? times(baseline.sPerFullEpoch / r.sPerFullEpoch) : 'n/a',
      r.predict ? fmt(r.predict.msMedian) : 'n/a',
      r.predict ? Math.round(r.predict.imagesPerSecond).toLocaleString('en-US') : 'n/a',
      r.latency ? fmt(r.latency.p50us) : 'n/a',
      r.latency ? fmt(r.latency.p99us) : 'n/a',
      fmt(r.peakRssTrainMB),
    ];
  });
  return mdTable(headers, body, ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']);
}

function machineLine(m) {
  return `${m.cpu}, ${m.logicalCores} logical cores, ${m.memoryGB} GB RAM, ${m.os}, Node.js ${m.node}, addon ISA ${m.addonIsa ?? 'n/a'}` +
    `, load average at start ${m.loadAverageAtStart.join(' / ')}${m.commit ? `, commit ${m.commit}` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// Targets (ratios within this run; reported, never asserted)

function targets(byId, dtypeSection, threadsSection, scalingSection, floorSection, floorPaired) {
  const ok = (id) => (byId[id]?.ok ? byId[id] : null);
  const f64 = ok('native-f64');
  const f32 = ok('native-f32');
  const ts = ok('ts');
  const out = [];
  const add = (target, value, met) => out.push({ target, value, met: met === null ? 'n/a' : met ? 'yes' : 'no' });
  const ratio = (slow, fast) => (slow && fast ? slow.sPerFullEpoch / fast.sPerFullEpoch : null);

  const vsSeed = ratio(ok('seed-numpy'), f64);
  add("native float64 ≥ 5× the seed's numpy (per epoch)", times(vsSeed), vsSeed === null ? null : vsSeed >= 5);
  const vsTorch = ratio(ok('torch'), ok('native-f32'));
  add('native float32 ≥ 7× PyTorch float32 (per epoch)', times(vsTorch), vsTorch === null ? null : vsTorch >= 7);
  // The epoch against the compute floor: its FLOP at OpenBLAS's large-matrix rate, measured in this
  // run. Judged on the paired rounds when they ran (the rate and the epochs measured back to back),
  // else on the main table's trial against the single floor trial.
  for (const [r, dtype, slack, issue] of [
    [f64, 'float64', 1, '0.07 s'],
    [f32, 'float32', COMPUTE_FLOOR.float32Slack, '0.035 s'],
  ]) {
    const rate = floorSection?.rates?.[dtype]?.gflopsMedian ?? null;
    const need = rate === null ? null : rate / slack;
    const paired = floorPaired?.dtypes?.[dtype] ?? null;
    const single = r && need
      ? `${fmt(r.gflops)} GFLOP/s vs ${slack === 1 ? '' : `${fmt(1 / slack, 2)} × `}${fmt(rate)} (${fmt(r.sPerFullEpoch)} s vs ${fmt((floorSection.epochGflop / rate) * slack)} s)`
      : 'n/a';
    add(
      (slack === 1
        ? `native ${dtype} ≥ OpenBLAS's large-matrix ${dtype} rate (the compute floor; the issue's ${issue})`
        : `native ${dtype} ≥ ${fmt(1 / slack, 2)}× OpenBLAS's large-matrix ${dtype} rate (${fmt(slack)}× the floor; the issue's ${issue})`) +
        (paired ? `, median of ${floorPaired.rounds} paired round(s)` : ''),
      // The rate itself, and the share of it the target asks for, so the figure is not read as the rate.
      paired
        ? `${times(paired.medianRatio)} its rate (rounds ${paired.ratios.map((x) => fmt(x)).join(', ')}; the main table's trial: ${single})`
        : single,
      paired ? paired.medianRatio >= 1 / slack : r && need ? r.gflops >= need : null,
    );
  }
  // float32 against float64 is reported in its own section, not as a target: the issue's float32
  // target is its epoch time (0.035 s, the row above), which does not move with float64's.
  for (const [id, name] of [['tfjs-cpu', "TensorFlow.js's cpu backend"], ['brain', 'brain.js']]) {
    const r = ratio(ok(id), ts);
    add(`TypeScript backend ≥ 4× ${name} (per epoch)`, times(r), r === null ? null : r >= 4);
  }
  for (const r of [f64, f32].filter(Boolean)) {
    const name = r === f64 ? 'float64' : 'float32';
    const ms = r.predict?.msMedian ?? null;
    const all = r.predict?.images === 10000;
    const value = ms === null ? 'n/a' : `${fmt(ms)} ms${all ? '' : ` for ${r.predict.images.toLocaleString('en-US')} images`}`;
    add(`native ${name}: predict the 10,000 test images ≤ 5 ms`, value, ms === null || !all ? null : ms <= 5);
    const l = r.latency;
    add(`native ${name}: single-sample predict p50 ≤ 10 µs, p99 ≤ 50 µs`, l ? `${fmt(l.p50us)} µs / ${fmt(l.p99us)} µs` : 'n/a', l ? l.p50us <= 10 && l.p99us <= 50 : null);
  }
  for (const s of threadsSection ?? []) {
    const r = s.paired?.medianRatio ?? null;
    add(
      `${s.label}: 2 threads ≥ 1.8× 1 thread (median of paired epochs in one process)`,
      r === null
        ? 'n/a'
        : `${times(r)} (separate processes: ${times(s.speedup2vs1)}; the machine's ceiling in this run: ${s.paired.ceiling ? `${times(s.paired.ceiling.medianRatio)}, ratio / ceiling ${fmt(s.paired.ceiling.medianShare, 2)}` : 'n/a'})`,
      r === null ? null : r >= 1.8,
    );
    add(`${s.label}: final weights bit-identical for threads ${s.runs.map((x) => x.threads).join(', ')}`, s.identical === null ? 'n/a' : s.identical ? 'identical' : 'DIFFERENT', s.identical);
  }
  const rss = f64 && f64.fullSamples === 60000 && !f64.scaledFrom ? f64.peakRssTrainMB : null;
  add('peak RSS of a full-MNIST training process (native float64) ≤ 250 MB', rss === null ? 'n/a (quick run: not full MNIST)' : `${fmt(rss)} MB`, rss === null ? null : rss <= 250);
  if (scalingSection?.cells.length) {
    const g = scalingSection.cells.filter((c) => c.ok).map((c) => c.gflops).sort((a, b) => a - b);
    const med = g[Math.floor((g.length - 1) / 2)];
    const lin = g.length > 1 && g[0] >= med / 1.5 && g[g.length - 1] <= med * 1.5;
    add('scaling: time linear in the work (every cell within 1.5× of the median GFLOP/s)', g.length ? `${fmt(g[0])}–${fmt(g[g.length - 1])} GFLOP/s, median ${fmt(med)}` : 'n/a', g.length > 1 ? lin : null);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const modeName = args.quick ? 'quick' : 'full';
  const mode = MODES[modeName];
  const started = Date.now();
  const env = await probe();
  const m = machine(env);
  log(`neuralnet-mlp benchmark, ${modeName} mode: ${mode.samples.toLocaleString('en-US')} training images, 784-${MODEL.nHidden}-10, minibatches of ~${BATCH_SIZE}`);
  log(`machine: ${machineLine(m)}`);
  if (!env.benchModules) {
    log('note: bench/node_modules is missing, so TensorFlow.js and brain.js are skipped. Install them with: npm install --prefix bench');
  }

  let failed = 0;
  const selected = CONTENDERS.filter((c) => !args.only || args.only.includes(c.id));
  const rows = [];
  for (const contender of selected) {
    const missing = missingFor(contender, env);
    if (missing) {
      log(`- ${contender.label}: skipped: ${missing}`);
      rows.push({ contender, result: { ok: false, skip: missing } });
      continue;
    }
    const workload = { ...workloadFor(contender, mode, modeName), predictInputs: true };
    log(`- ${contender.label}: running (${workload.warmup.epochs ? `${workload.warmup.epochs} warm-up epoch` : `warm-up on ${workload.warmup.samples} images`} + ${workload.timedEpochs} timed on ${workload.samples.toLocaleString('en-US')} images)...`);
    const result = derive(await runTrial(contender, workload, env, mode.trialTimeoutMs), workload);
    if (result.ok) {
      log(
        `  ${fmt(result.sPerFullEpoch)} s/epoch${result.scaledFrom ? ' (scaled)' : ''}, ${fmt(result.gflops)} GFLOP/s, ` +
          `predict ${kilo(mode.predict.images)} ${result.predict ? fmt(result.predict.msMedian) : 'n/a'} ms, ` +
          `test accuracy ${fmt(result.testAccuracy * 100)} % (trial ${fmt(result.trialSeconds)} s)`,
      );
    } else if (result.skip) {
      log(`  skipped: ${result.skip}`);
    } else {
      failed++;
      log(`  FAILED: ${result.error}${result.output ? `\n${result.output.replace(/^/gm, '    ')}` : ''}`);
    }
    rows.push({ contender, result });
  }
  const byId = Object.fromEntries(rows.map((r) => [r.contender.id, r.result]));
  const baseline = byId['native-f64']?.ok ? byId['native-f64'] : null;

  // The compute floor: OpenBLAS's large-matrix rate, in a fresh Python process
  let floorSection = null;
  if (selected.some((c) => c.id === 'native-f64' || c.id === 'native-f32')) {
    const missing = missingFor(COMPUTE_FLOOR, env);
    const n = COMPUTE_FLOOR.n[modeName];
    const reps = COMPUTE_FLOOR.reps[modeName];
    const epochGflop = (flopPerSample(MODEL.nHidden) * mode.samples) / 1e9;
    if (missing) {
      log(`- ${COMPUTE_FLOOR.label}: skipped: ${missing}`);
      floorSection = { skip: missing };
    } else {
      log(`- ${COMPUTE_FLOOR.label}: ${n} x ${n} matrix products, float64 and float32 (${reps} timed each)...`);
      const r = await runTrial(COMPUTE_FLOOR, { n, reps }, env, mode.trialTimeoutMs);
      if (r.ok) {
        const { float64, float32 } = r.rates;
        log(`  float64 ${fmt(float64.gflopsMedian)} GFLOP/s, float32 ${fmt(float32.gflopsMedian)} GFLOP/s (medians)`);
        floorSection = { n, reps, epochGflop, version: r.version, details: r.details, rates: r.rates };
      } else if (r.skip) {
        log(`  skipped: ${r.skip}`);
        floorSection = { skip: r.skip };
      } else {
        failed++;
        log(`  FAILED: ${r.error}${r.output ? `\n${r.output.replace(/^/gm, '    ')}` : ''}`);
        floorSection = { error: r.error };
      }
    }
  }

  // The targets against the floor, paired: OpenBLAS's rate and the native epochs back to back.
  let floorPaired = null;
  const floorIds = ['native-f64', 'native-f32'].filter((id) => byId[id]?.ok);
  if (floorSection?.rates && floorIds.length) {
    const rounds = COMPUTE_FLOOR.pairedRounds[modeName];
    const reps = COMPUTE_FLOOR.pairedReps[modeName];
    const epochs = COMPUTE_FLOOR.pairedEpochs[modeName];
    const dtypeOf = (id) => (id === 'native-f64' ? 'float64' : 'float32');
    const perDtype = Object.fromEntries(floorIds.map((id) => [dtypeOf(id), { openblas: [], native: [], ratios: [] }]));
    log(`- ${COMPUTE_FLOOR.label} and the native epochs, paired (${rounds} round(s))...`);
    const blasTrial = async () => {
      const r = await runTrial(COMPUTE_FLOOR, { n: floorSection.n, reps }, env, mode.trialTimeoutMs);
      if (!r.ok) throw new Error(`OpenBLAS's trial: ${r.error ?? r.skip}${r.output ? `\n${r.output}` : ''}`);
      return r.rates;
    };
    const nativeTrials = async () => {
      const out = {};
      for (const id of floorIds) {
        const contender = CONTENDERS.find((c) => c.id === id);
        const workload = workloadFor(contender, mode, modeName, { epochs, measure: false });
        const r = derive(await runTrial(contender, workload, env, mode.trialTimeoutMs), workload);
        if (!r.ok) throw new Error(`${contender.label}: ${r.error}${r.output ? `\n${r.output}` : ''}`);
        out[dtypeOf(id)] = r.gflops;
      }
      return out;
    };
    try {
      for (let round = 0; round < rounds; round++) {
        let rates, natives;
        if (round % 2 === 0) {
          rates = await blasTrial();
          natives = await nativeTrials();
        } else {
          natives = await nativeTrials();
          rates = await blasTrial();
        }
        for (const [dtype, d] of Object.entries(perDtype)) {
          d.openblas.push(rates[dtype].gflopsMedian);
          d.native.push(natives[dtype]);
          d.ratios.push(natives[dtype] / rates[dtype].gflopsMedian);
        }
        log(`  round ${round + 1}: ${Object.entries(perDtype).map(([dtype, d]) => `${dtype} ${fmt(d.native.at(-1))} vs ${fmt(d.openblas.at(-1))} GFLOP/s`).join(', ')}`);
      }
      floorPaired = {
        rounds,
        reps,
        epochs,
        dtypes: Object.fromEntries(Object.entries(perDtype).map(([dtype, d]) => [dtype, { ...d, medianRatio: median(d.ratios) }])),
      };
    } catch (error) {
      failed++;
      log(`  FAILED: ${error.message.replace(/\n/g, '\n    ')}`);
    }
  }

  // float32 vs float64, paired in one process
  let dtypeSection = null;
  if (!env.addon.missing && ['native-f64', 'native-f32'].every((id) => byId[id]?.ok)) {
    const base = CONTENDERS.find((c) => c.id === DTYPES.contender);
    const rounds = DTYPES.pairedRounds[modeName];
    log(`- ${base.label} vs float32, paired in one process (${rounds} rounds)...`);
    const workload = { ...workloadFor(base, mode, modeName, { measure: false }), paired: { variants: [{ dtype: 'float64' }, { dtype: 'float32' }], rounds } };
    const r = await runTrial(base, workload, env, mode.trialTimeoutMs);
    if (!r.ok) {
      failed++;
      log(`  FAILED: ${r.error}${r.output ? `\n${r.output.replace(/^/gm, '    ')}` : ''}`);
    } else {
      log(`  float32 ${fmt(r.medianRatio)}× float64 (median of ${rounds} pairs; pairs ${r.ratios.map((x) => fmt(x)).join(', ')})`);
      dtypeSection = { rounds, threads: byId['native-f64'].details?.threads ?? null, seconds: r.seconds, ratios: r.ratios, medianRatio: r.medianRatio };
    }
  }

  // Threads section
  let threadsSection = null;
  let lineTransfer = null;
  if (args.extras && !env.addon.missing && THREADS.contenders[modeName].some((x) => selected.some((c) => c.id === x))) {
    threadsSection = [];
    // Measured before and after the thread trials: a virtual machine's cores can move. With one
    // core there is nothing to measure (the threads would take turns at the scheduler's pace).
    const measureLineTransfer = async () => {
      if (m.availableParallelism < 2) return null;
      const ns = [];
      for (let i = 0; i < 3; i++) ns.push(await lineTransferNs());
      return ns.includes(null) ? null : median(ns);
    };
    const showNs = (ns) => (ns === null ? 'not measured (one core, or too slow to measure)' : `${fmt(ns)} ns one way`);
    lineTransfer = { beforeNs: await measureLineTransfer(), afterNs: null };
    log(`- a cache line passed between two threads: ${showNs(lineTransfer.beforeNs)}`);
    for (const id of THREADS.contenders[modeName].filter((x) => selected.some((c) => c.id === x))) {
      const base = CONTENDERS.find((c) => c.id === id);
      const runs = [];
      for (const threads of THREADS.threads) {
        const contender = { ...base, options: { ...base.options, threads } };
        const workload = workloadFor(contender, mode, modeName, { epochs: THREADS.epochs[modeName], measure: false });
        log(`- threads: ${base.label}, ${threads} thread(s)...`);
        const r = derive(await runTrial(contender, workload, env, mode.trialTimeoutMs), workload);
        if (!r.ok) {
          failed++;
          log(`  FAILED: ${r.error}${r.output ? `\n${r.output.replace(/^/gm, '    ')}` : ''}`);
        }
        runs.push({ threads, oversubscribed: threads > m.availableParallelism, ok: r.ok, sPerEpoch: r.sPerFullEpoch ?? null, gflops: r.gflops ?? null, weightsHash: r.weightsHash ?? null, epochSeconds: r.epochSeconds ?? null, error: r.error });
      }
      const one = runs.find((x) => x.threads === 1 && x.ok);
      const two = runs.find((x) => x.threads === 2 && x.ok);
      const hashes = runs.filter((x) => x.ok).map((x) => x.weightsHash);
      // The scaling target is judged on paired epochs in one process (see trial.mjs, paired).
      const rounds = THREADS.pairedRounds[modeName];
      log(`- threads: ${base.label}, 1 vs 2 threads paired in one process (${rounds} rounds)...`);
      const pairedWorkload = { ...workloadFor(base, mode, modeName, { measure: false }), paired: { variants: [{ threads: 1 }, { threads: 2 }], rounds, concurrent: true } };
      const pairedResult = await runTrial(base, pairedWorkload, env, mode.trialTimeoutMs);
      if (!pairedResult.ok) {
        failed++;
        log(`  FAILED: ${pairedResult.error}${pairedResult.output ? `\n${pairedResult.output.replace(/^/gm, '    ')}` : ''}`);
      } else {
        log(`  2 threads ${fmt(pairedResult.medianRatio)}× 1 thread (median of ${rounds} pairs; pairs ${pairedResult.ratios.map((r) => fmt(r)).join(', ')})`);
        const c = pairedResult.ceiling;
        if (c) log(`  the machine's ceiling, two 1-thread epochs at once: ${fmt(c.medianRatio)}× (rounds ${c.ratios.map((r) => fmt(r)).join(', ')}); ratio / ceiling ${fmt(c.medianShare, 2)}`);
      }
      threadsSection.push({
        id,
        label: base.label,
        runs,
        speedup2vs1: one && two ? one.sPerEpoch / two.sPerEpoch : null,
        paired: pairedResult.ok ? { rounds, seconds: pairedResult.seconds, ratios: pairedResult.ratios, medianRatio: pairedResult.medianRatio, ceiling: pairedResult.ceiling ?? null } : null,
        identical: hashes.length > 1 ? hashes.every((h) => h === hashes[0]) : null,
      });
    }
    lineTransfer.afterNs = await measureLineTransfer();
    log(`- a cache line passed between two threads, after the thread trials: ${showNs(lineTransfer.afterNs)}`);
  }

  // Kernel paths section
  let pathsSection = null;
  const kernelIds = KERNEL_PATHS.contenders[modeName].filter((x) => selected.some((c) => c.id === x));
  if (args.extras && !env.addon.missing && kernelIds.length) {
    const paths = KERNEL_PATHS.paths.slice(0, KERNEL_PATHS.paths.indexOf(env.addon.bestIsa) + 1);
    const rounds = KERNEL_PATHS.rounds[modeName];
    pathsSection = { best: env.addon.bestIsa, rounds, epochs: KERNEL_PATHS.epochs[modeName], contenders: [] };
    for (const id of kernelIds) {
      const base = CONTENDERS.find((c) => c.id === id);
      const trials = new Map(paths.map((path) => [path, []]));
      for (let round = 0; round < rounds; round++) {
        for (const path of round % 2 ? [...paths].reverse() : paths) {
          const contender = { ...base, env: { NEURALNET_MLP_ISA: path } };
          const workload = { ...workloadFor(contender, mode, modeName, { epochs: KERNEL_PATHS.epochs[modeName] }), latency: null };
          log(`- kernel paths: ${base.label}, ${path} (round ${round + 1} of ${rounds})...`);
          const r = derive(await runTrial(contender, workload, env, mode.trialTimeoutMs), workload);
          if (r.ok && r.details?.isa !== path) Object.assign(r, { ok: false, error: `asked for the ${path} path, ran ${r.details?.isa}` });
          if (!r.ok) {
            failed++;
            log(`  FAILED: ${r.error}${r.output ? `\n${r.output.replace(/^/gm, '    ')}` : ''}`);
          } else {
            log(`  ${fmt(r.sPerFullEpoch)} s/epoch, predict ${kilo(mode.predict.images)} ${r.predict ? fmt(r.predict.msMedian) : 'n/a'} ms`);
          }
          trials.get(path).push(r);
        }
      }
      pathsSection.contenders.push({
        id,
        label: base.label,
        paths: paths.map((path) => {
          const done = trials.get(path).filter((r) => r.ok);
          const hashes = [...new Set(done.map((r) => r.weightsHash))];
          return {
            path,
            ok: done.length === rounds,
            sPerEpoch: done.length ? median(done.map((r) => r.sPerFullEpoch)) : null,
            gflops: done.length ? median(done.map((r) => r.gflops)) : null,
            predictMs: done.length && done.every((r) => r.predict) ? median(done.map((r) => r.predict.msMedian)) : null,
            weightsHash: hashes.length === 1 ? hashes[0] : null,
          };
        }),
      });
    }
  }

  // Scaling section
  let scalingSection = null;
  if (args.extras && !env.addon.missing && selected.some((c) => c.id === SCALING.contender)) {
    const base = CONTENDERS.find((c) => c.id === SCALING.contender);
    const cells = [];
    for (const nHidden of SCALING.nHidden) {
      for (const samples of SCALING.samples) {
        if (nHidden * samples > SCALING.maxWork[modeName]) continue;
        const epochs = scalingEpochs(modeName, samples, nHidden);
        const workload = workloadFor(base, mode, modeName, { samples, nHidden, epochs, measure: false });
        log(`- scaling: nHidden ${nHidden}, ${samples.toLocaleString('en-US')} images...`);
        const r = derive(await runTrial(base, workload, env, mode.trialTimeoutMs), workload);
        if (!r.ok) {
          failed++;
          log(`  FAILED: ${r.error}${r.output ? `\n${r.output.replace(/^/gm, '    ')}` : ''}`);
        }
        cells.push({ nHidden, samples, epochs, ok: r.ok, sPerEpoch: r.sPerFullEpoch ?? null, gflops: r.gflops ?? null, gflop: (flopPerSample(nHidden) * samples) / 1e9, error: r.error });
      }
    }
    scalingSection = { contender: base.label, threads: m.availableParallelism, epochs: SCALING.epochs[modeName], cells };
  }

  // Report
  const targetRows = targets(byId, dtypeSection, threadsSection, scalingSection, floorSection, floorPaired);
  const sections = [];
  sections.push(`Machine: ${machineLine(m)}.`);
  sections.push(
    `Workload: MNIST, ${mode.samples.toLocaleString('en-US')} training images per epoch, 784-${MODEL.nHidden}-10 sigmoid MLP, minibatches of ~${BATCH_SIZE} ` +
      `(brain.js: one sample at a time), median of the timed epochs after warm-up; "vs native f64" is speed relative to native float64 ` +
      `in this run (higher is faster); GFLOP/s counts ${FLOP_FORMULA} for every contender; predict = all 10,000 test images ` +
      `(median of repeats; quick mode: the first 1,000); 1-sample = predict one test image at a time; peak RSS = the process's peak while loading the training set and training.`,
  );
  sections.push(mainTable(rows, baseline, mode.predict.images));
  const versions = rows
    .filter((r) => r.result.ok)
    .map(({ contender, result: r }) => `${contender.label}: ${r.version}${detailText(r.details)}`);
  sections.push(`Versions: ${versions.join('; ')}.`);
  const withInputs = rows.filter((r) => r.result.ok && r.result.predictInputs && r.result.predict);
  if (withInputs.length) {
    const kinds = [...new Set(withInputs.flatMap((r) => Object.keys(r.result.predictInputs)))];
    sections.push(
      `Prediction from float input: the same ${kilo(mode.predict.images)} test images as floats (pixels / 255), as a server parsing JSON ` +
        `would pass them, beside the Uint8Array pixels (median of repeats; float input is checked for NaN and infinity on every call, ` +
        `and is 4 or 8 times the bytes).\n\n` +
        mdTable(
          ['contender', 'Uint8Array (ms)', ...kinds.map((k) => `${k} (ms)`)],
          withInputs.map(({ contender, result: r }) => [
            contender.label,
            fmt(r.predict.msMedian),
            ...kinds.map((k) => (r.predictInputs[k] ? fmt(r.predictInputs[k].msMedian) : 'n/a')),
          ]),
          ['l', 'r', ...kinds.map(() => 'r')],
        ),
    );
  }
  if (floorSection?.rates) {
    const floorRows = ['float64', 'float32'].map((dtype) => {
      const rate = floorSection.rates[dtype];
      const r = byId[dtype === 'float64' ? 'native-f64' : 'native-f32'];
      return [
        dtype,
        `${fmt(rate.gflopsMedian)} / ${fmt(rate.gflopsBest)}`,
        fmt(floorSection.epochGflop / rate.gflopsMedian),
        r?.ok ? fmt(r.sPerFullEpoch) : 'n/a',
        r?.ok ? fmt(r.gflops) : 'n/a',
        r?.ok ? times(r.gflops / rate.gflopsMedian) : 'n/a',
      ];
    });
    sections.push(
      `### Compute floor\n\nOpenBLAS's rate on a large matrix product, measured in this run: C = A·B for random ` +
        `${floorSection.n.toLocaleString('en-US')} × ${floorSection.n.toLocaleString('en-US')} matrices (numpy's matmul, every core), ` +
        `median and best of ${floorSection.reps} after a warm-up; ${floorSection.version}${detailText(floorSection.details)}. ` +
        `The floor is the epoch's ${fmt(floorSection.epochGflop)} GFLOP at that rate: what a large-GEMM library would need for the epoch's dense work ` +
        `on this machine. The native contenders' GFLOP/s count the same dense FLOP, though they skip the zero pixels' share ` +
        `of the work.\n\n` +
        mdTable(
          ['dtype', 'OpenBLAS GFLOP/s (median / best)', 'floor s/epoch', 'native s/epoch', 'native GFLOP/s', 'native / OpenBLAS rate'],
          floorRows,
          ['l', 'r', 'r', 'r', 'r', 'r'],
        ) +
        (floorPaired
          ? `\n\nThe targets are judged on ${floorPaired.rounds} paired round(s): each measures OpenBLAS's rate (${floorPaired.reps} ` +
            `product(s) per dtype after a warm-up, median) and the native epochs (${floorPaired.epochs} timed after a warm-up, a fresh ` +
            `process per dtype) back to back, which goes first alternating, so that a slow spell of the shared host falls on both ` +
            `sides of a round's ratio (the table above measures them minutes apart).\n\n` +
            mdTable(
              ['dtype', 'OpenBLAS GFLOP/s per round', 'native GFLOP/s per round', 'native / OpenBLAS rate per round', 'median ratio'],
              Object.entries(floorPaired.dtypes).map(([dtype, d]) => [
                dtype,
                d.openblas.map((x) => fmt(x)).join(', '),
                d.native.map((x) => fmt(x)).join(', '),
                d.ratios.map((x) => fmt(x)).join(', '),
                times(d.medianRatio),
              ]),
              ['l', 'l', 'l', 'l', 'r'],
            )
          : ''),
    );
  }
  const skipped = rows.filter((r) => !r.result.ok);
  if (skipped.length) {
    sections.push(`Not measured: ${skipped.map(({ contender, result }) => `${contender.label}: ${result.skip ?? 'failed, see the log'}`).join('; ')}.`);
  }
  sections.push(
    '### Targets (ratios within this run)\n\n' +
      (args.quick ? '_Quick mode: 6,000 images and one or two epochs; indicative only._\n\n' : '') +
      mdTable(['target', 'this run', 'met'], targetRows.map((t) => [t.target, t.value, t.met])),
  );
  if (dtypeSection) {
    sections.push(
      `### float32 vs float64\n\nPaired in one process: ${dtypeSection.rounds} rounds, each timing one native epoch in float64 and one in float32 ` +
        `(${dtypeSection.threads ?? 'default'} threads) back to back (the second epoch of a fresh fit; which goes first alternates). ` +
        `Shown, not a target: the issue's float32 target is its epoch time (0.035 s: the compute-floor row of the targets), ` +
        `and float64's is met with room, so a ratio of 2 would ask float32 for more than the issue does. The ratio shows how much ` +
        `of float32's halved bytes the epoch gains.\n\n` +
        mdTable(
          ['float64 s/epoch (median)', 'float32 s/epoch (median)', 'pair ratios', 'median ratio'],
          [[fmt(median(dtypeSection.seconds[0])), fmt(median(dtypeSection.seconds[1])), dtypeSection.ratios.map((r) => fmt(r)).join(', '), times(dtypeSection.medianRatio)]],
          ['r', 'r', 'l', 'r'],
        ),
    );
  }
  if (threadsSection) {
    const body = threadsSection.flatMap((s) =>
      s.runs.map((x) => [
        s.label,
        `${x.threads}${x.oversubscribed ? ` (more than the cores: ${m.availableParallelism} run)` : ''}`,
        x.ok ? fmt(x.sPerEpoch) : 'failed',
        x.ok ? fmt(x.gflops) : '',
        x.ok && s.runs[0].ok ? times(s.runs[0].sPerEpoch / x.sPerEpoch) : '',
        x.weightsHash ? x.weightsHash.slice(0, 12) : '',
      ]),
    );
    const pairedBody = threadsSection
      .filter((s) => s.paired)
      .map((s) => [
        s.label,
        fmt(median(s.paired.seconds[0])),
        fmt(median(s.paired.seconds[1])),
        s.paired.ratios.map((r) => fmt(r)).join(', '),
        times(s.paired.medianRatio),
        s.paired.ceiling ? fmt(median(s.paired.ceiling.seconds.map(([x, y]) => (x + y) / 2))) : '',
        s.paired.ceiling ? s.paired.ceiling.ratios.map((r) => fmt(r)).join(', ') : '',
        s.paired.ceiling ? times(s.paired.ceiling.medianRatio) : 'n/a',
        s.paired.ceiling ? fmt(s.paired.ceiling.medianShare, 2) : 'n/a',
      ]);
    sections.push(
      `### Threads\n\nSame workload, ${THREADS.epochs[modeName]} timed epoch(s) after one warm-up epoch, one fresh process per row; ` +
        `the hash is SHA-256 of the final weights (equal hashes = bit-identical).\n\n` +
        mdTable(['contender', 'threads', 's/epoch', 'GFLOP/s', 'vs 1 thread', 'weights hash'], body, ['l', 'l', 'r', 'r', 'r', 'l']) +
        (pairedBody.length
          ? `\n\nPaired in one process: ${THREADS.pairedRounds[modeName]} rounds, each timing one epoch on 1 thread and one on 2 back to back ` +
            `(the second epoch of a fresh fit; which goes first rotates), so a slow spell of the machine hits both halves of a pair. ` +
            `The target is judged on the median of the pair ratios. Each round also times the 1-thread epoch twice at once, in two ` +
            `threads of the process started together: the machine's ceiling for two threads is 2 × (1 thread alone) / (the mean of ` +
            `the two at once), what perfectly independent halves of an epoch would gain. It is 2 when the second core adds a whole ` +
            `core's throughput, less when running both slows each (a shared host's clock, caches or memory). ` +
            `"Ratio / ceiling" divides each round's 2-thread ratio by that round's ceiling: near 1 means the code gets what the ` +
            `machine gave two threads at that moment.` +
            (lineTransfer && lineTransfer.beforeNs !== null && lineTransfer.afterNs !== null
              ? ` The two threads of an epoch also exchange data every minibatch (each sums the gradient over one half of the ` +
                `minibatch, whose forward pass it ran but for a few samples the other thread runs when it was ahead in the last ` +
                `minibatch, then updates half of the weights from both halves' sums, and the next forward pass reads all of ` +
                `them), which independent epochs do not: a cache line passed between two threads of the ` +
                `process took ${fmt(lineTransfer.beforeNs)} ns one way before these trials and ${fmt(lineTransfer.afterNs)} ns ` +
                `after them (median of 3 runs of 200,000 round trips, JavaScript atomics' cost included).`
              : '') +
            `\n\n` +
            mdTable(
              ['contender', '1 thread s/epoch (median)', '2 threads s/epoch (median)', 'pair ratios', 'median ratio', 'two 1-thread epochs at once, s (median)', 'ceiling per round', "machine's ceiling (median)", 'ratio / ceiling (median of rounds)'],
              pairedBody,
              ['l', 'r', 'r', 'l', 'r', 'r', 'l', 'r', 'r'],
            )
          : ''),
    );
  }
  if (pathsSection) {
    const body = pathsSection.contenders.flatMap((c) => {
      const best = c.paths.find((x) => x.path === pathsSection.best);
      return c.paths.map((x) => [
        c.label,
        x.path + (x.path === pathsSection.best ? ' (best here)' : ''),
        x.ok ? fmt(x.sPerEpoch) : 'failed',
        x.ok ? fmt(x.gflops) : '',
        x.ok && x.predictMs !== null ? fmt(x.predictMs) : '',
        x.ok && best?.ok ? times(x.sPerEpoch / best.sPerEpoch) : '',
        x.ok && best?.ok && x.predictMs && best.predictMs ? times(x.predictMs / best.predictMs) : '',
        x.weightsHash ? x.weightsHash.slice(0, 12) : '',
      ]);
    });
    sections.push(
      `### Kernel paths\n\nThe native contenders with each instruction-set path the addon can use on this CPU ` +
        `(best here: ${pathsSection.best}; \`NEURALNET_MLP_ISA\` selects a lower one): ${pathsSection.epochs} timed epoch(s) after a warm-up ` +
        `and the predict measurement, one fresh process per trial, ${pathsSection.rounds} round(s) with the paths alternating; medians. ` +
        `"Best is ...×" is how much faster the best path is than this one. The hash is SHA-256 of the final weights: ` +
        `the AVX2 and AVX-512 paths share their kernels and give the same bits; the generic path uses the C library's exp, so its last bits differ.\n\n` +
        mdTable(
          ['contender', 'path', 's/epoch', 'GFLOP/s', `predict ${kilo(mode.predict.images)} (ms)`, 'best is (epoch)', 'best is (predict)', 'weights hash'],
          body,
          ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'l'],
        ),
    );
  }
  if (scalingSection) {
    const hidden = [...new Set(scalingSection.cells.map((c) => c.nHidden))];
    const sizes = [...new Set(scalingSection.cells.map((c) => c.samples))].sort((a, b) => a - b);
    const body = hidden.map((h) => [
      String(h),
      ...sizes.map((n) => {
        const c = scalingSection.cells.find((x) => x.nHidden === h && x.samples === n);
        if (!c) return 'skipped';
        return c.ok ? `${fmt(c.sPerEpoch)} s, ${fmt(c.gflops)} GFLOP/s` : 'failed';
      }),
    ]);
    sections.push(
      `### Scaling\n\n${scalingSection.contender}, ${scalingSection.threads} threads: seconds per epoch (${scalingEpochText(scalingSection)} after a warm-up epoch) and GFLOP/s; ` +
        `minibatches of ~${BATCH_SIZE} images. Constant GFLOP/s along a row and down a column means time grows linearly with the work.` +
        (args.quick ? ' Quick mode skips the largest cells.' : '') +
        '\n\n' +
        mdTable(['nHidden', ...sizes.map((n) => `${kilo(n)} images`)], body, ['r', ...sizes.map(() => 'r')]),
    );
  }
  const report = sections.join('\n\n');
  console.log(`\n${report}\n`);

  // Results files
  const seconds = (Date.now() - started) / 1000;
  const now = new Date();
  const date = now.toISOString().slice(0, 10);
  // Every run keeps its own file (several runs on one day are the rule when comparing).
  const stamp = now.toISOString().slice(0, 19).replace(/[-:]/g, '');
  const doc = {
    schema: 1,
    date: now.toISOString(),
    mode: modeName,
    command: `node bench/run.mjs ${process.argv.slice(2).join(' ')}`.trim(),
    durationSeconds: Math.round(seconds * 10) / 10,
    machine: m,
    workload: { dataset: 'MNIST', samples: mode.samples, model: MODEL, minibatchSize: BATCH_SIZE, flopFormula: FLOP_FORMULA, predict: mode.predict, latency: mode.latency },
    environment: {
      benchDependencies: env.benchModules,
      seed: env.seed.missing ? { missing: env.seed.missing } : { python: env.seed.python },
      openblasPinsUnsetForNumpy: Object.fromEntries(OPENBLAS_PINS.filter((n) => n in process.env).map((n) => [n, process.env[n]])),
    },
    contenders: rows.map(({ contender, result }) => ({ id: contender.id, label: contender.label, ...result })),
    computeFloor: floorSection,
    computeFloorPaired: floorPaired,
    targets: targetRows,
    float32VsFloat64: dtypeSection,
    threads: threadsSection,
    lineTransferNs: lineTransfer,
    kernelPaths: pathsSection,
    scaling: scalingSection,
  };
  mkdirSync(RESULTS_DIR, { recursive: true });
  const jsonPath = join(RESULTS_DIR, `${stamp}Z${args.quick ? '-quick' : ''}.json`);
  writeAtomically(jsonPath, `${JSON.stringify(doc, null, 2)}\n`);
  log(`wrote ${relative(process.cwd(), jsonPath)}`);
  if (!args.quick && !args.only) {
    const mdPath = join(RESULTS_DIR, 'latest.md');
    writeAtomically(mdPath, `## Benchmark (${date}, \`npm run bench\`)\n\n${report}\n`);
    log(`wrote ${relative(process.cwd(), mdPath)}`);
  }
  log(`done in ${fmt(seconds)} s${failed ? `; ${failed} trial(s) FAILED` : ''}`);
  process.exitCode = failed ? 1 : 0;
}

function detailText(d) {
  if (!d) return '';
  const parts = [];
  if (d.backend) parts.push(`backend ${d.backend}`);
  if (d.isa) parts.push(`ISA ${d.isa}`);
  if (d.simd !== undefined) parts.push(`SIMD ${d.simd ? 'on' : 'off'}`);
  if (d.openblas?.core) parts.push(`OpenBLAS ${d.openblas.config.split(' ')[1]} kernel ${d.openblas.core}, ${d.openblas.threads} threads`);
  else if (d.openblas) parts.push('no OpenBLAS found');
  return parts.length ? ` (${parts.join(', ')})` : '';
}

function writeAtomically(path, text) {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
