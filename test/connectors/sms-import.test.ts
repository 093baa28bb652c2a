/**
 * Importing export files: nothing read is lost when the file turns out to be broken, an import stops between
 * chunks when asked to and a second pass resumes it, and invalid UTF-8 anywhere in a file is counted and reported
 * with its line instead of being replaced silently.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parseCsvExport, parseSmsBackupXml, parseUciTsv, SmsExportError } from '../../connectors/sms/index.ts';
import { importExport } from '../../connectors/sms/import.ts';
import type { IncomingMessage } from '../../daemon/contract.ts';
import { backupHeader, BACKUP_FOOTER, BASE_DATE, loadUci, makeTempDir, smsXml } from './sms-fixtures.ts';

let dir = '';
let cleanup = async (): Promise<void> => {};
before(async () => ({ dir, cleanup } = await makeTempDir()));
after(() => cleanup());

const rows = loadUci();
const csvField = (text: string) => `"${text.replace(/"/g, '""')}"`;

/** A submit that stores like the daemon: by external id, each message once. */
function fakeStore() {
  const stored = new Map<string, IncomingMessage>();
  let calls = 0;
  const submit = async (messages: IncomingMessage[]) => {
    calls++;
    return messages.map((m) => {
      const duplicate = stored.has(m.externalId);
      if (!duplicate) stored.set(m.externalId, m);
      return { duplicate, label: 'ham' };
    });
  };
  return { stored, submit, calls: () => calls };
}

test('a fatal error in a file keeps every message read before it (100 rows, then a 9 MB field)', async () => {
  const path = join(dir, 'huge-field.csv');
  const good = rows.slice(0, 100).map((r, i) => `+4477009${String(i).padStart(5, '0')},${csvField(r.text)}`);
  await writeFile(path, `sender,body\n${good.join('\n')}\n+447700999999,"${'x'.repeat(9 * 1024 * 1024)}"\n`);
  const { stored, submit } = fakeStore();
  await assert.rejects(importExport(path, submit), (err: unknown) => {
    assert.ok(err instanceof SmsExportError);
    assert.match(err.message, /100 rows were read before it/);
    return true;
  });
  assert.equal(stored.size, 100, 'all 100 good rows were handed over, not just the full chunks');
  assert.deepEqual([...stored.values()].map((m) => m.body), rows.slice(0, 100).map((r) => r.text));
});

test('an import stops between chunks when its signal is aborted, and a second pass stores the rest, each once', async () => {
  const n = 1000;
  const path = join(dir, 'big.xml');
  const specs = Array.from({ length: n }, (_, i) => ({ kind: 'sms' as const, address: `+4477001${String(i % 300).padStart(4, '0')}`, date: BASE_DATE + i * 1000, type: 1 as const, body: rows[i % rows.length]!.text }));
  await writeFile(path, backupHeader(n) + specs.map(smsXml).join('') + BACKUP_FOOTER);
  const store = fakeStore();
  const stop = new AbortController();
  const first = await importExport(path, async (messages) => {
    const answers = await store.submit(messages);
    if (store.calls() === 3) stop.abort(); // a shutdown arrives while the third chunk is being scored
    return answers;
  }, { signal: stop.signal });
  assert.equal(first.stopped, true);
  assert.equal(store.calls(), 3, 'no chunk after the stop');
  assert.equal(store.stored.size, 3 * 64);
  assert.equal(first.summary.finished, false);

  const second = await importExport(path, store.submit);
  assert.equal(second.stopped, false);
  assert.equal(second.duplicates, 3 * 64, 'what the first pass stored is recognised, not scored again');
  assert.equal(second.scored, n - 3 * 64);
  assert.equal(store.stored.size, n);
});

test('invalid UTF-8 after the first 8 KiB is counted and reported with its line, in every format', async () => {
  const latin1 = Buffer.from([0x43, 0x61, 0x66, 0xe9]); // "Café" in Latin-1: 0xE9 is not UTF-8
  const lines = rows.slice(0, 200).map((r) => r.text.replace(/[\r\n]/g, ' '));
  const badAt = 150; // 0-based message index, far past 8 KiB
  const build = (prefix: string, row: (text: string, i: number) => string) => {
    const parts: Buffer[] = [Buffer.from(prefix)];
    lines.forEach((text, i) => {
      parts.push(Buffer.from(row(text, i)));
      if (i === badAt) parts.push(Buffer.concat([latin1, Buffer.from(' au lait\n')]));
    });
    return Buffer.concat(parts);
  };
  // The bad bytes sit on their own line: line numbers are 1 (header) + index + 1.
  const csv = build('sender,body\n', (t, i) => `+44${i},${csvField(t)}\n`);
  const tsv = build('', (t) => `ham\t${t}\n`);
  const xml = Buffer.concat([
    Buffer.from(backupHeader(lines.length)),
    build('', (t, i) => smsXml({ kind: 'sms', address: `+44${i}`, date: BASE_DATE + i, type: 1, body: t })),
    Buffer.from(BACKUP_FOOTER),
  ]);
  const badLine = (bytes: Buffer) => bytes.subarray(0, bytes.indexOf(latin1)).toString('latin1').split('\n').length;
  assert.ok(csv.indexOf(latin1) > 8192 && tsv.indexOf(latin1) > 8192 && xml.indexOf(latin1) > 8192);

  for (const [name, bytes, parse] of [
    ['csv', csv, parseCsvExport],
    ['tsv', tsv, parseUciTsv],
    ['xml', xml, parseSmsBackupXml],
  ] as const) {
    // Small chunks, so multi-byte characters (emoji in the texts) are split across chunk boundaries too.
    const chunks = (async function* () {
      for (let at = 0; at < bytes.length; at += 1000) yield bytes.subarray(at, at + 1000);
    })();
    const gen = parse(chunks, { fileName: name });
    const bodies: string[] = [];
    let next = await gen.next();
    while (next.done !== true) {
      bodies.push(next.value.body);
      next = await gen.next();
    }
    const report = next.value;
    const utf8 = report.errors.filter((e) => /invalid UTF-8/.test(e.message));
    assert.equal(utf8.length, 1, `${name}: ${JSON.stringify(report.errors)}`);
    assert.equal(utf8[0]!.line, badLine(bytes), `${name}: the line of the bad byte`);
    assert.match(utf8[0]!.message, /1 byte sequence replaced/);
    // The rest decodes exactly: every text, emoji included, arrives intact.
    for (const text of lines) assert.ok(bodies.some((b) => b === text), `${name}: ${text.slice(0, 30)}`);
  }
});

test('U+FFFD written in a valid file is text, not an error', async () => {
  const text = `ham\tthe app showed \uFFFD\uFFFD instead of emoji\n`;
  const gen = parseUciTsv((async function* () {
    yield Buffer.from('ham\tfiller line\n'.repeat(1000));
    yield Buffer.from(text);
  })());
  let next = await gen.next();
  while (next.done !== true) next = await gen.next();
  assert.equal(next.value.errorCount, 0);
});
