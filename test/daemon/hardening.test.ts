/**
 * Defects found by attacking the running daemon, each checked against the real process: who may read its files,
 * which host names it answers to (DNS rebinding), malformed paths, all-or-nothing bulk labels, and where the
 * access token is printed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { tokenNotice } from '../../daemon/cli/token-notice.ts';
import { createHostPolicy } from '../../daemon/host-check.ts';
import { ensurePrivateHome } from '../../daemon/home.ts';
import { Store } from '../../daemon/store/index.ts';
import { TINY_MODEL } from '../helpers/fixture.ts';
import { newHome, startDaemon, TEST_CONFIG, type RunningDaemon } from '../helpers/daemon.ts';

const BIN = fileURLToPath(new URL('../../bin/gptspam.js', import.meta.url));
const mode = (path: string) => statSync(path).mode & 0o777;

let d: RunningDaemon;
const scratch = mkdtempSync(join(tmpdir(), 'gptspam-hardening-'));

before(async () => {
  // A home created by someone else, readable by everyone: the daemon must make it private.
  const home = newHome({ ...TEST_CONFIG, server: { allowedHosts: ['spam.example.org'] } });
  chmodSync(home, 0o755);
  d = await startDaemon({ home });
});
after(async () => {
  if (d && d.proc.exitCode === null) await d.stop();
  rmSync(scratch, { recursive: true, force: true });
});

/** A raw HTTP request, so the Host header can be anything (fetch always sends the URL's). */
function raw(path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(d.url);
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, path, headers, setHost: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Opens /ws with these headers; resolves with the HTTP status of a refusal, or 101 when it opened. */
function wsStatus(headers: Record<string, string>): Promise<number> {
  const ws = new WebSocket(`${d.url.replace('http', 'ws')}/ws?token=${encodeURIComponent(d.token)}`, { headers });
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('error', (err) => reject(err));
  });
}

test('the home is private (0700) whoever created it, and the database, its WAL and SHM are 0600', async () => {
  assert.equal(mode(d.home), 0o700, 'a 0755 home is tightened');
  await d.api('POST', '/api/messages', { body: 'Lunch at noon?', externalId: 'perm-1' }); // the WAL exists after a write
  for (const f of ['gptspam.db', 'gptspam.db-wal', 'gptspam.db-shm']) {
    assert.ok(existsSync(join(d.home, f)), `${f} exists`);
    assert.equal(mode(join(d.home, f)), 0o600, f);
  }
  assert.equal(mode(join(d.home, 'token')), 0o600);
});

test('a database left 0644 by an older version is tightened when opened', async () => {
  const dir = join(scratch, 'old-db');
  mkdirSync(dir);
  const path = join(dir, 'gptspam.db');
  const first = await Store.open(path);
  await first.settings.set('x', '1');
  await first.close();
  chmodSync(path, 0o644);
  writeFileSync(`${path}-wal`, '');
  chmodSync(`${path}-wal`, 0o644);
  const again = await Store.open(path);
  try {
    assert.equal(mode(path), 0o600);
    assert.equal(mode(`${path}-wal`), 0o600);
  } finally {
    await again.close();
  }
});

test('ensurePrivateHome creates 0700, tightens an open home, and leaves a private one alone', async () => {
  const fresh = join(scratch, 'a', 'b', 'home');
  assert.equal(await ensurePrivateHome(fresh), false);
  assert.equal(mode(fresh), 0o700);
  chmodSync(fresh, 0o750);
  assert.equal(await ensurePrivateHome(fresh), true);
  assert.equal(mode(fresh), 0o700);
  assert.equal(await ensurePrivateHome(fresh), false);
});

test('`gptspam model fetch` and `data sms` create the home 0700', () => {
  for (const [i, args] of [['model', 'fetch', '--from', TINY_MODEL], ['data', 'sms', '--from', join(scratch, 'no-such-file')]].entries()) {
    const home = join(scratch, `cli-home-${i}`);
    spawnSync(process.execPath, [BIN, ...args], { env: { ...process.env, GPTSPAM_HOME: home }, encoding: 'utf8', timeout: 60_000 });
    assert.equal(mode(home), 0o700, args.join(' '));
  }
});

