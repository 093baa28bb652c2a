/** The frozen-trunk cache and length bucketing change no number: logits, losses, gradients, trained weights. */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { AdamW } from '../../model/adamw.ts';
import { GPT2Classifier, disposeFeatures, type ClassifierOptions } from '../../model/classifier.ts';
import type { EncodedExample } from '../../model/examples.ts';
import { CachedFeatures, DirectFeatures, type FeatureProvider } from '../../model/features.ts';
import { lossAndGrads, trainStep } from '../../model/step.ts';
import { encode } from '../../model/tokenizer.ts';
import { TrunkCache } from '../../model/trunk-cache.ts';
import { evaluate } from '../../model/train.ts';
import { loadGPT2 } from '../../model/weights.ts';
import { useTestBackend } from '../helpers/backend.ts';
import { assertClose, loadExpected, TINY_MODEL } from '../helpers/fixture.ts';

let examples: EncodedExample[];
let tmp: string;

before(async () => {
  await useTestBackend();
  const e = loadExpected();
  // The fixture batch plus short and long texts, so that batches mix very different lengths.
  const more = ['ok', 'Call now!!!', 'see you at 5 then, bring the thing we talked about on monday night at the station '.repeat(2)];
  examples = [...e.texts, ...more].map((t, i) => ({ ids: encode(t, 60), label: i % 2 }));
  tmp = mkdtempSync(join(tmpdir(), 'gptspam-cache-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

async function clf(options: Partial<ClassifierOptions> = {}) {
  return new GPT2Classifier(await loadGPT2(TINY_MODEL), { seed: 5, ...options });
}

function logitsOf(c: GPT2Classifier, p: FeatureProvider, ex: EncodedExample[]): Float32Array {
  const f = p.features(ex);
  const out = tf.tidy(() => c.logitsFromFeatures(f).dataSync() as Float32Array);
  disposeFeatures(f);
  return out;
}

describe('trunk cache', () => {
  for (const options of [
    { pooling: 'last_real' },
    { pooling: 'first' },
    { pooling: 'last_real', attention: 'bidirectional' },
    { pooling: 'last_real', layers: 'last_layer' },
  ] as Partial<ClassifierOptions>[]) {
    test(`cached features give the logits of the full pass (${JSON.stringify(options)})`, async () => {
      const c = await clf(options);
      const direct = new DirectFeatures(c, 64);
      const cached = new CachedFeatures(c, new TrunkCache());
      assertClose(logitsOf(c, cached, examples), logitsOf(c, direct, examples), 'logits', 1e-5, 1e-5);
      c.dispose();
    });
  }

  test('last pooling (reads a padding position): cached at the fixed width equals the padded pass', async () => {
    const c = await clf({ pooling: 'last' });
    assertClose(logitsOf(c, new CachedFeatures(c, new TrunkCache(), 64), examples), logitsOf(c, new DirectFeatures(c, 64), examples), 'logits', 1e-5, 1e-5);
    c.dispose();
  });

  test('same loss and gradients, and the same weights after 5 AdamW steps', async () => {
    const a = await clf();
    const b = await clf();
    const direct = new DirectFeatures(a, 64);
    const cached = new CachedFeatures(b, new TrunkCache());
    const labels = examples.map((e) => e.label);
    const fa = direct.features(examples);
    const fb = cached.features(examples);
    const ga = lossAndGrads(a, fa, labels);
    const gb = lossAndGrads(b, fb, labels);
    assertClose([gb.loss], [ga.loss], 'loss', 1e-6, 1e-6);
    for (const [name, g] of ga.grads) {
      const ref = g.dataSync();
      const max = Math.max(...Array.from(ref, Math.abs));
      assertClose(gb.grads.get(name)!.dataSync(), ref, `grad ${name}`, 1e-4 * max, 0);
    }
    const oa = new AdamW(a.trainableVariables(), { lr: 1e-3 });
    const ob = new AdamW(b.trainableVariables(), { lr: 1e-3 });
    for (let s = 0; s < 5; s++) {
      trainStep(a, oa, fa, labels);
      trainStep(b, ob, fb, labels);
    }
    const vb = b.trainableVariables();
    let skipped = 0;
    for (const [name, v] of a.trainableVariables()) {
      // Elements whose gradient is rounding noise (e.g. the key bias, exactly zero in exact arithmetic) get
      // noise-signed AdamW steps in any implementation.
      const g0 = ga.grads.get(name)!.dataSync();
      const gMax = Math.max(...Array.from(g0, Math.abs));
      const want = v.dataSync();
      const got = vb.get(name)!.dataSync();
      for (let i = 0; i < want.length; i++) {
        // A tolerance of every step's full size could not fail: such elements are skipped, and counted below.
        if (Math.abs(g0[i]!) < 1e-4 * gMax) {
          skipped++;
          continue;
        }
        assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-5 + 1e-4 * Math.abs(want[i]!), `after 5 steps ${name}[${i}]: ${got[i]} vs ${want[i]}`);
      }
    }
    // Counted on this fixture and seed: a change here means the gradients themselves changed.
    assert.equal(skipped, 312, 'elements whose gradient is rounding noise');
    a.dispose();
    b.dispose();
  });

  test('the trunk runs once per message: a second pass is all cache hits', async () => {
    const c = await clf();
    const cache = new TrunkCache();
    const cached = new CachedFeatures(c, cache);
    assert.equal(cached.warm(examples), examples.length);
    assert.equal(cached.warm(examples), 0);
    disposeFeatures(cached.features(examples.slice(0, 3)));
    assert.equal(cache.stats.misses, 0);
    c.dispose();
  });

  test('keys include the base weights: a classifier on other weights never reads these entries', async () => {
    const a = await clf();
    const cache = new TrunkCache();
    new CachedFeatures(a, cache).warm(examples);
    const otherBase = await loadGPT2(TINY_MODEL);
    otherBase.hash = 'another-model';
    const b = new GPT2Classifier(otherBase);
    assert.equal(new CachedFeatures(b, cache).warm(examples), examples.length);
    a.dispose();
    b.dispose();
  });

  test('spills to disk as float16 beyond the memory budget and reads back close values', async () => {
    const c = await clf();
    const spillDir = join(tmp, 'spill');
    const cache = new TrunkCache({ memoryBytes: 4000, spillDir });
    const cached = new CachedFeatures(c, cache);
    const want = logitsOf(c, new DirectFeatures(c, 64), examples);
    cached.warm(examples);
    assert.ok(readdirSync(spillDir).length > 0, 'entries were spilled');
    assertClose(logitsOf(c, cached, examples), want, 'logits from float16 spill', 5e-3, 5e-3);
    assert.ok(cache.stats.diskHits > 0);
    c.dispose();
  });
});

describe('length bucketing', () => {
  test('last_real: padding each batch to its own longest changes no logit vs padding to 64, or vs each text alone', async () => {
    const c = await clf();
    const padded = logitsOf(c, new DirectFeatures(c, 64), examples);
    const bucketed = logitsOf(c, new DirectFeatures(c), examples);
    assertClose(bucketed, padded, 'bucketed vs padded', 1e-5, 1e-5);
    const alone = examples.flatMap((e) => Array.from(logitsOf(c, new DirectFeatures(c), [e])));
    assertClose(alone, padded, 'alone vs padded', 1e-5, 1e-5);
    c.dispose();
  });

  test('evaluation over length-sorted batches gives the per-example results in input order', async () => {
    const c = await clf();
    const r = evaluate(c, examples, { batchSize: 3, features: new DirectFeatures(c) });
    const alone = examples.map((e) => evaluate(c, [e], { batchSize: 1, features: new DirectFeatures(c) }).probabilities[0]!);
    assertClose(r.probabilities.flat(), alone.flat(), 'probabilities', 1e-5, 1e-5);
    c.dispose();
  });
});
