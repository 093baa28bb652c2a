/**
 * The real daemon process, driven over HTTP and WebSocket: first start, scoring, corrections, retraining,
 * promotion and rollback, crash (SIGKILL) in the middle of training, clean shutdown, bad configuration.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Store } from '../../daemon/store/index.ts';
import { newHome, startDaemon, TEST_CONFIG, type RunningDaemon } from '../helpers/daemon.ts';
import type { MessageView } from '../../daemon/views.ts';

const BIN = fileURLToPath(new URL('../../bin/gptspam.js', import.meta.url));

interface ModelsAnswer {
  current: number | null;
  models: Array<{ version: number; status: string; corrections: number; comparedWith: { candidateAccuracy: number; currentAccuracy: number | null } | null; metrics: { accuracy: number } | null }>;
}
interface RunView {
  id: number;
  status: string;
  modelVersion: number | null;
  promoted: boolean | null;
  progress: { phase: string } | null;
}

const SPAM = [
  'WINNER!! As a valued network customer you have been selected to receive a £900 prize reward! To claim call 09061701461.',
  'URGENT! You have won a 1 week FREE membership in our £100,000 Prize Jackpot! Txt the word: CLAIM to No: 81010',
  'Free entry in 2 a wkly comp to win FA Cup final tkts 21st May 2005. Text FA to 87121 to receive entry question',
];
const HAM = ['Are we still on for lunch tomorrow at noon?', 'I will be home late tonight, keep dinner warm please', 'Ok lar... Joking wif u oni...'];

let d: RunningDaemon;

before(async () => {
  d = await startDaemon();
});
after(async () => {
  if (d.proc.exitCode === null) await d.stop();
});

test('first start: token created (0600) and printed once, a first model trained, health open, everything else needs the token', async () => {
  const tokenFile = join(d.home, 'token');
  assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
  // stderr is a pipe here, as under a service manager: the file is named, the token itself stays off it.
  assert.ok(d.output().includes(tokenFile), 'the user is told where the new token is');
  assert.ok(!d.output().includes(d.token), 'the token is shown on a terminal only');
  // The token never goes into the structured log lines.
  for (const line of d.output().split('\n').filter((l) => l.startsWith('{'))) assert.ok(!line.includes(d.token), `token in log line: ${line}`);

  const health = (await (await fetch(`${d.url}/api/health`)).json()) as { ready: boolean; modelVersion: number; backend: string };
  assert.equal(health.ready, true);
  assert.equal(health.modelVersion, 1);
  assert.match(health.backend, /wasm/);

  assert.equal((await fetch(`${d.url}/api/messages`)).status, 401);
  assert.equal((await fetch(`${d.url}/api/messages`, { headers: { Authorization: 'Bearer nope' } })).status, 401);
  assert.equal((await d.fetch('/api/messages')).status, 200);

  const models = await d.api<ModelsAnswer>('GET', '/api/models');
  assert.equal(models.current, 1);
  assert.equal(models.models[0]!.status, 'promoted');
  assert.ok(models.models[0]!.metrics!.accuracy > 0.5, 'the first model learned something');
  const runs = await d.api<{ runs: RunView[] }>('GET', '/api/runs');
  assert.equal(runs.runs[0]!.status, 'succeeded');
});

test('scoring: a message is stored with its verdict, broadcast over WebSocket, and never scored twice', async () => {
  const ws = await d.events();
  try {
    const first = await d.api<{ message: MessageView; duplicate: boolean }>('POST', '/api/messages', { body: SPAM[0], sender: '+447700900123', externalId: 'sms-1', kind: 'sms' });
    assert.equal(first.duplicate, false);
    assert.equal(first.message.kind, 'sms');
    const v = first.message.verdict!;
    assert.ok(v.spamProbability >= 0 && v.spamProbability <= 1);
    // The label follows the thresholds calibrated for text messages, which the verdict keeps with its reason.
    assert.equal(v.thresholds.origin, 'calibrated');
    const expected = v.thresholds.spam !== null && v.spamProbability >= v.thresholds.spam ? 'spam' : v.spamProbability < v.thresholds.ham! ? 'ham' : 'uncertain';
    assert.equal(v.label, expected);
    assert.match(v.reason, /threshold|band|calibrated/);
    const event = await ws.waitFor((e) => e.type === 'verdict' && (e.message as MessageView).id === first.message.id, 10_000);
    assert.equal((event.message as MessageView).externalId, 'sms-1');

    // A message of a kind the model never learned (the API's default, 'other') is never spam, only uncertain.
    const other = await d.api<{ message: MessageView }>('POST', '/api/messages', { body: SPAM[1], externalId: 'api-1' });
    assert.equal(other.message.kind, 'other');
    assert.deepEqual([other.message.verdict!.label, other.message.verdict!.reason], ['uncertain', 'kind-not-trained']);

    const again = await d.api<{ message: MessageView; duplicate: boolean }>('POST', '/api/messages', { body: SPAM[0], sender: '+447700900123', externalId: 'sms-1', kind: 'sms' });
    assert.equal(again.duplicate, true);
    assert.equal(again.message.id, first.message.id);

    const detail = await d.api<{ text: string; verdicts: unknown[] }>('GET', `/api/messages/${first.message.id}`);
    assert.match(detail.text, /WINNER!!/);
    assert.equal(detail.verdicts.length, 1);
  } finally {
    ws.close();
  }
});

test('calibration: each kind has held-out thresholds and error rates, shown in status, models and a ROC chart', async () => {
  interface KindView { trainedOn: boolean; nHam: number; nSpam: number; spamThreshold: number | null; hamFlagged: number; spamCaught: number; hamLossBound: number; oneMinusRocaPercent: number; summary: string }
  const models = await d.api<{ models: Array<{ version: number; calibration: { targetHamLoss: number; kinds: Record<string, KindView> } }> }>('GET', '/api/models');
  const cal = models.models.find((m) => m.version === 1)!.calibration;
  assert.equal(cal.targetHamLoss, 0.005);
  for (const kind of ['email', 'sms']) {
    const k = cal.kinds[kind]!;
    assert.equal(k.trainedOn, true, kind);
    // 900 held-out per corpus (the test configuration), most of it ham: enough to certify 0.5% with no errors.
    assert.ok(k.nHam >= 598 && k.nSpam > 0, `${kind}: ${k.nHam} ham, ${k.nSpam} spam held out`);
    assert.ok(k.spamThreshold !== null && k.hamLossBound <= 0.005, `${kind}: bound ${k.hamLossBound}`);
    assert.match(k.summary, new RegExp(`it would have flagged ${k.hamFlagged} of ${k.nHam} ham and caught ${k.spamCaught} of ${k.nSpam} spam`));
  }
  assert.equal(cal.kinds.other!.trainedOn, false);
  const status = await d.api<{ verdicts: { kinds: Record<string, { trainedOn: boolean; thresholds: { origin: string }; summary: string }> } }>('GET', '/api/status');
  assert.equal(status.verdicts.kinds.sms!.thresholds.origin, 'calibrated');
  assert.deepEqual([status.verdicts.kinds.other!.trainedOn, status.verdicts.kinds.other!.thresholds.origin], [false, 'none']);
  assert.match(status.verdicts.kinds.other!.summary, /never called spam, only uncertain/);
  const svg = await d.fetch('/api/models/1/roc.svg');
  assert.equal(svg.status, 200);
  assert.match(await svg.text(), /^<svg[\s\S]*Spam caught[\s\S]*<\/svg>$/);
});

test('the CLI judges texts as the daemon does: the model\'s calibrated thresholds for the kind, with the reason', async () => {
  const dir = join(d.home, 'models', 'versions', 'v1');
  const run = (kind: string) => spawnSync(process.execPath, [BIN, 'classify', '--model', dir, '--kind', kind, '--json', '--backend', 'wasm', SPAM[0]!], { encoding: 'utf8', timeout: 120_000 });
  const other = run('other');
  assert.equal(other.status, 0, other.stderr);
  const o = JSON.parse(other.stdout.trim()) as { label: string; reason: string };
  assert.deepEqual([o.label, o.reason], ['uncertain', 'kind-not-trained']);
  const sms = JSON.parse(run('sms').stdout.trim()) as { label: string; reason: string; spamProbability: number; thresholds: { spam: number | null; ham: number | null; origin: string } };
  assert.equal(sms.thresholds.origin, 'calibrated');
  const expected = sms.thresholds.spam !== null && sms.spamProbability >= sms.thresholds.spam ? 'spam' : sms.spamProbability < sms.thresholds.ham! ? 'ham' : 'uncertain';
  assert.equal(sms.label, expected);
  // The same text the daemon scored as an SMS earlier: the same score and verdict.
  const stored = (await d.api<{ message: MessageView; duplicate: boolean }>('POST', '/api/messages', { body: SPAM[0], sender: '+447700900123', externalId: 'sms-1', kind: 'sms' })).message.verdict!;
  assert.ok(Math.abs(stored.spamProbability - sms.spamProbability) < 1e-4, `daemon ${stored.spamProbability}, CLI ${sms.spamProbability}`);
  assert.equal(stored.label, sms.label);
});

test('known correspondents: their messages are ham whatever the score, the score is kept; the list can be read and edited', async () => {
  const before = await d.api<{ total: number }>('GET', '/api/correspondents');
  const added = await d.api<{ added: number }>('POST', '/api/correspondents', { correspondents: [{ address: '+44 7700 900999', display: 'Mum' }, { address: 'Bob <BOB@example.org>' }] });
  assert.equal(added.added, 2);
  const list = await d.api<{ total: number; correspondents: Array<{ address: string; display: string; origin: string }> }>('GET', '/api/correspondents?q=example');
  assert.deepEqual(list.correspondents.map((c) => [c.address, c.origin]), [['mail:bob@example.org', 'user']]);
  assert.equal((await d.api<{ total: number }>('GET', '/api/correspondents')).total, before.total + 2);

  // The same number written another way, a spammy text: ham, and the model's score is still there.
  const m = await d.api<{ message: MessageView }>('POST', '/api/messages', { body: SPAM[2], sender: '07700 900999', externalId: 'from-mum', kind: 'sms' });
  assert.deepEqual([m.message.verdict!.label, m.message.verdict!.reason], ['ham', 'known-correspondent']);
  assert.ok(m.message.verdict!.spamProbability > 0);
  const mail = await d.api<{ message: MessageView }>('POST', '/api/messages', { body: SPAM[0], sender: '"Bob" <bob@example.org>', subject: 'hi', externalId: 'from-bob', kind: 'email' });
  assert.equal(mail.message.verdict!.reason, 'known-correspondent');

  assert.equal((await d.fetch(`/api/correspondents/${encodeURIComponent('bob@example.org')}`, { method: 'DELETE' })).status, 200);
  assert.equal((await d.fetch(`/api/correspondents/${encodeURIComponent('bob@example.org')}`, { method: 'DELETE' })).status, 404);
  const after = await d.api<{ message: MessageView }>('POST', '/api/messages', { body: SPAM[0], sender: 'bob@example.org', subject: 'hi', externalId: 'from-bob-2', kind: 'email' });
  assert.notEqual(after.message.verdict!.reason, 'known-correspondent');
  const bad = await d.fetch('/api/correspondents', { method: 'POST', body: JSON.stringify({ correspondents: [{ address: '   ' }] }) });
  assert.equal(bad.status, 400);
});

test('bad requests get clear errors and change nothing', async () => {
  const before = await d.api<{ counts: { messages: number } }>('GET', '/api/status');
  const bad = async (method: string, path: string, body: string, status: number, pattern: RegExp) => {
    const res = await d.fetch(path, { method, ...(body ? { body } : {}) });
    assert.equal(res.status, status, `${method} ${path} ${body}`);
    assert.match(((await res.json()) as { error: string }).error, pattern);
  };
  await bad('POST', '/api/messages', '{not json', 400, /not valid JSON/);
  await bad('POST', '/api/messages', '{"sender":"x"}', 400, /body/);
  await bad('POST', '/api/messages/999999/label', '{"label":"spam"}', 404, /no message 999999/);
  await bad('POST', '/api/messages/1/label', '{"label":"maybe"}', 400, /"ham" or "spam"/);
  await bad('POST', '/api/messages/batch', JSON.stringify({ messages: [{ source: 'imap', body: 'x', account: 'a', externalId: '1' }] }), 400, /source/);
  await bad('GET', '/api/nothing', '', 404, /no such route/);
  await bad('POST', '/api/messages', JSON.stringify({ body: 'x'.repeat(2 * 1024 * 1024) }), 413, /larger/);
  const after = await d.api<{ counts: { messages: number } }>('GET', '/api/status');
  assert.equal(after.counts.messages, before.counts.messages);
});

test('search treats the query as text, not SQL or a LIKE pattern', async () => {
  const before = (await d.api<{ counts: { messages: number } }>('GET', '/api/status')).counts.messages;
  await d.api('POST', '/api/messages', { body: 'Discount of 100% today only', externalId: 'pct' });
  await d.api('POST', '/api/messages', { body: "Robert'); DROP TABLE messages;-- says hi", externalId: 'bobby' });
  const pct = await d.api<{ messages: MessageView[] }>('GET', `/api/messages?q=${encodeURIComponent('100%')}`);
  assert.deepEqual(pct.messages.map((m) => m.externalId), ['pct']);
  const underscore = await d.api<{ messages: MessageView[] }>('GET', `/api/messages?q=${encodeURIComponent('_')}`);
  assert.equal(underscore.messages.length, 0);
  const bobby = await d.api<{ messages: MessageView[] }>('GET', `/api/messages?q=${encodeURIComponent("'); DROP TABLE")}`);
  assert.deepEqual(bobby.messages.map((m) => m.externalId), ['bobby']);
  assert.equal((await d.api<{ counts: { messages: number } }>('GET', '/api/status')).counts.messages, before + 2, 'nothing dropped');
});

test('a correction is stored, broadcast, filterable, undoable, and the next run trains on it and reports both accuracies', async () => {
  const ws = await d.events();
  try {
    const ids: number[] = [];
    for (const [i, text] of [...SPAM, ...HAM].entries()) {
      ids.push((await d.api<{ message: MessageView }>('POST', '/api/messages', { body: text, externalId: `c-${i}` })).message.id);
    }
    // The user says the first ham text is spam (a deliberate flip the model cannot have guessed).
    const target = ids[SPAM.length]!;
    const corrected = await d.api<{ message: MessageView }>('POST', `/api/messages/${target}/label`, { label: 'spam' });
    assert.deepEqual(corrected.message.correction && { label: corrected.message.correction.label, origin: corrected.message.correction.origin }, { label: 'spam', origin: 'ui' });
    assert.equal(corrected.message.label, 'spam');
    await ws.waitFor((e) => e.type === 'correction' && (e.message as MessageView).id === target, 10_000);

    const listed = await d.api<{ messages: MessageView[] }>('GET', '/api/messages?corrected=true');
    assert.ok(listed.messages.some((m) => m.id === target));
    // These API messages have no kind the model learned: uncertain, listed for review until settled.
    const review = await d.api<{ messages: MessageView[] }>('GET', '/api/messages?label=uncertain');
    assert.ok(review.messages.some((m) => m.id === ids[1]) && !review.messages.some((m) => m.id === target));

    // Undo = withdraw, then label again; the history keeps all three.
    const undone = await d.api<{ message: MessageView }>('POST', `/api/messages/${target}/label`, { label: null });
    assert.equal(undone.message.correction, null);
    assert.equal(undone.message.label, undone.message.verdict!.label);
    await d.api('POST', '/api/labels', { ids: [target, ids[0]], label: 'spam' });
    const detail = await d.api<{ corrections: Array<{ label: string | null }> }>('GET', `/api/messages/${target}`);
    assert.deepEqual(detail.corrections.map((c) => c.label), ['spam', null, 'spam']);

    const status = await d.api<{ pendingCorrections: number }>('GET', '/api/status');
    assert.ok(status.pendingCorrections >= 4, `pending corrections: ${status.pendingCorrections}`);

    const started = await d.fetch('/api/train', { method: 'POST' });
    assert.equal(started.status, 202);
    const run = ((await started.json()) as { run: RunView }).run;
    assert.equal((await d.fetch('/api/train', { method: 'POST' })).status, 409, 'one run at a time');
    await ws.waitFor((e) => e.type === 'training' && (e.run as RunView).id === run.id && (e.run as RunView).progress?.phase === 'training', 120_000);
    const finished = await ws.waitFor((e) => e.type === 'training' && (e.run as RunView).id === run.id && (e.run as RunView).status === 'succeeded', 180_000);
    const version = (finished.run as RunView).modelVersion!;
    assert.ok(version >= 2);
    const models = await d.api<ModelsAnswer>('GET', '/api/models');
    const created = models.models.find((m) => m.version === version)!;
    assert.equal(created.corrections, 2, 'both current corrections are in its training set');
    // New labels since version 1: the run continues from it instead of starting again from the base.
    const log = (await d.api<{ log: string[] }>('GET', `/api/runs/${run.id}`)).log.join('\n');
    assert.match(log, /2 new since the current model/);
    assert.match(log, /refining version 1: \d new labels \+ \d+ replayed examples, 2 epochs/);
    assert.equal(typeof created.comparedWith!.candidateAccuracy, 'number');
    assert.equal(typeof created.comparedWith!.currentAccuracy, 'number');
    if ((finished.run as RunView).promoted) {
      assert.equal(models.current, version);
      await ws.waitFor((e) => e.type === 'model' && e.current === version, 10_000);
      // New verdicts come from the new version.
      const fresh = await d.api<{ message: MessageView }>('POST', '/api/messages', { body: 'after the retrain', externalId: 'post-retrain' });
      assert.equal(fresh.message.verdict!.modelVersion, version);
    } else {
      assert.equal(created.status, 'rejected');
    }
  } finally {
    ws.close();
  }
});

test('rollback: an older version can be promoted again and scores from then on', async () => {
  await d.api('POST', '/api/models/1/promote');
  const health = (await (await fetch(`${d.url}/api/health`)).json()) as { modelVersion: number };
  assert.equal(health.modelVersion, 1);
  const m = await d.api<{ message: MessageView }>('POST', '/api/messages', { body: 'scored after rollback', externalId: 'rollback' });
  assert.equal(m.message.verdict!.modelVersion, 1);
  assert.equal((await d.fetch('/api/models/99/promote', { method: 'POST' })).status, 404);
});

test('SIGKILL in the middle of training, then restart: nothing stored is lost or duplicated, the run is marked interrupted', async () => {
  const batch = Array.from({ length: 40 }, (_, i) => ({ source: 'sms', account: 'phone.xml', externalId: `k-${i}`, body: `${i % 2 ? SPAM[i % 3] : HAM[i % 3]} #${i}` }));
  const first = await d.api<{ results: Array<{ id: number; duplicate: boolean }> }>('POST', '/api/messages/batch', { messages: batch });
  assert.ok(first.results.every((r) => !r.duplicate));
  const before = await d.api<{ counts: { messages: number; corrected: number } }>('GET', '/api/status');
  const ws = await d.events();
  const run = (await d.api<{ run: RunView }>('POST', '/api/train')).run;
  await ws.waitFor((e) => e.type === 'training' && (e.run as RunView).id === run.id && (e.run as RunView).progress?.phase === 'training', 120_000);
  await d.kill();

  d = await startDaemon({ home: d.home });
  const runs = await d.api<{ runs: RunView[] }>('GET', '/api/runs');
  assert.equal(runs.runs.find((r) => r.id === run.id)!.status, 'interrupted');
  const after = await d.api<{ counts: { messages: number; corrected: number } }>('GET', '/api/status');
  assert.deepEqual(after.counts, { ...before.counts });
  const again = await d.api<{ results: Array<{ id: number; duplicate: boolean }> }>('POST', '/api/messages/batch', { messages: batch });
  assert.ok(again.results.every((r) => r.duplicate), 're-submitted messages are recognised');
  assert.deepEqual(again.results.map((r) => r.id), first.results.map((r) => r.id));
  assert.equal((await d.api<{ counts: { messages: number } }>('GET', '/api/status')).counts.messages, before.counts.messages);
  assert.ok(!d.output().includes('access token was created'), 'a new token is announced only at first start');
});

test('SIGTERM: exits 0 with the database closed cleanly and intact', async () => {
  const code = await d.stop();
  assert.equal(code, 0, d.output().slice(-2000));
  const store = await Store.open(join(d.home, 'gptspam.db'));
  try {
    const check = await store.db.get<{ integrity_check: string }>('PRAGMA integrity_check');
    assert.equal(check?.integrity_check, 'ok');
    assert.ok((await store.messages.counts()).messages > 40);
  } finally {
    await store.close();
  }
});

test('a bad configuration is refused with one line naming the file and the key', () => {
  const home = newHome({ ...TEST_CONFIG, server: { port: 'eighty' }, trainng: {} });
  const r = spawnSync(process.execPath, [BIN, 'serve', '--home', home], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /config\.json: .*server\.port: .*number/);
  assert.match(r.stderr, /trainng: unknown key/);
  writeFileSync(join(home, 'config.json'), '{ "server": ');
  const r2 = spawnSync(process.execPath, [BIN, 'serve', '--home', home], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r2.status, 1);
  assert.match(r2.stderr, /config\.json: not valid JSON/);
  assert.ok(readFileSync(join(home, 'config.json'), 'utf8').startsWith('{'), 'the config file is left as it was');
});
