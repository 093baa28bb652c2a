/** The daemon's training set: the stable hash split and what a refining run trains on. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { refineSet, splitByHash, trainingSets, type LabelledMessage } from '../../daemon/training/corpus.ts';

const corpus: LabelledMessage[] = Array.from({ length: 2000 }, (_, i) => ({
  text: `corpus message number ${i}`,
  label: i % 2 ? 'spam' : 'ham',
  kind: 'sms',
  origin: 'sms-collection',
}));

test('the split depends only on each text, so a message keeps its side as the data set grows', () => {
  const small = splitByHash(corpus.slice(0, 500), 0.2);
  const large = splitByHash(corpus, 0.2);
  const side = (s: ReturnType<typeof splitByHash>) => {
    const m = new Map<string, string>();
    for (const [name, set] of Object.entries(s)) for (const e of set as LabelledMessage[]) m.set(e.text, name);
    return m;
  };
  const a = side(small);
  const b = side(large);
  for (const [text, name] of a) assert.equal(b.get(text), name, text);
  // Roughly the requested shares (2000 texts: 20% held out, 10% validation).
  assert.ok(Math.abs(large.heldOut.length - 400) < 60, `held out: ${large.heldOut.length}`);
  assert.ok(Math.abs(large.validation.length - 200) < 50, `validation: ${large.validation.length}`);
});

test("a person's label overrides the corpus label of the same text, and duplicates count once", () => {
  const text = corpus[7]!.text;
  const split = splitByHash([...corpus, { text, label: 'ham', kind: 'sms', origin: 'correction' }, corpus[7]!], 0.2);
  const all = [...split.train, ...split.validation, ...split.heldOut];
  const same = all.filter((e) => e.text === text);
  assert.equal(same.length, 1);
  assert.deepEqual({ label: same[0]!.label, origin: same[0]!.origin }, { label: 'ham', origin: 'correction' });
  assert.equal(all.length, corpus.length);
});

test('a refining run trains on every new label plus a fixed-seed replay of the rest', () => {
  const fresh: LabelledMessage[] = Array.from({ length: 30 }, (_, i) => ({ text: `new label ${i}`, label: 'spam', kind: 'sms', origin: 'correction', fresh: true }));
  const train = [...corpus.slice(0, 1000), ...fresh];
  const set = refineSet(train, 4, 'refine:2');
  assert.equal(set.filter((e) => e.fresh).length, 30, 'every new label');
  assert.equal(set.length, 30 + 120, 'four replayed examples per new label');
  assert.equal(new Set(set.map((e) => e.text)).size, set.length, 'no example twice');
  assert.deepEqual(refineSet(train, 4, 'refine:2'), set, 'same seed, same set');
  assert.notDeepEqual(refineSet(train, 4, 'refine:3'), set, 'another run replays other examples');
  // A handful of new labels still replays at least a minimum; the replay never exceeds what there is.
  assert.equal(refineSet([...corpus.slice(0, 1000), fresh[0]!], 4, 's').length, 1 + 64);
  assert.equal(refineSet([...corpus.slice(0, 10), ...fresh], 4, 's').length, 30 + 10);
});

test('training sets: a balanced, capped sample trains; everything else of a corpus is held out, never trained on', () => {
  // An unbalanced corpus like the real ones: 1600 ham, 400 spam.
  const rows: LabelledMessage[] = Array.from({ length: 2000 }, (_, i) => ({ text: `sms ${i}`, label: i % 5 === 0 ? 'spam' : 'ham', kind: 'sms', origin: 'sms-collection' }));
  const personal: LabelledMessage[] = Array.from({ length: 50 }, (_, i) => ({ text: `mine ${i}`, label: 'ham', kind: 'other', origin: 'correction' }));
  const sets = trainingSets([...rows, ...personal], { maxPerCorpus: 300, maxHeldOutPerCorpus: 10_000 }, 0.2);
  const corpusTrain = sets.train.filter((e) => e.origin === 'sms-collection');
  assert.equal(corpusTrain.length, 300);
  assert.equal(corpusTrain.filter((e) => e.label === 'spam').length, 150, 'balanced');
  assert.equal(sets.validation.filter((e) => e.origin === 'sms-collection').length, Math.ceil(300 / 7));
  // Held out: every corpus row not trained or validated on, with the corpus's natural share of ham.
  const used = new Set([...sets.train, ...sets.validation].map((e) => e.text));
  const heldCorpus = sets.heldOut.filter((e) => e.origin === 'sms-collection');
  assert.equal(heldCorpus.length, 2000 - 300 - Math.ceil(300 / 7));
  assert.ok(heldCorpus.every((e) => !used.has(e.text)));
  assert.ok(heldCorpus.filter((e) => e.label === 'ham').length > 3 * heldCorpus.filter((e) => e.label === 'spam').length);
  // A person's labels all count, each on the side its hash puts it.
  const split = splitByHash(personal, 0.2);
  assert.deepEqual(sets.heldOut.filter((e) => e.origin === 'correction').map((e) => e.text).sort(), split.heldOut.map((e) => e.text).sort());
  assert.equal([...sets.train, ...sets.validation, ...sets.heldOut].filter((e) => e.origin === 'correction').length, 50);
  // The cap keeps the hash-held-out part first.
  const capped = trainingSets(rows, { maxPerCorpus: 300, maxHeldOutPerCorpus: 100 }, 0.2);
  const hashHeldOut = new Set(splitByHash(rows, 0.2).heldOut.map((e) => e.text));
  assert.equal(capped.heldOut.length, 100);
  assert.ok(capped.heldOut.every((e) => hashHeldOut.has(e.text)));
});

test('training sets: a corpus text a person relabels leaves the sample without pushing a trained example into the held-out set', () => {
  const rows: LabelledMessage[] = Array.from({ length: 1500 }, (_, i) => ({ text: `mail ${i}`, label: i % 3 === 0 ? 'spam' : 'ham', kind: 'email', origin: 'spamassassin' }));
  const sizes = { maxPerCorpus: 400, maxHeldOutPerCorpus: 10_000 };
  const before = trainingSets(rows, sizes, 0.2);
  const trainedBefore = new Set(before.train.map((e) => e.text));
  // The user relabels ten texts that were in the training sample and ten that were held out.
  const relabelled = [...before.train.slice(0, 10), ...before.heldOut.slice(0, 10)].map((e) => ({ ...e, label: 'ham' as const, origin: 'correction' as const }));
  const after = trainingSets([...rows, ...relabelled], sizes, 0.2);
  const leaked = after.heldOut.filter((e) => e.origin === 'spamassassin' && trainedBefore.has(e.text));
  assert.deepEqual(leaked, [], 'held-out examples were never trained on by the earlier model');
});
