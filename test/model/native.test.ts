/**
 * The native inference path (ONNX Runtime, model/native) against the PyTorch reference fixture and against tfjs:
 * logits of every pooling and attention mode within the fixture's tolerance, from a live classifier and from
 * checkpoint files; trunk-cache entries interchangeable with tfjs's (training on a natively filled cache gives the
 * reference loss curve and the weights tfjs's cache gives); the scorer, the daemon's model host and the selection.
 *
 * onnxruntime-node is an optional dependency that installs on Linux, macOS and Windows: here it must be present,
 * so a missing or broken runtime fails these tests instead of skipping them.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { AdamW } from '../../model/adamw.ts';
import { initInference, nativeRuntime } from '../../model/backend.ts';
import { saveCheckpoint } from '../../model/checkpoint.ts';
import { GPT2Classifier, readHead, disposeFeatures, toTokenBatch, type ClassifierOptions, type HeadInit } from '../../model/classifier.ts';
import { SCRATCH_SIZES } from '../../model/config.ts';
import type { EncodedExample } from '../../model/examples.ts';
import { CachedFeatures, type FeatureProvider } from '../../model/features.ts';
import { NativeClassifier } from '../../model/native/classifier.ts';
import type { NativeRuntime } from '../../model/native/runtime.ts';
import { warmTrunk } from '../../model/native/trunk.ts';
import { checkpointWeights, classifierWeights } from '../../model/native/weights.ts';
import { BatchScorer } from '../../model/scorer.ts';
import { lossAndGrads, trainStep } from '../../model/step.ts';
import { encode, padBatch } from '../../model/tokenizer.ts';
import { TrunkCache } from '../../model/trunk-cache.ts';
import { trainClassifier } from '../../model/train.ts';
import { initGPT2, loadGPT2 } from '../../model/weights.ts';
import { ModelHost } from '../../daemon/model-host.ts';
import { useTestBackend } from '../helpers/backend.ts';
import { assertClose, loadExpected, REPO_ROOT, TINY_DIR, TINY_MODEL, type Expected } from '../helpers/fixture.ts';

const run = promisify(execFile);

let expected: Expected;
let head: HeadInit;
let rt: NativeRuntime;
let tmp: string;

before(async () => {
  await useTestBackend();
  const info = await initInference('native', { log: () => {} });
  assert.equal(info.name, 'native');
  rt = nativeRuntime()!;
  expected = loadExpected();
  head = await readHead(join(TINY_DIR, 'head.safetensors'));
  tmp = mkdtempSync(join(tmpdir(), 'gptspam-native-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

async function classifier(options: Partial<ClassifierOptions> = {}): Promise<GPT2Classifier> {
  return new GPT2Classifier(await loadGPT2(TINY_MODEL), options, head);
}

const MODES = [
  { options: { pooling: 'last_real' }, key: 'cls_logits_last_real' },
  { options: { pooling: 'last' }, key: 'cls_logits_last_position' },
  { options: { pooling: 'first' }, key: 'cls_logits_first_position' },
  { options: { pooling: 'last_real', attention: 'bidirectional' }, key: 'attention_unmasked' },
] as const;

/** The fixture batch is padded to its longest text, 22 tokens; `last` pooling reads position 21. */
const widthFor = (options: Partial<ClassifierOptions>) => (options.pooling === 'last' ? 22 : undefined);

