import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { IncomingMessage } from '../../daemon/contract.ts';
import { parseTimestamp } from '../../connectors/sms/dates.ts';
import {
  detectFormat,
  parseSmsBackupXml,
  readExport,
  SmsExportError,
  type ExportReader,
  type ParsedSms,
  type ReadExportOptions,
} from '../../connectors/sms/index.ts';
import { joinSurrogateRefs, SurrogateRefJoiner } from '../../connectors/sms/surrogates.ts';
import {
  backupXml,
  buildSpecs,
  isIncoming,
  loadUci,
  makeTempDir,
  specBody,
  UCI_PATH,
  type MessageSpec,
} from './sms-fixtures.ts';

let dir = '';
let cleanup = async (): Promise<void> => {};
before(async () => ({ dir, cleanup } = await makeTempDir()));
after(() => cleanup());

async function collect(reader: ExportReader): Promise<IncomingMessage[]> {
  const out: IncomingMessage[] = [];
  for await (const message of reader) out.push(message);
  return out;
}

async function writeFixture(name: string, content: string | Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}

async function read(name: string, content: string, opts: ReadExportOptions = {}): Promise<{ messages: IncomingMessage[]; reader: ExportReader }> {
  const reader = readExport(await writeFixture(name, content), opts);
  return { messages: await collect(reader), reader };
}

