/**
 * The systemd user unit `gptspam service` writes: systemd accepts it, and its ExecStart, run the way systemd
 * runs it (from /, stderr not a terminal), serves, names the token file without printing the token, and stops
 * cleanly on SIGTERM.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemdWord } from '../../daemon/cli/service.ts';
import { newHome, TEST_CONFIG } from '../helpers/daemon.ts';

const BIN = fileURLToPath(new URL('../../bin/gptspam.js', import.meta.url));

/** ExecStart's words, unquoted as systemd.service(5) describes (double quotes, backslash escapes, %%). */
function execWords(unit: string): string[] {
  const line = /^ExecStart=(.*)$/m.exec(unit)?.[1];
  assert.ok(line, 'the unit has an ExecStart');
  const words: string[] = [];
  for (const m of line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)) words.push((m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!).replace(/%%/g, '%'));
  return words;
}

test('ExecStart words survive spaces, quotes and percent signs', () => {
  for (const w of ['/usr/bin/node', '/home/a b/.gptspam', 'say "hi"', '100%', 'back\\slash']) {
    assert.deepEqual(execWords(`ExecStart=${systemdWord(w)} x`), [w, 'x'], w);
  }
});

test('`gptspam service` prints a unit systemd accepts; its ExecStart serves from / and keeps the token off stderr', async (t) => {
  const home = newHome({ ...TEST_CONFIG, server: { port: 0 } });
  const printed = spawnSync(process.execPath, [BIN, 'service', '--home', home], { encoding: 'utf8' });
  assert.equal(printed.status, 0, printed.stderr);
  const unit = printed.stdout;
  assert.match(unit, /^\[Install\]\nWantedBy=default\.target$/m);
  const words = execWords(unit);
  assert.deepEqual(words.slice(0, 5), [process.execPath, BIN, 'serve', '--home', home]);

  const unitFile = join(mkdtempSync(join(tmpdir(), 'gptspam-unit-')), 'gptspam.service');
  writeFileSync(unitFile, unit);
  const analyze = spawnSync('systemd-analyze', ['verify', unitFile], { encoding: 'utf8' });
  if (analyze.error) t.diagnostic(`systemd-analyze is not installed here: the unit's syntax was not checked by systemd (${analyze.error.message})`);
  else {
    assert.equal(analyze.status, 0, analyze.stderr);
    assert.equal(analyze.stderr.trim(), '', 'no warnings');
  }

  // As systemd runs it: from /, stdout and stderr to the journal (pipes), no GPTSPAM_HOME in the environment.
  const { GPTSPAM_HOME: _, ...env } = process.env;
  const proc = spawn(words[0]!, words.slice(1), { cwd: '/', env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  try {
    const end = Date.now() + 60_000;
    let url: string | undefined;
    while (!(url = /open (http:\/\/[\d.]+:\d+)\//.exec(out)?.[1])) {
      if (Date.now() > end || proc.exitCode !== null) throw new Error(`the service did not start:\n${out.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal((await fetch(`${url}/api/health`)).status, 200);
    const token = readFileSync(join(home, 'token'), 'utf8').trim();
    assert.ok(!out.includes(token), 'the token is not written to the journal');
    assert.ok(out.includes(join(home, 'token')), 'the journal names the token file');
  } finally {
    proc.kill('SIGTERM');
  }
  assert.equal(await exited, 0, out.slice(-2000));
});

test('`gptspam service --install` writes the unit where systemd looks for user units', () => {
  const config = mkdtempSync(join(tmpdir(), 'gptspam-xdg-'));
  const r = spawnSync(process.execPath, [BIN, 'service', '--install', '--home', '/srv/gptspam'], { encoding: 'utf8', env: { ...process.env, XDG_CONFIG_HOME: config } });
  assert.equal(r.status, 0, r.stderr);
  const path = join(config, 'systemd', 'user', 'gptspam.service');
  assert.match(r.stdout, new RegExp(`Wrote ${path}`));
  assert.match(r.stdout, /systemctl --user enable --now gptspam/);
  assert.deepEqual(execWords(readFileSync(path, 'utf8')).slice(2), ['serve', '--home', '/srv/gptspam']);
});
