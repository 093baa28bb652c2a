/**
 * Integrated gradients on ONNX Runtime (model/native/gradient-graph.ts, its backward pass written out by hand):
 * the margins are the PyTorch fixture's, the input gradients are tfjs's automatic ones (every pooling, both
 * attention modes, padding, LoRA, a from-scratch checkpoint read from its files), and the explanations built on
 * them are the tfjs explanations. onnxruntime-node must be installed here: missing, these tests fail.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initInference, nativeRuntime } from '../../model/backend.ts';
import { saveCheckpoint } from '../../model/checkpoint.ts';
import { GPT2Classifier, readHead, type ClassifierOptions, type HeadInit } from '../../model/classifier.ts';
import { SCRATCH_SIZES } from '../../model/config.ts';
import { Explainer } from '../../model/explain.ts';
import { NativePathGradients } from '../../model/native/gradients.ts';
import type { NativeRuntime } from '../../model/native/runtime.ts';
import { checkpointWeights, classifierWeights } from '../../model/native/weights.ts';
import { TfjsPathGradients, type PathGradients } from '../../model/path-gradients.ts';
import { PAD_TOKEN_ID } from '../../model/tokenizer.ts';
import { initGPT2, loadGPT2 } from '../../model/weights.ts';
import { useTestBackend } from '../helpers/backend.ts';
import { assertClose, loadExpected, TINY_DIR, TINY_MODEL, type Expected } from '../helpers/fixture.ts';

let expected: Expected;
let head: HeadInit;
let rt: NativeRuntime;
let tmp: string;
const SPAM_MINUS_HAM = { positive: 1, negative: 0 };
const ALPHAS = [0, 0.5, 1];

before(async () => {
  await useTestBackend();
  assert.equal((await initInference('native', { log: () => {} })).name, 'native');
  rt = nativeRuntime()!;
  expected = loadExpected();
  head = await readHead(join(TINY_DIR, 'head.safetensors'));
  tmp = mkdtempSync(join(tmpdir(), 'gptspam-native-ig-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

async function fixtureClassifier(options: Partial<ClassifierOptions> = {}): Promise<GPT2Classifier> {
  return new GPT2Classifier(await loadGPT2(TINY_MODEL), options, head);
}

/** Both sources' margins and gradients at ALPHAS for one padded input; the native ones must be the tfjs ones. */
async function assertSameAlongPath(native: PathGradients, tfjs: PathGradients, input: number[], length: number, what: string) {
  const n = await native.alongPath(input, length, ALPHAS, SPAM_MINUS_HAM);
  const t = await tfjs.alongPath(input, length, ALPHAS, SPAM_MINUS_HAM);
  assertClose(n.tok, t.tok, `${what}: token embeddings`, 0, 0);
  assertClose(n.margins, t.margins, `${what}: margins`, 1e-5, 1e-5);
  // Gradients: float32 rounding of two different orders of summation, relative to the largest element.
  const scale = Math.max(...Array.from(t.grads, Math.abs));
  assert.ok(scale > 0, `${what}: the gradient is not zero`);
  assertClose(n.grads, t.grads, `${what}: gradients`, 1e-4 * scale, 0);
  return n;
}

