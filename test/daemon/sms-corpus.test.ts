/**
 * Training on what is scored: without the SMS Spam Collection (offline, nothing installed) the daemon says so in one
 * log line and calls no text message spam; once it can download the collection (here from a local mirror, checked
 * against the original's SHA-256) the next run learns text messages. Thresholds fixed in the configuration win, and
 * known correspondents can be switched off.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { zipSync } from 'fflate';
import { newHome, startDaemon, TEST_CONFIG, type RunningDaemon } from '../helpers/daemon.ts';
import { SMS_COLLECTION } from '../helpers/fixture.ts';
import type { MessageView } from '../../daemon/views.ts';

interface Status { verdicts: { kinds: Record<string, { trainedOn: boolean; summary: string; thresholds: { origin: string } }> } }
interface RunView { id: number; status: string }

const SPAM_TEXT = 'URGENT! You have won a 1 week FREE membership in our £100,000 Prize Jackpot! Txt the word: CLAIM to No: 81010';
const zip = Buffer.from(zipSync({ SMSSpamCollection: new Uint8Array(readFileSync(SMS_COLLECTION)) }));
let mirror: Server;
let mirrorUrl: string;
let requests = 0;
let d: RunningDaemon;
let home: string;

before(async () => {
  mirror = createServer((req, res) => {
    requests++;
    if (req.url === '/sms.zip') res.writeHead(200, { 'Content-Length': zip.length }).end(zip);
    else res.writeHead(404).end();
  });
  await new Promise<void>((ok) => mirror.listen(0, '127.0.0.1', ok));
  mirrorUrl = `http://127.0.0.1:${(mirror.address() as AddressInfo).port}/sms.zip`;
});

after(async () => {
  if (d && d.proc.exitCode === null) await d.stop();
  mirror.closeAllConnections();
  await new Promise<void>((ok) => mirror.close(() => ok()));
});

const config = (training: Record<string, unknown>, verdicts: Record<string, unknown> = {}) => {
  const { smsCollectionFile: _installed, ...rest } = TEST_CONFIG.training;
  return { ...TEST_CONFIG, training: { ...rest, ...training }, verdicts };
};

test('offline without the SMS Spam Collection: one log line says what to do, and text messages are never called spam', async () => {
  // Nothing listens on port 9: the download fails at once, as offline.
  home = newHome(config({ smsCollectionUrl: 'http://127.0.0.1:9/sms.zip' }));
  d = await startDaemon({ home });
  const warnings = d.output().split('\n').filter((l) => l.includes('SMS Spam Collection could not be downloaded'));
  assert.equal(warnings.length, 1, 'one clear line');
  assert.match(warnings[0]!, /gptspam data sms --from FILE/);
  const status = await d.api<Status>('GET', '/api/status');
  assert.equal(status.verdicts.kinds.sms!.trainedOn, false);
  assert.match(status.verdicts.kinds.sms!.summary, /never called spam, only uncertain/);
  assert.equal(status.verdicts.kinds.email!.trainedOn, true, 'e-mail is still learned from the SpamAssassin corpus');
  const m = await d.api<{ message: MessageView }>('POST', '/api/messages', { body: SPAM_TEXT, kind: 'sms', externalId: 'offline-1' });
  assert.deepEqual([m.message.verdict!.label, m.message.verdict!.reason], ['uncertain', 'kind-not-trained']);
  assert.equal(await d.stop(), 0);
});

test('with a mirror, the next run downloads the collection, checks it, and learns text messages; fixed thresholds win', async () => {
  writeFileSync(`${home}/config.json`, JSON.stringify(config(
    { smsCollectionUrl: mirrorUrl },
    // The user fixes the threshold for messages of no kind, and turns the allow list off.
    { thresholds: { other: 0.5 }, knownCorrespondents: false },
  )));
  d = await startDaemon({ home });
  const ws = await d.events();
  try {
    const run = (await d.api<{ run: RunView }>('POST', '/api/train')).run;
    const done = await ws.waitFor((e) => e.type === 'training' && (e.run as RunView).id === run.id && ['succeeded', 'failed'].includes((e.run as RunView).status), 300_000);
    const log = (await d.api<{ log: string[] }>('GET', `/api/runs/${run.id}`)).log.join('\n');
    assert.equal((done.run as RunView).status, 'succeeded', log);
    assert.match(log, /SMS Spam Collection: 5574 messages/);
    assert.match(d.output(), /SMS Spam Collection downloaded and verified/);
    assert.equal(requests, 1);
    await d.api('POST', `/api/models/${(await d.api<{ models: Array<{ version: number }> }>('GET', '/api/models')).models[0]!.version}/promote`);
  } finally {
    ws.close();
  }
  const status = await d.api<Status>('GET', '/api/status');
  assert.equal(status.verdicts.kinds.sms!.trainedOn, true);
  assert.equal(status.verdicts.kinds.other!.thresholds.origin, 'configured');
  const m = await d.api<{ message: MessageView }>('POST', '/api/messages', { body: SPAM_TEXT, kind: 'sms', externalId: 'online-1' });
  assert.notEqual(m.message.verdict!.reason, 'kind-not-trained');
  assert.equal(m.message.verdict!.thresholds.origin, 'calibrated');
  const other = await d.api<{ message: MessageView }>('POST', '/api/messages', { body: SPAM_TEXT, externalId: 'other-1' });
  assert.equal(other.message.verdict!.thresholds.origin, 'configured');
  assert.deepEqual([other.message.verdict!.thresholds.spam, other.message.verdict!.thresholds.ham], [0.5, 0.5]);
  assert.ok(['ham', 'spam'].includes(other.message.verdict!.label), 'a single fixed threshold leaves no uncertain band');
  // The allow list is off: a known address changes nothing.
  await d.api('POST', '/api/correspondents', { correspondents: [{ address: '+447700900555' }] });
  const known = await d.api<{ message: MessageView }>('POST', '/api/messages', { body: SPAM_TEXT, kind: 'sms', sender: '+447700900555', externalId: 'known-1' });
  assert.notEqual(known.message.verdict!.reason, 'known-correspondent');
});
