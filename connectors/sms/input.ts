/**
 * Byte and text plumbing shared by the parsers: open a path or take a stream, decode UTF-8 incrementally,
 * split lines. Everything is pull-based so a slow consumer slows reading instead of filling memory.
 */
import { isUtf8 } from 'node:buffer';
import { createReadStream } from 'node:fs';
import { SmsExportError } from './types.ts';

/** A file path, or any byte/text stream (a Readable, an async generator of chunks, ...). */
export type ExportInput = string | AsyncIterable<string | Uint8Array>;

/** The name errors should use: the path, or what the caller calls the stream. */
export function inputName(input: ExportInput, fileName: string | undefined): string {
  return fileName ?? (typeof input === 'string' ? input : '<stream>');
}

/** Chunks of the input; I/O failures become SmsExportError naming the file. */
export async function* readChunks(input: ExportInput, file: string): AsyncGenerator<string | Uint8Array> {
  const source = typeof input === 'string' ? createReadStream(input, { highWaterMark: 64 * 1024 }) : input;
  try {
    for await (const chunk of source) yield chunk;
  } catch (err) {
    if (err instanceof SmsExportError) throw err;
    throw new SmsExportError('io', file, `cannot read: ${(err as Error).message}`, { cause: err });
  } finally {
    // Stops reading when the consumer breaks out early.
    if (typeof input === 'string') (source as ReturnType<typeof createReadStream>).destroy();
  }
}

/** Receives invalid UTF-8 found on a line: how many byte sequences were replaced with U+FFFD there. */
export type InvalidUtf8Sink = (line: number, replaced: number) => void;

const REPLACEMENT = '\uFFFD';
const LITERAL_REPLACEMENT = Buffer.from(REPLACEMENT, 'utf8');

/**
 * UTF-8 text in pieces; a leading BOM is dropped and a multi-byte character split across chunks is kept whole.
 * Invalid bytes become U+FFFD as every decoder does, but not silently: each line holding some is reported to
 * `onInvalid` (a file sniffed as UTF-8 from its start may still have, say, Latin-1 text further on).
 */
export async function* decodeUtf8(chunks: AsyncIterable<string | Uint8Array>, onInvalid?: InvalidUtf8Sink): AsyncGenerator<string> {
  // Not streaming: each piece ends on a character boundary (an incomplete last character waits for the next
  // chunk), so a piece can be checked and its lines numbered on its own. ignoreBOM keeps U+FEFF inside the text.
  const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  let first = true;
  let carry: Buffer = Buffer.alloc(0);
  let line = 1; // the line the next piece starts on
  const decode = (bytes: Buffer): string => {
    const text = decoder.decode(bytes);
    if (onInvalid !== undefined && text.includes(REPLACEMENT) && !isUtf8(bytes)) reportInvalid(bytes, line, onInvalid);
    line += countByte(bytes, 0x0a);
    return text;
  };
  for await (const chunk of chunks) {
    let text: string;
    if (typeof chunk === 'string') {
      text = chunk;
      for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) line++;
    } else {
      const bytes = carry.length === 0 ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) : Buffer.concat([carry, chunk]);
      const end = completeLength(bytes);
      carry = Buffer.from(bytes.subarray(end));
      text = decode(bytes.subarray(0, end));
    }
    if (first && text.length > 0) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      first = false;
    }
    if (text.length > 0) yield text;
  }
  if (carry.length > 0) yield decode(carry); // a character cut off by the end of the file
}

/** Length of `bytes` without an incomplete UTF-8 character at its end. */
function completeLength(bytes: Uint8Array): number {
  for (let i = bytes.length - 1; i >= 0 && i >= bytes.length - 3; i--) {
    const b = bytes[i]!;
    if (b < 0x80) return bytes.length; // ASCII: nothing pending
    if (b >= 0xc0) {
      const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
      return i + need > bytes.length ? i : bytes.length;
    }
  }
  return bytes.length; // only continuation bytes: invalid, decoded (and reported) as they are
}

function countByte(bytes: Buffer, value: number): number {
  let n = 0;
  for (let i = bytes.indexOf(value); i !== -1; i = bytes.indexOf(value, i + 1)) n++;
  return n;
}

function countReplacements(text: string): number {
  let n = 0;
  for (let i = text.indexOf(REPLACEMENT); i !== -1; i = text.indexOf(REPLACEMENT, i + 1)) n++;
  return n;
}

/** Reports each line of `bytes` (starting at line `first`) that holds invalid UTF-8. */
function reportInvalid(bytes: Buffer, first: number, onInvalid: InvalidUtf8Sink): void {
  let start = 0;
  for (let line = first; start <= bytes.length; line++) {
    const nl = bytes.indexOf(0x0a, start);
    const end = nl === -1 ? bytes.length : nl;
    const lineBytes = bytes.subarray(start, end);
    if (!isUtf8(lineBytes)) {
      // U+FFFD written in the file itself is valid text, not a replacement.
      let literal = 0;
      for (let i = lineBytes.indexOf(LITERAL_REPLACEMENT); i !== -1; i = lineBytes.indexOf(LITERAL_REPLACEMENT, i + 1)) literal++;
      onInvalid(line, countReplacements(new TextDecoder('utf-8', { ignoreBOM: true }).decode(lineBytes)) - literal);
    }
    if (nl === -1) break;
    start = nl + 1;
  }
}

export interface Line {
  text: string;
  /** 1-based line number. */
  line: number;
  /** False for a last line that had no line break after it. */
  terminated: boolean;
}

/** Lines of a text stream, without their "\n" / "\r\n". */
export async function* splitLines(texts: AsyncIterable<string>): AsyncGenerator<Line> {
  let pending = '';
  let line = 0;
  for await (const text of texts) {
    pending += text;
    let start = 0;
    for (let nl = pending.indexOf('\n'); nl !== -1; nl = pending.indexOf('\n', start)) {
      const end = nl > start && pending.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      yield { text: pending.slice(start, end), line: ++line, terminated: true };
      start = nl + 1;
    }
    pending = pending.slice(start);
  }
  if (pending.length > 0) yield { text: pending.replace(/\r$/, ''), line: ++line, terminated: false };
}
