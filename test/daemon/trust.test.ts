/**
 * Verdicts a person can trust, measured as spam filters are measured: the real daemon with its default
 * configuration, offline (so the small from-scratch model), on a fresh home whose SMS corpus is the shared collection
 * minus held-back messages. Unseen data then goes through the real connectors: the held-back texts as an SMS Backup &
 * Restore export dropped into the watched folder, and SpamAssassin mails the daemon neither trained on nor calibrated
 * on delivered to a real Dovecot INBOX. Of each kind, at most 1% of the unseen ham may be flagged as spam and at least
 * 60% of the unseen spam must be caught; the daemon's own held-out figures are printed beside them.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ImapFlow } from 'imapflow';
import { spamAssassin, splitPoint, trainingSets } from '../../daemon/training/corpus.ts';
import { loadConfig } from '../../daemon/config.ts';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';
import type { MessageView } from '../../daemon/views.ts';
import { startDovecot, type DovecotServer } from '../helpers/dovecot.ts';
import { backupXml, loadUci, type SmsSpec } from '../connectors/sms-fixtures.ts';

interface KindFigures { nHam: number; nSpam: number; hamFlagged: number; spamCaught: number; hamLoss: number; spamMissed: number; oneMinusRocaPercent: number; summary: string }

const HELD_BACK_HAM = 1000;
const HELD_BACK_SPAM = 150;
const MAIL_HAM = 500;
const MAIL_SPAM = 200;

let server: DovecotServer;
let d: RunningDaemon;
let imap: ImapFlow;
const truth = new Map<string, 'ham' | 'spam'>(); // the IMAP connector's externalId (UIDVALIDITY:UID) → the corpus label

// The held-back texts: chosen by a hash of the text, so the choice does not follow the file's order.
const uci = loadUci();
const rank = (text: string) => splitPoint(`held back\n${text}`);
const byRank = [...uci].sort((a, b) => rank(a.text) - rank(b.text));
const heldBack = [...byRank.filter((r) => r.label === 'ham').slice(0, HELD_BACK_HAM), ...byRank.filter((r) => r.label === 'spam').slice(0, HELD_BACK_SPAM)];
const heldBackTexts = new Set(heldBack.map((r) => r.text));

before(async () => {
  const home = mkdtempSync(join(tmpdir(), 'gptspam-trust-'));
  const corpus = join(home, 'SMSSpamCollection-minus-held-back');
  writeFileSync(corpus, uci.filter((r) => !heldBackTexts.has(r.text)).map((r) => `${r.label}\t${r.text}`).join('\n'));
  server = await startDovecot();
  // The user once wrote to a friend: the daemon reads the Sent mailbox when it first connects.
  const owner = new ImapFlow({ host: server.host, port: server.port, secure: false, auth: { user: server.user, pass: server.password }, logger: false });
  await owner.connect();
  await owner.append('Sent', Buffer.from('From: me@example.org\r\nTo: My Friend <friend@example.org>\r\nSubject: hello\r\nMessage-ID: <sent-1@test>\r\n\r\nhow are you?\r\n'));
  await owner.logout();
  // The default configuration; only what a user must say is set: their mailbox and their copy of the SMS corpus.
  const config = {
    training: { smsCollectionFile: corpus },
    imap: { accounts: [{ name: 'me', host: server.host, port: server.port, secure: 'none', user: server.user, password: server.password }], pollSeconds: 5 },
  };
  writeFileSync(join(home, 'config.json'), JSON.stringify(config));
  // Offline: the GPT-2 download fails at once (nothing listens there), so the daemon trains its small model.
  d = await startDaemon({ home, env: { HF_ENDPOINT: 'http://127.0.0.1:9' }, readyTimeoutMs: 30 * 60_000 });
  imap = new ImapFlow({ host: server.host, port: server.port, secure: false, auth: { user: server.user, pass: server.password }, logger: false });
  await imap.connect();
  await d.waitFor('the IMAP connector', async () => (/"account":"me"[^\n]*connector connected/.test(d.output()) ? true : undefined), 120_000);
});

after(async () => {
  await imap?.logout().catch(() => undefined);
  if (d && d.proc.exitCode === null) await d.stop();
  await server?.stop();
});

test('with the default configuration, unseen ham is flagged at most 1% and unseen spam caught at least 60%, per kind', async () => {
  const models = await d.api<{ current: number; models: Array<{ version: number; base: string; calibration: { kinds: Record<string, KindFigures> } }> }>('GET', '/api/models');
  const model = models.models.find((m) => m.version === models.current)!;
  assert.match(model.base, /^scratch-/, 'offline: the from-scratch model');

  // E-mail the daemon neither trained, validated nor calibrated on: the same selection the daemon made.
  const config = await loadConfig(d.home, {});
  const mail = await spamAssassin(mkdtempSync(join(tmpdir(), 'gptspam-sa-')));
  const sets = trainingSets(mail, config.training, config.training.heldOutFraction);
  const seen = new Set([...sets.train, ...sets.validation, ...sets.heldOut].map((e) => e.text));
  const unseen = mail.filter((e) => !seen.has(e.text)).sort((a, b) => rank(a.text) - rank(b.text));
  const pick = [...unseen.filter((e) => e.label === 'ham').slice(0, MAIL_HAM), ...unseen.filter((e) => e.label === 'spam').slice(0, MAIL_SPAM)];
  assert.equal(pick.length, MAIL_HAM + MAIL_SPAM, `${unseen.length} unseen e-mails`);
  // Delivered as the e-mails they came from (subject and sender from the model text's first lines).
  for (const [i, e] of pick.entries()) {
    const [head, ...rest] = e.text.split('\n\n');
    const subject = /^Subject: (.*)$/m.exec(head ?? '')?.[1] ?? '';
    const from = /^From: (.*)$/m.exec(head ?? '')?.[1] ?? 'unknown@example.org';
    const body = rest.join('\n\n') || head || '';
    const raw = `From: ${from}\r\nTo: me@example.org\r\nSubject: ${subject}\r\nMessage-ID: <trust-${i}@test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body.replace(/\r?\n/g, '\r\n')}\r\n`;
    const appended = await imap.append('INBOX', Buffer.from(raw));
    assert.ok(appended && appended.uid !== undefined, 'the server reports the UID (UIDPLUS)');
    truth.set(`${appended.uidValidity}:${appended.uid}`, e.label); // the connector's externalId
  }

  // The held-back texts as a phone backup, dropped into the watched folder.
  const specs: SmsSpec[] = heldBack.map((r, i) => ({ kind: 'sms', address: `+4477009${String(10_000 + i).padStart(5, '0')}`, date: Date.UTC(2024, 1, 1) + i * 60_000, type: 1, body: r.text }));
  const folder = join(d.home, 'inbox', 'sms');
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'backup.xml.part'), backupXml(specs)); // a partial name is not picked up
  renameSync(join(folder, 'backup.xml.part'), join(folder, 'backup.xml'));

  const sms = await d.waitFor('the SMS backup to be scored', async () => {
    const list = await d.messages('source=sms');
    return list.length >= specs.length ? list : undefined;
  }, 15 * 60_000);
  const mails = await d.waitFor('the e-mails to be scored', async () => {
    const list = await d.messages('source=imap');
    return list.length >= pick.length ? list : undefined;
  }, 15 * 60_000);

  // Each held-back text came from its own number: the sender says which one it is.
  const senderLabel = new Map(specs.map((s, i) => [s.address, heldBack[i]!.label]));
  const smsTruth = sms.map((m) => senderLabel.get(m.sender ?? ''));
  const rate = (views: MessageView[], labels: Array<'ham' | 'spam' | undefined>) => {
    const ham = views.filter((_, i) => labels[i] === 'ham');
    const spam = views.filter((_, i) => labels[i] === 'spam');
    const flagged = ham.filter((m) => m.verdict!.label === 'spam').length;
    const caught = spam.filter((m) => m.verdict!.label === 'spam').length;
    const uncertain = [...ham, ...spam].filter((m) => m.verdict!.label === 'uncertain').length;
    return { ham: ham.length, spam: spam.length, flagged, caught, uncertain, hamFlaggedPct: (100 * flagged) / ham.length, spamCaughtPct: (100 * caught) / spam.length };
  };
  const mailTruth = mails.map((m) => truth.get(m.externalId));
  const smsRate = rate(sms, smsTruth);
  const mailRate = rate(mails, mailTruth);
  const cal = model.calibration.kinds;
  const report = {
    model: model.base,
    sms: { unseen: smsRate, heldOut: { nHam: cal.sms!.nHam, nSpam: cal.sms!.nSpam, hamFlagged: cal.sms!.hamFlagged, spamCaught: cal.sms!.spamCaught, oneMinusRocaPercent: cal.sms!.oneMinusRocaPercent } },
    email: { unseen: mailRate, heldOut: { nHam: cal.email!.nHam, nSpam: cal.email!.nSpam, hamFlagged: cal.email!.hamFlagged, spamCaught: cal.email!.spamCaught, oneMinusRocaPercent: cal.email!.oneMinusRocaPercent } },
  };
  console.log(`# trust figures: ${JSON.stringify(report)}`);
  assert.equal(smsRate.ham + smsRate.spam, HELD_BACK_HAM + HELD_BACK_SPAM, 'every held-back text matched to its label');
  assert.equal(mailRate.ham + mailRate.spam, MAIL_HAM + MAIL_SPAM, 'every e-mail matched to its label');
  for (const [kind, r] of [['sms', smsRate], ['email', mailRate]] as const) {
    assert.ok(r.hamFlaggedPct <= 1, `${kind}: ${r.flagged} of ${r.ham} unseen ham flagged`);
    assert.ok(r.spamCaughtPct >= 60, `${kind}: ${r.caught} of ${r.spam} unseen spam caught`);
  }
  // Spam verdicts acted on: the flagged e-mails left the inbox, nothing else did.
  const junk = (await imap.status('Junk', { messages: true })) || { messages: -1 };
  assert.equal(junk.messages, mails.filter((m) => m.verdict!.label === 'spam').length);
});

test('a message from someone in the Sent mailbox stays in the INBOX even when the model scores it as spam', async () => {
  // The text of an e-mail the model called spam, now from the friend.
  const caught = (await d.messages('source=imap')).find((m) => m.verdict?.label === 'spam');
  assert.ok(caught, 'some spam was caught');
  const text = (await d.api<{ text: string }>('GET', `/api/messages/${caught.id}`)).text;
  const body = text.split('\n\n').slice(1).join('\n\n');
  const subject = /^Subject: (.*)$/m.exec(text)?.[1] ?? '';
  const appended = await imap.append('INBOX', Buffer.from(`From: My Friend <friend@example.org>\r\nTo: me@example.org\r\nSubject: ${subject}\r\nMessage-ID: <friend-1@test>\r\n\r\n${body.replace(/\r?\n/g, '\r\n')}\r\n`));
  const externalId = `${appended && appended.uidValidity}:${appended && appended.uid}`;
  const m = await d.waitFor('the friend\'s message to be scored', async () => (await d.messages('source=imap')).find((x) => x.externalId === externalId), 120_000);
  const v = (await d.api<{ verdict: { label: string; reason: string; spamProbability: number; thresholds: { spam: number | null } } }>('GET', `/api/messages/${m.id}`)).verdict;
  assert.deepEqual([v.label, v.reason], ['ham', 'known-correspondent']);
  assert.ok(v.thresholds.spam !== null && v.spamProbability >= v.thresholds.spam, `the model scored it ${v.spamProbability}, spam from ${v.thresholds.spam}`);
  const lock = await imap.getMailboxLock('INBOX');
  try {
    const found = await imap.search({ header: { 'message-id': '<friend-1@test>' } }, { uid: true });
    assert.ok(Array.isArray(found) && found.length === 1, 'still in the INBOX');
  } finally {
    lock.release();
  }
});