test('only loopback, IP and configured host names are answered, on every route and the WebSocket', async () => {
  for (const path of ['/', '/ui/app.js', '/api/health', '/api/status']) {
    const evil = await raw(path, { Host: 'evil.example', Authorization: `Bearer ${d.token}` });
    assert.equal(evil.status, 421, `${path} with Host: evil.example`);
    assert.match(evil.body, /does not answer to the host name/);
    assert.equal((await raw(path, { Authorization: `Bearer ${d.token}` })).status, 400, `${path} without Host (Node refuses it)`);
  }
  const port = new URL(d.url).port;
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'LOCALHOST', `app.localhost:${port}`, `[::1]:${port}`, `spam.example.org:${port}`]) {
    assert.equal((await raw('/api/health', { Host: host })).status, 200, host);
  }
  assert.equal((await raw('/api/health', { Host: 'sub.spam.example.org' })).status, 421, 'an exact name does not admit subdomains');

  assert.equal(await wsStatus({ Host: 'evil.example' }), 403, 'WebSocket with a foreign Host');
  assert.equal(await wsStatus({ Origin: 'http://evil.example' }), 403, 'WebSocket from a foreign page');
  assert.equal(await wsStatus({ Origin: 'null' }), 403, 'WebSocket from a sandboxed page');
  assert.equal(await wsStatus({ Origin: d.url }), 101, 'WebSocket from the daemon\'s own page');
  assert.equal(await wsStatus({}), 101, 'WebSocket from a non-browser client');
});

test('host policy: names, ports, IPv6 and configured suffixes', () => {
  const p = createHostPolicy('0.0.0.0', ['.home.arpa', 'mail.example']);
  for (const h of ['localhost', 'x.localhost:1', '10.0.0.7:8025', '[fe80::1]:8025', 'pi.home.arpa', 'home.arpa:80', 'mail.example.']) assert.ok(p.hostAllowed(h), h);
  for (const h of ['evil.example', 'localhost.evil.example', 'mail.example.evil', '[::1', '', 'a b']) assert.ok(!p.hostAllowed(h), h);
  assert.ok(!p.hostAllowed(undefined));
  assert.ok(p.originAllowed('http://10.0.0.7:8025', '10.0.0.7:8025'), 'same origin');
  assert.ok(!p.originAllowed('http://10.6.6.6', '10.0.0.7:8025'), 'another IP is another site');
  assert.ok(p.originAllowed('https://pi.home.arpa', '127.0.0.1:8025'), 'a configured name behind a proxy');
  assert.ok(!p.originAllowed('file://', '127.0.0.1:8025'));
});

test('a malformed percent-escape in the path is a 400, not a logged internal error', async () => {
  const logged = d.output().length;
  for (const path of ['/ui/%', '/ui/%E0%A4%A', '/ui/%zz']) {
    const res = await fetch(`${d.url}${path}`);
    assert.equal(res.status, 400, path);
    assert.match(((await res.json()) as { error: string }).error, /percent-encoding/);
  }
  await new Promise((r) => setTimeout(r, 200));
  const since = d.output().slice(logged);
  assert.doesNotMatch(since, /"level":50/, 'nothing logged at error level');
  assert.doesNotMatch(since, /URIError/);
});

test('POST /api/labels is all or nothing: one unknown id and no message is corrected', async () => {
  const ids: number[] = [];
  for (const body of ['See you at 6', 'Call me back when you can', 'Meeting moved to Friday']) {
    ids.push((await d.api<{ message: { id: number } }>('POST', '/api/messages', { body, externalId: `labels-${body}` })).message.id);
  }
  const res = await d.fetch('/api/labels', { method: 'POST', body: JSON.stringify({ ids: [ids[0], ids[1], 999999, ids[2]], label: 'spam' }) });
  assert.equal(res.status, 404);
  assert.match(((await res.json()) as { error: string }).error, /999999.*nothing was changed/);
  for (const id of ids) {
    const m = await d.api<{ correction: unknown; corrections: unknown[] }>('GET', `/api/messages/${id}`);
    assert.equal(m.correction, null, `message ${id} untouched`);
    assert.deepEqual(m.corrections, []);
  }
  const ok = await d.api<{ messages: Array<{ id: number; correction: { label: string } }> }>('POST', '/api/labels', { ids, label: 'spam' });
  assert.deepEqual(ok.messages.map((m) => [m.id, m.correction.label]), ids.map((id) => [id, 'spam']));
});

test('the access token goes to a terminal only; under a service manager only its file is named', () => {
  assert.ok(!d.output().includes(d.token), 'stderr is a pipe here: the token is not printed');
  assert.ok(d.output().includes(join(d.home, 'token')), 'its file is named');
  assert.match(tokenNotice('tok123', '/h/token', true), /tok123/);
  assert.doesNotMatch(tokenNotice('tok123', '/h/token', false), /tok123/);
});
