/**
 * Files: written whole or not at all, JSON files read through a schema, and a file's size and hash streamed (a
 * multi-gigabyte checkpoint is never held in memory). Knows nothing of models or mail: used by the model
 * (checkpoints, downloads, weights), the daemon, and connectors through the daemon's contract.
 *
 * An atomic write goes to a temporary file beside the target, then is renamed over it: a reader (or a crash) never
 * sees half a file. The temporary name is unique to the process and the write, so two writers of one file never
 * share a temporary file; it starts with a dot and ends in `.tmp`, so folder watchers and listings skip it.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, renameSync, rmSync, writeFileSync } from 'node:fs';
import { copyFile, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { z } from 'zod';
import { parseWith } from './schema.ts';

let writes = 0;

function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}-${++writes}.tmp`);
}

/** What `writeFile` takes: bytes, a string, or an (async) iterable of chunks such as a stream. */
export type FileData = Parameters<typeof writeFile>[1];

/** Makes `path` whatever `fill` writes to a temporary file beside it, then renames it over; on failure the temporary file is removed. */
async function replaceAtomically(path: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    await fill(tmp);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Writes `data` to `path` atomically (temporary file + rename). */
export function writeFileAtomic(path: string, data: FileData): Promise<void> {
  return replaceAtomically(path, (tmp) => writeFile(tmp, data));
}

/** Copies `from` to `to` atomically. */
export function copyFileAtomic(from: string, to: string): Promise<void> {
  return replaceAtomically(to, (tmp) => copyFile(from, tmp));
}

/** `writeFileAtomic` for synchronous code (the trunk cache spills entries from inside the training loop). */
export function writeFileAtomicSync(path: string, data: string | NodeJS.ArrayBufferView): void {
  const tmp = tempPathFor(path);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * Reads a JSON file and checks it against `schema`. Every error starts with the path and says what is wrong: the
 * file cannot be read or is not JSON, or which fields of `what` (e.g. "the model description") are invalid.
 */
export async function readJsonFile<S extends z.ZodType>(path: string, schema: S, what: string): Promise<z.output<S>> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new Error(`${path}: cannot read ${what} (${(err as Error).message})`, { cause: err });
  }
  return parseWith(schema, value, `${path}: ${what} is invalid`);
}

/** Size of `path` in bytes; 0 when it does not exist. */
export async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if ((err as { code?: unknown } | null)?.code === 'ENOENT') return 0;
    throw err;
  }
}

/** Feeds the first `length` bytes of `path` (all of it when omitted) into `hash`, leaving it open for more. */
export async function hashFileInto(path: string, hash: Hash, length?: number): Promise<Hash> {
  if (length === 0) return hash;
  const stream = createReadStream(path, length === undefined ? {} : { start: 0, end: length - 1 });
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash;
}

/** Hex SHA-256 of a whole file. */
export async function sha256File(path: string): Promise<string> {
  return (await hashFileInto(path, createHash('sha256'))).digest('hex');
}
