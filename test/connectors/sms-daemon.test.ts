/**
 * SMS exports through the real daemon: `gptspam import` scores a phone backup over HTTP (re-importing a larger
 * backup scores only what is new), a truncated backup imports everything before the cut, and a file dropped into
 * the watched folder is imported without any command. A daemon that is not running gives one clear line.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDaemon, TEST_CONFIG, type RunningDaemon } from '../helpers/daemon.ts';
import { backupXml, buildSpecs, isIncoming, loadUci, specBody } from './sms-fixtures.ts';
import type { MessageView } from '../../daemon/views.ts';

const BIN = fileURLToPath(new URL('../../bin/gptspam.js', import.meta.url));


let d: RunningDaemon;
let work: string;

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    proc.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    proc.on('error', reject);
    proc.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'gptspam-sms-daemon-'));
  d = await startDaemon({ config: { ...TEST_CONFIG, sms: { settleSeconds: 0.5 } } });
});

after(async () => {
  if (d && d.proc.exitCode === null) await d.stop();
  rmSync(work, { recursive: true, force: true });
});

const rows = loadUci();

test('import scores every received message of a backup once; a later, larger backup adds only the new ones', async () => {
  const first = buildSpecs(rows.slice(0, 60));
  const firstFile = join(work, 'sms-2023-11-14.xml');
  writeFileSync(firstFile, backupXml(first));
  const r1 = await runCli(['import', firstFile, '--home', d.home, '--url', d.url]);
  assert.equal(r1.code, 0, r1.stderr);
  const incoming = first.filter(isIncoming);
  assert.match(r1.stdout, new RegExp(`${incoming.length} scored \\(\\d+ spam\\), 0 already known`));

  let stored = await d.messages('source=sms');
  assert.equal(stored.length, incoming.length, 'only received messages are scored without --sent');
  assert.ok(stored.every((m) => m.label === 'ham' || m.label === 'uncertain' || m.label === 'spam'), 'each has a verdict');
  // The model read each message's own text (whitespace tidied), emoji and line breaks intact.
  const squash = (t: string) => t.replace(/\s+/g, ' ').trim();
  const details = await Promise.all(stored.map((m) => d.api<{ text: string }>('GET', `/api/messages/${m.id}`)));
  const storedTexts = new Set(details.map((m) => squash(m.text)));
  for (const s of incoming) assert.ok(storedTexts.has(squash(specBody(s))), `stored with its text: ${specBody(s).slice(0, 40)}`);

  // The next backup from the same phone holds the old messages plus 50 new ones.
  const second = buildSpecs(rows.slice(0, 110));
  const secondFile = join(work, 'sms-2023-12-14.xml');
  writeFileSync(secondFile, backupXml(second));
  const r2 = await runCli(['import', secondFile, '--home', d.home, '--url', d.url]);
  assert.equal(r2.code, 0, r2.stderr);
  const newIncoming = second.slice(60).filter(isIncoming).length;
  assert.match(r2.stdout, new RegExp(`${newIncoming} scored \\(\\d+ spam\\), ${incoming.length} already known`));
  stored = await d.messages('source=sms');
  assert.equal(stored.length, incoming.length + newIncoming, 'no message stored twice');
});

test('a truncated backup imports everything complete before the cut and says where it stopped', async () => {
  const specs = buildSpecs(rows.slice(200, 240), 200);
  const xml = backupXml(specs);
  const cut = xml.indexOf('<sms', xml.length * 0.6); // inside the file, at the start of a later message
  const file = join(work, 'cut-short.xml');
  writeFileSync(file, xml.slice(0, cut + 30));
  const before = (await d.messages('source=sms')).length;
  const r = await runCli(['import', file, '--home', d.home, '--url', d.url]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /truncated/);
  const kept = xml.slice(0, cut);
  const completeBeforeCut = specs.filter((s) => isIncoming(s) && kept.includes(`date="${s.date}"`)).length;
  assert.ok(completeBeforeCut > 10 && completeBeforeCut < specs.filter(isIncoming).length);
  const added = (await d.messages('source=sms')).length - before;
  assert.equal(added, completeBeforeCut, 'every complete message before the cut, none after');
});

test('a backup dropped into the watched folder is imported by the daemon itself', async () => {
  const specs = buildSpecs(rows.slice(300, 330), 300);
  const before = (await d.messages('source=sms')).length;
  // Written under a partial-download name, then renamed, as sync tools do: only the finished file is read.
  const folder = join(d.home, 'inbox', 'sms');
  writeFileSync(join(folder, 'phone.xml.part'), backupXml(specs));
  renameSync(join(folder, 'phone.xml.part'), join(folder, 'phone.xml'));
  const expected = specs.filter(isIncoming).length;
  const end = Date.now() + 30_000;
  while ((await d.messages('source=sms')).length - before < expected) {
    if (Date.now() > end) throw new Error(`dropped backup not imported\n${d.output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  await new Promise((r) => setTimeout(r, 1500)); // a second scan must not import it again
  assert.equal((await d.messages('source=sms')).length - before, expected);
  assert.match(d.output(), /SMS export imported/);
});

test('import against a daemon that is not running fails with one clear line', async () => {
  const file = join(work, 'sms-2023-11-14.xml');
  const r = await runCli(['import', file, '--home', d.home, '--url', 'http://127.0.0.1:9']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /not reachable at http:\/\/127\.0\.0\.1:9/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

test('known correspondents: a text from a contact, or from someone the owner texted (even before the reply), is ham; a stranger\'s is not', async () => {
  const spamText = 'WINNER!! As a valued network customer you have been selected to receive a £900 prize reward! To claim call 09061701461. Claim code KL341. Valid 12 hours only.';
  const t0 = Date.UTC(2024, 0, 5, 9, 0, 0);
  const xml = backupXml([
    { kind: 'sms', address: '+447700111001', date: t0, type: 1, body: `${spamText} (1)`, contactName: 'Aunt May' },
    // This friend's message comes before the owner's first text to them: the export is read for addresses first.
    { kind: 'sms', address: '07700 111002', date: t0 + 1000, type: 1, body: `${spamText} (2)` },
    { kind: 'sms', address: '+44 7700 111002', date: t0 + 2000, type: 2, body: 'who is this?' },
    { kind: 'sms', address: '+447700111003', date: t0 + 3000, type: 1, body: `${spamText} (3)` },
  ]);
  const file = join(work, 'correspondents.xml');
  writeFileSync(file, xml);
  const run = await runCli(['import', file, '--home', d.home, '--url', d.url, '--account', 'phone-2']);
  assert.equal(run.code, 0, run.stderr);
  const byText = async (n: number) => {
    const list = await d.api<{ messages: MessageView[] }>('GET', `/api/messages?q=${encodeURIComponent(`(${n})`)}&source=sms`);
    assert.equal(list.messages.length, 1, `message ${n}`);
    return list.messages[0]!;
  };
  const [contact, friend, stranger] = [await byText(1), await byText(2), await byText(3)];
  assert.deepEqual([contact.label, contact.verdict!.reason], ['ham', 'known-correspondent']);
  assert.deepEqual([friend.label, friend.verdict!.reason], ['ham', 'known-correspondent']);
  assert.notEqual(stranger.verdict!.reason, 'known-correspondent');
  // The model still scored them all; the list says where each address came from.
  assert.ok(contact.verdict!.spamProbability > 0);
  const list = await d.api<{ correspondents: Array<{ address: string; origin: string; display: string }> }>('GET', '/api/correspondents?q=11100');
  assert.deepEqual(list.correspondents.map((c) => [c.address, c.origin, c.display]).sort(), [
    ['tel:700111001', 'sms-contact', 'Aunt May'],
    ['tel:700111002', 'sms-sent', '+44 7700 111002'],
  ]);
});