describe('native margins and input gradients', () => {
  test('margins are the PyTorch fixture\'s spam − ham logits, at α = 1 (causal, last_real)', async () => {
    const clf = await fixtureClassifier();
    const native = await NativePathGradients.create(rt, await classifierWeights(clf, 'logits'));
    for (const [i, ids] of expected.token_ids.entries()) {
      const { margins } = await native.alongPath(ids, ids.length, [1], SPAM_MINUS_HAM);
      const [ham, spam] = expected.cls_logits_last_real[i]!;
      assertClose([margins[0]!], [spam! - ham!], `text ${i}`);
    }
    await native.dispose();
    clf.dispose();
  });

  for (const options of [
    { pooling: 'last_real', attention: 'causal' },
    { pooling: 'last_real', attention: 'bidirectional' },
    { pooling: 'first', attention: 'causal' },
  ] as const) {
    test(`equal tfjs's automatic gradients: ${options.pooling}, ${options.attention}`, async () => {
      const clf = await fixtureClassifier(options);
      const native = await NativePathGradients.create(rt, await classifierWeights(clf, 'logits'));
      const tfjs = new TfjsPathGradients(clf, 64);
      const ids = expected.token_ids[2]!;
      await assertSameAlongPath(native, tfjs, ids, ids.length, `${options.pooling}/${options.attention}`);
      await native.dispose();
      tfjs.dispose();
      clf.dispose();
    });
  }

  test('`last` pooling over padding, bidirectional: pad tokens are read and differentiated as tfjs does', async () => {
    const clf = await fixtureClassifier({ pooling: 'last', attention: 'bidirectional' });
    const native = await NativePathGradients.create(rt, await classifierWeights(clf, 'logits'));
    const tfjs = new TfjsPathGradients(clf, 64);
    const ids = expected.token_ids[3]!;
    const width = expected.input_ids[0]!.length;
    assert.ok(width > ids.length);
    const padded = [...ids, ...Array<number>(width - ids.length).fill(PAD_TOKEN_ID)];
    const n = await assertSameAlongPath(native, tfjs, padded, ids.length, 'last, padded');
    const e = clf.config.nEmbd;
    const padGrad = n.grads.subarray(2 * width * e + ids.length * e, 3 * width * e);
    assert.ok(padGrad.some((g) => g !== 0), 'the pad positions carry gradient');
    await native.dispose();
    tfjs.dispose();
    clf.dispose();
  });

  test('LoRA adapters (non-zero) are differentiated through, as tfjs does', async () => {
    const clf = await fixtureClassifier({ layers: 'lora', loraRank: 2 });
    for (const a of clf.gpt.lora.values()) a.b.assign(tf.randomNormal(a.b.shape, 0, 0.02, 'float32', 9));
    const native = await NativePathGradients.create(rt, await classifierWeights(clf, 'logits'));
    const tfjs = new TfjsPathGradients(clf, 64);
    const plain = await fixtureClassifier();
    const withoutAdapters = new TfjsPathGradients(plain, 64);
    const ids = expected.token_ids[0]!;
    const n = await assertSameAlongPath(native, tfjs, ids, ids.length, 'LoRA');
    const p = await withoutAdapters.alongPath(ids, ids.length, ALPHAS, SPAM_MINUS_HAM);
    assert.ok(Math.abs(n.margins[2]! - p.margins[2]!) > 1e-3, 'the adapters do change the margin');
    await native.dispose();
    tfjs.dispose();
    withoutAdapters.dispose();
    plain.dispose();
    clf.dispose();
  });

  test('a from-scratch model read from its checkpoint files, as the daemon\'s explanation process reads it', async () => {
    const clf = new GPT2Classifier(initGPT2(SCRATCH_SIZES.tiny, 3), { layers: 'all', attention: 'bidirectional', seed: 3 });
    const dir = join(tmp, 'scratch');
    await saveCheckpoint(dir, clf, { maxTokens: 32, labelNames: ['ham', 'spam'] });
    const native = await NativePathGradients.create(rt, await checkpointWeights(dir, 'logits'));
    const tfjs = new TfjsPathGradients(clf, 32);
    const ids = expected.token_ids[4]!;
    await assertSameAlongPath(native, tfjs, ids, ids.length, 'scratch checkpoint');
    await native.dispose();
    tfjs.dispose();
    clf.dispose();
  });
});

describe('native explanations', () => {
  test('are the tfjs explanations: same margins, same quadrature, token weights within 1e-4 of the largest', async () => {
    const clf = await fixtureClassifier();
    const native = new Explainer(await NativePathGradients.create(rt, await classifierWeights(clf, 'logits')), { maxTokens: 64 });
    const tfjs = Explainer.onTfjs(clf, { maxTokens: 64 });
    for (const [i, text] of expected.texts.entries()) {
      const n = await native.explain(text);
      const t = await tfjs.explain(text);
      assertClose([n.margin, n.baselineMargin], [t.margin, t.baselineMargin], `text ${i}: margins`, 1e-5, 1e-5);
      assert.deepEqual(n.quadrature, t.quadrature, `text ${i}: the same nodes were evaluated`);
      const scale = Math.max(...t.tokens.map((x) => Math.abs(x.weight)));
      assertClose(n.tokens.map((x) => x.weight), t.tokens.map((x) => x.weight), `text ${i}: token weights`, 1e-4 * scale, 0);
      assert.ok(n.converged && Math.abs(n.completenessGap) <= Math.max(0.05 * Math.abs(n.margin - n.baselineMargin), 1e-3), `text ${i}: complete`);
    }
    await native.dispose();
    await tfjs.dispose();
    clf.dispose();
  });
});
