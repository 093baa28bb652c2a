/**
 * Facts about a file on disk, streamed so that a multi-gigabyte checkpoint is never held in memory: its size and
 * its hash. Knows nothing of models or mail: used by the model (downloads, weights), and by connectors through the daemon's contract.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';

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
