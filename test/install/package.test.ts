/**
 * gptspam run the way users run it, away from the repository: started from another folder, and installed from
 * the tarball `npm pack` makes into a prefix of its own (as `npm install -g` does), on a fresh home. Each trains
 * its first model in the training worker and scores a message. The installed package holds compiled JavaScript
 * and only the runtime dependencies.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'gptspam-install-'));
const running: RunningDaemon[] = [];
after(async () => {
  for (const d of running) if (d.proc.exitCode === null) await d.stop();
  rmSync(work, { recursive: true, force: true });
});

interface Scored { message: { verdict: { label: string; spamProbability: number; modelVersion: number } | null } }

/** The first model exists (trained by the worker) and a message gets a verdict from it. */
async function assertTrainsAndScores(d: RunningDaemon): Promise<void> {
  // Ready means the model is loaded; the run is recorded as finished a moment later.
  let status: string | undefined;
  for (let i = 0; i < 100 && (status === undefined || status === 'running'); i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 100));
    status = (await d.api<{ runs: Array<{ status: string }> }>('GET', '/api/runs')).runs[0]?.status;
  }
  assert.equal(status, 'succeeded', d.output().slice(-3000));
  const scored = await d.api<Scored>('POST', '/api/messages', { body: 'WINNER!! Claim your £900 prize, call 09061701461 now', externalId: 'install-1', kind: 'sms' });
  assert.equal(scored.message.verdict?.modelVersion, 1);
  assert.ok(['ham', 'uncertain', 'spam'].includes(scored.message.verdict.label));
}

const run = promisify(execFile);

/**
 * Serves sqlite3's prebuilt binary the way prebuild-install downloads it (`<mirror>/v<version>/sqlite3-v<version>-
 * napi-v<n>-<platform>-<arch>.tar.gz`), packed from this checkout's own build of the same version.
 */
async function sqlite3Mirror(): Promise<{ env: Record<string, string>; served(): boolean; close(): Promise<void> } | undefined> {
  const pkg = join(ROOT, 'node_modules', 'sqlite3');
  const binary = join(pkg, 'build', 'Release', 'node_sqlite3.node');
  if (!existsSync(binary) || process.platform !== 'linux') return undefined;
  const { version, binary: { napi_versions: napi } } = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')) as { version: string; binary: { napi_versions: number[] } };
  const name = `sqlite3-v${version}-napi-v${Math.max(...napi)}-${process.platform}-${process.arch}.tar.gz`;
  const tarball = join(work, name);
  await run('tar', ['-czf', tarball, '-C', pkg, 'build/Release/node_sqlite3.node']);
  const data = readFileSync(tarball);
  let served = false;
  const server = createServer((req, res) => {
    if (req.url === `/v${version}/${name}`) {
      served = true;
      res.writeHead(200, { 'Content-Length': data.length }).end(data);
    } else res.writeHead(404).end();
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    env: { npm_config_sqlite3_binary_host_mirror: `http://127.0.0.1:${port}` },
    served: () => served,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}

function hostStatus(url: string, host: string): Promise<number> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    request({ hostname, port, path: '/api/health', headers: { Host: host }, setHost: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject).end();
  });
}

test('started from another folder, the repository\'s gptspam trains its first model and scores', async () => {
  const d = await startDaemon({ cwd: work, readyTimeoutMs: 120_000 });
  running.push(d);
  await assertTrainsAndScores(d);
  assert.equal(await d.stop(), 0);
});

test('npm pack, installed into a prefix, `gptspam serve` from / on a fresh home: trains, scores, private files, host check', async (t) => {
  const pack = spawnSync('npm', ['pack', '--pack-destination', work, '--json'], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  assert.equal(pack.status, 0, pack.stderr);
  const [info] = JSON.parse(pack.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const packed = info!.files.map((f) => f.path);
  assert.ok(packed.includes('dist/bin/main.js') && packed.includes('dist/daemon/training/worker.js') && packed.includes('dist/ui/index.html'));
  assert.ok(packed.includes('dist/model/vendor/tfjs-core-gradients.js'));
  assert.deepEqual(packed.filter((p) => p.endsWith('.ts') || p.startsWith('test/')), [], 'no sources or tests in the package');

  // Everything from the registry (or npm's cache). sqlite3's native binary comes from a local mirror of its
  // prebuilt download (what a user behind a firewall sets up), made from the one this checkout built, so the test
  // does not spend minutes compiling SQLite; without that binary here, it is compiled as a user's install would.
  const prefix = join(work, 'prefix');
  const mirror = await sqlite3Mirror();
  const t0 = Date.now();
  try {
    await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', join(work, info!.filename)], {
      cwd: work, timeout: 900_000, maxBuffer: 16 << 20, env: { ...process.env, JOBS: 'max', ...mirror?.env },
    });
  } finally {
    await mirror?.close();
  }
  t.diagnostic(`npm install -g of the tarball took ${((Date.now() - t0) / 1000).toFixed(0)} s${mirror ? ` (sqlite3 from the local mirror: ${mirror.served() ? 'used' : 'not asked'})` : ''}`);
  const pkgDir = join(prefix, 'lib', 'node_modules', 'gptspam');
  const installed = readdirSync(join(pkgDir, 'node_modules'));
  for (const devOnly of ['tsx', 'playwright-core', 'typescript', 'esbuild']) assert.ok(!installed.includes(devOnly), `${devOnly} is not installed with the package`);
  assert.ok(!existsSync(join(pkgDir, 'node_modules', '@tensorflow', 'tfjs')), 'the union @tensorflow/tfjs package is not needed');
  const gptspam = join(prefix, 'bin', 'gptspam');
  assert.ok(existsSync(gptspam));

  const d = await startDaemon({ bin: gptspam, cwd: '/', readyTimeoutMs: 180_000 });
  running.push(d);
  await assertTrainsAndScores(d);
  assert.equal(statSync(d.home).mode & 0o777, 0o700);
  for (const f of ['gptspam.db', 'gptspam.db-wal', 'gptspam.db-shm', 'token']) assert.equal(statSync(join(d.home, f)).mode & 0o777, 0o600, f);
  assert.equal(await hostStatus(d.url, 'evil.example'), 421);
  assert.equal((await fetch(`${d.url}/ui/%`)).status, 400);
  const page = await fetch(`${d.url}/`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<script type="module" src="\/ui\/app\.js"/);
  assert.ok(!d.output().includes(readFileSync(join(d.home, 'token'), 'utf8').trim()), 'the token stays off a non-terminal');
  assert.equal(await d.stop(), 0);
});
