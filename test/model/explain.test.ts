/**
 * Integrated gradients (model/explain.ts): the embeddings path reproduces the reference logits, its input gradient
 * matches the ordinary model's and finite differences, completeness holds to the stated tolerance on the fixture
 * and on a model trained from scratch, and a phrase planted as the only sign of spam comes out on top.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import seedrandom from 'seedrandom';
import { GPT2Classifier, readHead, toTokenBatch, type ClassifierOptions, type HeadInit } from '../../model/classifier.ts';
import { parseSmsCollection } from '../../model/dataset.ts';
import { explain, Explainer, type Explanation } from '../../model/explain.ts';
import { mergeWords, tokenSpans } from '../../model/explain-text.ts';
import { encode, padBatch } from '../../model/tokenizer.ts';
import { encodeExamples } from '../../model/examples.ts';
import { trainClassifier } from '../../model/train.ts';
import { initGPT2, loadGPT2 } from '../../model/weights.ts';
import { useTestBackend } from '../helpers/backend.ts';
import { assertClose, loadExpected, requireShared, SMS_COLLECTION, TINY_DIR, TINY_MODEL, type Expected } from '../helpers/fixture.ts';

let expected: Expected;
let head: HeadInit;

before(async () => {
  await useTestBackend();
  expected = loadExpected();
  head = await readHead(join(TINY_DIR, 'head.safetensors'));
});

async function fixtureClassifier(options: Partial<ClassifierOptions> = {}): Promise<GPT2Classifier> {
  return new GPT2Classifier(await loadGPT2(TINY_MODEL), options, head);
}

/** The tolerance the explanation promises: 5 % of the margin difference, or 0.001 logits when that is larger. */
function assertComplete(x: Explanation, what: string): void {
  const delta = x.margin - x.baselineMargin;
  const total = x.tokens.reduce((s, t) => s + t.weight, 0) + x.padding;
  // Recomputed from the weights, not read from the reported gap.
  const gap = total - delta;
  assert.ok(Math.abs(gap - x.completenessGap) < 1e-9, `${what}: the reported gap ${x.completenessGap} is not Σ weights − Δmargin = ${gap}`);
  assert.ok(Math.abs(gap) <= Math.max(0.05 * Math.abs(delta), 1e-3), `${what}: weights sum to ${total}, margin difference ${delta} (gap ${gap})`);
  assert.ok(x.converged, `${what}: not converged`);
}

describe('the token-embeddings forward path', () => {
  test('reproduces the reference logits of the padded batch, through the model and through its constant-weights view', async () => {
    const clf = await fixtureClassifier();
    const p = padBatch(expected.token_ids);
    const b = toTokenBatch(p.ids, p.rows, p.width, p.lengths);
    const view = clf.gpt.withConstantWeights();
    for (const gpt of [clf.gpt, view]) {
      const logits = tf.tidy(() => clf.logitsFromTokenEmbeddings(clf.gpt.tokenEmbeddings(b.ids), p.lengths, gpt).dataSync());
      assertClose(logits, expected.cls_logits_last_real.flat(), 'logits from embeddings');
    }
    view.releaseConstants();
    b.ids.dispose();
    clf.dispose();
  });

  test('the constant-weights view gives the ordinary model\'s input gradient, and both match finite differences', async () => {
    const clf = await fixtureClassifier();
    const ids = expected.token_ids[2]!;
    const b = toTokenBatch(Int32Array.from(ids), 1, ids.length, [ids.length]);
    const tok = tf.tidy(() => clf.gpt.tokenEmbeddings(b.ids));
    const margin = (gpt: typeof clf.gpt) => (e: tf.Tensor) => {
      const l = clf.logitsFromTokenEmbeddings(e as tf.Tensor3D, [ids.length], gpt);
      return tf.sum(tf.sub(tf.slice(l, [0, 1], [-1, 1]), tf.slice(l, [0, 0], [-1, 1])));
    };
    const view = clf.gpt.withConstantWeights();
    const gradPlain = tf.tidy(() => tf.grad(margin(clf.gpt))(tok).dataSync() as Float32Array);
    const gradView = tf.tidy(() => tf.grad(margin(view))(tok).dataSync() as Float32Array);
    const max = Math.max(...Array.from(gradPlain, Math.abs));
    assertClose(gradView, gradPlain, 'input gradient (constant weights vs trained path)', 1e-4 * max, 0);

    // Directional derivative along a random direction, central differences (float32: a step of 1e-2, 2 % tolerance).
    const rng = seedrandom('fd');
    const dir = Float32Array.from({ length: tok.size }, () => rng() - 0.5);
    const eps = 1e-2;
    const f = (sign: number) => tf.tidy(() => margin(clf.gpt)(tf.add(tok, tf.mul(tf.tensor3d(dir, tok.shape as [number, number, number]), sign * eps)) as tf.Tensor3D).dataSync()[0]!);
    const numeric = (f(1) - f(-1)) / (2 * eps);
    const analytic = gradView.reduce((s, g, i) => s + g * dir[i]!, 0);
    assert.ok(Math.abs(numeric - analytic) <= 0.02 * Math.abs(analytic) + 1e-5, `directional derivative: ${analytic} analytic vs ${numeric} numeric`);
    view.releaseConstants();
    tf.dispose([tok, b.ids]);
    clf.dispose();
  });
});