/** Rejects with an SmsExportError of this code whose message names the file. */
async function assertExportError(promise: Promise<unknown>, code: string, file: string, pattern: RegExp): Promise<SmsExportError> {
  let caught: unknown;
  await promise.catch((err: unknown) => { caught = err; });
  assert.ok(caught instanceof SmsExportError, `expected SmsExportError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.ok(caught.message.includes(file), `message should name ${file}: ${caught.message}`);
  assert.match(caught.message, pattern);
  return caught;
}

const sender = (s: MessageSpec): string => s.address;

describe('SMS Backup & Restore XML', () => {
  const specs = buildSpecs(loadUci().slice(0, 400));
  const incoming = specs.filter(isIncoming);
  const xml = backupXml(specs);

  it('fixture exercises the escapes the app writes', () => {
    assert.match(xml, /&#55357;&#56832;/, 'emoji as surrogate-pair references');
    assert.match(xml, /&#10;/);
    assert.match(xml, /&amp;lt;#&amp;gt;/, 'UCI texts containing a literal "&lt;#&gt;"');
    assert.match(xml, /&apos;/);
    assert.ok(specs.some((s) => s.kind === 'mms' && s.msgBox === 2), 'a sent MMS');
  });

  it('imports only incoming messages, decoded exactly, with senders and dates', async () => {
    const { messages, reader } = await read('backup.xml', xml);
    const { summary } = reader;
    assert.equal(summary.format, 'sms-backup-xml');
    assert.equal(summary.read, specs.length);
    assert.equal(summary.imported, incoming.length);
    assert.equal(summary.skipped.sent, specs.length - incoming.length);
    assert.deepEqual(summary.errors, []);
    assert.equal(summary.truncated, undefined);
    assert.equal(summary.finished, true);

    assert.deepEqual(messages.map((m) => m.body), incoming.map(specBody));
    assert.deepEqual(messages.map((m) => m.sender), incoming.map(sender));
    assert.deepEqual(messages.map((m) => m.receivedAt?.getTime()), incoming.map((s) => s.date));
    for (const m of messages) {
      assert.equal(m.source, 'sms');
      assert.equal(m.account, 'phone');
      assert.match(m.externalId, /^[0-9a-f]{64}$/);
    }

    const emoji = messages.find((m) => m.body.endsWith(' 😀👍🏽'));
    assert.ok(emoji, 'emoji decoded from surrogate-pair references');
    assert.ok(messages.some((m) => m.body.includes('.\n') && m.body.endsWith('\nSee you 🚀')), 'newlines from &#10;');
    assert.ok(messages.some((m) => m.body.includes('&lt;#&gt;')), 'entity-looking text decoded once, not twice');

    const mms = messages.filter((m) => m.meta?.kind === 'mms');
    assert.equal(mms.length, incoming.filter((s) => s.kind === 'mms').length);
    assert.ok(mms.length > 0);
    for (const m of mms) {
      assert.deepEqual(m.meta?.attachments, ['image/jpeg']);
      assert.notEqual(m.sender, '+447700900000', 'sender is the addr of type 137, not the owner');
    }
    const named = messages.find((m) => m.meta?.contactName !== undefined);
    assert.match(String(named?.meta?.contactName), /^Contact \d+$/);
    assert.ok(messages.every((m) => m.meta?.contactName !== '(Unknown)'));
  });

  it('includes sent messages on request, with recipients instead of a sender', async () => {
    const { messages, reader } = await read('backup-sent.xml', xml, { includeSent: true });
    assert.equal(reader.summary.skipped.sent, 0);
    assert.deepEqual(messages.map((m) => m.body), specs.map(specBody));
    const sent = messages.filter((m) => m.meta?.direction === 'sent');
    assert.equal(sent.length, specs.length - incoming.length);
    assert.ok(sent.some((m) => m.meta?.kind === 'mms'));
    for (const m of sent) {
      assert.equal(m.sender, undefined);
      assert.equal((m.meta?.recipients as string[]).length, 1);
      assert.match((m.meta?.recipients as string[])[0] ?? '', /^\+4477009\d{5}$/);
    }
  });

  it('gives stable ids: equal across parses, kept by a later export, shared with CSV of the same messages', async () => {
    const first = await read('ids-1.xml', xml);
    const second = await read('ids-2.xml', xml);
    const ids = first.messages.map((m) => m.externalId);
    assert.deepEqual(second.messages.map((m) => m.externalId), ids);
    assert.equal(new Set(ids).size, ids.length, 'distinct messages get distinct ids');

    // A later backup holds the same messages plus newer ones.
    const later = [...specs, ...buildSpecs(loadUci().slice(400, 450), 400)];
    const laterIds = new Set((await read('ids-later.xml', backupXml(later))).messages.map((m) => m.externalId));
    assert.ok(ids.every((id) => laterIds.has(id)));
    assert.equal(laterIds.size, later.filter(isIncoming).length);

    // Account and file name do not matter; sender, time and text do.
    const quote = (v: string): string => `"${v.replace(/"/g, '""')}"`;
    const csv = 'sender,date,body\n' +
      incoming.map((s) => [s.address, new Date(s.date).toISOString(), ` ${specBody(s)} `].map(quote).join(',')).join('\n');
    const fromCsv = await read('same-messages.csv', csv);
    assert.deepEqual(fromCsv.messages.map((m) => m.externalId), ids, 'surrounding whitespace is not part of the id');
  });

  it('reads a stream cut into tiny chunks exactly like the file', async () => {
    const bytes = Buffer.from(xml, 'utf8');
    const chunks: Buffer[] = [];
    for (let at = 0, n = 0; at < bytes.length; n++) {
      const size = ((n * 7) % 13) + 1; // splits multi-byte characters and references at every offset
      chunks.push(bytes.subarray(at, at + size));
      at += size;
    }
    const fromStream: ParsedSms[] = [];
    for await (const record of parseSmsBackupXml(Readable.from(chunks), { fileName: 'stream.xml' })) fromStream.push(record);
    const fromFile: ParsedSms[] = [];
    for await (const record of parseSmsBackupXml(await writeFixture('whole.xml', xml))) fromFile.push(record);
    assert.equal(fromFile.length, specs.length);
    assert.deepEqual(fromStream, fromFile);
  });

  it('reads a truncated file up to the last complete message and says where it stopped', async () => {
    const cutIndex = specs.findIndex((s, i) => i > 200 && s.kind === 'sms');
    const at = xml.indexOf(`date="${specs[cutIndex]?.date}"`);
    const elementStart = xml.lastIndexOf('<sms', at);
    const cut = xml.slice(0, elementStart + 40);
    const line = cut.split('\n').length;

    const { messages, reader } = await read('truncated.xml', cut);
    const before = specs.slice(0, cutIndex);
    assert.deepEqual(messages.map((m) => m.body), before.filter(isIncoming).map(specBody));
    const t = reader.summary.truncated;
    assert.ok(t, 'truncation reported');
    assert.equal(t.recordsRead, cutIndex);
    assert.equal(t.line, line);
    assert.equal(t.column, 42, 'two spaces of indentation + 40 characters of the element');
    assert.equal(t.unfinished, `<sms> opened at line ${line}`);
    assert.match(t.message, new RegExp(`line ${line}.*${cutIndex} complete messages read of the ${specs.length}`));
    assert.equal(reader.summary.finished, true);
  });

  it('reports a file cut inside an MMS as an unfinished <mms>', async () => {
    const mmsIndex = specs.findIndex((s, i) => i > 100 && s.kind === 'mms');
    const mmsStart = xml.indexOf(`<mms date="${specs[mmsIndex]?.date}"`);
    const cut = xml.slice(0, xml.indexOf('<addrs>', mmsStart));
    const { messages, reader } = await read('truncated-mms.xml', cut);
    assert.equal(messages.length, specs.slice(0, mmsIndex).filter(isIncoming).length);
    assert.equal(reader.summary.truncated?.unfinished, `<mms> opened at line ${xml.slice(0, mmsStart).split('\n').length}`);
  });

  it('reports an undefined entity with its position and keeps the text', async () => {
    const doc = `<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n<smses count="3">\n` +
      `<sms address="+1555" date="1700000000000" type="1" body="first" />\n` +
      `<sms address="+1555" date="1700000001000" type="1" body="a&nbsp;b" />\n` +
      `<sms address="+1555" date="1700000002000" type="1" body="third" />\n</smses>\n`;
    const { messages, reader } = await read('entity.xml', doc);
    assert.deepEqual(messages.map((m) => m.body), ['first', 'a&nbsp;b', 'third']);
    assert.equal(reader.summary.errorCount, 1);
    const [error] = reader.summary.errors;
    assert.equal(error?.line, 4);
    assert.equal(error?.column, '<sms address="+1555" date="1700000001000" type="1" body="a&nbsp;'.length);
    assert.match(error?.message ?? '', /undefined entity.*kept as written.*<sms> at line 4/);
  });

  it('reports an unpaired surrogate reference and keeps it literally', async () => {
    const doc = `<smses><sms address="+1" date="1700000000000" type="1" body="x &#55357; y" /></smses>`;
    const { messages, reader } = await read('lone-surrogate.xml', doc);
    assert.deepEqual(messages.map((m) => m.body), ['x &#55357; y']);
    assert.equal(reader.summary.errors[0]?.line, 1);
    assert.match(reader.summary.errors[0]?.message ?? '', /malformed character entity/);
  });

  it('refuses a DOCTYPE that declares entities (billion laughs, external entities) without expanding it', async () => {
    let bomb = '<?xml version="1.0"?>\n<!DOCTYPE smses [\n  <!ENTITY lol "lol">\n';
    for (let i = 1; i <= 9; i++) bomb += `  <!ENTITY lol${i} "${`&lol${i === 1 ? '' : i - 1};`.repeat(10)}">\n`;
    bomb += ']>\n<smses count="1"><sms address="+1" date="1700000000000" type="1" body="&lol9;" /></smses>\n';
    const file = await writeFixture('bomb.xml', bomb);
    const rssBefore = process.memoryUsage().rss;
    const reader = readExport(file);
    await assertExportError(collect(reader), 'unsafe-doctype', file, /DOCTYPE declares entities/);
    assert.equal(reader.summary.imported, 0);
    assert.ok(process.memoryUsage().rss - rssBefore < 50 * 2 ** 20, 'nothing was expanded');

    const xxe = await writeFixture('xxe.xml',
      `<!DOCTYPE smses [<!ENTITY x SYSTEM "file:///etc/passwd">]><smses><sms type="1" date="1" body="&x;"/></smses>`);
    await assertExportError(collect(readExport(xxe)), 'unsafe-doctype', xxe, /entities/);

    // A DOCTYPE without declarations is harmless.
    const { messages } = await read('plain-doctype.xml', '<!DOCTYPE smses>\n<smses><sms address="+1" date="1700000000000" type="1" body="ok" /></smses>');
    assert.deepEqual(messages.map((m) => m.body), ['ok']);
  });

  it('rejects XML that is not a message backup, naming the file and the root element', async () => {
    const file = await writeFixture('feed.xml', '<?xml version="1.0"?><rss><channel/></rss>');
    await assertExportError(collect(readExport(file)), 'not-an-export', file, /root element is <rss>/);
    const calls = await writeFixture('calls.xml', '<calls count="0"></calls>');
    await assertExportError(collect(readExport(calls)), 'not-an-export', calls, /call-log backup/);
  });

  it('reads the <allsms> variant written by other backup apps', async () => {
    const doc = '<?xml version="1.0" encoding="UTF-8"?>\n<allsms count="1">\n' +
      '  <sms address="+15550001" time="14 Nov 2023 22:13:20" date="1700000000000" type="1" body="Your code is 123456" read="1" service_center="" name="Bank" />\n' +
      '</allsms>\n';
    const { messages } = await read('super-backup.xml', doc);
    assert.deepEqual(messages.map((m) => [m.sender, m.body, m.receivedAt?.getTime(), m.meta?.contactName]),
      [['+15550001', 'Your code is 123456', 1700000000000, 'Bank']]);
  });

  it('skips drafts and empty messages and counts them', async () => {
    const doc = '<smses count="4">' +
      '<sms address="+1" date="1700000000000" type="3" body="draft" />' +
      '<sms address="+1" date="1700000001000" type="1" body="  " />' +
      '<sms address="+1" date="1700000002000" type="1" body="real" />' +
      '<mms date="1700000003000" msg_box="1" address="+2"><parts><part seq="0" ct="image/png" text="null" data="AAAA"/></parts>' +
      '<addrs><addr address="+2" type="137" charset="106"/></addrs></mms></smses>';
    const { messages, reader } = await read('skips.xml', doc);
    assert.deepEqual(messages.map((m) => m.body), ['real']);
    assert.deepEqual(reader.summary.skipped, { sent: 0, draft: 1, empty: 2, unknownDirection: 0 });
    assert.equal(reader.summary.read, 4);
  });
});

