/**
 * Which parser a file needs, decided from its first bytes rather than its name (exports are often renamed,
 * or come as ".txt").
 */
import { open } from 'node:fs/promises';
import { SmsExportError, type ExportFormat } from './types.ts';

export const SNIFF_BYTES = 8192;

const EXPECTED = 'expected SMS Backup & Restore XML, a "ham/spam<TAB>text" file (UCI SMS Spam Collection) or CSV with a header row';

/** Format of a file whose first bytes are `head` (up to SNIFF_BYTES); throws SmsExportError naming `file`. */
export function sniffFormat(head: Uint8Array, file: string): ExportFormat {
  const fail = (why: string): never => {
    throw new SmsExportError('unrecognised-format', file, `not a recognised SMS export: ${why}; ${EXPECTED}`);
  };
  if (head.length === 0) fail('the file is empty');
  if (head[0] === 0x50 && head[1] === 0x4b) fail('it is a ZIP archive (unpack it first)');
  if (head[0] === 0x1f && head[1] === 0x8b) fail('it is gzip-compressed (unpack it first)');
  if ((head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff)) {
    fail('it is UTF-16 text (save it as UTF-8)');
  }
  if (head.includes(0)) fail('it contains binary data');

  let text: string;
  try {
    // Streaming mode tolerates a character cut in half by the end of the sniff window.
    text = new TextDecoder('utf-8', { fatal: true }).decode(head, { stream: head.length >= SNIFF_BYTES });
  } catch {
    return fail('it is not UTF-8 text (convert it to UTF-8)');
  }
  text = text.replace(/^\uFEFF/, '').trimStart();

  if (text.startsWith('<')) return 'sms-backup-xml';
  const firstLine = text.split(/\r?\n/, 1)[0] ?? '';
  if (/^(ham|spam)\t/i.test(firstLine)) return 'uci-tsv';
  if (/[,;\t]/.test(firstLine)) return 'csv';
  const shown = JSON.stringify(firstLine.length > 60 ? `${firstLine.slice(0, 60)}…` : firstLine);
  return fail(`first line ${shown} is neither XML, a labelled row nor a CSV header`);
}

export async function detectFormat(path: string): Promise<ExportFormat> {
  let head: Uint8Array;
  try {
    const handle = await open(path, 'r');
    try {
      const buffer = Buffer.alloc(SNIFF_BYTES);
      const { bytesRead } = await handle.read(buffer, 0, SNIFF_BYTES, 0);
      head = buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw new SmsExportError('io', path, `cannot read: ${(err as Error).message}`, { cause: err });
  }
  return sniffFormat(head, path);
}
