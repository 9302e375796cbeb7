#!/usr/bin/env node
// Builds the C++ addon with node-gyp at install time, against this machine's Node headers
// (no download): npm's `nodedir` setting when there is one, else the headers installed next to
// the running Node (<prefix>/include/node, as official tarballs and distribution packages put
// them). Only if neither exists does node-gyp fetch the headers itself. If the build fails (no compiler, unusual platform) the install still succeeds:
// the package then runs on its pure-TypeScript backend and says so once at run time.
// `--strict` (npm run build:addon) makes a failed build an error instead.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const strict = process.argv.includes('--strict');
const require = createRequire(import.meta.url);

if (process.env.NEURALNET_MLP_SKIP_BUILD === '1') {
  console.warn('neuralnet-mlp: NEURALNET_MLP_SKIP_BUILD=1, not building the native addon (the TypeScript backend will be used).');
  process.exit(0);
}

function nodeGypCommand() {
  // npm tells its scripts where its own bundled node-gyp is.
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return [process.execPath, fromNpm];
  try {
    return [process.execPath, require.resolve('node-gyp/bin/node-gyp.js')];
  } catch {
    return ['node-gyp'];
  }
}

/** `--nodedir=<prefix>` for the running Node's own headers, unless npm already names a nodedir. */
function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = resolve(dirname(process.execPath), '..');
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) && existsSync(join(prefix, 'include', 'node', 'common.gypi'))
    ? [`--nodedir=${prefix}`]
    : [];
}

const [cmd, ...pre] = nodeGypCommand();
const result = spawnSync(cmd, [...pre, 'rebuild', ...nodedirArgs()], { stdio: 'inherit', shell: process.platform === 'win32' });
if (result.status === 0) process.exit(0);

const reason = result.error ? result.error.message : `node-gyp exited with status ${result.status}`;
const message = [
  `neuralnet-mlp: the native addon could not be built (${reason}).`,
  'Everything still works on the pure-TypeScript backend, only slower.',
  'To build the addon: install a C++17 compiler, make and python3, then run `npm rebuild neuralnet-mlp`',
  '(or `npm run build:addon` in a clone of the package).',
].join('\n');
if (strict) {
  console.error(message);
  process.exit(1);
}
console.warn(message);
process.exit(0);