describe('format detection', () => {
  it('detects formats from content, whatever the extension', async () => {
    assert.equal(await detectFormat(await writeFixture('backup.txt', '\uFEFF<?xml version="1.0"?>\n<smses/>')), 'sms-backup-xml');
    assert.equal(await detectFormat(await writeFixture('labelled.csv', 'spam\tWIN NOW\nham\thi\n')), 'uci-tsv');
    assert.equal(await detectFormat(await writeFixture('export.dat', 'from;date;text\n+1;2023-01-01;hi\n')), 'csv');
  });

  it('names the file when it cannot recognise it', async () => {
    const prose = await writeFixture('notes.txt', 'Dear diary\nToday nothing happened\n');
    await assertExportError(collect(readExport(prose)), 'unrecognised-format', prose, /first line "Dear diary"/);
    const empty = await writeFixture('empty.xml', '');
    await assertExportError(collect(readExport(empty)), 'unrecognised-format', empty, /empty/);
    const zip = await writeFixture('backup.zip', Buffer.from([0x50, 0x4b, 0x03, 0x04, 1, 2, 3]));
    await assertExportError(collect(readExport(zip)), 'unrecognised-format', zip, /ZIP archive/);
    const latin1 = await writeFixture('latin1.csv', Buffer.from('from,body\n+1,caf\xe9\n', 'latin1'));
    await assertExportError(collect(readExport(latin1)), 'unrecognised-format', latin1, /not UTF-8/);
    const missing = join(dir, 'does-not-exist.xml');
    await assertExportError(collect(readExport(missing)), 'io', missing, /ENOENT/);
  });
});