describe('native logits match the PyTorch fixture', () => {
  for (const { options, key } of MODES) {
    test(`${key}: from the classifier in memory and from its checkpoint files`, async () => {
      const clf = await classifier(options);
      const live = await NativeClassifier.create(rt, await classifierWeights(clf, 'logits'), 'logits');
      assertClose((await live.batchLogits(expected.token_ids, widthFor(options))).flat(), expected[key].flat(), `${key} (live)`);
      await live.dispose();

      const dir = join(tmp, `ckpt-${key}`);
      await saveCheckpoint(dir, clf, { maxTokens: 64, labelNames: ['ham', 'spam'] });
      const fromFiles = await NativeClassifier.create(rt, await checkpointWeights(dir, 'logits'), 'logits');
      assertClose((await fromFiles.batchLogits(expected.token_ids, widthFor(options))).flat(), expected[key].flat(), `${key} (checkpoint)`);
      await fromFiles.dispose();
      clf.dispose();
    });
  }

  test('each text alone gets the logits it gets in the padded batch (last_real)', async () => {
    const clf = await classifier();
    const native = await NativeClassifier.create(rt, await classifierWeights(clf, 'logits'), 'logits');
    for (let i = 0; i < expected.texts.length; i++) {
      assertClose(await native.batchLogits([expected.token_ids[i]!]).then((l) => l[0]!), expected.cls_logits_last_real[i]!, `text ${i} alone`);
    }
    await native.dispose();
    clf.dispose();
  });

  test('the final hidden state at the last real token (last_layer trunk output)', async () => {
    const clf = await classifier({ layers: 'last_layer' });
    const native = await NativeClassifier.create(rt, await classifierWeights(clf, 'pooled'), 'pooled');
    const entries = await native.trunkEntries(expected.token_ids.map((ids) => ({ ids, label: 0 })));
    assertClose(entries.flatMap((e) => Array.from(e.data)), expected.hidden_last_real.flat(), 'hidden_last_real');
    await native.dispose();
    clf.dispose();
  });

  test('the batch scorer resolves to the raw logits, in order', async () => {
    const clf = await classifier();
    const native = await NativeClassifier.create(rt, await classifierWeights(clf, 'logits'), 'logits');
    const logits = await new BatchScorer(native, { maxTokens: 64, batchSize: 4 }).scoreMany(expected.texts);
    assertClose(logits.flat(), expected.cls_logits_last_real.flat(), 'scorer logits');
    await native.dispose();
    clf.dispose();
  });
});

describe('native and tfjs agree beyond the fixture', () => {
  const texts = ['ok', 'Call now!!!', 'WINNER!! As a valued network customer you have been selected to receive a £900 prize reward!', 'see you at 5 then '.repeat(4)];

  function tfjsLogits(clf: GPT2Classifier, seqs: number[][]): number[] {
    const p = padBatch(seqs);
    return tf.tidy(() => Array.from(clf.logits(toTokenBatch(p.ids, p.rows, p.width, p.lengths)).dataSync()));
  }

  test('LoRA adapters (non-zero) are applied as tfjs applies them', async () => {
    const clf = await classifier({ layers: 'lora', loraRank: 2, loraAlpha: 4 });
    for (const a of clf.gpt.lora.values()) a.b.assign(tf.randomNormal(a.b.shape, 0, 0.05, 'float32', 9));
    const seqs = texts.map((t) => encode(t, 60));
    const want = tfjsLogits(clf, seqs);
    const native = await NativeClassifier.create(rt, await classifierWeights(clf, 'logits'), 'logits');
    assertClose((await native.batchLogits(seqs)).flat(), want, 'lora logits', 1e-5, 1e-5);
    await native.dispose();
    const dir = join(tmp, 'ckpt-lora');
    await saveCheckpoint(dir, clf, { maxTokens: 60, labelNames: ['ham', 'spam'] });
    const fromFiles = await NativeClassifier.create(rt, await checkpointWeights(dir, 'logits'), 'logits');
    assertClose((await fromFiles.batchLogits(seqs)).flat(), want, 'lora logits (checkpoint)', 1e-5, 1e-5);
    await fromFiles.dispose();
    clf.dispose();
  });

  test('a from-scratch model: every weight from its own checkpoint', async () => {
    const clf = new GPT2Classifier(initGPT2(SCRATCH_SIZES.tiny, 7), { layers: 'all' });
    const seqs = texts.map((t) => encode(t, 60));
    const want = tfjsLogits(clf, seqs);
    const dir = join(tmp, 'ckpt-scratch');
    await saveCheckpoint(dir, clf, { maxTokens: 60, labelNames: ['ham', 'spam'] });
    const native = await NativeClassifier.create(rt, await checkpointWeights(dir, 'logits'), 'logits');
    assertClose((await native.batchLogits(seqs)).flat(), want, 'scratch logits', 1e-5, 1e-5);
    await native.dispose();
    clf.dispose();
  });

  test('int8 trunk weights (optional): close to float32, not equal, and never used to fill the trunk cache', async () => {
    const clf = await classifier();
    const seqs = expected.token_ids;
    const exact = await NativeClassifier.create(rt, await classifierWeights(clf, 'logits'), 'logits');
    const int8 = await NativeClassifier.create(rt, await classifierWeights(clf, 'logits'), 'logits', { int8Trunk: true });
    const a = (await exact.batchLogits(seqs)).flat();
    const b = (await int8.batchLogits(seqs)).flat();
    assertClose(b, a, 'int8 vs float32 logits', 2e-2, 2e-2);
    assert.ok(a.some((x, i) => x !== b[i]), 'the int8 graph quantizes something');
    await exact.dispose();
    await int8.dispose();
    const viaRuntime = { ...rt, int8Trunk: true };
    const filled = new CachedFeatures(clf, new TrunkCache());
    const reference = new CachedFeatures(clf, new TrunkCache());
    const ex = seqs.map((ids) => ({ ids, label: 0 }));
    await warmTrunk(filled, clf, ex, viaRuntime);
    reference.warm(ex);
    const fa = filled.features(ex);
    const fb = reference.features(ex);
    assert.ok(fa.kind === 'block-input' && fb.kind === 'block-input');
    assertClose(fa.x.dataSync(), fb.x.dataSync(), 'cache entries stay float32', 1e-5, 1e-5);
    disposeFeatures(fa);
    disposeFeatures(fb);
    clf.dispose();
  });

  test('a checkpoint whose base file changed is refused, as loadCheckpoint refuses it', async () => {
    const clf = await classifier();
    const dir = join(tmp, 'ckpt-other-base');
    clf.base.hash = 'f'.repeat(64);
    await saveCheckpoint(dir, clf, { maxTokens: 64, labelNames: ['ham', 'spam'] });
    await assert.rejects(checkpointWeights(dir, 'logits'), /was trained on base weights ffffffffffff…/);
    clf.dispose();
  });
});

