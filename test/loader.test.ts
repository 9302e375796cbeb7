// The addon loader, observed from fresh processes: what happens when the addon cannot be loaded,
// and that the build script never fails an install.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist', 'index.js');

function runNode(code: string, env: Record<string, string>): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

describe('addon loader (compiled package)', () => {
  it('runs against the compiled package (npm install / npm run build makes dist/)', () => {
    expect(existsSync(dist), `${dist} is missing: run npm run build`).toBe(true);
  });

  const missing = { NEURALNET_MLP_ADDON: '/nonexistent/neuralnet_mlp.node' };

  it("'auto' falls back to the TypeScript backend with one warning that says how to build", () => {
    const r = runNode(
      `import { NeuralNetMLP } from ${JSON.stringify(dist)};
       const a = new NeuralNetMLP({ nOutput: 2, nFeatures: 3, randomState: 1 });
       const b = new NeuralNetMLP({ nOutput: 2, nFeatures: 3, randomState: 1 });
       console.log(a.backend, b.backend);`,
      missing,
    );
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('js js');
    const warnings = r.stderr.match(/native addon of neuralnet-mlp is not available/g) ?? [];
    expect(warnings).toHaveLength(1);
    expect(r.stderr).toContain('/nonexistent/neuralnet_mlp.node: not found');
    expect(r.stderr).toContain('npm rebuild neuralnet-mlp');
  });

  it("'native' throws ERR_NATIVE_UNAVAILABLE naming what was tried", () => {
    const r = runNode(
      `import { NeuralNetMLP } from ${JSON.stringify(dist)};
       try { new NeuralNetMLP({ nOutput: 2, nFeatures: 3, backend: 'native' }); console.log('no error'); }
       catch (e) { console.log(e.code, e.message.includes('/nonexistent/neuralnet_mlp.node')); }`,
      missing,
    );
    expect(r.stdout.trim()).toBe('ERR_NATIVE_UNAVAILABLE true');
  });

  it('NEURALNET_MLP_BACKEND=js makes auto pick TypeScript without a warning', () => {
    const r = runNode(
      `import { NeuralNetMLP } from ${JSON.stringify(dist)};
       console.log(new NeuralNetMLP({ nOutput: 2, nFeatures: 3 }).backend);`,
      { NEURALNET_MLP_BACKEND: 'js' },
    );
    expect(r.stdout.trim()).toBe('js');
    expect(r.stderr).not.toContain('not available');
  });

  it('a file that is not an addon is reported, not fatal', () => {
    const r = runNode(
      `import { nativeAddonInfo, NeuralNetMLP } from ${JSON.stringify(dist)};
       console.log(new NeuralNetMLP({ nOutput: 2, nFeatures: 3 }).backend, JSON.stringify(nativeAddonInfo().failures));`,
      { NEURALNET_MLP_ADDON: join(root, 'package.json') },
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^js /);
    expect(r.stdout).toContain('package.json');
  });
});

describe('the addon path from the environment', () => {
  it('is only ever loaded as a native addon, never run as JavaScript', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'neuralnet-mlp-addon-'));
    try {
      const script = join(dir, 'not-an-addon.js');
      await writeFile(script, "console.log('ran as JavaScript');");
      const r = runNode(
        `import { nativeAddonInfo } from ${JSON.stringify(dist)};
         console.log(JSON.stringify(nativeAddonInfo().failures));`,
        { NEURALNET_MLP_ADDON: script },
      );
      expect(r.status).toBe(0);
      expect(r.stdout).not.toContain('ran as JavaScript');
      expect(r.stdout).toContain('not-an-addon.js');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('install script', () => {
  it('a failed build is a warning and exit 0 (the install goes on); --strict makes it an error', () => {
    // A node-gyp that does not exist stands for a machine without a build toolchain.
    const env = { ...process.env, npm_config_node_gyp: '', PATH: '/nonexistent' };
    const script = join(root, 'scripts', 'build-addon.mjs');
    const soft = spawnSync(process.execPath, [script], { env, encoding: 'utf8', cwd: join(root, 'test') });
    expect(soft.status).toBe(0);
    expect(soft.stderr).toContain('could not be built');
    expect(soft.stderr).toContain('pure-TypeScript backend');
    const strict = spawnSync(process.execPath, [script, '--strict'], { env, encoding: 'utf8', cwd: join(root, 'test') });
    expect(strict.status).toBe(1);
  });

  it("binding.gyp's branch-alignment probe prints a flag the compiler takes, or nothing, and never fails the build", () => {
    const script = join(root, 'scripts', 'branch-align-flag.mjs');
    const probe = (env: Record<string, string>) => spawnSync(process.execPath, [script], { env: { ...process.env, ...env }, encoding: 'utf8' });
    const flags = ['', '-Wa,-mbranches-within-32B-boundaries', '-mbranches-within-32B-boundaries'];
    const here = probe({});
    expect(here.status).toBe(0);
    expect(flags).toContain(here.stdout.trim());
    // Where it prints a flag, the compiler it probed builds with it.
    if (here.stdout.trim() !== '') {
      const compiler = process.env.CXX || 'g++';
      const r = spawnSync(compiler, ['-x', 'c++', '-c', here.stdout.trim(), '-o', '/dev/null', '-'], { input: 'int f() { return 1; }\n' });
      expect(r.status).toBe(0);
    }
    const broken: Record<string, string>[] = [{ CXX: '/nonexistent/c++' }, { TMPDIR: '/nonexistent', TMP: '/nonexistent', TEMP: '/nonexistent' }];
    for (const env of broken) {
      const r = probe(env);
      expect(r.status, JSON.stringify(env)).toBe(0);
      expect(r.stdout, JSON.stringify(env)).toBe('');
    }
  });

  it('NEURALNET_MLP_SKIP_BUILD=1 skips the build', () => {
    const out = execFileSync(process.execPath, [join(root, 'scripts', 'build-addon.mjs')], {
      env: { ...process.env, NEURALNET_MLP_SKIP_BUILD: '1' },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(out).toBe('');
  });
});
