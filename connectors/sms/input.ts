/**
 * Byte and text plumbing shared by the parsers: open a path or take a stream, decode UTF-8 incrementally,
 * split lines. Everything is pull-based so a slow consumer slows reading instead of filling memory.
 */
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

/** UTF-8 text in pieces; a leading BOM is dropped and a multi-byte character split across chunks is kept whole. */
export async function* decodeUtf8(chunks: AsyncIterable<string | Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8');
  let first = true;
  for await (const chunk of chunks) {
    let text = typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    if (first && text.length > 0) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      first = false;
    }
    if (text.length > 0) yield text;
  }
  const rest = decoder.decode();
  if (rest.length > 0) yield rest;
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
