/** The chapter-6 SMS data preparation, on the real UCI file from ../shared, plus CSV I/O and the zip download. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { strToU8, zipSync } from 'fflate';
import {
  balanceByUndersampling,
  downloadSmsCollection,
  SMS_COLLECTION_SHA256,
  parseSmsCollection,
  prepareSmsDataset,
  readLabeledCsv,
  shuffleSplit,
  toLabeled,
  writeLabeledCsv,
  type SmsMessage,
} from '../../model/dataset.ts';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SMS_PATH = resolve(REPO_ROOT, '..', 'shared', 'data', 'SMSSpamCollection');
const haveSms = existsSync(SMS_PATH);
const skipSms = haveSms ? false : `the SMS Spam Collection is missing at ${SMS_PATH} (tests need ../shared beside the repository)`;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gptspam-data-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the real SMS Spam Collection', { skip: skipSms }, () => {
  const raw = haveSms ? readFileSync(SMS_PATH, 'utf8') : '';
  const messages = haveSms ? parseSmsCollection(raw) : [];

  test('parses into 5574 messages, 4827 ham and 747 spam, texts intact', () => {
    assert.equal(messages.length, 5574);
    assert.equal(messages.filter((m) => m.label === 'ham').length, 4827);
    assert.equal(messages.filter((m) => m.label === 'spam').length, 747);
    assert.equal(messages[0]!.text, 'Go until jurong point, crazy.. Available only in bugis n great world la e buffet... Cine there got amore wat...');
    // Quote characters survive (a CSV quote parser would merge lines here and lose messages).
    assert.ok(messages.some((m) => m.text.startsWith('"')));
  });

  test('balancing keeps all 747 spam and 747 sampled ham', () => {
    const balanced = balanceByUndersampling(messages, 123);
    assert.equal(balanced.length, 1494);
    assert.equal(balanced.filter((m) => m.label === 'spam').length, 747);
    const hamTexts = new Set(messages.filter((m) => m.label === 'ham').map((m) => m.text));
    assert.ok(balanced.filter((m) => m.label === 'ham').every((m) => hamTexts.has(m.text)));
  });

  test('splits 1494 into 1045 / 149 / 300 with no message in two splits', () => {
    const split = shuffleSplit(toLabeled(balanceByUndersampling(messages, 123)), { train: 0.7, validation: 0.1 }, 123);
    assert.deepEqual([split.train.length, split.validation.length, split.test.length], [1045, 149, 300]);
    const all = [...split.train, ...split.validation, ...split.test];
    assert.equal(new Set(all).size, 1494);
    assert.ok(all.every((r) => r.label === 0 || r.label === 1));
  });

  test('the same seed gives the same split, another seed a different one', () => {
    const run = (seed: number) => shuffleSplit(toLabeled(balanceByUndersampling(messages, seed)), { train: 0.7, validation: 0.1 }, seed);
    assert.deepEqual(run(123), run(123));
    assert.notDeepEqual(run(123).train, run(124).train);
  });

  test('prepareSmsDataset writes train/validation/test CSVs that read back with the same counts', async () => {
    const out = join(dir, 'sms');
    const c = await prepareSmsDataset({ rawPath: SMS_PATH, outDir: out });
    assert.deepEqual(c.raw, { total: 5574, ham: 4827, spam: 747 });
    assert.deepEqual([c.balanced, c.train, c.validation, c.test], [1494, 1045, 149, 300]);
    const train = await readLabeledCsv(join(out, 'train.csv'));
    const test = await readLabeledCsv(join(out, 'test.csv'));
    assert.equal(train.length, 1045);
    assert.equal((await readLabeledCsv(join(out, 'validation.csv'))).length, 149);
    assert.equal(test.length, 300);
    assert.equal((await readFile(join(out, 'train.csv'), 'utf8')).split('\n')[0], 'Label,Text');
    // Reproducible on disk too: a second run with the same seed writes identical files.
    const again = join(dir, 'sms-again');
    await prepareSmsDataset({ rawPath: SMS_PATH, outDir: again, seed: 123 });
    assert.equal(await readFile(join(again, 'train.csv'), 'utf8'), await readFile(join(out, 'train.csv'), 'utf8'));
  });
});

describe('parseSmsCollection', () => {
  test('tolerates CRLF and a trailing newline, and splits on the first tab only', () => {
    const rows = parseSmsCollection('ham\tfirst\r\nspam\ta\ttab "inside"\r\n');
    assert.deepEqual(rows, [
      { label: 'ham', text: 'first' },
      { label: 'spam', text: 'a\ttab "inside"' },
    ]);
  });

  test('a line without a tab or with an unknown label names the line number', () => {
    assert.throws(() => parseSmsCollection('ham\tok\nspam no tab here\nham\tok', 'sms.txt'), /sms\.txt line 2: no tab/);
    assert.throws(() => parseSmsCollection('ham\tok\nham\tok\neggs\tnot a label'), /line 3: unknown label "eggs"/);
    assert.throws(() => parseSmsCollection(''), /empty/);
  });
});

describe('balance and split', () => {
  const rows: SmsMessage[] = [
    ...Array.from({ length: 10 }, (_, i) => ({ label: 'ham' as const, text: `h${i}` })),
    ...Array.from({ length: 3 }, (_, i) => ({ label: 'spam' as const, text: `s${i}` })),
  ];

  test('undersampling keeps the minority class whole and samples the majority down to its size', () => {
    const b = balanceByUndersampling(rows, 1);
    assert.deepEqual(b.filter((r) => r.label === 'spam').map((r) => r.text), ['s0', 's1', 's2']);
    assert.equal(b.filter((r) => r.label === 'ham').length, 3);
  });

  test('fractions are floored like the chapter and bad fractions are refused', () => {
    const s = shuffleSplit(rows, { train: 0.7, validation: 0.1 }, 1);
    assert.deepEqual([s.train.length, s.validation.length, s.test.length], [9, 1, 3]);
    assert.throws(() => shuffleSplit(rows, { train: 0.8, validation: 0.3 }, 1), /exceed 1/);
    assert.throws(() => shuffleSplit(rows, { train: -0.1, validation: 0.1 }, 1), /train must be between 0 and 1/);
  });
});

describe('labelled CSV files', () => {
  test('a round trip preserves quotes, commas, newlines, tabs and emoji, and multi-class labels', async () => {
    const rows = [
      { label: 0, text: 'He said "hi", then left' },
      { label: 1, text: 'line one\nline two\r\nline three' },
      { label: 2, text: 'emoji 🎉📱 and ünïcödé' },
      { label: 7, text: '' },
      { label: 0, text: '  leading and trailing spaces\t' },
    ];
    const path = join(dir, 'round.csv');
    await writeLabeledCsv(path, rows);
    assert.deepEqual(await readLabeledCsv(path), rows);
  });

  test('headers match in any case and order; extra columns are ignored', async () => {
    const path = join(dir, 'lower.csv');
    await writeFile(path, '\uFEFFid,text,LABEL\n1,"hello, world",1\n2,bye,0\n');
    assert.deepEqual(await readLabeledCsv(path), [
      { label: 1, text: 'hello, world' },
      { label: 0, text: 'bye' },
    ]);
  });

  test('a missing column names the file and the column', async () => {
    const path = join(dir, 'nolabel.csv');
    await writeFile(path, 'Category,Text\n1,hello\n');
    await assert.rejects(readLabeledCsv(path), (err: Error) => err.message.includes(path) && err.message.includes('missing column "Label"'));
    const noText = join(dir, 'notext.csv');
    await writeFile(noText, 'Label,Body\n1,hello\n');
    await assert.rejects(readLabeledCsv(noText), /missing column "Text"/);
  });

  test('a bad label names the row', async () => {
    const path = join(dir, 'badlabel.csv');
    await writeFile(path, 'Label,Text\n0,fine\nspam,not a number\n');
    await assert.rejects(readLabeledCsv(path), (err: Error) => err.message.includes(path) && /row 2 \(line 3\): label "spam"/.test(err.message));
    await writeFile(path, 'Label,Text\n-1,negative\n');
    await assert.rejects(readLabeledCsv(path), /row 1.*label "-1" is not a non-negative integer/);
  });

  test('a missing file or an empty one gives an error naming it', async () => {
    await assert.rejects(readLabeledCsv(join(dir, 'nope.csv')), /nope\.csv.*ENOENT/);
    const empty = join(dir, 'empty.csv');
    await writeFile(empty, '');
    await assert.rejects(readLabeledCsv(empty), /empty\.csv: empty file/);
  });
});

describe('downloadSmsCollection', () => {
  const collection = 'ham\tHi there\nspam\tWIN a "FREE" prize, now!\nham\tok';
  const zip = Buffer.from(zipSync({ SMSSpamCollection: strToU8(collection), readme: strToU8('UCI readme') }));
  let server: ReturnType<typeof createServer>;
  let base: string;

  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/static/public/228/sms+spam+collection.zip') res.writeHead(200, { 'Content-Length': zip.length }).end(zip);
      else if (req.url === '/notzip') res.writeHead(200).end('<html>maintenance</html>');
      else if (req.url === '/wrongzip') res.writeHead(200).end(Buffer.from(zipSync({ other: strToU8('x') })));
      else res.writeHead(404).end();
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((ok) => server.close(() => ok()));
  });

  test('downloads the zip, extracts SMSSpamCollection, checks its SHA-256 and removes the zip', async () => {
    const dest = join(dir, 'dl');
    const sha256 = createHash('sha256').update(collection).digest('hex');
    const got = await downloadSmsCollection({ url: `${base}/static/public/228/sms+spam+collection.zip`, destDir: dest, expectedSha256: sha256 });
    assert.equal(got.path, join(dest, 'SMSSpamCollection'));
    assert.equal(await readFile(got.path, 'utf8'), collection);
    assert.equal(got.messages, 3);
    assert.equal(got.sha256, sha256);
    assert.equal(got.zipSha256, createHash('sha256').update(zip).digest('hex'));
    assert.ok(!existsSync(join(dest, 'sms+spam+collection.zip')));
    const prepared = await prepareSmsDataset({ rawPath: got.path, outDir: dest });
    assert.deepEqual([prepared.balanced, prepared.train + prepared.validation + prepared.test], [2, 2]);
  });

  test('a collection that is not the original file is refused and not installed', async () => {
    // Without an expected hash, the original collection's is required: this little one is not it.
    const dest = join(dir, 'tampered');
    await assert.rejects(
      downloadSmsCollection({ url: `${base}/static/public/228/sms+spam+collection.zip`, destDir: dest }),
      new RegExp(`not the expected file \\(SHA-256 ${createHash('sha256').update(collection).digest('hex')}, expected ${SMS_COLLECTION_SHA256}\\)`),
    );
    assert.ok(!existsSync(join(dest, 'SMSSpamCollection')));
  });

  test('a page that is not a zip, a zip without the file, or a 404 give clear errors', async () => {
    await assert.rejects(downloadSmsCollection({ url: `${base}/notzip`, destDir: join(dir, 'e1') }), /notzip is not a readable zip/);
    await assert.rejects(downloadSmsCollection({ url: `${base}/wrongzip`, destDir: join(dir, 'e2') }), /has no SMSSpamCollection \(it holds: other\)/);
    await assert.rejects(downloadSmsCollection({ url: `${base}/gone.zip`, destDir: join(dir, 'e3') }), /HTTP 404.*gone\.zip/);
  });
});
