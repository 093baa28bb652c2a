/**
 * The Hugging Face Hub: where a repository's file lives, the hash the Hub publishes for it, and fetching a GPT-2
 * checkpoint (`config.json` + `model.safetensors`) verified against those hashes. The download itself is http.ts.
 */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileSize, sha256File } from '../files.ts';
import { checkSafetensorsHeader } from '../safetensors.ts';
import { DownloadError, downloadFile, parseLength } from './http.ts';

/** GPT-2 checkpoints by parameter count, as Hugging Face Hub repositories. */
export const GPT2_SIZES = {
  '124M': 'openai-community/gpt2',
  '355M': 'openai-community/gpt2-medium',
  '774M': 'openai-community/gpt2-large',
  '1558M': 'openai-community/gpt2-xl',
} as const;
export type Gpt2Size = keyof typeof GPT2_SIZES;

export const DEFAULT_HUB_URL = 'https://huggingface.co';

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

/** ETag values arrive as `"hex"` or `W/"hex"`. */
function unquoteEtag(value: string | null): string | undefined {
  if (value === null) return undefined;
  return value.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1').toLowerCase();
}
