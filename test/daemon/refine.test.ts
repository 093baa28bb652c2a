/**
 * Re-fine-tuning on a pretrained base (the fixture GPT-2, last block trained on the frozen-trunk cache): a run
 * with new labels continues from the current model; one without new labels trains from the base.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startDaemon, TEST_CONFIG, type RunningDaemon } from '../helpers/daemon.ts';
import { TINY_DIR } from '../helpers/fixture.ts';

interface RunView { id: number; status: string; modelVersion: number | null }

let d: RunningDaemon;

before(async () => {
  const home = mkdtempSync(join(tmpdir(), 'gptspam-home-'));
  // A copy: the daemon caches the weights' hash beside the file, and ../shared is not ours to write.
  mkdirSync(join(home, 'base'));
  for (const f of ['model.safetensors', 'config.json']) copyFileSync(join(TINY_DIR, f), join(home, 'base', f));
  const config = { ...TEST_CONFIG, model: { base: join(home, 'base', 'model.safetensors'), layers: 'last_block', epochs: 1 } };
  // maxTokens stays at its default (128), above the fixture's 64-token context: a refine must still match it.
  writeFileSync(join(home, 'config.json'), JSON.stringify(config));
  d = await startDaemon({ home });
});
after(async () => {
  if (d.proc.exitCode === null) await d.stop();
});

async function train(): Promise<{ run: RunView; log: string }> {
  const ws = await d.events();
  try {
    const run = (await d.api<{ run: RunView }>('POST', '/api/train')).run;
    const done = await ws.waitFor((e) => e.type === 'training' && (e.run as RunView).id === run.id && ['succeeded', 'failed'].includes((e.run as RunView).status), 180_000);
    const log = (await d.api<{ log: string[] }>('GET', `/api/runs/${run.id}`)).log.join('\n');
    assert.equal((done.run as RunView).status, 'succeeded', log);
    return { run: done.run as RunView, log };
  } finally {
    ws.close();
  }
}

test('new labels: the run continues from the current model; no new labels: it trains from the base', async () => {
  const texts = Array.from({ length: 40 }, (_, i) => `message ${i}: ${i % 2 ? 'claim your free prize now, txt WIN to 80086' : 'see you at the station at six'}`);
  const ids: number[] = [];
  for (const [i, body] of texts.entries()) ids.push((await d.api<{ message: { id: number } }>('POST', '/api/messages', { body, externalId: `r-${i}` })).message.id);
  await d.api('POST', '/api/labels', { ids: ids.filter((_, i) => i % 2), label: 'spam' });
  await d.api('POST', '/api/labels', { ids: ids.filter((_, i) => !(i % 2)), label: 'ham' });

  const refined = await train();
  assert.match(refined.log, /40 new since the current model/);
  const m = /refining version 1: (\d+) new labels \+ (\d+) replayed examples, 2 epochs/.exec(refined.log);
  assert.ok(m, refined.log);
  // About 70% of the new labels fall in the training part of the hash split; the rest are judged, not learned.
  assert.ok(Number(m[1]) >= 20 && Number(m[1]) <= 36, `new labels trained on: ${m[1]}`);
  assert.equal(Number(m[2]), Math.max(64, 4 * Number(m[1])));
  assert.match(refined.log, /held-out accuracy: new [\d.]+%?, current [\d.]+/);

  // Nothing new since (promoted by hand, whatever the held-out gate decided): a full run from the base.
  await d.api('POST', `/api/models/${refined.run.modelVersion}/promote`);
  const full = await train();
  assert.match(full.log, /0 new since the current model/);
  assert.doesNotMatch(full.log, /refining/);
});