describe('trunk cache filled natively', () => {
  let examples: EncodedExample[];
  before(() => {
    const more = ['ok', 'Call now!!!', 'see you at 5 then, bring the thing we talked about on monday night at the station '.repeat(2)];
    examples = [...expected.texts, ...more].map((t, i) => ({ ids: encode(t, 60), label: i % 2 }));
  });

  /** The frozen features a provider serves for `ex`, as numbers. */
  function frozen(p: FeatureProvider, ex: EncodedExample[]): Float32Array {
    const f = p.features(ex);
    const out = f.kind === 'block-input' ? f.x.dataSync().slice() : f.kind === 'pooled-hidden' ? f.h.dataSync().slice() : new Float32Array();
    disposeFeatures(f);
    return out as Float32Array;
  }

  for (const options of [
    { pooling: 'last_real' },
    { pooling: 'first' },
    { pooling: 'last_real', attention: 'bidirectional' },
    { pooling: 'last_real', layers: 'last_layer' },
    { pooling: 'last' },
  ] as Partial<ClassifierOptions>[]) {
    test(`serves the activations tfjs computes (${JSON.stringify(options)})`, async () => {
      const c = await classifier(options);
      const width = options.pooling === 'last' ? 64 : undefined;
      const byTfjs = new CachedFeatures(c, new TrunkCache(), width);
      const byNative = new CachedFeatures(c, new TrunkCache(), width);
      assert.equal(byTfjs.warm(examples), examples.length);
      assert.equal(await warmTrunk(byNative, c, examples), examples.length);
      assert.equal(byNative.pending(examples), 0);
      assertClose(frozen(byNative, examples), frozen(byTfjs, examples), 'frozen features', 1e-5, 1e-5);
      c.dispose();
    });
  }

  test('20 AdamW steps on a natively filled cache follow the PyTorch loss curve and end at its logits', async () => {
    const c = await classifier();
    const features = new CachedFeatures(c, new TrunkCache());
    const batch = expected.token_ids.map((ids, i) => ({ ids, label: expected.labels[i]! }));
    await warmTrunk(features, c, batch);
    const opt = new AdamW(c.trainableVariables(), { lr: 5e-5, weightDecay: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8 });
    const losses: number[] = [];
    for (let s = 0; s < 20; s++) {
      const f = features.features(batch);
      losses.push(trainStep(c, opt, f, expected.labels));
      disposeFeatures(f);
    }
    assertClose(losses, expected.loss_curve_20, 'loss curve');
    const f = features.features(batch);
    assertClose(tf.tidy(() => c.logitsFromFeatures(f).dataSync()), expected.cls_logits_after_20.flat(), 'logits after 20 steps');
    disposeFeatures(f);
    opt.dispose();
    c.dispose();
  });

  test('training on it gives the weights training on a tfjs-filled cache gives', async () => {
    const a = await classifier({ seed: 5 });
    const b = await classifier({ seed: 5 });
    const fa = new CachedFeatures(a, new TrunkCache());
    const fb = new CachedFeatures(b, new TrunkCache());
    fa.warm(examples);
    await warmTrunk(fb, b, examples);
    const f0 = fa.features(examples.slice(0, 6));
    const g0 = lossAndGrads(a, f0, examples.slice(0, 6).map((e) => e.label)).grads;
    disposeFeatures(f0);
    const opts = { epochs: 3, batchSize: 3, evalEvery: 2, optimizer: { lr: 1e-3 }, maxTokens: 60 };
    const ra = trainClassifier(a, examples.slice(0, 6), examples.slice(6), { ...opts, features: fa });
    const rb = trainClassifier(b, examples.slice(0, 6), examples.slice(6), { ...opts, features: fb });
    assertClose(rb.evals.map((e) => e.trainLoss), ra.evals.map((e) => e.trainLoss), 'train losses', 1e-5, 1e-5);
    const vb = b.trainableVariables();
    let skipped = 0;
    for (const [name, v] of a.trainableVariables()) {
      // As in cache.test.ts: elements whose gradient is rounding noise (e.g. the key bias, exactly zero in exact
      // arithmetic) take noise-signed AdamW steps in any implementation.
      const g = g0.get(name)!.dataSync();
      const gMax = Math.max(...Array.from(g, Math.abs));
      const want = v.dataSync();
      const got = vb.get(name)!.dataSync();
      for (let i = 0; i < want.length; i++) {
        // A tolerance of every step's full size could not fail: such elements are skipped, and counted below.
        if (Math.abs(g[i]!) < 1e-4 * gMax) {
          skipped++;
          continue;
        }
        assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-5 + 1e-4 * Math.abs(want[i]!), `${name}[${i}]: ${got[i]} vs ${want[i]}`);
      }
    }
    // Counted on this fixture and seed: a change here means the gradients themselves changed.
    assert.equal(skipped, 223, 'elements whose gradient is rounding noise');
    a.dispose();
    b.dispose();
  });
});

