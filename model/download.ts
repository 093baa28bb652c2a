/**
 * Fetching GPT-2 weights (and other large files) over HTTP: streamed to `<dest>.part`, resumed with a Range request
 * after a dropped connection, hash-checked while streaming, and renamed into place only once verified, so `dest`
 * never holds a partial or corrupt file. Checkpoints reach 6 GB, so nothing here buffers a whole body in memory.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';

/** GPT-2 checkpoints by parameter count, as Hugging Face Hub repositories. */
export const GPT2_SIZES = {
  '124M': 'openai-community/gpt2',
  '355M': 'openai-community/gpt2-medium',
  '774M': 'openai-community/gpt2-large',
  '1558M': 'openai-community/gpt2-xl',
} as const;
export type Gpt2Size = keyof typeof GPT2_SIZES;

export const DEFAULT_HUB_URL = 'https://huggingface.co';

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
  if (offset > 0) await hashInto(part, prefixHash, offset);

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

function parseLength(value: string | null): number | undefined {
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

/** ETag values arrive as `"hex"` or `W/"hex"`. */
function unquoteEtag(value: string | null): string | undefined {
  if (value === null) return undefined;
  return value.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1').toLowerCase();
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

// ---- hashing files -------------------------------------------------------------------------------------------------

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return 0;
    throw err;
  }
}

/** Feed the first `length` bytes of `path` (all of it when omitted) into `hash`, leaving it open for more. */
async function hashInto(path: string, hash: Hash, length?: number): Promise<void> {
  if (length === 0) return;
  const stream = createReadStream(path, length === undefined ? {} : { start: 0, end: length - 1 });
  for await (const chunk of stream) hash.update(chunk as Buffer);
}

async function hashFile(path: string, hash: Hash, length?: number): Promise<string> {
  await hashInto(path, hash, length);
  return hash.digest('hex');
}

/** SHA-256 of a whole file, streamed. */
export async function sha256File(path: string): Promise<string> {
  return hashFile(path, createHash('sha256'));
}

/** Git's blob id: SHA-1 over `blob <size>\0` followed by the content. */
async function gitBlobSha1(path: string, size: number): Promise<string> {
  const hash = createHash('sha1').update(`blob ${size}\0`);
  return hashFile(path, hash);
}

// ---- Hugging Face Hub ----------------------------------------------------------------------------------------------

/** The Hub to use: an explicit URL, else `$GPTSPAM_HF_ENDPOINT`, else `$HF_ENDPOINT` (the Hub's own name), else huggingface.co. */
export function hubBaseUrl(override?: string): string {
  const pick = [override, process.env.GPTSPAM_HF_ENDPOINT, process.env.HF_ENDPOINT].find((v) => v !== undefined && v.trim() !== '');
  const base = (pick ?? DEFAULT_HUB_URL).trim().replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]/i.test(base)) throw new Error(`Hub URL must start with http:// or https://, got "${base}"`);
  return base;
}

export function hubFileUrl(repo: string, file: string, baseUrl?: string): string {
  return `${hubBaseUrl(baseUrl)}/${repo}/resolve/main/${file}`;
}

export interface HubFileInfo {
  url: string;
  /** SHA-256 the Hub reports for an LFS file (X-Linked-Etag). */
  sha256?: string;
  /** Git blob SHA-1 the Hub reports as ETag for a file stored in git itself (small files). */
  gitSha1?: string;
  size?: number;
}

/**
 * Ask the Hub what hash a file should have. A HEAD on the resolve URL, not following the redirect to the CDN,
 * carries `X-Linked-Etag: "<sha256>"` and `X-Linked-Size` for LFS files; small files answer 200 with the git blob id.
 */
export async function hubFileInfo(url: string, opts: { signal?: AbortSignal; headers?: Record<string, string> } = {}): Promise<HubFileInfo> {
  let res: Response;
  try {
    res = await fetch(url, { method: 'HEAD', redirect: 'manual', signal: opts.signal, headers: opts.headers });
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause;
    throw new DownloadError(`could not reach ${url}: ${cause instanceof Error ? cause.message : (err as Error).message}`, true);
  }
  if (res.status >= 400) {
    const hint = res.status === 404 ? ' (no such repository or file on the Hub)' : res.status === 401 || res.status === 403 ? ' (access denied)' : '';
    throw new DownloadError(`HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''} for HEAD ${url}${hint}`, res.status >= 500, res.status);
  }
  const linked = unquoteEtag(res.headers.get('x-linked-etag'));
  const etag = unquoteEtag(res.headers.get('etag'));
  const info: HubFileInfo = { url };
  if (linked !== undefined && /^[0-9a-f]{64}$/.test(linked)) info.sha256 = linked;
  else if (etag !== undefined && /^[0-9a-f]{64}$/.test(etag)) info.sha256 = etag;
  else if (linked === undefined && etag !== undefined && /^[0-9a-f]{40}$/.test(etag)) info.gitSha1 = etag;
  const size = parseLength(res.headers.get('x-linked-size')) ?? (res.status < 300 ? parseLength(res.headers.get('content-length')) : undefined);
  if (size !== undefined) info.size = size;
  return info;
}

export interface FetchedFile {
  file: string;
  path: string;
  bytes: number;
  sha256: string;
  /** Whether the file matched the hash the server reported; false when the server reported none. */
  verified: boolean;
  /** True when an identical, verified copy was already at `path` and nothing was downloaded. */
  reused: boolean;
}

export interface FetchGpt2Options {
  size: Gpt2Size;
  destDir: string;
  baseUrl?: string;
  onProgress?: (file: string, received: number, total: number | undefined) => void;
  signal?: AbortSignal;
}

