/**
 * "Why is this spam?" through the real daemon: GET /api/messages/:id/explanation answers 202 and computes in a
 * separate process, announces it over WebSocket, then answers 200 from the cache; the weights sum to the margin
 * difference; the margin is the one the verdict came from; errors are clear.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { join } from 'node:path';
import { Store } from '../../daemon/store/index.ts';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';
import type { MessageView } from '../../daemon/views.ts';

interface ExplanationView {
  messageId: number;
  modelVersion: number;
  createdAt: string;
  method: string;
  baseline: string;
  margin: number;
  baselineMargin: number;
  completenessGap: number;
  relativeGap: number;
  converged: boolean;
  quadrature: { rule: string; segments: number; evaluations: number };
  text: string;
  truncated: boolean;
  tokens: Array<{ text: string; weight: number; start: number; end: number }>;
  words: Array<{ text: string; weight: number; start: number; end: number; tokens: [number, number] }>;
  padding: number;
}

let d: RunningDaemon;
before(async () => {
  d = await startDaemon();
});
after(async () => {
  if (d.proc.exitCode === null) await d.stop();
});

test('202 while computing, a WebSocket event when ready, then 200 from the cache: the weights add up to the margin difference', async () => {
  const body = 'WINNER!! <img src=x onerror=alert(1)> Claim your £900 prize, call 09061701461 now';
  const { message } = await d.api<{ message: MessageView }>('POST', '/api/messages', { body, sender: '+447700900123', externalId: 'why-1' });
  const ws = await d.events();
  try {
    const first = await d.fetch(`/api/messages/${message.id}/explanation`);
    assert.equal(first.status, 202);
    assert.deepEqual(await first.json(), { status: 'pending', messageId: message.id, modelVersion: message.verdict!.modelVersion });
    // Asking again while it runs starts nothing new.
    assert.equal((await d.fetch(`/api/messages/${message.id}/explanation`)).status, 202);
    // Scoring goes on meanwhile: the explanation runs in another process.
    const other = await d.api<{ message: MessageView }>('POST', '/api/messages', { body: 'See you at lunch', externalId: 'why-2' });
    assert.ok(other.message.verdict);

    const event = await ws.waitFor((e) => e.type === 'explanation' && e.messageId === message.id, 120_000);
    assert.equal(event.modelVersion, message.verdict!.modelVersion);
    assert.equal(event.error, undefined);
  } finally {
    ws.close();
  }
  const res = await d.fetch(`/api/messages/${message.id}/explanation`);
  assert.equal(res.status, 200);
  const x = (await res.json()) as ExplanationView;
  assert.equal(x.messageId, message.id);
  assert.equal(x.modelVersion, message.verdict!.modelVersion);
  assert.equal(x.method, 'integrated-gradients');
  assert.equal(x.baseline, 'zero-token-embeddings');
  // The margin is the verdict's: spam probability = sigmoid(spam logit − ham logit).
  const p = 1 / (1 + Math.exp(-x.margin));
  assert.ok(Math.abs(p - message.verdict!.spamProbability) < 1e-4, `sigmoid(margin) ${p} vs verdict ${message.verdict!.spamProbability}`);
  // The text is what the model read (the daemon's model text of the message), token by token, hostile markup as text.
  const detail = await d.api<{ text: string }>('GET', `/api/messages/${message.id}`);
  assert.equal(x.tokens.map((t) => t.text).join(''), x.text);
  assert.ok(detail.text.startsWith(x.text));
  assert.ok(x.text.includes('<img src=x onerror=alert(1)>'));
  const total = x.tokens.reduce((s, t) => s + t.weight, 0) + x.padding;
  const delta = x.margin - x.baselineMargin;
  assert.ok(Math.abs(total - delta) <= Math.max(0.05 * Math.abs(delta), 1e-3), `weights sum to ${total}, margin difference ${delta}`);
  assert.ok(x.converged);
  assert.ok(x.words.some((w) => w.text === 'WINNER!!'));

  // Cached: the same stored answer again, at once.
  const again = (await d.api<ExplanationView>('GET', `/api/messages/${message.id}/explanation`));
  assert.equal(again.createdAt, x.createdAt);
  assert.deepEqual(again.tokens, x.tokens);
  // The log says it was computed, with numbers only: no message text.
  const line = d.output().split('\n').find((l) => l.includes('"explanation computed"'));
  assert.ok(line, 'an info line per explanation');
  assert.ok(!line.includes('WINNER'), 'no message content in the log');
  const started = d.output().split('\n').find((l) => l.includes('"explanation process started"'));
  assert.ok(started && JSON.parse(started).pid !== d.proc.pid, 'explanations run in their own process');
});

test('unknown message, unknown version, bad version: clear errors', async () => {
  const unknown = await d.fetch('/api/messages/999999/explanation');
  assert.equal(unknown.status, 404);
  assert.match(((await unknown.json()) as { error: string }).error, /no message 999999/);
  const { message } = await d.api<{ message: MessageView }>('POST', '/api/messages', { body: 'hello there', externalId: 'why-3' });
  const noVersion = await d.fetch(`/api/messages/${message.id}/explanation?version=42`);
  assert.equal(noVersion.status, 404);
  assert.match(((await noVersion.json()) as { error: string }).error, /no model version 42/);
  assert.equal((await d.fetch(`/api/messages/${message.id}/explanation?version=abc`)).status, 400);
  assert.equal((await fetch(`${d.url}/api/messages/${message.id}/explanation`)).status, 401);
});

test('a model version that cannot be loaded: the failure is announced and answered with its reason, and the process lives on', async () => {
  // A version whose checkpoint folder is gone (as after a manual clean-up), recorded beside the daemon's own.
  const store = await Store.open(join(d.home, 'gptspam.db'));
  await store.models.insert({
    version: 99, createdAt: new Date().toISOString(), dir: join(d.home, 'models', 'versions', 'gone'), base: 'scratch-tiny', baseHash: 'x',
    trainingSize: 0, corrections: 0, metrics: null, calibration: null, compared: null, status: 'rejected', runId: null,
  });
  await store.close();
  const { message } = await d.api<{ message: MessageView }>('POST', '/api/messages', { body: 'Call now to claim', externalId: 'why-5' });
  const ws = await d.events();
  try {
    assert.equal((await d.fetch(`/api/messages/${message.id}/explanation?version=99`)).status, 202);
    const event = await ws.waitFor((e) => e.type === 'explanation' && e.messageId === message.id, 60_000);
    assert.equal(event.modelVersion, 99);
    assert.match(String(event.error), /classifier\.json/);
  } finally {
    ws.close();
  }
  const failed = await d.fetch(`/api/messages/${message.id}/explanation?version=99`);
  assert.equal(failed.status, 500);
  assert.match(((await failed.json()) as { error: string }).error, /the explanation failed: .*classifier\.json/);
  // The current version is still explained.
  assert.equal((await d.fetch(`/api/messages/${message.id}/explanation`)).status, 202);
});

test('a clean shutdown also ends the explanation process', async () => {
  const { message } = await d.api<{ message: MessageView }>('POST', '/api/messages', { body: 'Txt STOP to 87121 to win', externalId: 'why-4' });
  assert.equal((await d.fetch(`/api/messages/${message.id}/explanation`)).status, 202);
  const started = d.output().split('\n').find((l) => l.includes('"explanation process started"'));
  const pid = JSON.parse(started!).pid as number;
  assert.equal(await d.stop(), 0);
  assert.throws(() => process.kill(pid, 0), /ESRCH/, 'the explanation process is gone');
});
