/**
 * Exports can be hundreds of MB: the XML reader must stream. Runs in its own process (node --test gives each
 * file one), so RSS reflects this parse only.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { readExport } from '../../connectors/sms/index.ts';
import { backupHeader, BACKUP_FOOTER, buildSpecs, elementXml, isIncoming, loadUci, makeTempDir } from './sms-fixtures.ts';

const TARGET_BYTES = 200 * 2 ** 20;
const MAX_GROWTH_BYTES = 150 * 2 ** 20;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let dir = '';
let cleanup = async (): Promise<void> => {};
before(async () => ({ dir, cleanup } = await makeTempDir()));
after(() => cleanup());

/** Streams a ~200 MB backup to disk: real texts over and over, an MMS with a 1 MB photo now and then. */
async function writeHugeBackup(path: string): Promise<{ total: number; incoming: number }> {
  const rows = loadUci();
  const sample = buildSpecs(rows);
  const averageBytes = sample.reduce((sum, s) => sum + Buffer.byteLength(elementXml(s)), 0) / sample.length;
  const total = Math.ceil(TARGET_BYTES / averageBytes);
  const out = createWriteStream(path);
  out.write(backupHeader(total));
  let incoming = 0;
  let batch = '';
  for (let i = 0; i < total; i++) {
    const [spec] = buildSpecs([rows[i % rows.length] ?? { label: 'ham', text: 'hi' }], i);
    if (spec === undefined) throw new Error('no spec');
    if (spec.kind === 'mms' && i % 25000 === 5) spec.imageChars = 2 ** 20;
    if (isIncoming(spec)) incoming++;
    batch += elementXml(spec);
    if (batch.length > 2 ** 20) {
      if (!out.write(batch)) await once(out, 'drain');
      batch = '';
    }
  }
  out.end(batch + BACKUP_FOOTER);
  await once(out, 'finish');
  return { total, incoming };
}

it('parses a ~200 MB backup in bounded memory', { timeout: 120_000 }, async () => {
  const path = join(dir, 'huge-backup.xml');
  const started = performance.now();
  const expected = await writeHugeBackup(path);
  const { size } = await stat(path);
  assert.ok(size > 190 * 2 ** 20, `file is ${size} bytes`);
  const generated = performance.now();

  gc();
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  let count = 0;
  let emoji = 0;
  const reader = readExport(path);
  for await (const message of reader) {
    count++;
    if (message.body.endsWith(' 😀👍🏽')) emoji++;
    if (count % 2000 === 0) peak = Math.max(peak, process.memoryUsage().rss);
  }
  peak = Math.max(peak, process.memoryUsage().rss);
  const parsed = performance.now();

  const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MB`;
  console.log(`${mb(size)}, ${expected.total} messages: generated in ${((generated - started) / 1000).toFixed(1)} s, ` +
    `parsed in ${((parsed - generated) / 1000).toFixed(1)} s; RSS baseline ${mb(baseline)}, peak ${mb(peak)}`);
  assert.equal(count, expected.incoming);
  assert.equal(reader.summary.read, expected.total);
  assert.equal(reader.summary.errorCount, 0);
  assert.equal(reader.summary.truncated, undefined);
  assert.ok(emoji > 1000);
  assert.ok(peak - baseline < MAX_GROWTH_BYTES, `RSS grew by ${mb(peak - baseline)} (limit ${mb(MAX_GROWTH_BYTES)})`);
});
