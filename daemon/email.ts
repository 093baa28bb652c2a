/**
 * Raw RFC 5322 e-mail → the fields the classifier and the UI use. Used by the IMAP connector and for
 * training data. The input is attacker-written: it never throws, bounds the work it does, and says in
 * `problems` what was wrong instead.
 */
import { simpleParser, type ParsedMail } from 'mailparser';

export interface ParsedEmail {
  messageId?: string;
  date?: Date;
  /** The From header as displayed: `"Name" <address>` (the display name is part of what spam fakes). */
  sender?: string;
  subject?: string;
  /** Plain text: the text/plain parts, else the HTML turned into text. '' when there is none. */
  body: string;
  hadHtml: boolean;
  /** Attachments seen (their content is ignored). */
  attachments: number;
  /** Bytes of the raw input. */
  size: number;
  /** The body is not the whole text: cut at maxBodyChars, or the input was cut at maxInputBytes. */
  truncated: boolean;
  /** What went wrong, for logs and the UI (no message content in here). Empty for a clean message. */
  problems: string[];
}

export interface ParseEmailOptions {
  /** Longest body kept, in characters. Default 20000. */
  maxBodyChars?: number;
  /** Larger input is cut to this many bytes before parsing (bounds memory and CPU). Default 4 MiB. */
  maxInputBytes?: number;
}

const DEFAULT_MAX_BODY = 20_000;
const DEFAULT_MAX_INPUT = 4 * 1024 * 1024;
// html-to-text on megabytes of crafted HTML costs seconds; past this a crude tag strip is used instead.
const MAX_HTML_TO_CONVERT = 1_000_000;
const MAX_HEADER_FIELD = 1000;

export async function parseEmail(raw: Buffer | string, opts: ParseEmailOptions = {}): Promise<ParsedEmail> {
  const maxBody = Math.max(0, opts.maxBodyChars ?? DEFAULT_MAX_BODY);
  const maxInput = Math.max(1, opts.maxInputBytes ?? DEFAULT_MAX_INPUT);
  let input = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw;
  const size = input.length;
  const problems: string[] = [];
  let truncated = false;
  if (input.length > maxInput) {
    input = input.subarray(0, maxInput);
    truncated = true;
    problems.push(`input cut at ${maxInput} of ${size} bytes`);
  }
  input = fixEightBitHeaders(input, problems);

  let mail: ParsedMail;
  try {
    mail = await simpleParser(input, {
      keepCidLinks: true, // no data: URLs of inline images in the HTML
      skipTextToHtml: true,
      skipImageLinks: true,
      checksumAlgo: false,
      maxHtmlLengthToParse: MAX_HTML_TO_CONVERT,
    });
  } catch (err) {
    problems.push(`unparseable MIME: ${errorText(err)}`);
    // The body stays '', but the headers alone are often readable (the failure is usually in the parts).
    const salvaged = await headersOnly(input);
    return { ...salvaged, body: '', hadHtml: false, attachments: 0, size, truncated, problems };
  }

  const html = typeof mail.html === 'string' ? mail.html : '';
  const hadHtml = html.length > 0;
  let body = mail.text ?? '';
  let conversionError = mail.textConversionError;
  // mailparser converts HTML to text only for a top-level HTML body: an HTML-only part inside
  // multipart/mixed (common in spam) leaves text empty.
  if (!body.trim() && hadHtml && !conversionError) {
    const converted = await htmlToText(html);
    body = converted.text;
    conversionError = converted.error;
  }
  if (conversionError) {
    problems.push(`HTML not converted to text: ${conversionError.message}`);
    if (!body.trim() && hadHtml) body = crudeHtmlToText(html.slice(0, maxBody * 8));
  }
  body = cleanText(body);
  if (!body) problems.push(hadHtml ? 'HTML part has no text' : 'no text part');
  if (body.length > maxBody) {
    body = body.slice(0, maxBody);
    truncated = true;
  }

  const fields = headerFields(mail);
  if (mail.headerLines?.some((h) => h.key === 'date') && !fields.date) problems.push('unreadable Date header');
  return { ...fields, body, hadHtml, attachments: mail.attachments.length, size, truncated, problems };
}

type HeaderFields = Pick<ParsedEmail, 'messageId' | 'date' | 'sender' | 'subject'>;

