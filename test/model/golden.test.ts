/**
 * Golden tests against the PyTorch float32 reference of the chapter-6 recipe (../shared/fixtures/gpt2-tiny):
 * loader, tokenizer, forward pass, the three poolings, bidirectional attention, loss, gradients of the trained
 * tensors, one AdamW step and a 20-step loss curve. Tolerances are those the fixture's README gives.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { AdamW } from '../../model/adamw.ts';
import { GPT2Classifier, crossEntropy, toTokenBatch, type ClassifierOptions, type HeadInit } from '../../model/classifier.ts';
import { geluNew } from '../../model/ops.ts';
import { SafetensorsFile } from '../../model/safetensors.ts';
import { lossAndGrads, trainStep } from '../../model/step.ts';
import { encode, padBatch } from '../../model/tokenizer.ts';
import { loadGPT2 } from '../../model/weights.ts';
import { assertClose, loadExpected, TINY_DIR, TINY_MODEL, type Expected } from '../helpers/fixture.ts';
import { useTestBackend } from '../helpers/backend.ts';

let expected: Expected;
let head: HeadInit;

async function readAll(file: string): Promise<Map<string, Float32Array>> {
  const f = await SafetensorsFile.open(join(TINY_DIR, file));
  const out = new Map<string, Float32Array>();
  for (const name of f.tensors.keys()) out.set(name, await f.readFloat32(name));
  await f.close();
  return out;
}

async function classifier(options: Partial<ClassifierOptions> = {}): Promise<GPT2Classifier> {
  return new GPT2Classifier(await loadGPT2(TINY_MODEL), options, head);
}

function batch() {
  const p = padBatch(expected.token_ids);
  return toTokenBatch(p.ids, p.rows, p.width, p.lengths);
}

function flat(rows: number[][]): number[] {
  return rows.flat();
}

before(async () => {
  await useTestBackend();
  expected = loadExpected();
  const h = await readAll('head.safetensors');
  head = { weight: h.get('weight')!, bias: h.get('bias')! };
});

describe('tokenizer', () => {
  test('encodes the six texts to the reference GPT-2 ids (incl. £ and emoji)', () => {
    expected.texts.forEach((text, i) => assert.deepEqual(encode(text), expected.token_ids[i]));
  });
  test('pads on the right with <|endoftext|> to the longest text', () => {
    const p = padBatch(expected.token_ids);
    assert.deepEqual(Array.from(p.ids), flat(expected.input_ids));
    assert.deepEqual(p.lengths, expected.lengths);
  });
});

describe('forward pass', () => {
  test('gelu_new matches the probe within 1e-6', () => {
    const y = tf.tidy(() => geluNew(tf.tensor1d(expected.gelu_new_probe.x)).dataSync());
    assertClose(y, expected.gelu_new_probe.y, 'gelu_new', 1e-6, 0);
  });

  test('tied LM head: top-5 next-token ids and logits of each text run alone', async () => {
    const clf = await classifier();
    for (let i = 0; i < expected.texts.length; i++) {
      const ids = expected.token_ids[i]!;
      const { values, indices } = tf.tidy(() => {
        const b = toTokenBatch(Int32Array.from(ids), 1, ids.length, [ids.length]);
        const h = clf.gpt.finalHiddenAt(clf.gpt.trunk(b, 'causal'), [ids.length - 1], [ids.length], 'causal');
        return tf.topk(clf.gpt.lmLogits(h), 5);
      });
      assert.deepEqual(Array.from(indices.dataSync()), expected.lm_last_logits_top5[i]!.ids, `text ${i} top-5 ids`);
      assertClose(values.dataSync(), expected.lm_last_logits_top5[i]!.logits, `text ${i} top-5 logits`);
    }
    clf.dispose();
  });

  test('hidden state at the last real token (pooled block) equals the full forward pass and the reference', async () => {
    const clf = await classifier();
    const b = batch();
    const positions = b.lengths.map((n) => n - 1);
    const pooled = tf.tidy(() => clf.gpt.finalHiddenAt(clf.gpt.trunk(b, 'causal'), positions, b.lengths, 'causal').dataSync());
    assertClose(pooled, flat(expected.hidden_last_real), 'hidden_last_real (pooled)');
    const full = tf.tidy(() => {
      const h = clf.gpt.hiddenStates(b, 'causal');
      return tf.stack(positions.map((p, r) => tf.reshape(tf.slice(h, [r, p, 0], [1, 1, -1]), [-1]))).dataSync();
    });
    assertClose(full, flat(expected.hidden_last_real), 'hidden_last_real (full)');
    clf.dispose();
  });

  for (const [pooling, key] of [
    ['last_real', 'cls_logits_last_real'],
    ['last', 'cls_logits_last_position'],
    ['first', 'cls_logits_first_position'],
  ] as const) {
    test(`classification logits, ${pooling} pooling`, async () => {
      const clf = await classifier({ pooling });
      const logits = clf.logits(batch());
      assertClose(logits.dataSync(), flat(expected[key]), key);
      logits.dispose();
      clf.dispose();
    });
  }

  test('bidirectional attention with padding keys masked (last_real)', async () => {
    const clf = await classifier({ attention: 'bidirectional' });
    const logits = clf.logits(batch());
    assertClose(logits.dataSync(), flat(expected.attention_unmasked), 'attention_unmasked');
    logits.dispose();
    clf.dispose();
  });

  test('cross-entropy losses for last_real and last pooling', async () => {
    for (const [pooling, ref] of [['last_real', expected.loss_last_real], ['last', expected.loss_last_position]] as const) {
      const clf = await classifier({ pooling });
      const loss = tf.tidy(() => crossEntropy(clf.logits(batch()), expected.labels).dataSync()[0]!);
      assertClose([loss], [ref], `loss ${pooling}`);
      clf.dispose();
    }
  });
});

describe('training', () => {
  test('trains exactly the reference tensors: the last block, ln_f and the head', async () => {
    const clf = await classifier();
    assert.deepEqual([...clf.trainableVariables().keys()], expected.trainable);
    clf.dispose();
  });

  test('gradients of loss_last_real match the reference (c_attn q, k, v blocks compared separately)', async () => {
    const clf = await classifier();
    const ref = await readAll('grads.safetensors');
    const b = batch();
    const features = clf.frozenFeatures(b);
    const { loss, grads } = lossAndGrads(clf, features, expected.labels);
    assertClose([loss], [expected.loss_last_real], 'loss');
    const e = clf.config.nEmbd;
    for (const name of expected.trainable) {
      let got = grads.get(name)!;
      if (name === 'head.weight') got = tf.transpose(got);
      const actual = got.dataSync();
      const want = ref.get(name)!;
      // Compare column blocks of c_attn separately: q and k gradients are ~100x smaller than v's.
      const cols = got.shape.length === 2 ? got.shape[1]! : got.shape[0]!;
      const blocks = name.includes('c_attn') ? 3 : 1;
      const blockWidth = cols / blocks;
      for (let blk = 0; blk < blocks; blk++) {
        const idx: number[] = [];
        for (let i = 0; i < want.length; i++) if (Math.floor((i % cols) / blockWidth) === blk) idx.push(i);
        const maxAbs = Math.max(...idx.map((i) => Math.abs(want[i]!)));
        if (name === 'h.1.attn.c_attn.bias' && blk === 1) {
          // The key bias has an exactly-zero gradient (softmax ignores a constant shift): check it is tiny.
          for (const i of idx) assert.ok(Math.abs(actual[i]!) < 1e-6, `${name}[${i}] should be ~0, got ${actual[i]}`);
          continue;
        }
        for (const i of idx) {
          assert.ok(Math.abs(actual[i]! - want[i]!) <= 1e-3 * maxAbs, `${name}[${i}] (block ${blk}): got ${actual[i]}, expected ${want[i]}`);
        }
      }
    }
    void e;
    clf.dispose();
  });

  test('one AdamW step moves every parameter as the reference does, and the logits after it match', async () => {
    const clf = await classifier();
    const refGrads = await readAll('grads.safetensors');
    const after = await readAll('after_step.safetensors');
    const vars = clf.trainableVariables();
    const before = new Map([...vars].map(([n, v]) => [n, (n === 'head.weight' ? tf.transpose(v) : v).dataSync().slice()]));
    const opt = new AdamW(vars, { lr: 5e-5, weightDecay: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8 });
    const b = batch();
    trainStep(clf, opt, clf.frozenFeatures(b), expected.labels);
    let checked = 0;
    let skipped = 0;
    for (const [name, v] of vars) {
      const now = tf.tidy(() => (name === 'head.weight' ? tf.transpose(v) : v).dataSync());
      const was = before.get(name)!;
      const want = after.get(name)!;
      const g = refGrads.get(name)!;
      const gMax = Math.max(...Array.from(g, Math.abs));
      for (let i = 0; i < want.length; i++) {
        // Where the gradient is rounding noise, float32 decides the step's sign (README: "Comparing"): a tolerance
        // of the whole step could not fail there, so those elements are skipped, and counted.
        if (Math.abs(g[i]!) < 1e-4 * gMax) {
          skipped++;
          continue;
        }
        const delta = now[i]! - was[i]!;
        const wantDelta = want[i]! - was[i]!;
        assert.ok(Math.abs(delta - wantDelta) <= 1e-6, `${name}[${i}]: step ${delta}, expected ${wantDelta}`);
        checked++;
      }
    }
    assert.equal(skipped, 169, 'the fixture README counts 169 elements whose gradient is noise');
    assert.equal(checked, 12834 - 169);
    const logits = clf.logits(b);
    assertClose(logits.dataSync(), flat(expected.cls_logits_last_real_after_step), 'logits after one step');
    clf.dispose();
  });

  test('20 AdamW steps on the batch follow the reference loss curve', async () => {
    const clf = await classifier();
    const opt = new AdamW(clf.trainableVariables());
    const b = batch();
    const features = clf.frozenFeatures(b);
    const curve: number[] = [];
    for (let s = 0; s < 20; s++) curve.push(trainStep(clf, opt, features, expected.labels));
    assertClose(curve, expected.loss_curve_20, 'loss_curve_20');
    const logits = clf.logits(b);
    assertClose(logits.dataSync(), flat(expected.cls_logits_after_20), 'cls_logits_after_20');
    const loss = tf.tidy(() => crossEntropy(logits, expected.labels).dataSync()[0]!);
    assertClose([loss], [expected.loss_after_20], 'loss_after_20');
    clf.dispose();
  });
});
