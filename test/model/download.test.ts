/** Downloads against a local stand-in for the Hugging Face Hub and its CDN (no internet in tests). */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { downloadFile } from '../../model/download/http.ts';
import { fetchGpt2, GPT2_SIZES, hubBaseUrl, hubFileInfo, hubFileUrl } from '../../model/download/hub.ts';
import { installLocalModel } from '../../model/download/install.ts';
import { checkSafetensorsHeader } from '../../model/safetensors.ts';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const gitSha1 = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

/** A small but real safetensors file: one F32 tensor of `n` random values. */
function safetensors(n: number): Buffer {
  const header = Buffer.from(JSON.stringify({ w: { dtype: 'F32', shape: [n], data_offsets: [0, 4 * n] } }));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  return Buffer.concat([len, header, randomBytes(4 * n)]);
}

interface Served {
  method: string;
  path: string;
  range?: string;
  status: number;
}

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((ok) => server.close(() => ok()));
}

/**
 * The Hub answers `/<repo>/resolve/main/<file>`: LFS files with a 302 to the CDN (another origin) carrying
 * X-Linked-Etag / X-Linked-Size, git files with 200 and their blob SHA-1 as ETag. The CDN honours Range.
 */
class FakeHub {
  hub!: { server: Server; url: string };
  cdn!: { server: Server; url: string };
  /** Hub path (`repo/file`) → content and whether it is an LFS file. */
  files = new Map<string, { body: Buffer; lfs: boolean; reportedSha256?: string; noHash?: boolean }>();
  /** CDN keys whose next GET sends only this many bytes and then drops the connection. */
  dropAfter = new Map<string, number>();
  /** CDN keys whose next GET sends this many bytes and then goes silent without closing. */
  stallAfter = new Map<string, number>();
  ignoreRange = false;
  log: Served[] = [];

  async start(): Promise<void> {
    this.hub = await listen((req, res) => this.onHub(req, res));
    this.cdn = await listen((req, res) => this.onCdn(req, res));
  }

  async stop(): Promise<void> {
    await close(this.hub.server);
    await close(this.cdn.server);
  }

  reset(): void {
    this.files.clear();
    this.dropAfter.clear();
    this.stallAfter.clear();
    this.ignoreRange = false;
    this.log = [];
  }

  addGpt2(repo: string, model: Buffer, config: Buffer): void {
    this.files.set(`${repo}/model.safetensors`, { body: model, lfs: true });
    this.files.set(`${repo}/config.json`, { body: config, lfs: false });
  }

  private record(req: IncomingMessage, path: string, status: number): void {
    this.log.push({ method: req.method ?? '', path, range: req.headers.range, status });
  }

  private onHub(req: IncomingMessage, res: ServerResponse): void {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const m = /^\/(.+)\/resolve\/main\/(.+)$/.exec(path);
    const entry = m ? this.files.get(`${m[1]}/${m[2]}`) : undefined;
    if (!m || !entry) {
      this.record(req, path, 404);
      res.writeHead(404, { 'X-Error-Code': 'EntryNotFound' }).end('Entry not found');
      return;
    }
    if (entry.lfs) {
      const key = `${m[1]}/${m[2]}`;
      const sha = entry.reportedSha256 ?? sha256(entry.body);
      const headers: Record<string, string | number> = { Location: `${this.cdn.url}/cdn/${encodeURIComponent(key)}` };
      if (!entry.noHash) Object.assign(headers, { 'X-Linked-Etag': `"${sha}"`, 'X-Linked-Size': entry.body.length, ETag: `"${sha}"` });
      this.record(req, path, 302);
      res.writeHead(302, headers).end();
      return;
    }
    this.record(req, path, 200);
    const headers: Record<string, string | number> = { 'Content-Length': entry.body.length };
    if (!entry.noHash) headers.ETag = `"${gitSha1(entry.body)}"`;
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : entry.body);
  }

  private onCdn(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const key = decodeURIComponent(path.replace(/^\/cdn\//, ''));
    const entry = this.files.get(key);
    if (!entry) {
      this.record(req, path, 404);
      res.writeHead(404).end();
      return;
    }
    const body = entry.body;
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range && !this.ignoreRange) {
      start = Number(range[1]);
      if (start >= body.length) {
        this.record(req, path, 416);
        res.writeHead(416, { 'Content-Range': `bytes */${body.length}` }).end();
        return;
      }
      this.record(req, path, 206);
      res.writeHead(206, { 'Content-Range': `bytes ${start}-${body.length - 1}/${body.length}`, 'Content-Length': body.length - start });
    } else {
      this.record(req, path, 200);
      res.writeHead(200, { 'Content-Length': body.length });
    }
    const drop = this.dropAfter.get(key);
    if (drop !== undefined) {
      this.dropAfter.delete(key);
      // Send part of the body, then cut the connection as a flaky network would.
      res.write(body.subarray(start, start + drop), () => setTimeout(() => res.destroy(), 20));
      return;
    }
    const stall = this.stallAfter.get(key);
    if (stall !== undefined) {
      this.stallAfter.delete(key);
      res.write(body.subarray(start, start + stall)); // and then nothing, until the client gives up
      return;
    }
    res.end(body.subarray(start));
  }
}

