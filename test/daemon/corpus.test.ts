/** The daemon's training set: the stable hash split and what a refining run trains on. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { refineSet, splitByHash, type LabelledText } from '../../daemon/training/corpus.ts';

const corpus: LabelledText[] = Array.from({ length: 2000 }, (_, i) => ({
  text: `corpus message number ${i}`,
  label: i % 2 ? 'spam' : 'ham',
  origin: 'sms-collection',
}));

test('the split depends only on each text, so a message keeps its side as the data set grows', () => {
  const small = splitByHash(corpus.slice(0, 500), 0.2);
  const large = splitByHash(corpus, 0.2);
  const side = (s: ReturnType<typeof splitByHash>) => {
    const m = new Map<string, string>();
    for (const [name, set] of Object.entries(s)) for (const e of set as LabelledText[]) m.set(e.text, name);
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
  const split = splitByHash([...corpus, { text, label: 'ham', origin: 'correction' }, corpus[7]!], 0.2);
  const all = [...split.train, ...split.validation, ...split.heldOut];
  const same = all.filter((e) => e.text === text);
  assert.equal(same.length, 1);
  assert.deepEqual({ label: same[0]!.label, origin: same[0]!.origin }, { label: 'ham', origin: 'correction' });
  assert.equal(all.length, corpus.length);
});

test('a refining run trains on every new label plus a fixed-seed replay of the rest', () => {
  const fresh: LabelledText[] = Array.from({ length: 30 }, (_, i) => ({ text: `new label ${i}`, label: 'spam', origin: 'correction', fresh: true }));
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
