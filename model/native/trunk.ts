/**
 * The frozen-trunk pass on the native runtime: fills a trunk cache (model/features.ts CachedFeatures) with the
 * same entries, under the same keys, that tfjs would compute, several times faster. Training and evaluation then
 * read the cache as usual; whatever is still missing later is computed by tfjs as before.
 */
import { nativeRuntime } from '../backend.ts';
import type { GPT2Classifier } from '../classifier.ts';
import type { EncodedExample } from '../examples.ts';
import { CachedFeatures, type FeatureProvider } from '../features.ts';
import { NativeClassifier } from './classifier.ts';
import type { NativeRuntime } from './runtime.ts';
import { classifierWeights } from './weights.ts';

/**
 * Computes natively the cache entries `features` lacks for `examples`. Returns how many were computed, or
 * undefined when nothing was done natively (inference runs on tfjs, or `features` is not a trunk cache).
 * The session lives only for this pass: its weights are freed when it returns.
 */
export async function warmTrunk(
  features: FeatureProvider,
  clf: GPT2Classifier,
  examples: EncodedExample[],
  rt: NativeRuntime | undefined = nativeRuntime(),
): Promise<number | undefined> {
  if (!rt || !(features instanceof CachedFeatures)) return undefined;
  if (features.pending(examples) === 0) return 0;
  const output = clf.options.layers === 'last_layer' ? 'pooled' : 'trunk';
  // Always float32: cache entries must be the numbers tfjs would store under the same key, whatever scores.
  const native = await NativeClassifier.create(rt, await classifierWeights(clf, output), output, { int8Trunk: false });
  try {
    return await features.warmWith(native, examples);
  } finally {
    await native.dispose();
  }
}
