/**
 * Atomic writes leave the whole new file or the old one, and no temporary files; JSON read through a schema (the
 * checkpoint's classifier.json) is refused with an error naming the file and every wrong field; NaN survives JSON.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { z } from 'zod';
import { readCheckpointInfo, saveCheckpoint } from '../../model/checkpoint.ts';
import { GPT2Classifier } from '../../model/classifier.ts';
import { copyFileAtomic, readJsonFile, writeFileAtomic, writeFileAtomicSync } from '../../model/files.ts';
import { jsonNumber, parseWith } from '../../model/schema.ts';
import { epochPointSchema } from '../../model/train.ts';
import { initGPT2 } from '../../model/weights.ts';
import { useTestBackend } from '../helpers/backend.ts';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'gptspam-files-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** A fresh empty folder per test, so "nothing else is there" can be checked. */
function folder(name: string): string {
  return mkdtempSync(join(dir, `${name}-`));
}

describe('atomic writes', () => {
  test('write strings, bytes, chunk lists and streams whole, replacing the old file, with no temporary file left', async () => {
    const d = folder('write');
    const path = join(d, 'out.txt');
    await writeFileAtomic(path, 'first');
    assert.equal(readFileSync(path, 'utf8'), 'first');
    await writeFileAtomic(path, Buffer.from('second'));
    assert.equal(readFileSync(path, 'utf8'), 'second');
    await writeFileAtomic(path, [new Uint8Array([0x61, 0x62]), new Uint8Array([0x63])]);
    assert.equal(readFileSync(path, 'utf8'), 'abc');
    await writeFileAtomic(path, Readable.from(['x', 'y', 'z']));
    assert.equal(readFileSync(path, 'utf8'), 'xyz');
    writeFileAtomicSync(path, 'sync');
    assert.equal(readFileSync(path, 'utf8'), 'sync');
    assert.deepEqual(readdirSync(d), ['out.txt']);
  });

  test('a write that fails midway keeps the old file and removes its temporary file', async () => {
    const d = folder('fail');
    const path = join(d, 'out.txt');
    writeFileSync(path, 'old');
    async function* broken() {
      yield 'partial new content';
      throw new Error('the source broke');
    }
    await assert.rejects(writeFileAtomic(path, broken()), /the source broke/);
    assert.equal(readFileSync(path, 'utf8'), 'old');
    assert.deepEqual(readdirSync(d), ['out.txt']);
    assert.throws(() => writeFileAtomicSync(join(d, 'missing-folder', 'x'), 'y'), /ENOENT/);
    assert.deepEqual(readdirSync(d), ['out.txt']);
  });

  test('copyFileAtomic copies; a missing source leaves the target and no temporary file', async () => {
    const d = folder('copy');
    writeFileSync(join(d, 'a'), 'content of a');
    await copyFileAtomic(join(d, 'a'), join(d, 'b'));
    assert.equal(readFileSync(join(d, 'b'), 'utf8'), 'content of a');
    await assert.rejects(copyFileAtomic(join(d, 'nope'), join(d, 'b')), /ENOENT/);
    assert.equal(readFileSync(join(d, 'b'), 'utf8'), 'content of a');
    assert.deepEqual(readdirSync(d).sort(), ['a', 'b']);
  });
});

