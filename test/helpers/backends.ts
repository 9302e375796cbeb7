/**
 * The backends the conformance tests run on: always 'js'; 'native' when the C++ addon loads.
 *
 * When the addon is unavailable the native tests are skipped with a warning that says why
 * (the loader's list of failures), except when NEURALNET_MLP_REQUIRE_NATIVE=1 (CI), where a
 * missing addon is an error.
 */
import { nativeAddonInfo, nativeAvailable, type BackendName } from '../../lib/index.js';

/** Set by CI: a missing or broken addon fails the run instead of skipping native tests. */
export const REQUIRE_NATIVE = process.env.NEURALNET_MLP_REQUIRE_NATIVE === '1';

/** True when the native addon loads (and matches this version of the package). */
export const hasNative: boolean = nativeAvailable();

/** Why the addon is unavailable, one line per candidate location ('' when it loaded). */
export function nativeUnavailableReason(): string {
  const { failures } = nativeAddonInfo();
  return failures.length > 0 ? failures.map((f) => `  - ${f}`).join('\n') : '  - (no reason reported)';
}

if (!hasNative) {
  const message =
    'neuralnet-mlp tests: the native addon is not available, so the native backend is not tested:\n' +
    nativeUnavailableReason() +
    '\nBuild it with `npm run build:addon`.';
  if (REQUIRE_NATIVE) {
    throw new Error(`${message}\nNEURALNET_MLP_REQUIRE_NATIVE=1 requires the native backend.`);
  }
  console.warn(`${message}\nNative tests are SKIPPED (set NEURALNET_MLP_REQUIRE_NATIVE=1 to make this an error).`);
}

/** Backends for `describe.each(backends)`. */
export const backends: BackendName[] = hasNative ? ['js', 'native'] : ['js'];
