/**
 * Backend selection: `'native'` (the C++ addon), `'js'` (pure TypeScript) or `'auto'` (native
 * when it loads, otherwise TypeScript with one clear warning).
 */
import { stateError } from '../errors.js';
import { jsBackend } from './js.js';
import { addonUnavailableMessage, loadAddon, nativeBackendFrom, type IsaName } from './native.js';
import type { Backend, BackendName } from './types.js';

/** What the caller may ask for. */
export type BackendChoice = BackendName | 'auto';

/** Environment variable: `js` makes `'auto'` pick the TypeScript backend. */
export const FORCE_BACKEND_ENV = 'NEURALNET_MLP_BACKEND';

let nativeBackend: Backend | undefined;
let warned = false;

/** True when the C++ addon is built and loads on this machine. */
export function nativeAvailable(): boolean {
  return loadAddon().addon !== undefined;
}

/** What {@link nativeAddonInfo} reports. */
export interface NativeAddonInfo {
  /** True when the addon loaded. */
  available: boolean;
  /** The file it was loaded from. */
  path?: string;
  /** The instruction set its kernels use (the best one unless `NEURALNET_MLP_ISA` asks for a lower one). */
  isa?: IsaName;
  /** The best instruction set the addon can use on this CPU. */
  bestIsa?: IsaName;
  /** Why each other candidate location was not used. */
  failures: string[];
}

/** Where the addon was loaded from, which kernels it runs, and why other candidates were not used. */
export function nativeAddonInfo(): NativeAddonInfo {
  const { addon, path, failures } = loadAddon();
  return { available: addon !== undefined, path, isa: addon?.isa, bestIsa: addon?.bestIsa, failures };
}

/** Resolves a backend choice to an implementation; throws when `'native'` is asked for and unavailable. */
export function resolveBackend(choice: BackendChoice): Backend {
  if (choice === 'js') return jsBackend;
  if (choice === 'auto' && process.env[FORCE_BACKEND_ENV] === 'js') return jsBackend;
  const { addon, failures } = loadAddon();
  if (addon) {
    nativeBackend ??= nativeBackendFrom(addon);
    return nativeBackend;
  }
  if (choice === 'native') throw stateError('ERR_NATIVE_UNAVAILABLE', addonUnavailableMessage(failures));
  if (!warned) {
    warned = true;
    process.emitWarning(`${addonUnavailableMessage(failures)}\nUsing the pure-TypeScript backend (slower).`, {
      code: 'NEURALNET_MLP_NO_NATIVE',
    });
  }
  return jsBackend;
}
