/** `gptspam data sms` and `gptspam model fetch` run as a user runs them: the real bin script, as a child process. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { strToU8, zipSync } from 'fflate';
import { readLabeledCsv } from '../../model/dataset.ts';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(REPO_ROOT, 'bin', 'gptspam.js');
const SMS_PATH = resolve(REPO_ROOT, '..', 'shared', 'data', 'SMSSpamCollection');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function gptspam(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((ok) => {
    execFile(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      ok({ code, stdout, stderr });
    });
  });
}

// A tiny safetensors model and the Hub/UCI endpoints that serve it, on 127.0.0.1.
const header = Buffer.from(JSON.stringify({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }));
const headerLen = Buffer.alloc(8);
headerLen.writeBigUInt64LE(BigInt(header.length));
const MODEL = Buffer.concat([headerLen, header, Buffer.alloc(16, 1)]);
const CONFIG = Buffer.from('{"model_type":"gpt2","n_embd":768}');
// A mirror serving the original collection, and one serving a changed copy.
const SMS_ZIP = Buffer.from(zipSync({ SMSSpamCollection: new Uint8Array(readFileSync(SMS_PATH)) }));
const SMS_TAMPERED_ZIP = Buffer.from(zipSync({ SMSSpamCollection: strToU8('ham\thello\nspam\tWIN "cash", now\nham\tbye') }));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let server: Server;
let base: string;
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gptspam-cli-'));
  server = createServer((req, res) => {
    const path = req.url ?? '/';
    if (path === '/openai-community/gpt2/resolve/main/model.safetensors') {
      res.writeHead(302, { Location: '/cdn/model', 'X-Linked-Etag': `"${sha256(MODEL)}"`, 'X-Linked-Size': MODEL.length }).end();
    } else if (path === '/cdn/model') {
      res.writeHead(200, { 'Content-Length': MODEL.length }).end(MODEL);
    } else if (path === '/openai-community/gpt2/resolve/main/config.json') {
      res.writeHead(200, { 'Content-Length': CONFIG.length }).end(req.method === 'HEAD' ? undefined : CONFIG);
    } else if (path === '/sms.zip') {
      res.writeHead(200, { 'Content-Length': SMS_ZIP.length }).end(SMS_ZIP);
    } else if (path === '/sms-tampered.zip') {
      res.writeHead(200, { 'Content-Length': SMS_TAMPERED_ZIP.length }).end(SMS_TAMPERED_ZIP);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((ok) => server.close(() => ok()));
  await rm(dir, { recursive: true, force: true });
});

test('data sms --from the real collection prints the counts and writes the three CSVs', async () => {
  const out = join(dir, 'sms');
  const run = await gptspam(['data', 'sms', '--from', SMS_PATH, '--out', out]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /5574 messages \(4827 ham, 747 spam\) → balanced 1494 → train 1045, validation 149, test 300/);
  assert.equal((await readLabeledCsv(join(out, 'train.csv'))).length, 1045);
  assert.equal((await readLabeledCsv(join(out, 'validation.csv'))).length, 149);
  assert.equal((await readLabeledCsv(join(out, 'test.csv'))).length, 300);
});

test('data sms without --from downloads into <home>/data/sms, checked against the original file; a changed copy is refused', async () => {
  const home = join(dir, 'home');
  const run = await gptspam(['data', 'sms', '--url', `${base}/sms.zip`], { GPTSPAM_HOME: home });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, new RegExp(`SHA-256 ${sha256(readFileSync(SMS_PATH))}, the original file`));
  assert.match(run.stdout, /5574 messages \(4827 ham, 747 spam\) → balanced 1494/);
  assert.match(run.stdout, /The daemon trains on the collection from its next run/);
  assert.deepEqual(readFileSync(join(home, 'data', 'sms', 'SMSSpamCollection')), readFileSync(SMS_PATH));
  assert.equal((await readLabeledCsv(join(home, 'data', 'sms', 'test.csv'))).length, 300);

  const other = join(dir, 'home-tampered');
  const bad = await gptspam(['data', 'sms', '--url', `${base}/sms-tampered.zip`], { GPTSPAM_HOME: other });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /is not the expected file \(SHA-256 [0-9a-f]{64}, expected [0-9a-f]{64}\); to use it anyway, save it and pass --from FILE/);
  assert.ok(!existsSync(join(other, 'data', 'sms', 'SMSSpamCollection')));
});

test('data sms with a malformed file fails with one line naming the file and line', async () => {
  const bad = join(dir, 'bad.txt');
  await writeFile(bad, 'ham\tfine\nthis line has no tab\n');
  const run = await gptspam(['data', 'sms', '--from', bad, '--out', join(dir, 'bad-out')]);
  assert.equal(run.code, 1);
  assert.ok(run.stderr.includes(`${bad} line 2: no tab`), run.stderr);
});

test('model fetch downloads into <home>/models/gpt2-124M and reports the hash as verified', async () => {
  const home = join(dir, 'home-fetch');
  const run = await gptspam(['model', 'fetch', '--size', '124M', '--hub-url', base], { GPTSPAM_HOME: home });
  assert.equal(run.code, 0, run.stderr);
  const dest = join(home, 'models', 'gpt2-124M');
  assert.deepEqual(await readFile(join(dest, 'model.safetensors')), MODEL);
  assert.deepEqual(await readFile(join(dest, 'config.json')), CONFIG);
  assert.ok(run.stdout.includes(dest), run.stdout);
  assert.match(run.stdout, new RegExp(`model\\.safetensors .*sha256 ${sha256(MODEL)}\\s+verified against the Hub's hash`));
  // The server sent no hash for config.json: the command must not claim otherwise.
  assert.match(run.stdout, /config\.json .*NOT verified/);
});

test('model fetch --from installs a local file; a missing one is a one-line error', async () => {
  const src = join(dir, 'local.safetensors');
  await writeFile(src, MODEL);
  const dest = join(dir, 'installed');
  const ok = await gptspam(['model', 'fetch', '--from', src, '--dest', dest]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(await readFile(join(dest, 'model.safetensors')), MODEL);
  assert.match(ok.stdout, /No config\.json beside/);

  const missing = await gptspam(['model', 'fetch', '--from', join(dir, 'nope.safetensors')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^gptspam: --from .*nope\.safetensors: no such file or directory$/m);
});

test('model fetch rejects an unknown size with the valid choices', async () => {
  const run = await gptspam(['model', 'fetch', '--size', '7B']);
  assert.notEqual(run.code, 0);
  assert.match(run.stderr, /124M.*355M.*774M.*1558M/);
});