describe('CSV', () => {
  it('reads a BOM-prefixed file with custom column names, quoted fields and mixed date styles', async () => {
    const csv = '\uFEFFPhone,Sent At,Message Text,Ignored\r\n' +
      '+441111,1700000000,"Hello, world",x\r\n' +
      '+442222,1700000001234,"She said ""hi""\r\nand left",y\r\n' +
      '\r\n' +
      '+443333,2023-11-14T22:13:20Z,Ünïcödé 😀,z\r\n' +
      '+444444,2023-11-14 23:13:20+01:00,last,w\r\n';
    const { messages, reader } = await read('custom.csv', csv, {
      columns: { sender: 'phone', date: 'sent at', body: 'MESSAGE TEXT' },
    });
    assert.equal(reader.summary.format, 'csv');
    assert.deepEqual(messages.map((m) => m.body), ['Hello, world', 'She said "hi"\r\nand left', 'Ünïcödé 😀', 'last']);
    assert.deepEqual(messages.map((m) => m.sender), ['+441111', '+442222', '+443333', '+444444']);
    assert.deepEqual(messages.map((m) => m.receivedAt?.getTime()), [1700000000000, 1700000001234, 1700000000000, 1700000000000]);
    assert.deepEqual(messages.map((m) => m.meta?.line), [2, 3, 6, 7], 'lines as in a text editor: quoted line breaks and blank lines count');
    assert.equal(reader.summary.errorCount, 0);
  });

  it('finds common column names and the separator by itself', async () => {
    const { messages } = await read('semicolon.csv', 'From;Timestamp;Text\n+1;1700000000000;Win a prize; call now\n');
    assert.deepEqual(messages.map((m) => [m.sender, m.body]), [['+1', 'Win a prize']]);
  });

  it('fails clearly without a body column, naming the file and the columns found', async () => {
    const file = await writeFixture('nobody.csv', 'sender,date,subject\n+1,1700000000,hello\n');
    await assertExportError(collect(readExport(file)), 'missing-column', file, /no message text column.*columns found: "sender", "date", "subject"/);
    const other = await writeFixture('wrong-name.csv', 'sender,text\n+1,hello\n');
    await assertExportError(collect(readExport(other, { columns: { body: 'content' } })), 'missing-column', other, /no column "content".*"sender", "text"/);
  });

  it('skips sent rows, keeps rows with bad dates, and counts problems with their lines', async () => {
    const csv = 'sender,date,body,direction,label\n' +
      '+1,1700000000,in one,received,spam\n' +
      '+2,1700000001,out one,sent,\n' +
      '+3,yesterday,odd date,inbox,ham\n' +
      '+4,1700000003,who knows,sideways,\n' +
      '+5\n';
    const { messages, reader } = await read('directions.csv', csv);
    assert.deepEqual(messages.map((m) => [m.body, m.knownLabel]), [['in one', 'spam'], ['odd date', 'ham']]);
    assert.equal(messages[1]?.receivedAt, undefined);
    assert.equal(reader.summary.skipped.sent, 1);
    assert.equal(reader.summary.skipped.unknownDirection, 1);
    assert.deepEqual(reader.summary.errors.map((e) => e.line), [4, 5, 6]);
    assert.match(reader.summary.errors[0]?.message ?? '', /unreadable date "yesterday"/);
    assert.match(reader.summary.errors[1]?.message ?? '', /unknown direction "sideways"/);
    assert.match(reader.summary.errors[2]?.message ?? '', /no message text/);
  });

  it('reports a file that ends inside a quoted field as truncated, after delivering the complete rows', async () => {
    const { messages, reader } = await read('cut.csv', 'sender,body\n+1,one\n+2,two\n+3,"three is cut off\nin the mid');
    assert.deepEqual(messages.map((m) => m.body), ['one', 'two']);
    assert.equal(reader.summary.truncated?.recordsRead, 2);
    assert.match(reader.summary.truncated?.message ?? '', /quoted field of the row starting at line 4/);
  });
});