function headerFields(mail: ParsedMail): HeaderFields {
  const out: HeaderFields = {};
  const messageId = headerText(mail.messageId);
  if (messageId) out.messageId = messageId;
  const date = headerDate(mail);
  if (date) out.date = date;
  const sender = headerText(mail.from?.text);
  if (sender) out.sender = sender;
  const subject = headerText(mail.subject);
  if (subject) out.subject = subject;
  return out;
}

/** mailparser replaces an unparseable Date header with the current time; that must not pass as the message's date. */
function headerDate(mail: ParsedMail): Date | undefined {
  const line = mail.headerLines?.find((h) => h.key === 'date')?.line;
  if (!line) return undefined;
  const d = new Date(line.slice(line.indexOf(':') + 1).replace(/\s+/g, ' ').trim());
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** The top-level header fields of a message whose body could not be parsed. */
async function headersOnly(input: Buffer): Promise<HeaderFields> {
  const end = headerEnd(input);
  if (end > 256 * 1024) return {};
  try {
    return headerFields(await simpleParser(Buffer.concat([input.subarray(0, end), Buffer.from('\r\n\r\n')]), { checksumAlgo: false }));
  } catch {
    return {};
  }
}

/**
 * mailparser reads raw header bytes as UTF-8, which turns an 8-bit Latin-1 header (common in old mail and
 * spam) into U+FFFD soup. A header block that is not valid UTF-8 is re-read as windows-1252 instead.
 */
function fixEightBitHeaders(input: Buffer, problems: string[]): Buffer {
  const end = headerEnd(input);
  const head = input.subarray(0, end);
  if (!head.some((b) => b >= 0x80)) return input;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(head);
    return input;
  } catch {
    problems.push('8-bit header not in UTF-8, read as windows-1252');
    const fixed = Buffer.from(new TextDecoder('windows-1252').decode(head), 'utf8');
    return Buffer.concat([fixed, input.subarray(end)]);
  }
}

/** Offset of the blank line ending the top-level header block (or the whole input when there is none). */
function headerEnd(buf: Buffer): number {
  const crlf = buf.indexOf('\r\n\r\n');
  const lf = buf.indexOf('\n\n');
  const ends = [crlf, lf].filter((i) => i >= 0);
  return ends.length ? Math.min(...ends) : buf.length;
}

// C0/C1 controls except tab and newline, and lone surrogates left by broken encodings.
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

function cleanText(text: string): string {
  return text.replace(/\r\n?/g, '\n').replace(CONTROL, '').replace(/\n{3,}/g, '\n\n').trim();
}

function headerText(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const v = value.replace(/\s+/g, ' ').replace(CONTROL, '').trim().slice(0, MAX_HEADER_FIELD);
  return v || undefined;
}

/** HTML → text with mailparser's own converter, by handing it the HTML as a message of its own. */
async function htmlToText(html: string): Promise<{ text: string; error?: Error }> {
  if (html.length > MAX_HTML_TO_CONVERT) return { text: '', error: new Error(`HTML too long for parsing ${html.length} bytes`) };
  const wrapped = Buffer.concat([
    Buffer.from('Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'),
    Buffer.from(html, 'utf8'),
  ]);
  try {
    const m = await simpleParser(wrapped, { keepCidLinks: true, skipTextToHtml: true, checksumAlgo: false, maxHtmlLengthToParse: MAX_HTML_TO_CONVERT });
    return m.textConversionError ? { text: m.text ?? '', error: m.textConversionError } : { text: m.text ?? '' };
  } catch (err) {
    return { text: '', error: err instanceof Error ? err : new Error(String(err)) };
  }
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

/** Last-resort HTML → text for HTML too large or too deep for html-to-text: drop scripts, styles and tags. */
function crudeHtmlToText(html: string): string {
  return html
    .replace(/<(script|style|head)\b[\s\S]*?<\/\1\s*>/gi, ' ')
    .replace(/<br\s*\/?>|<\/(p|div|tr|li|h\d)\s*>/gi, '\n')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e: string) => {
      if (e[0] === '#') {
        const code = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
        return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : ' ';
      }
      return ENTITIES[e.toLowerCase()] ?? m;
    })
    .replace(/[ \t]+/g, ' ');
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
