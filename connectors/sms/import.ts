/**
 * Importing an export file: stream its messages, hand them to the daemon in chunks (so the scorer batches them
 * by length), count what was new. The same loop serves the daemon's folder watcher (scoring in process) and
 * `gptspam import` (scoring through the daemon's HTTP API): only `submit` differs.
 */
import type { CorrespondentInput, IncomingMessage } from '../../daemon/types.ts';
import { exportCorrespondents } from './correspondents.ts';
import { readExport, type ImportSummary, type ReadExportOptions } from './read-export.ts';

export interface ImportResult {
  summary: ImportSummary;
  /** Messages scored for the first time. */
  scored: number;
  /** Messages already known from an earlier import (same stable id): not scored again. */
  duplicates: number;
  spam: number;
}

export type Submit = (messages: IncomingMessage[]) => Promise<Array<{ duplicate: boolean; label: string | null }>>;
/** Hands the daemon the addresses the phone's owner corresponds with (before any message is scored). */
export type AddCorrespondents = (list: CorrespondentInput[]) => Promise<unknown>;

const CHUNK = 64;

export async function importExport(
  path: string,
  submit: Submit,
  opts: ReadExportOptions & { onProgress?: (r: ImportResult) => void; addCorrespondents?: AddCorrespondents } = {},
): Promise<ImportResult> {
  if (opts.addCorrespondents) {
    const found = await exportCorrespondents(path, opts);
    if (found.length) await opts.addCorrespondents(found);
  }
  const reader = readExport(path, opts);
  const result: ImportResult = { summary: reader.summary, scored: 0, duplicates: 0, spam: 0 };
  let chunk: IncomingMessage[] = [];
  const flush = async () => {
    if (chunk.length === 0) return;
    const answers = await submit(chunk);
    chunk = [];
    for (const a of answers) {
      if (a.duplicate) result.duplicates++;
      else {
        result.scored++;
        if (a.label === 'spam') result.spam++;
      }
    }
    opts.onProgress?.(result);
  };
  for await (const message of reader) {
    chunk.push(message);
    if (chunk.length === CHUNK) await flush();
  }
  await flush();
  return result;
}