describe('UCI SMS Spam Collection TSV', () => {
  it('imports every row of the real collection with its label, text exact', async () => {
    const rows = loadUci();
    const reader = readExport(UCI_PATH);
    const messages = await collect(reader);
    assert.equal(reader.summary.format, 'uci-tsv');
    assert.equal(reader.summary.account, 'phone');
    assert.equal(messages.length, rows.length);
    assert.equal(rows.length, 5574);
    assert.deepEqual(messages.map((m) => m.body), rows.map((r) => r.text));
    assert.deepEqual(messages.map((m) => m.knownLabel), rows.map((r) => r.label));
    assert.equal(messages.filter((m) => m.knownLabel === 'spam').length, 747);
    assert.equal(reader.summary.errorCount, 0);
  });

  it('splits on the first tab only and reports bad rows by line', async () => {
    const tsv = 'spam\tWIN\ta prize\nham\tok\r\nnot a row\nmaybe\tsomething\n\nHAM\tcaps label\n';
    const { messages, reader } = await read('labelled.tsv', tsv);
    assert.deepEqual(messages.map((m) => [m.knownLabel, m.body]), [['spam', 'WIN\ta prize'], ['ham', 'ok'], ['ham', 'caps label']]);
    assert.deepEqual(reader.summary.errors.map((e) => e.line), [3, 4]);
    assert.match(reader.summary.errors[0]?.message ?? '', /no tab/);
    assert.match(reader.summary.errors[1]?.message ?? '', /label "maybe"/);
  });
});

