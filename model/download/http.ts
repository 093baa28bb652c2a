/**
 * Fetching large files over HTTP: streamed to `<dest>.part`, resumed with a Range request after a dropped
 * connection, hash-checked while streaming, and renamed into place only once verified, so `dest` never holds a
 * partial or corrupt file. A connection that goes quiet is dropped by a watchdog and resumed. Checkpoints reach
 * 6 GB, so nothing here buffers a whole body in memory.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileSize, hashFileInto } from '../files.ts';

export class DownloadError extends Error {
  constructor(
    message: string,
    /** Whether trying again (resuming) could help: dropped connections and 5xx, not 404 or a hash mismatch. */
    readonly retryable = false,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'DownloadError';
  }
}

export interface DownloadOptions {
  url: string;
  dest: string;
  /** Hex SHA-256 the finished file must have; on mismatch the part file is deleted and the download fails. */
  expectedSha256?: string;
  /** Hex git blob SHA-1, what the Hub reports as the ETag of small (non-LFS) files such as config.json. */
  expectedGitSha1?: string;
  /** Called as bytes arrive; `received` includes a resumed prefix, `total` is undefined if the server does not say. */
  onProgress?: (received: number, total: number | undefined) => void;
  signal?: AbortSignal;
  headers?: Record<string, string>;
  /** Times a dropped connection or a 5xx is retried, resuming where it stopped (default 5). */
  retries?: number;
  /** A connection that delivers nothing for this long is dropped and resumed (default 60 000 ms). */
  stallTimeoutMs?: number;
}

export interface DownloadResult {
  path: string;
  sha256: string;
  bytes: number;
  /** True only when the file was checked against an expected hash; false means nobody published one. */
  verified: boolean;
  /** Bytes reused from an earlier interrupted download (0 for a fresh one). */
  resumedFrom: number;
}

/**
 * Download `url` to `dest` (see the module comment). Parent directories are created. An existing `dest + '.part'`
 * is resumed with `Range: bytes=<size>-`; a server that answers 200 instead of 206 gets a fresh start.
 */
export async function downloadFile(opts: DownloadOptions): Promise<DownloadResult> {
  const expectedSha256 = normalizeHex(opts.expectedSha256, 64, 'expectedSha256');
  const expectedGitSha1 = normalizeHex(opts.expectedGitSha1, 40, 'expectedGitSha1');
  checkHttpUrl(opts.url);
  const part = `${opts.dest}.part`;
  await mkdir(dirname(resolve(opts.dest)), { recursive: true });

  const retries = opts.retries ?? 5;
  let firstOffset: number | undefined;
  let done: Attempt;
  for (let attempt = 0; ; attempt++) {
    try {
      done = await attemptDownload(opts, part, (from) => {
        firstOffset ??= from;
      });
      break;
    } catch (err) {
      if (opts.signal?.aborted || !isRetryable(err) || attempt >= retries) throw explain(err, opts.url, part);
      // Back off a little so a struggling server is not hammered; the next attempt resumes from the part file.
      await sleep(Math.min(250 * 2 ** attempt, 10_000), undefined, { signal: opts.signal }).catch((e: unknown) => {
        throw explain(e, opts.url, part); // cancelled while waiting to retry
      });
    }
  }

  if (expectedSha256 !== undefined && done.sha256 !== expectedSha256) {
    await rm(part, { force: true });
    throw new DownloadError(
      `SHA-256 mismatch for ${opts.url}: expected ${expectedSha256}, got ${done.sha256}; deleted the partial file ${part}`,
    );
  }
  if (expectedGitSha1 !== undefined) {
    const actual = await gitBlobSha1(part, done.bytes);
    if (actual !== expectedGitSha1) {
      await rm(part, { force: true });
      throw new DownloadError(
        `git SHA-1 mismatch for ${opts.url}: expected ${expectedGitSha1}, got ${actual}; deleted the partial file ${part}`,
      );
    }
  }
  await rename(part, opts.dest);
  return {
    path: opts.dest,
    sha256: done.sha256,
    bytes: done.bytes,
    verified: expectedSha256 !== undefined || expectedGitSha1 !== undefined,
    resumedFrom: firstOffset ?? 0,
  };
}

interface Attempt {
  sha256: string;
  bytes: number;
}