export interface FetchGpt2Result {
  repo: string;
  destDir: string;
  model: FetchedFile;
  config: FetchedFile;
}

/** Download a GPT-2 checkpoint's `config.json` and `model.safetensors` from the Hub into `destDir`, verified. */
export async function fetchGpt2(opts: FetchGpt2Options): Promise<FetchGpt2Result> {
  const repo = (GPT2_SIZES as Record<string, string>)[opts.size];
  if (repo === undefined) throw new Error(`unknown GPT-2 size "${opts.size}"; choose one of ${Object.keys(GPT2_SIZES).join(', ')}`);
  // The small file first: a wrong Hub URL or repository fails in a second, not after gigabytes.
  const config = await fetchHubFile(repo, 'config.json', opts);
  try {
    JSON.parse(await readFile(config.path, 'utf8'));
  } catch (err) {
    throw new Error(`${config.path} from ${repo} is not valid JSON: ${(err as Error).message}`);
  }
  const model = await fetchHubFile(repo, 'model.safetensors', opts);
  try {
    await checkSafetensorsHeader(model.path);
  } catch (err) {
    // Only an unverified file can be wrong here (e.g. an HTML page served as 200): do not leave it looking installed.
    if (!model.verified) await rm(model.path, { force: true });
    throw err;
  }
  return { repo, destDir: opts.destDir, model, config };
}

async function fetchHubFile(repo: string, file: string, opts: FetchGpt2Options): Promise<FetchedFile> {
  const url = hubFileUrl(repo, file, opts.baseUrl);
  const info = await hubFileInfo(url, { signal: opts.signal });
  const dest = join(opts.destDir, file);
  if (info.sha256 !== undefined && (await fileSize(dest)) > 0) {
    const existing = await sha256File(dest);
    if (existing === info.sha256) return { file, path: dest, bytes: await fileSize(dest), sha256: existing, verified: true, reused: true };
  }
  const got = await downloadFile({
    url,
    dest,
    expectedSha256: info.sha256,
    expectedGitSha1: info.gitSha1,
    signal: opts.signal,
    onProgress: opts.onProgress && ((received, total) => opts.onProgress?.(file, received, total ?? info.size)),
  });
  return { file, path: got.path, bytes: got.bytes, sha256: got.sha256, verified: got.verified, reused: false };
}

// ---- local models --------------------------------------------------------------------------------------------------

/** Largest header accepted: GPT-2 XL's is ~60 KB, so anything near this is not a real checkpoint. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/**
 * Cheap check that `path` looks like safetensors: u64 little-endian header length N, then N bytes of a JSON object.
 * Returns the number of tensors the header lists.
 */
export async function checkSafetensorsHeader(path: string): Promise<{ headerBytes: number; tensors: number }> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const bad = (why: string) => new Error(`${path} is not a safetensors file: ${why}`);
    if (size < 10) throw bad(`only ${size} bytes long`);
    const prefix = Buffer.alloc(8);
    await fh.read(prefix, 0, 8, 0);
    const n = prefix.readBigUInt64LE(0);
    if (n < 2n || n > BigInt(MAX_HEADER_BYTES) || Number(n) + 8 > size) {
      throw bad(`header length ${n} does not fit a ${size}-byte file`);
    }
    const header = Buffer.alloc(Number(n));
    await fh.read(header, 0, header.length, 8);
    if (header[0] !== 0x7b) throw bad('header does not start with "{"');
    let parsed: unknown;
    try {
      parsed = JSON.parse(header.toString('utf8'));
    } catch (err) {
      throw bad(`header is not valid JSON (${(err as Error).message})`);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw bad('header is not a JSON object');
    const tensors = Object.keys(parsed).filter((k) => k !== '__metadata__').length;
    return { headerBytes: header.length, tensors };
  } finally {
    await fh.close();
  }
}

export interface InstalledModel {
  model: { path: string; bytes: number; sha256: string };
  /** Path of the copied config.json, or undefined when none was beside the weights. */
  config?: string;
}

/**
 * Install a model the user already has (`--from PATH`): PATH is a model.safetensors file or a directory holding one.
 * A config.json beside it is copied too. Copies go through a part file so an interrupted copy never looks installed.
 */
export async function installLocalModel(opts: { from: string; destDir: string }): Promise<InstalledModel> {
  let source = resolve(opts.from);
  let info;
  try {
    info = await stat(source);
  } catch {
    throw new Error(`--from ${opts.from}: no such file or directory`);
  }
  if (info.isDirectory()) {
    source = join(source, 'model.safetensors');
    if ((await fileSize(source)) === 0) throw new Error(`--from ${opts.from}: directory has no model.safetensors`);
  }
  await checkSafetensorsHeader(source);

  const configSource = join(dirname(source), 'config.json');
  const hasConfig = (await fileSize(configSource)) > 0;
  if (hasConfig) {
    try {
      JSON.parse(await readFile(configSource, 'utf8'));
    } catch (err) {
      throw new Error(`${configSource} is not valid JSON: ${(err as Error).message}`);
    }
  }

  await mkdir(opts.destDir, { recursive: true });
  const modelDest = resolve(opts.destDir, 'model.safetensors');
  await copyAtomically(source, modelDest);
  let config: string | undefined;
  if (hasConfig) {
    config = resolve(opts.destDir, 'config.json');
    await copyAtomically(configSource, config);
  }
  return { model: { path: modelDest, bytes: await fileSize(modelDest), sha256: await sha256File(modelDest) }, config };
}

async function copyAtomically(from: string, to: string): Promise<void> {
  if (resolve(from) === resolve(to)) return; // already in place
  const part = join(dirname(to), `.${basename(to)}.part`);
  await copyFile(from, part);
  await rename(part, to);
}