describe('helpers', () => {
  it('joins surrogate-pair references into one of the same length, across any chunk boundary', () => {
    const text = 'a&#55357;&#56832;b&#xD83D;&#xDC4D;&#55356;&#57341; &amp;#55357; &#55357; &#65;';
    const joined = joinSurrogateRefs(text);
    assert.equal(joined.length, text.length);
    assert.equal(joined, 'a&#0000000128512;b&#0000000128077;&#0000000127997; &amp;#55357; &#55357; &#65;');
    for (let cut = 0; cut <= text.length; cut++) {
      const joiner = new SurrogateRefJoiner();
      assert.equal(joiner.push(text.slice(0, cut)) + joiner.push(text.slice(cut)) + joiner.end(), joined, `cut at ${cut}`);
    }
  });

  it('reads epoch seconds, epoch milliseconds and ISO 8601', () => {
    assert.equal(parseTimestamp('1700000000')?.getTime(), 1700000000000);
    assert.equal(parseTimestamp('1700000000123')?.getTime(), 1700000000123);
    assert.equal(parseTimestamp('2023-11-14T22:13:20.5Z')?.getTime(), 1700000000500);
    assert.equal(parseTimestamp('2023-11-14T23:13:20+0100')?.getTime(), 1700000000000);
    assert.equal(parseTimestamp('14/11/2023'), undefined);
    assert.equal(parseTimestamp('soon'), undefined);
  });

  it('reads an export once per reader', async () => {
    const reader = readExport(await writeFixture('once.tsv', 'ham\thi\n'));
    await collect(reader);
    assert.throws(() => reader[Symbol.asyncIterator](), /only once/);
  });
});

// Guard against the fixture drifting from the real file.
it('test data is the real collection', () => {
  assert.equal(readFileSync(UCI_PATH, 'utf8').split('\n').filter(Boolean).length, 5574);
});