describe('selection and the daemon', () => {
  test('the model host scores a version natively, without a tfjs copy until one is asked for', async () => {
    const clf = await classifier();
    const dir = join(tmp, 'ckpt-host');
    await saveCheckpoint(dir, clf, { maxTokens: 64, labelNames: ['ham', 'spam'] });
    clf.dispose();
    const before = tf.memory().numTensors;
    const host = new ModelHost();
    await host.load(1, dir, null);
    assert.equal(tf.memory().numTensors, before, 'no tfjs tensors for a natively scored version');
    const scored = await Promise.all(expected.texts.map((t) => host.score(t)));
    assertClose(scored.flatMap((s) => s.logits), expected.cls_logits_last_real.flat(), 'host logits');
    assert.ok(scored.every((s) => s.version === 1));
    const trainable = await host.withClassifier((c, { version }) => ({ names: [...c.trainableVariables().keys()], version }));
    assert.equal(trainable.version, 1);
    assert.deepEqual(trainable.names, expected.trainable);
    host.dispose();
  });

  test('auto picks the native runtime in a fresh process and logs it as the inference backend', async () => {
    const script = `
      const { initBackend, initInference } = await import('./model/backend.ts');
      const lines = [];
      await initBackend('wasm', { threads: 1, log: (l) => lines.push(l) });
      const info = await initInference('auto', { log: (l) => lines.push(l) });
      console.log(JSON.stringify({ name: info.name, lines }));`;
    const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT, timeout: 60_000 });
    const got = JSON.parse(stdout) as { name: string; lines: string[] };
    assert.equal(got.name, 'native');
    assert.match(got.lines.at(-1)!, /^inference backend: native \(ONNX Runtime \d+\.\d+\.\d+, CPU, \d+ threads?\)$/);
  });

  test('tfjs can be forced and native chosen again; an unknown name is refused', async () => {
    const lines: string[] = [];
    assert.equal((await initInference('tfjs', { log: (l) => lines.push(l) })).name, 'tfjs');
    assert.equal(nativeRuntime(), undefined);
    assert.match(lines.pop()!, /^inference backend: tfjs \(/);
    assert.equal((await initInference('auto', { log: (l) => lines.push(l) })).name, 'tfjs', 'auto keeps a choice already made');
    assert.equal((await initInference('native', { log: (l) => lines.push(l) })).name, 'native');
    assert.ok(nativeRuntime());
    await assert.rejects(initInference('gpu' as never, { log: () => {} }), /unknown inference backend "gpu"/);
  });
});
