/** Batched scoring: the same logits as one at a time, in the caller's order, with no waiting when idle. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { GPT2Classifier, readHead } from '../../model/classifier.ts';
import { BatchScorer } from '../../model/scorer.ts';
import { loadGPT2 } from '../../model/weights.ts';
import { useTestBackend } from '../helpers/backend.ts';
import { assertClose, loadExpected, TINY_DIR, TINY_MODEL } from '../helpers/fixture.ts';

before(useTestBackend);

test('the scorer resolves to the raw class logits of the reference (tfjs)', async () => {
  const e = loadExpected();
  const head = await readHead(join(TINY_DIR, 'head.safetensors'));
  const clf = new GPT2Classifier(await loadGPT2(TINY_MODEL), {}, head);
  const logits = await new BatchScorer(clf, { maxTokens: 64, batchSize: 4 }).scoreMany(e.texts);
  assertClose(logits.flat(), e.cls_logits_last_real.flat(), 'logits');
  clf.dispose();
});

test('a backlog scored in length-sorted batches gets each text its own logits, in order', async () => {
  const e = loadExpected();
  const clf = new GPT2Classifier(await loadGPT2(TINY_MODEL), { seed: 3 });
  const texts = [...e.texts, '', 'x'.repeat(5000), 'short one'];
  const batched = await new BatchScorer(clf, { maxTokens: 60, batchSize: 4 }).scoreMany(texts);
  const single = new BatchScorer(clf, { maxTokens: 60, batchSize: 1 });
  const alone: number[][] = [];
  for (const t of texts) alone.push(await single.score(t));
  assert.equal(batched.length, texts.length);
  assertClose(batched.flat(), alone.flat(), 'batched vs alone', 1e-5, 1e-5);
  clf.dispose();
});

test('one text on an idle scorer is answered without waiting for a batch to fill', async () => {
  const clf = new GPT2Classifier(await loadGPT2(TINY_MODEL));
  const scorer = new BatchScorer(clf, { maxTokens: 60, batchSize: 64 });
  const t0 = performance.now();
  const p = await scorer.score('Free entry in 2 a wkly comp to win FA Cup final tkts');
  assert.equal(p.length, 2);
  assert.ok(performance.now() - t0 < 2000);
  clf.dispose();
});