/** One HTTP request: resume or restart the part file, stream the body into it, hash everything it holds. */
async function attemptDownload(opts: DownloadOptions, part: string, started: (resumeFrom: number) => void): Promise<Attempt> {
  const offset = await fileSize(part);
  // Hash the kept prefix before asking, so a multi-gigabyte re-read does not leave the new connection idle.
  const prefixHash = createHash('sha256');
  if (offset > 0) await hashFileInto(part, prefixHash, offset);

  // A connection can stall without closing; abort it after a quiet spell so the retry loop can resume.
  const stallMs = opts.stallTimeoutMs ?? 60_000;
  const stall = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, stall.signal]) : stall.signal;
  let timer: NodeJS.Timeout | undefined;
  const rearm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => stall.abort(), stallMs);
  };
  rearm();
  try {
    // identity: a transparently decompressed body would make byte offsets (and so Range resumes) meaningless.
    const headers: Record<string, string> = { 'accept-encoding': 'identity', ...opts.headers };
    if (offset > 0) headers.range = `bytes=${offset}-`;
    const res = await fetch(opts.url, { headers, signal, redirect: 'follow' });

    if (res.status === 416 && offset > 0) {
      await res.body?.cancel();
      // "Range not satisfiable": the part file may already hold the whole file (the rename was all that was missing).
      const total = parseUnsatisfiedRange(res.headers.get('content-range'));
      if (total === offset) {
        started(offset);
        return { sha256: prefixHash.digest('hex'), bytes: offset };
      }
      await rm(part, { force: true });
      throw new DownloadError(`the partial file ${part} does not match the file on the server; starting over`, true);
    }
    if (!res.ok) {
      await res.body?.cancel();
      const where = res.url && res.url !== opts.url ? `${opts.url} (redirected to ${res.url})` : opts.url;
      throw new DownloadError(
        `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''} for ${where}`,
        res.status >= 500 || res.status === 429,
        res.status,
      );
    }

    let resumeFrom = 0;
    let total = parseLength(res.headers.get('content-length'));
    if (res.status === 206) {
      const range = parseContentRange(res.headers.get('content-range'));
      if (range === undefined || range.start !== offset) {
        await res.body?.cancel();
        await rm(part, { force: true });
        throw new DownloadError(`server answered Range bytes=${offset}- with ${res.headers.get('content-range') ?? 'no Content-Range'}; starting over`, true);
      }
      resumeFrom = offset;
      total = range.total;
    }
    // Otherwise (200) the server sent the whole file, even if we asked for a range: the part file is rewritten.
    started(resumeFrom);

    const hash = resumeFrom > 0 ? prefixHash : createHash('sha256');
    let received = resumeFrom;
    opts.onProgress?.(received, total);
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        rearm();
        hash.update(chunk);
        received += chunk.length;
        opts.onProgress?.(received, total);
        callback(null, chunk);
      },
    });
    const body = res.body ?? emptyBody();
    await pipeline(body, counter, createWriteStream(part, { flags: resumeFrom > 0 ? 'a' : 'w' }), { signal });
    if (total !== undefined && received !== total) {
      throw new DownloadError(`connection ended after ${received} of ${total} bytes`, true);
    }
    return { sha256: hash.digest('hex'), bytes: received };
  } catch (err) {
    if (stall.signal.aborted && !opts.signal?.aborted) {
      throw new DownloadError(`no data from ${opts.url} for ${stallMs / 1000} s`, true);
    }
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

async function* emptyBody(): AsyncGenerator<Buffer> {}

/** Network failures from fetch (undici) surface as TypeError ("fetch failed", "terminated") or socket error codes. */
function isRetryable(err: unknown): boolean {
  if (err instanceof DownloadError) return err.retryable;
  if (err instanceof TypeError) return true;
  const code = errorCode(err) ?? errorCode((err as { cause?: unknown } | null)?.cause);
  return code !== undefined && (code.startsWith('UND_ERR') || ['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN'].includes(code));
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Give low-level errors ("fetch failed", "terminated") the URL and what is left behind. */
function explain(err: unknown, url: string, part: string): Error {
  if (err instanceof DownloadError) return err;
  if (err instanceof Error && err.name === 'AbortError') {
    return new DownloadError(`download of ${url} was cancelled; ${part} is kept and the next download resumes it`);
  }
  const cause = (err as { cause?: unknown } | null)?.cause;
  const detail = cause instanceof Error ? `${(err as Error).message}: ${cause.message}` : String((err as Error)?.message ?? err);
  const e = new DownloadError(`download of ${url} failed (${detail}); what arrived is kept in ${part} and the next download resumes it`);
  e.cause = err;
  return e;
}

// ---- HTTP header parsing -------------------------------------------------------------------------------------------

/** A Content-Length-like header as a number; undefined when absent or malformed. */
export function parseLength(value: string | null): number | undefined {
  if (value === null || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value.trim());
}

/** `bytes 100-199/1000` → start 100, total 1000 (total undefined for `*`). */
function parseContentRange(value: string | null): { start: number; total: number | undefined } | undefined {
  const m = value === null ? null : /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(value.trim());
  if (m === null) return undefined;
  return { start: Number(m[1]), total: m[3] === '*' ? undefined : Number(m[3]) };
}

/** `bytes * /1000` (a 416's Content-Range) → 1000. */
function parseUnsatisfiedRange(value: string | null): number | undefined {
  const m = value === null ? null : /^bytes\s+\*\/(\d+)$/i.exec(value.trim());
  return m === null ? undefined : Number(m[1]);
}

/** Checked up front: fetch reports a malformed URL as a TypeError, which would otherwise look like a network error. */
function checkHttpUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DownloadError(`not a valid URL: "${url}"`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new DownloadError(`only http(s) URLs can be downloaded, got "${url}"`);
}

function normalizeHex(value: string | undefined, length: number, what: string): string | undefined {
  if (value === undefined) return undefined;
  const hex = value.trim().toLowerCase();
  if (!new RegExp(`^[0-9a-f]{${length}}$`).test(hex)) throw new Error(`${what} must be ${length} hex digits, got "${value}"`);
  return hex;
}

/** Git's blob id: SHA-1 over `blob <size>\0` followed by the content. */
async function gitBlobSha1(path: string, size: number): Promise<string> {
  return (await hashFileInto(path, createHash('sha1').update(`blob ${size}\0`))).digest('hex');
}