const fake = new FakeHub();
let dir: string;

before(async () => {
  await fake.start();
});
after(async () => {
  await fake.stop();
});
beforeEach(async () => {
  fake.reset();
  dir = await mkdtemp(join(tmpdir(), 'gptspam-dl-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const REPO = GPT2_SIZES['124M'];
const CONFIG = Buffer.from(JSON.stringify({ model_type: 'gpt2', n_embd: 768, n_layer: 12, n_head: 12, n_ctx: 1024, vocab_size: 50257 }));

describe('fetchGpt2 from a Hub-like server', () => {
  test('downloads model.safetensors and config.json and verifies both against the reported hashes', async () => {
    const model = safetensors(100_000);
    fake.addGpt2(REPO, model, CONFIG);
    const progress: number[] = [];
    const res = await fetchGpt2({
      size: '124M',
      destDir: join(dir, 'gpt2-124M'),
      baseUrl: fake.hub.url,
      onProgress: (file, received, total) => {
        if (file === 'model.safetensors') {
          assert.equal(total, model.length);
          progress.push(received);
        }
      },
    });
    assert.equal(res.repo, 'openai-community/gpt2');
    assert.deepEqual(await readFile(join(dir, 'gpt2-124M', 'model.safetensors')), model);
    assert.deepEqual(await readFile(join(dir, 'gpt2-124M', 'config.json')), CONFIG);
    assert.equal(res.model.verified, true);
    assert.equal(res.model.sha256, sha256(model));
    assert.equal(res.model.bytes, model.length);
    assert.equal(res.config.verified, true, 'config.json is checked against its git blob id');
    assert.equal(progress.at(-1), model.length);
    assert.ok(!existsSync(join(dir, 'gpt2-124M', 'model.safetensors.part')));
    // The hash came from a HEAD that did not follow the redirect, like huggingface_hub does.
    assert.ok(fake.log.some((r) => r.method === 'HEAD' && r.status === 302));
  });

  test('a second fetch reuses verified files instead of downloading again', async () => {
    fake.addGpt2(REPO, safetensors(1000), CONFIG);
    const destDir = join(dir, 'm');
    await fetchGpt2({ size: '124M', destDir, baseUrl: fake.hub.url });
    fake.log = [];
    const again = await fetchGpt2({ size: '124M', destDir, baseUrl: fake.hub.url });
    assert.equal(again.model.reused, true);
    assert.ok(!fake.log.some((r) => r.method === 'GET' && r.path.startsWith('/cdn/')), 'no weights were downloaded again');
  });

  test('a dropped connection is resumed with a Range request within the same call', async () => {
    const model = safetensors(200_000);
    fake.addGpt2(REPO, model, CONFIG);
    fake.dropAfter.set(`${REPO}/model.safetensors`, 300_000);
    const res = await fetchGpt2({ size: '124M', destDir: dir, baseUrl: fake.hub.url });
    assert.deepEqual(await readFile(join(dir, 'model.safetensors')), model);
    assert.equal(res.model.verified, true);
    const resumed = fake.log.find((r) => r.status === 206);
    assert.ok(resumed, `expected a 206 resume, saw ${JSON.stringify(fake.log)}`);
    assert.match(resumed.range ?? '', /^bytes=[1-9]\d*-$/);
  });

  test('HF_ENDPOINT redirects downloads to another Hub', async () => {
    fake.addGpt2(REPO, safetensors(10), CONFIG);
    const saved = { hf: process.env.HF_ENDPOINT, own: process.env.GPTSPAM_HF_ENDPOINT };
    delete process.env.GPTSPAM_HF_ENDPOINT;
    process.env.HF_ENDPOINT = `${fake.hub.url}/`;
    try {
      const res = await fetchGpt2({ size: '124M', destDir: dir });
      assert.equal(res.model.verified, true);
      assert.ok(fake.log.some((r) => r.path === `/${REPO}/resolve/main/model.safetensors`));
    } finally {
      restoreEnv('HF_ENDPOINT', saved.hf);
      restoreEnv('GPTSPAM_HF_ENDPOINT', saved.own);
    }
  });

  test('a file whose content does not match the reported hash is rejected and nothing is left at dest', async () => {
    fake.addGpt2(REPO, safetensors(1000), CONFIG);
    fake.files.get(`${REPO}/model.safetensors`)!.reportedSha256 = 'ab'.repeat(32);
    await assert.rejects(fetchGpt2({ size: '124M', destDir: dir, baseUrl: fake.hub.url }), /SHA-256 mismatch.*expected abab.*got [0-9a-f]{64}/);
    assert.ok(!existsSync(join(dir, 'model.safetensors')));
    assert.ok(!existsSync(join(dir, 'model.safetensors.part')));
  });

  test('a repository the Hub does not have gives an HTTP 404 error naming the URL', async () => {
    await assert.rejects(
      fetchGpt2({ size: '355M', destDir: dir, baseUrl: fake.hub.url }),
      (err: Error) => {
        assert.match(err.message, /HTTP 404/);
        assert.ok(err.message.includes(`${fake.hub.url}/openai-community/gpt2-medium/resolve/main/config.json`), err.message);
        return true;
      },
    );
  });

  test('without hashes from the server the result says it is unverified', async () => {
    fake.addGpt2(REPO, safetensors(10), CONFIG);
    for (const f of fake.files.values()) f.noHash = true;
    const res = await fetchGpt2({ size: '124M', destDir: dir, baseUrl: fake.hub.url });
    assert.equal(res.model.verified, false);
    assert.equal(res.config.verified, false);
  });

  test('an unknown size is rejected with the valid choices', async () => {
    await assert.rejects(fetchGpt2({ size: '7B' as never, destDir: dir, baseUrl: fake.hub.url }), /unknown GPT-2 size "7B".*124M, 355M, 774M, 1558M/);
  });
});

describe('downloadFile', () => {
  test('an interrupted download keeps its part file and the next call resumes it', async () => {
    const body = randomBytes(500_000);
    fake.files.set('data/blob.bin', { body, lfs: true });
    fake.dropAfter.set('data/blob.bin', 200_000);
    const url = `${fake.cdn.url}/cdn/${encodeURIComponent('data/blob.bin')}`;
    const dest = join(dir, 'blob.bin');
    await assert.rejects(downloadFile({ url, dest, expectedSha256: sha256(body), retries: 0 }), /failed.*kept in .*blob\.bin\.part/);
    const partial = (await stat(`${dest}.part`)).size;
    assert.ok(partial > 0 && partial < body.length, `part file holds ${partial} bytes`);
    assert.ok(!existsSync(dest));

    const res = await downloadFile({ url, dest, expectedSha256: sha256(body) });
    assert.equal(res.resumedFrom, partial);
    assert.equal(res.verified, true);
    assert.equal(res.sha256, sha256(body));
    assert.deepEqual(await readFile(dest), body);
    assert.equal(fake.log.at(-1)?.range, `bytes=${partial}-`);
  });

  test('a connection that goes silent is dropped after the stall timeout and resumed', async () => {
    const body = randomBytes(100_000);
    fake.files.set('f', { body, lfs: true });
    fake.stallAfter.set('f', 40_000);
    const dest = join(dir, 'f');
    const res = await downloadFile({ url: `${fake.cdn.url}/cdn/f`, dest, expectedSha256: sha256(body), stallTimeoutMs: 300 });
    assert.deepEqual(await readFile(dest), body);
    assert.match(fake.log.at(-1)?.range ?? '', /^bytes=[1-9]\d*-$/);
    // Without retries the stall is reported as such, not as a cancellation.
    fake.stallAfter.set('f', 10);
    await assert.rejects(
      downloadFile({ url: `${fake.cdn.url}/cdn/f`, dest: join(dir, 'g'), stallTimeoutMs: 200, retries: 0 }),
      /no data from .* for 0\.2 s/,
    );
  });

  test('a server that ignores Range gets a clean restart, not a corrupted file', async () => {
    const body = randomBytes(50_000);
    fake.files.set('f', { body, lfs: true });
    fake.ignoreRange = true;
    const dest = join(dir, 'f');
    await writeFile(`${dest}.part`, Buffer.from('stale bytes from another file'));
    const res = await downloadFile({ url: `${fake.cdn.url}/cdn/f`, dest, expectedSha256: sha256(body) });
    assert.equal(res.resumedFrom, 0);
    assert.deepEqual(await readFile(dest), body);
  });

  test('a part file that is already complete is verified and renamed (416 from the server)', async () => {
    const body = randomBytes(1000);
    fake.files.set('f', { body, lfs: true });
    const dest = join(dir, 'f');
    await writeFile(`${dest}.part`, body);
    const res = await downloadFile({ url: `${fake.cdn.url}/cdn/f`, dest, expectedSha256: sha256(body) });
    assert.equal(res.verified, true);
    assert.deepEqual(await readFile(dest), body);
  });

  test('a SHA-256 mismatch names both hashes and deletes the part file', async () => {
    const body = randomBytes(1000);
    fake.files.set('f', { body, lfs: true });
    const dest = join(dir, 'f');
    const wrong = '0'.repeat(64);
    await assert.rejects(
      downloadFile({ url: `${fake.cdn.url}/cdn/f`, dest, expectedSha256: wrong }),
      (err: Error) => err.message.includes(wrong) && err.message.includes(sha256(body)),
    );
    assert.ok(!existsSync(dest) && !existsSync(`${dest}.part`));
  });

  test('HTTP errors name the status and URL; bad URLs are refused up front', async () => {
    const url = `${fake.cdn.url}/cdn/missing`;
    await assert.rejects(downloadFile({ url, dest: join(dir, 'x') }), (err: Error) => /HTTP 404/.test(err.message) && err.message.includes(url));
    await assert.rejects(downloadFile({ url: 'ftp://example.org/x', dest: join(dir, 'x') }), /only http\(s\) URLs/);
    await assert.rejects(downloadFile({ url: 'not a url', dest: join(dir, 'x') }), /not a valid URL: "not a url"/);
  });

  test('a cancelled download keeps what arrived for a later resume', async () => {
    const body = randomBytes(300_000);
    fake.files.set('f', { body, lfs: true });
    const ctl = new AbortController();
    const dest = join(dir, 'f');
    await assert.rejects(
      downloadFile({ url: `${fake.cdn.url}/cdn/f`, dest, signal: ctl.signal, onProgress: (got) => got > 0 && ctl.abort() }),
      /cancelled/,
    );
    assert.ok(!existsSync(dest));
    assert.ok(existsSync(`${dest}.part`));
  });
});

describe('Hub URLs and hashes', () => {
  test('the Hub base comes from the argument, then GPTSPAM_HF_ENDPOINT, then HF_ENDPOINT, then huggingface.co', () => {
    const saved = { hf: process.env.HF_ENDPOINT, own: process.env.GPTSPAM_HF_ENDPOINT };
    try {
      delete process.env.HF_ENDPOINT;
      delete process.env.GPTSPAM_HF_ENDPOINT;
      assert.equal(hubFileUrl('openai-community/gpt2', 'config.json'), 'https://huggingface.co/openai-community/gpt2/resolve/main/config.json');
      process.env.HF_ENDPOINT = 'https://hf-mirror.example/';
      assert.equal(hubBaseUrl(), 'https://hf-mirror.example');
      process.env.GPTSPAM_HF_ENDPOINT = 'http://own.example';
      assert.equal(hubBaseUrl(), 'http://own.example');
      assert.equal(hubBaseUrl('http://arg.example'), 'http://arg.example');
      assert.throws(() => hubBaseUrl('huggingface.co'), /must start with http/);
    } finally {
      restoreEnv('HF_ENDPOINT', saved.hf);
      restoreEnv('GPTSPAM_HF_ENDPOINT', saved.own);
    }
  });

  test('hubFileInfo reads X-Linked-Etag and X-Linked-Size from the unfollowed redirect', async () => {
    const model = safetensors(10);
    fake.addGpt2(REPO, model, CONFIG);
    const info = await hubFileInfo(hubFileUrl(REPO, 'model.safetensors', fake.hub.url));
    assert.equal(info.sha256, sha256(model));
    assert.equal(info.size, model.length);
    const cfg = await hubFileInfo(hubFileUrl(REPO, 'config.json', fake.hub.url));
    assert.equal(cfg.sha256, undefined);
    assert.equal(cfg.gitSha1, gitSha1(CONFIG));
  });
});

describe('installLocalModel', () => {
  test('copies model.safetensors and the config.json beside it', async () => {
    const src = join(dir, 'src');
    const model = safetensors(100);
    await writeFileIn(src, 'model.safetensors', model);
    await writeFileIn(src, 'config.json', CONFIG);
    const res = await installLocalModel({ from: join(src, 'model.safetensors'), destDir: join(dir, 'dest') });
    assert.deepEqual(await readFile(join(dir, 'dest', 'model.safetensors')), model);
    assert.deepEqual(await readFile(join(dir, 'dest', 'config.json')), CONFIG);
    assert.equal(res.model.sha256, sha256(model));
    // A directory works as well as the file itself.
    const fromDir = await installLocalModel({ from: src, destDir: join(dir, 'dest2') });
    assert.equal(fromDir.model.bytes, model.length);
  });

  test('without config.json only the weights are installed', async () => {
    const src = join(dir, 'weights.safetensors');
    await writeFile(src, safetensors(4));
    const res = await installLocalModel({ from: src, destDir: join(dir, 'dest') });
    assert.equal(res.config, undefined);
    assert.equal((await checkSafetensorsHeader(res.model.path)).tensors, 1);
  });

  test('a file that is not safetensors is refused with its path', async () => {
    const src = join(dir, 'model.safetensors');
    await writeFile(src, '<html>Not a model</html>');
    await assert.rejects(installLocalModel({ from: src, destDir: join(dir, 'dest') }), (err: Error) => err.message.includes(src) && /not a safetensors file/.test(err.message));
    await assert.rejects(installLocalModel({ from: join(dir, 'nope'), destDir: join(dir, 'dest') }), /no such file/);
    assert.ok(!existsSync(join(dir, 'dest', 'model.safetensors')));
  });
});

async function writeFileIn(d: string, name: string, data: Buffer): Promise<void> {
  await mkdir(d, { recursive: true });
  await writeFile(join(d, name), data);
}

function restoreEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}