describe('JSON through a schema', () => {
  const schema = z.object({ name: z.string(), sizes: z.array(z.number().int()) });

  test('errors name the file and what is wrong with it', async () => {
    const d = folder('json');
    const path = join(d, 'thing.json');
    await assert.rejects(readJsonFile(path, schema, 'the thing'), (e: Error) => e.message.startsWith(`${path}: cannot read the thing (`) && /ENOENT/.test(e.message));
    writeFileSync(path, '{"name": "x", ');
    await assert.rejects(readJsonFile(path, schema, 'the thing'), (e: Error) => e.message.startsWith(`${path}: cannot read the thing (`) && /JSON/.test(e.message));
    writeFileSync(path, JSON.stringify({ name: 3, sizes: [1, 2.5] }));
    await assert.rejects(readJsonFile(path, schema, 'the thing'), (e: Error) => {
      assert.ok(e.message.startsWith(`${path}: the thing is invalid: `), e.message);
      assert.match(e.message, /name: Invalid input: expected string, received number/);
      assert.match(e.message, /sizes\[1\]: Invalid input: expected int/);
      return true;
    });
    writeFileSync(path, JSON.stringify({ name: 'ok', sizes: [1, 2] }));
    assert.deepEqual(await readJsonFile(path, schema, 'the thing'), { name: 'ok', sizes: [1, 2] });
  });

  test('NaN, written as null by JSON, reads back as NaN; a string does not', () => {
    const point = { epoch: 2, examplesSeen: 80, trainLoss: 0.5, valLoss: NaN, trainAcc: 0.75, valAcc: NaN };
    const back = parseWith(epochPointSchema, JSON.parse(JSON.stringify(point)), 'epoch');
    assert.deepEqual(back, point);
    assert.ok(Number.isNaN(back.valLoss) && Number.isNaN(back.valAcc));
    assert.throws(() => parseWith(jsonNumber, 'NaN', 'a value'), /^Error: a value: \(the whole value\): /);
  });
});

describe('checkpoint description (classifier.json)', () => {
  let ckpt: string;
  before(async () => {
    await useTestBackend();
    const config = { vocabSize: 64, nPositions: 16, nEmbd: 8, nLayer: 1, nHead: 2, layerNormEpsilon: 1e-5 };
    const clf = new GPT2Classifier(initGPT2(config, 7), { layers: 'last_layer' });
    ckpt = join(dir, 'ckpt');
    await saveCheckpoint(ckpt, clf, { maxTokens: 16, labelNames: ['ham', 'spam'], extra: { calibration: { any: 'thing' }, maxPerCorpus: 10 } });
    clf.dispose();
  });

  test('what saveCheckpoint writes reads back, extra as an open record, with no temporary file left', async () => {
    const info = await readCheckpointInfo(ckpt);
    assert.equal(info.base.scratchSeed, 7);
    assert.equal(info.options.layers, 'last_layer');
    assert.deepEqual(info.labelNames, ['ham', 'spam']);
    assert.deepEqual(info.extra, { calibration: { any: 'thing' }, maxPerCorpus: 10 });
    assert.deepEqual(readdirSync(ckpt).sort(), ['classifier.json', 'classifier.safetensors']);
  });

  test('a malformed description is refused with the file and each wrong field named', async () => {
    const path = join(ckpt, 'classifier.json');
    const good = readFileSync(path, 'utf8');
    // any: the test breaks arbitrary fields of the JSON on purpose.
    const edit = (change: (info: Record<string, any>) => void) => {
      const info = JSON.parse(good) as Record<string, any>;
      change(info);
      writeFileSync(path, JSON.stringify(info));
    };
    try {
      edit((i) => {
        i.options.layers = 'everything';
        i.maxTokens = -1;
        delete i.base.config.nHead;
      });
      await assert.rejects(readCheckpointInfo(ckpt), (e: Error) => {
        assert.ok(e.message.startsWith(`${path}: the model description is invalid: `), e.message);
        for (const field of ['options.layers', 'maxTokens', 'base.config.nHead']) assert.ok(e.message.includes(`${field}: `), `${field} in: ${e.message}`);
        return true;
      });
      edit((i) => (i.format = 'gptspam-classifier/0'));
      await assert.rejects(readCheckpointInfo(ckpt), /classifier\.json: the model description is invalid: format: /);
      edit((i) => (i.labelNames = ['only one']));
      await assert.rejects(readCheckpointInfo(ckpt), /labelNames: must name every class/);
      edit((i) => (i.extra = ['not', 'a', 'record']));
      await assert.rejects(readCheckpointInfo(ckpt), /extra: /);
      writeFileSync(path, good.slice(0, 40));
      await assert.rejects(readCheckpointInfo(ckpt), /classifier\.json: cannot read the model description \(/);
    } finally {
      writeFileSync(path, good);
    }
    assert.ok(existsSync(path));
  });
});