describe('integrated gradients on the fixture model', () => {
  test('the margin is the scoring margin, and the weights sum to the margin difference within 5 % for every text', async () => {
    const clf = await fixtureClassifier();
    const before = tf.memory().numTensors;
    const explainer = Explainer.onTfjs(clf, { maxTokens: 64 });
    for (const [i, text] of expected.texts.entries()) {
      const x = await explainer.explain(text);
      const [ham, spam] = expected.cls_logits_last_real[i]!;
      assertClose([x.margin], [spam! - ham!], `margin of text ${i}`);
      assert.equal(x.method, 'integrated-gradients');
      assert.equal(x.baseline, 'zero-token-embeddings');
      assert.deepEqual(x.tokens.map((t) => t.id), expected.token_ids[i]);
      assert.equal(x.tokens.map((t) => t.text).join(''), text);
      assert.equal(x.padding, 0);
      assertComplete(x, `text ${i}`);
    }
    await explainer.dispose();
    assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
    clf.dispose();
  });

  test('`last` pooling reads padding: explained at the padded width, the margin is the reference\'s and padding is attributed', async () => {
    const clf = await fixtureClassifier({ pooling: 'last' });
    const width = expected.input_ids[0]!.length;
    for (const i of [3, 5]) {
      const x = await explain(clf, expected.texts[i]!, { maxTokens: 64, width });
      const [ham, spam] = expected.cls_logits_last_position[i]!;
      assertClose([x.margin], [spam! - ham!], `margin of padded text ${i}`);
      assert.ok(x.padding !== 0, 'the pad tokens the head reads carry weight');
      assertComplete(x, `padded text ${i}`);
    }
    clf.dispose();
  });

  test('a LoRA model is explained with its adapters merged: the margin is its scoring margin', async () => {
    const clf = await fixtureClassifier({ layers: 'lora', loraRank: 2 });
    for (const a of clf.gpt.lora.values()) a.b.assign(tf.randomNormal(a.b.shape, 0, 0.002, 'float32', 9));
    const ids = expected.token_ids[0]!;
    const logits = tf.tidy(() => clf.logits(toTokenBatch(Int32Array.from(ids), 1, ids.length, [ids.length])).dataSync());
    const x = await explain(clf, expected.texts[0]!, { maxTokens: 64 });
    assertClose([x.margin], [logits[1]! - logits[0]!], 'LoRA margin');
    const [ham, spam] = expected.cls_logits_last_real[0]!;
    assert.ok(Math.abs(x.margin - (spam! - ham!)) > 1e-2, 'the adapters do change the margin');
    assertComplete(x, 'LoRA');
    clf.dispose();
  });

  test('tighter tolerances buy smaller gaps; the adaptive rule reports what it spent', async () => {
    const clf = await fixtureClassifier();
    const loose = await explain(clf, expected.texts[0]!, { maxTokens: 64 });
    const tight = await explain(clf, expected.texts[0]!, { maxTokens: 64, tolerance: 1e-4, absoluteTolerance: 1e-7, maxEvaluations: 200 });
    assert.ok(tight.quadrature.evaluations > loose.quadrature.evaluations, 'a tighter tolerance took more evaluations');
    assert.ok(Math.abs(tight.completenessGap) <= 1e-4 * Math.abs(tight.margin - tight.baselineMargin) + 1e-7);
    // Per token too, the loose answer is close to the tight one.
    const diff = Math.hypot(...loose.tokens.map((t, i) => t.weight - tight.tokens[i]!.weight));
    assert.ok(diff <= 0.1 * Math.hypot(...tight.tokens.map((t) => t.weight)), `token weights differ by ${diff}`);
    clf.dispose();
  });

  test('bad options are refused with a message saying which', async () => {
    const clf = await fixtureClassifier();
    assert.throws(() => Explainer.onTfjs(clf, { maxTokens: 65 }), /65 tokens exceed the model's context of 64/);
    assert.throws(() => Explainer.onTfjs(clf, { maxTokens: 64, positiveClass: 2 }), /positiveClass 2 is not a class/);
    assert.throws(() => Explainer.onTfjs(clf, { maxTokens: 64, maxEvaluations: 2 }), /maxEvaluations 2/);
    clf.dispose();
  });

  test('a model whose explanation cannot fit the wasm heap is refused before anything is allocated', () => {
    // GPT-2-355M's shape (weights never made: the check reads only the configuration) at 128 tokens.
    const big = { config: { vocabSize: 50257, nPositions: 1024, nEmbd: 1024, nLayer: 24, nHead: 16, layerNormEpsilon: 1e-5 }, options: { numClasses: 2 } };
    assert.throws(() => Explainer.onTfjs(big as unknown as GPT2Classifier, { maxTokens: 128 }), /needs about \d+\.\d GiB on the wasm backend/);
    // GPT-2-124M's shape fits.
    const small = { ...big, config: { ...big.config, nEmbd: 768, nLayer: 12, nHead: 12 } };
    assert.throws(() => Explainer.onTfjs(small as unknown as GPT2Classifier, { maxTokens: 128 }), /withConstantWeights/, 'passes the check, then needs a real model');
  });
});

describe('token texts and words', () => {
  test('a character split between tokens goes to the token that completes it; words add their tokens', () => {
    const text = 'Win  £900 😊 now!\n\nreply STOP 🦒🦒 x😊';
    const ids = encode(text);
    const { text: read, spans, continues } = tokenSpans(ids);
    assert.equal(read, text);
    const tokens = ids.map((id, i) => ({ id, text: read.slice(spans[i]![0], spans[i]![1]), start: spans[i]![0], end: spans[i]![1], weight: i + 1 }));
    assert.equal(tokens.map((t) => t.text).join(''), text);
    assert.ok(tokens.some((t) => t.text === ''), 'a token holding only the first bytes of a character shows nothing');
    assert.ok(!tokens.some((t) => t.text.includes('\uFFFD')), 'no replacement characters');
    assert.ok(tokens.some((t) => t.text === '😊'), 'the character shows whole in the token that completes it');
    const words = mergeWords(read, tokens, continues);
    assert.deepEqual(words.map((w) => w.text), ['Win', '£900', '😊', 'now!', 'reply', 'STOP', '🦒🦒', 'x😊']);
    for (const w of words) assert.equal(read.slice(w.start, w.end), w.text);
    // " 😊" is one token of a space and the emoji's first bytes, then one with the rest: both belong to the word.
    const smile = words[2]!;
    assert.equal(smile.tokens[1] - smile.tokens[0], 1);
    assert.equal(smile.weight, smile.tokens[0] + 1 + smile.tokens[1] + 1);
    // Every token is in exactly one word but the whitespace-only ones, so the weights still add up.
    const inWords = words.reduce((s, w) => s + w.weight, 0);
    const whitespace = tokens.filter((t, i) => t.text.trim() === '' && !continues[i]).reduce((s, t) => s + t.weight, 0);
    assert.equal(inWords + whitespace, tokens.reduce((s, t) => s + t.weight, 0));
  });
});

describe('a model trained from scratch, where one planted phrase is the only sign of spam', () => {
  const PHRASE = ['zebra', 'pancake'];
  let clf: GPT2Classifier;
  let heldOut: Array<{ text: string; label: number }>;

  before(async () => {
    // Real ham texts from the SMS collection; spam is the same kind of text with the phrase planted at a random place.
    const rng = seedrandom('planted');
    const hams = parseSmsCollection(readFileSync(requireShared(SMS_COLLECTION), 'utf8'))
      .filter((m) => m.label === 'ham' && m.text.split(' ').length >= 4 && m.text.length < 90)
      .map((m) => m.text);
    const plant = (t: string) => {
      const w = t.split(' ');
      w.splice(Math.floor(rng() * (w.length + 1)), 0, PHRASE.join(' '));
      return w.join(' ');
    };
    const labelled = (texts: string[]) => texts.map((t, i) => (i % 2 ? { text: plant(t), label: 1 } : { text: t, label: 0 }));
    const train = labelled(hams.slice(0, 300));
    heldOut = labelled(hams.slice(300, 340));
    const cfg = { vocabSize: 50257, nPositions: 64, nEmbd: 32, nLayer: 2, nHead: 4, layerNormEpsilon: 1e-5 };
    clf = new GPT2Classifier(initGPT2(cfg, 5), { layers: 'all', seed: 5 });
    const result = trainClassifier(clf, encodeExamples(train, 48), encodeExamples(heldOut, 48), {
      epochs: 4, batchSize: 8, maxTokens: 48, optimizer: { lr: 2e-3, weightDecay: 0 }, evalEvery: Number.MAX_SAFE_INTEGER,
    });
    assert.ok(result.bestValAcc >= 0.9, `the model learnt the phrase (held-out accuracy ${result.bestValAcc})`);
  });

  test('for every held-out text the weights sum to the margin difference within 5 %', async () => {
    const explainer = Explainer.onTfjs(clf, { maxTokens: 48 });
    for (const h of heldOut) assertComplete(await explainer.explain(h.text), JSON.stringify(h.text));
    await explainer.dispose();
  });

  test('in every planted message the model calls spam, the phrase is among the two most spam-ward words', async () => {
    const explainer = Explainer.onTfjs(clf, { maxTokens: 48 });
    let checked = 0;
    for (const h of heldOut.filter((e) => e.label === 1)) {
      const x = await explainer.explain(h.text);
      if (x.margin <= 0) continue; // a message the model gets wrong explains its mistake, not the phrase
      checked++;
      const top = [...x.words].sort((a, b) => b.weight - a.weight).slice(0, 2).map((w) => w.text.replace(/\W+$/u, ''));
      assert.ok(top.some((w) => PHRASE.includes(w)), `top words ${JSON.stringify(top)} of ${JSON.stringify(h.text)}`);
    }
    assert.ok(checked >= 15, `${checked} planted messages were called spam`);
    await explainer.dispose();
  });
});
