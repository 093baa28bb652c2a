/**
 * The SMS watch folder through the real daemon: bad files are reported once, with their reasons (status, log
 * with line numbers) and are not parsed again at the next start; a SIGTERM in the middle of a 20,000-message
 * import ends the process within seconds, and the next start completes the import with every message stored and
 * scored exactly once.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Store } from '../../daemon/store/index.ts';
import { startDaemon, TEST_CONFIG, type RunningDaemon } from '../helpers/daemon.ts';
import { backupHeader, BACKUP_FOOTER, BASE_DATE, backupXml, buildSpecs, isIncoming, loadUci, smsXml } from './sms-fixtures.ts';

interface Status {
  counts: { messages: number };
  imports: { files: number; failed: Array<{ file: string; error: string; at: string }> };
}

const CONFIG = { ...TEST_CONFIG, sms: { settleSeconds: 0.3 } };
const rows = loadUci();
let d: RunningDaemon;

before(async () => {
  d = await startDaemon({ config: CONFIG });
});
after(async () => {
  if (d && d.proc.exitCode === null) await d.stop();
});

const status = () => d.api<Status>('GET', '/api/status');
const logLines = (text: string) => text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
const folder = () => join(d.home, 'inbox', 'sms');

let afterBadFiles = 0;

test('bad export files are reported with their reasons, their good messages kept, and per-record problems logged by line', async () => {
  const before = (await status()).counts.messages;
  const good = buildSpecs(rows.slice(0, 30));
  writeFileSync(join(folder(), 'good.xml'), backupXml(good));
  // 100 good rows, then a field of 9 MB: the file fails, the 100 rows are stored.
  const csvRows = rows.slice(100, 200).map((r, i) => `+447700${String(i).padStart(6, '0')},"${r.text.replace(/"/g, '""')}"`);
  writeFileSync(join(folder(), 'huge-field.csv'), `sender,body\n${csvRows.join('\n')}\n+447700999999,"${'x'.repeat(9 * 1024 * 1024)}"\n`);
  // Latin-1 bytes on line 301 of a UCI file, and a row without a tab on line 5.
  const tsv = rows.slice(300, 600).map((r) => `${r.label}\t${r.text}`);
  tsv[4] = 'this row has no tab';
  writeFileSync(join(folder(), 'latin.tsv'), Buffer.concat([Buffer.from(`${tsv.join('\n')}\n`), Buffer.from([0x68, 0x61, 0x6d, 0x09, 0x43, 0x61, 0x66, 0xe9, 0x0a])]));
  writeFileSync(join(folder(), 'notes.txt'), 'remember to buy milk\n');

  const s = await d.waitFor('4 files handled', async () => {
    const st = await status();
    return st.imports.files === 4 ? st : undefined;
  });
  const failed = new Map(s.imports.failed.map((f) => [f.file.split('/').pop(), f.error]));
  assert.deepEqual([...failed.keys()].sort(), ['huge-field.csv', 'notes.txt']);
  assert.match(failed.get('huge-field.csv')!, /100 rows were read before it/);
  assert.match(failed.get('notes.txt')!, /not a recognised SMS export/);
  // The TSV: its 300 lines less the row without a tab, plus the Latin-1 one; the collection repeats some texts,
  // which are one message (same id).
  const tsvMessages = new Set([...tsv.filter((_, i) => i !== 4).map((l) => l.slice(l.indexOf('\t') + 1).trim()), 'Caf\uFFFD']).size;
  const expected = good.filter(isIncoming).length + 100 + tsvMessages;
  assert.equal(s.counts.messages - before, expected, 'every readable message, including the 100 before the fatal error');

  const problems = logLines(d.output()).filter((l) => l.msg === 'SMS export record problem' && l.file === 'latin.tsv');
  assert.deepEqual(problems.map((p) => p.line).sort((a, b) => Number(a) - Number(b)), [5, 301]);
  assert.match(String(problems.find((p) => p.line === 301)?.problem), /invalid UTF-8/);
  assert.ok(!d.output().includes('this row has no tab'), 'message text stays out of the log');
  afterBadFiles = s.counts.messages;
});

test('SIGTERM during a 20,000-message import ends within 10 s; the next start completes it, each message stored and scored once', async (t) => {
  const n = 20_000;
  const specs = Array.from({ length: n }, (_, i) => ({
    kind: 'sms' as const, address: `+4477002${String(i % 1000).padStart(4, '0')}`, date: BASE_DATE + i * 1000, type: 1 as const, body: rows[i % rows.length]!.text,
  }));
  writeFileSync(join(folder(), 'phone-2023.xml'), backupHeader(n) + specs.map(smsXml).join('') + BACKUP_FOOTER);
  await d.waitFor('the import to be under way', async () => ((await status()).counts.messages - afterBadFiles >= 1000 ? true : undefined));

  const t0 = Date.now();
  const code = await d.stop();
  const seconds = (Date.now() - t0) / 1000;
  assert.equal(code, 0, d.output().slice(-2000));
  t.diagnostic(`SIGTERM to exit: ${seconds.toFixed(1)} s`);
  assert.ok(seconds < 10, `the process ended ${seconds.toFixed(1)} s after SIGTERM`);
  assert.match(d.output(), /stopped by the shutdown/);

  const home = d.home;
  d = await startDaemon({ home });
  const done = await d.waitFor('the import to complete', async () => {
    const st = await status();
    return st.imports.files === 5 && st.counts.messages === afterBadFiles + n ? st : undefined;
  }, 300_000);
  assert.deepEqual(done.imports.failed.map((f) => f.file.split('/').pop()).sort(), ['huge-field.csv', 'notes.txt']);
  // The files handled before the restart were not parsed again: only the interrupted one was imported.
  const imported = logLines(d.output()).filter((l) => l.msg === 'SMS export imported' || l.msg === 'SMS export could not be imported');
  assert.deepEqual(imported.map((l) => l.file), ['phone-2023.xml']);
  assert.equal(imported[0]!.scored as number + (imported[0]!.duplicates as number), n);
  assert.ok((imported[0]!.duplicates as number) >= 1000, 'what was stored before the stop was recognised, not scored again');

  assert.equal(await d.stop(), 0);
  const store = await Store.open(join(home, 'gptspam.db'));
  try {
    const count = async (sql: string) => (await store.db.get<{ n: number }>(sql))!.n;
    assert.equal(await count('SELECT COUNT(*) AS n FROM messages'), afterBadFiles + n);
    assert.equal(await count('SELECT COUNT(*) AS n FROM verdicts'), afterBadFiles + n, 'one verdict per message: none scored twice');
    assert.equal(await count('SELECT COUNT(*) AS n FROM (SELECT text FROM messages GROUP BY source, account, external_id HAVING COUNT(*) > 1)'), 0);
  } finally {
    await store.close();
  }
});
