/**
 * Importing an export file: stream its messages, hand them to the daemon in chunks (so the scorer batches them
 * by length), count what was new. The same loop serves the daemon's folder watcher (scoring in process) and
 * `gptspam import` (scoring through the daemon's HTTP API): only `submit` differs.
 */
import type { CorrespondentInput, IncomingMessage } from '../../daemon/contract.ts';
import { exportCorrespondents } from './correspondents.ts';
import { readExport, type ImportSummary, type ReadExportOptions } from './read-export.ts';

export interface ImportResult {
  summary: ImportSummary;
  /** Messages scored for the first time. */
  scored: number;
  /** Messages already known from an earlier import (same stable id): not scored again. */
  duplicates: number;
  spam: number;
  /** The import was asked to stop (opts.signal) and did, between two chunks; the rest of the file was not read. */
  stopped: boolean;
}

export type Submit = (messages: IncomingMessage[]) => Promise<Array<{ duplicate: boolean; label: string | null }>>;
/** Hands the daemon the addresses the phone's owner corresponds with (before any message is scored). */
export type AddCorrespondents = (list: CorrespondentInput[]) => Promise<unknown>;

const CHUNK = 64;

export interface ImportOptions extends ReadExportOptions {
  onProgress?: (r: ImportResult) => void;
  /**
   * Stops the import after the chunk in progress (a shutdown). Messages have content-hash ids, so importing
   * the file again later skips the ones already stored and resumes where this one stopped.
   */
  signal?: AbortSignal;
  /** Receives the addresses the phone's owner corresponds with, before any message is scored. */
  addCorrespondents?: AddCorrespondents;
}

export async function importExport(path: string, submit: Submit, opts: ImportOptions = {}): Promise<ImportResult> {
  if (opts.addCorrespondents) {
    const found = await exportCorrespondents(path, opts);
    if (found.length) await opts.addCorrespondents(found);
  }
  const reader = readExport(path, opts);
  const result: ImportResult = { summary: reader.summary, scored: 0, duplicates: 0, spam: 0, stopped: false };
  if (opts.signal?.aborted) return { ...result, stopped: true };
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
  try {
    for await (const message of reader) {
      chunk.push(message);
      if (chunk.length < CHUNK) continue;
      await flush();
      if (opts.signal?.aborted) {
        result.stopped = true;
        return result; // leaving the loop closes the reader and its file
      }
    }
  } catch (err) {
    // An error that stops the file (e.g. an oversized field) must not take the messages read before it along:
    // it recurs on every retry, so they would never be stored. A failing submit gets one more try here.
    await flush().catch(() => undefined);
    throw err;
  }
  await flush();
  return result;
}
