/** Loader robustness, tokenizer edge cases, trainable-part selection, LoRA, checkpoints. */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { AdamW } from '../../model/adamw.ts';
import { loadCheckpoint, saveCheckpoint } from '../../model/checkpoint.ts';
import { GPT2Classifier, toTokenBatch } from '../../model/classifier.ts';
import { GPT2_PRESETS, inferConfig, parameterCount } from '../../model/config.ts';
import { SafetensorsFile, writeSafetensors } from '../../model/safetensors.ts';
import { trainStep } from '../../model/step.ts';
import { trainClassifier } from '../../model/train.ts';
import { decode, encode, padBatch, PAD_TOKEN_ID } from '../../model/tokenizer.ts';
import { checkFitsBackend, loadGPT2 } from '../../model/weights.ts';
import { useTestBackend } from '../helpers/backend.ts';
import { assertClose, loadExpected, TINY_DIR, TINY_MODEL } from '../helpers/fixture.ts';

let dir: string;
before(async () => {
  await useTestBackend();
  dir = mkdtempSync(join(tmpdir(), 'gptspam-model-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function allTensors(path: string): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const f = await SafetensorsFile.open(path);
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, info] of f.tensors) out.set(name, { shape: info.shape, data: await f.readFloat32(name) });
  await f.close();
  return out;
}

/** Writes a variant of the fixture model (tensors renamed, dropped or reshaped) without its config.json. */
async function variant(name: string, edit: (t: Map<string, { shape: number[]; data: Float32Array }>) => void): Promise<string> {
  const t = await allTensors(TINY_MODEL);
  edit(t);
  const sub = mkdtempSync(join(dir, `${name}-`));
  const path = join(sub, 'model.safetensors');
  await writeSafetensors(path, Object.fromEntries(t));
  return path;
}

describe('weights loader', () => {
  test('infers the configuration of every GPT-2 size from shapes', () => {
    for (const [size, preset] of Object.entries(GPT2_PRESETS)) {
      const cfg = inferConfig({ wte: [50257, preset.nEmbd], wpe: [1024, preset.nEmbd], nLayer: preset.nLayer });
      assert.deepEqual(cfg, preset, size);
    }
    assert.ok(Math.abs(parameterCount(GPT2_PRESETS['124M']) - 124.4e6) < 0.1e6);
  });

  test('accepts a `transformer.` prefix and ignores attn.bias / masked_bias buffers', async () => {
    const path = await variant('prefixed', (t) => {
      for (const [k, v] of [...t]) {
        t.delete(k);
        t.set(`transformer.${k}`, v);
      }
      t.set('transformer.h.0.attn.masked_bias', { shape: [1], data: new Float32Array([-1e4]) });
    });
    copyFileSync(join(TINY_DIR, 'config.json'), join(path, '..', 'config.json'));
    const w = await loadGPT2(path);
    assert.equal(w.config.nLayer, 2);
    assert.equal(w.config.nHead, 4);
    assert.ok(!w.tensors.has('h.0.attn.bias'));
    assert.ok(w.tensors.has('h.0.attn.c_attn.bias'), 'attn.c_attn.bias is a parameter and must be loaded');
    for (const t of w.tensors.values()) t.dispose();
  });

  test('a missing tensor is named', async () => {
    const path = await variant('missing', (t) => t.delete('h.1.mlp.c_fc.bias'));
    await assert.rejects(loadGPT2(path), /tensor "h\.1\.mlp\.c_fc\.bias" is missing/);
  });

  test('a wrong-shaped tensor is named with both shapes', async () => {
    const path = await variant('shape', (t) => t.set('h.0.attn.c_proj.weight', { shape: [32, 31], data: new Float32Array(32 * 31) }));
    await assert.rejects(loadGPT2(path), /tensor "h\.0\.attn\.c_proj\.weight" has shape \[32,31\], expected \[32,32\]/);
  });

  test('a truncated file names the tensor that runs past the end', async () => {
    const path = join(dir, 'truncated.safetensors');
    const bytes = readFileSync(TINY_MODEL);
    writeFileSync(path, bytes.subarray(0, bytes.length - 1000));
    await assert.rejects(loadGPT2(path), /tensor "[^"]+": data ends at byte \d+ but the file holds only/);
  });

  test('a corrupt header is reported as such', async () => {
    const path = join(dir, 'corrupt.safetensors');
    const header = Buffer.from('{"wte.weight": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    writeFileSync(path, Buffer.concat([len, header, Buffer.alloc(16)]));
    await assert.rejects(loadGPT2(path), /corrupt header: not valid JSON/);
    writeFileSync(path, Buffer.from('not a model at all'));
    await assert.rejects(loadGPT2(path), /corrupt header/);
  });

  test('NaN weights are rejected with the tensor name', async () => {
    const path = await variant('nan', (t) => {
      t.get('ln_f.weight')!.data[3] = NaN;
    });
    await assert.rejects(loadGPT2(path), /tensor "ln_f\.weight" holds a non-finite value at element 3/);
  });

  test('a model too big for wasm is refused up front with the way out, not left to hang the backend', () => {
    // 124M measured at ~1.3 GiB of heap in the benchmark; 774M's weights alone are 2.9 GiB before XNNPACK's packed copies.
    checkFitsBackend(GPT2_PRESETS['124M'], 'gpt2', 'wasm');
    checkFitsBackend(GPT2_PRESETS['355M'], 'gpt2-medium', 'wasm');
    assert.throws(() => checkFitsBackend(GPT2_PRESETS['774M'], 'gpt2-large', 'wasm'), /^Error: gpt2-large: this model needs about 6\.1 GiB to run on the wasm backend .*--backend node or --backend gpu/);
    assert.throws(() => checkFitsBackend(GPT2_PRESETS['1558M'], 'gpt2-xl', 'wasm'), /needs about 11\.9 GiB/);
    checkFitsBackend(GPT2_PRESETS['1558M'], 'gpt2-xl', 'tensorflow');
  });
});

describe('tokenizer on hostile text', () => {
  test('empty text is one pad token, scored like any other', () => {
    assert.deepEqual(encode(''), []);
    const p = padBatch([[]]);
    assert.deepEqual(Array.from(p.ids), [PAD_TOKEN_ID]);
    assert.deepEqual(p.lengths, [1]);
  });
  test('<|endoftext|> inside a message is ordinary text, not the special token', () => {
    const ids = encode('hi <|endoftext|> there');
    assert.ok(!ids.includes(PAD_TOKEN_ID));
    assert.equal(decode(ids), 'hi <|endoftext|> there');
  });
  test('a 100k-character text without spaces is truncated quickly', () => {
    const start = performance.now();
    const ids = encode('a'.repeat(50_000) + 'b'.repeat(50_000), 120);
    assert.equal(ids.length, 120);
    assert.ok(performance.now() - start < 5000);
  });
  test('invalid UTF-8 and emoji survive', () => {
    const text = Buffer.from([0x66, 0x72, 0x65, 0x65, 0xff, 0xfe, 0x20, 0xf0, 0x9f, 0x92, 0xb0]).toString('utf8');
    assert.equal(decode(encode(text)), text);
    assert.equal(decode(encode('Win 💰💰 now 🎉')), 'Win 💰💰 now 🎉');
  });
});

describe('trainable parts', () => {
  const batch = () => {
    const e = loadExpected();
    const p = padBatch(e.token_ids);
    return { b: toTokenBatch(p.ids, p.rows, p.width, p.lengths), labels: e.labels };
  };

  test('last_layer trains only the head; all trains everything; lora trains adapters + head', async () => {
    const last = new GPT2Classifier(await loadGPT2(TINY_MODEL), { layers: 'last_layer' });
    assert.deepEqual([...last.trainableVariables().keys()], ['head.weight', 'head.bias']);
    last.dispose();
    const all = new GPT2Classifier(await loadGPT2(TINY_MODEL), { layers: 'all' });
    assert.equal(all.trainableVariables().size, 2 * 12 + 4 + 2);
    all.dispose();
    const lora = new GPT2Classifier(await loadGPT2(TINY_MODEL), { layers: 'lora', loraRank: 4 });
    const names = [...lora.trainableVariables().keys()];
    assert.equal(names.length, 2 * 4 * 2 + 2);
    assert.ok(names.includes('lora.h.0.attn.c_attn.weight.A'));
    lora.dispose();
  });

  for (const layers of ['last_layer', 'all', 'lora'] as const) {
    test(`${layers}: a few AdamW steps lower the loss and leave frozen weights untouched`, async () => {
      const clf = new GPT2Classifier(await loadGPT2(TINY_MODEL), { layers, loraRank: 4, loraAlpha: 1 });
      const frozenBefore = layers === 'all' ? undefined : clf.base.tensors.get('h.0.mlp.c_fc.weight')!.dataSync().slice();
      const { b, labels } = batch();
      const opt = new AdamW(clf.trainableVariables(), { lr: 1e-2 });
      const features = clf.frozenFeatures(b);
      const losses = Array.from({ length: 5 }, () => trainStep(clf, opt, features, labels));
      assert.ok(losses[4]! < losses[0]! - 0.01, `loss ${losses[0]} → ${losses[4]}`);
      if (frozenBefore) assert.deepEqual(clf.base.tensors.get('h.0.mlp.c_fc.weight')!.dataSync(), frozenBefore);
      clf.dispose();
    });
  }

  test('LoRA starts as the base model: its logits equal the plain classifier\'s before training', async () => {
    const { b } = batch();
    const plain = new GPT2Classifier(await loadGPT2(TINY_MODEL), { seed: 7 });
    const lora = new GPT2Classifier(await loadGPT2(TINY_MODEL), { layers: 'lora', seed: 7 });
    assertClose(lora.logits(b).dataSync(), plain.logits(b).dataSync(), 'lora vs plain', 1e-6, 1e-5);
    plain.dispose();
    lora.dispose();
  });
});

describe('weight averaging', () => {
  test('the kept weights are the exponential moving average of every step\'s, computed independently', async () => {
    const e = loadExpected();
    const clf = new GPT2Classifier(await loadGPT2(TINY_MODEL), { layers: 'last_block', seed: 5 });
    const examples = [...e.token_ids, ...e.token_ids].map((ids, i) => ({ ids, label: e.labels[i % e.labels.length]! }));
    // The average, step by step in float64, from the weights each step leaves behind.
    let average = Array.from(clf.headWeight.dataSync(), Number);
    let t = 0;
    let last: number[] = [];
    const decay = 0.8;
    const result = trainClassifier(clf, examples, examples.slice(0, 4), {
      epochs: 1, batchSize: 2, evalEvery: 1000, optimizer: { lr: 1e-2 }, averageDecay: decay,
      onProgress: () => {
        t++;
        const d = Math.min(decay, (1 + t) / (10 + t));
        const w = clf.headWeight.dataSync();
        last = Array.from(w, Number);
        average = average.map((a, i) => d * a + (1 - d) * w[i]!);
      },
    });
    assert.equal(t, 6);
    assert.equal(result.bestEpoch, 1);
    assertClose(clf.headWeight.dataSync(), average, 'averaged head weight', 1e-6, 1e-5);
    // ...and not simply the last step's weights.
    assert.ok(Math.max(...last.map((w, i) => Math.abs(w - average[i]!))) > 1e-4);
    clf.dispose();
  });
});

describe('checkpoints', () => {
  test('save → load reproduces the fine-tuned logits, and only the trained tensors are stored', async () => {
    const e = loadExpected();
    const clf = new GPT2Classifier(await loadGPT2(TINY_MODEL));
    const p = padBatch(e.token_ids);
    const b = toTokenBatch(p.ids, p.rows, p.width, p.lengths);
    const opt = new AdamW(clf.trainableVariables(), { lr: 1e-3 });
    const features = clf.frozenFeatures(b);
    for (let i = 0; i < 3; i++) trainStep(clf, opt, features, e.labels);
    const want = clf.logits(b).dataSync();
    const out = join(dir, 'ckpt');
    await saveCheckpoint(out, clf, { maxTokens: 22, labelNames: ['ham', 'spam'] });
    const stored = await SafetensorsFile.open(join(out, 'classifier.safetensors'));
    assert.deepEqual([...stored.tensors.keys()].sort(), [...e.trainable].sort());
    assert.deepEqual(stored.info('head.weight').shape, [2, 32]);
    await stored.close();
    const { classifier, info } = await loadCheckpoint(out);
    assert.equal(info.maxTokens, 22);
    assertClose(classifier.logits(b).dataSync(), want, 'reloaded logits', 1e-6, 1e-6);
    classifier.dispose();
    clf.dispose();
  });

  test('a checkpoint refuses base weights with another hash', async () => {
    const other = await variant('other', (t) => {
      t.get('wte.weight')!.data[0] = 0.5;
    });
    copyFileSync(join(TINY_DIR, 'config.json'), join(other, '..', 'config.json'));
    await assert.rejects(loadCheckpoint(join(dir, 'ckpt'), { basePath: other }), /was trained on base weights/);
  });

  test('memory: classifying does not leak tensors', async () => {
    const clf = new GPT2Classifier(await loadGPT2(TINY_MODEL));
    const e = loadExpected();
    const p = padBatch(e.token_ids);
    const b = toTokenBatch(p.ids, p.rows, p.width, p.lengths);
    clf.logits(b).dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) clf.logits(b).dispose();
    assert.equal(tf.memory().numTensors, before);
    clf.dispose();
  });
});
