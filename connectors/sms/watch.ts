/**
 * Watches a drop folder for SMS export files. Polls with fs.stat instead of fs.watch, which misses events on
 * network shares, Docker bind mounts and some FUSE filesystems. A file is reported once its size and mtime
 * have stayed the same for settleMs (a phone or sync tool may still be writing it), and reported again
 * whenever it later changes and settles again.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

export interface WatchOptions {
  /** How long size and mtime must stay unchanged before a file counts as complete. */
  settleMs: number;
  /** Time between scans; default settleMs / 4, between 50 ms and 1 s. */
  pollMs?: number;
  /** Which file names to consider; default skips dot-files and partial downloads (.part, .tmp, .crdownload). */
  filter?: (name: string) => boolean;
  /** Failures of the folder scan or of onFileReady; default emits a process warning. */
  onError?: (err: unknown, path: string) => void;
}

export interface FolderWatch {
  /** Stops scanning; resolves after an onFileReady call in progress has finished. */
  stop(): Promise<void>;
}

export function defaultExportFilter(name: string): boolean {
  return !name.startsWith('.') && !/\.(part|tmp|crdownload|partial|swp)$/i.test(name) && !name.endsWith('~');
}

interface Seen {
  signature: string;
  /** When this signature was first observed (monotonic ms). */
  since: number;
  /** Signature last handed to onFileReady. */
  reported?: string;
}

export function watchExportFolder(
  dir: string,
  onFileReady: (path: string) => Promise<void>,
  opts: WatchOptions,
): FolderWatch {
  const { settleMs } = opts;
  if (!(settleMs >= 0)) throw new RangeError(`settleMs must be a non-negative number, got ${settleMs}`);
  const pollMs = opts.pollMs ?? Math.min(1000, Math.max(50, settleMs / 4));
  const filter = opts.filter ?? defaultExportFilter;
  const onError = opts.onError ?? ((err: unknown, path: string) => {
    process.emitWarning(`${path}: ${err instanceof Error ? err.message : String(err)}`, 'SmsExportWatchWarning');
  });

  const seen = new Map<string, Seen>();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let scanning: Promise<void> | undefined;
  // A missing or unreadable folder is reported once, not on every scan.
  let lastFolderError: string | undefined;

  async function scan(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(dir);
      lastFolderError = undefined;
    } catch (err) {
      const message = (err as Error).message;
      if (message !== lastFolderError) onError(err, dir);
      lastFolderError = message;
      return;
    }
    const present = new Set<string>();
    for (const name of names) {
      if (stopped) return;
      if (!filter(name)) continue;
      const path = join(dir, name);
      let info;
      try {
        info = await stat(path);
      } catch {
        continue; // removed between readdir and stat
      }
      if (!info.isFile()) continue;
      present.add(path);
      const signature = `${info.size}:${info.mtimeMs}`;
      const now = performance.now();
      const entry = seen.get(path);
      if (entry === undefined || entry.signature !== signature) {
        seen.set(path, { signature, since: now, ...(entry?.reported === undefined ? {} : { reported: entry.reported }) });
        continue;
      }
      // An empty file has nothing to import yet (typically just created by the writer).
      if (info.size === 0 || entry.reported === signature || now - entry.since < settleMs) continue;
      entry.reported = signature;
      try {
        await onFileReady(path);
      } catch (err) {
        onError(err, path);
      }
    }
    for (const path of seen.keys()) if (!present.has(path)) seen.delete(path);
  }

  const tick = (): void => {
    scanning = scan().finally(() => {
      scanning = undefined;
      if (!stopped) timer = setTimeout(tick, pollMs);
    });
  };
  timer = setTimeout(tick, 0);

  return {
    async stop(): Promise<void> {
      stopped = true;
      clearTimeout(timer);
      await scanning;
    },
  };
}
