/**
 * The integration tests that rely on a real Dovecot or a real Chromium fail, with a line saying how to install
 * it, when it is missing; they never pass as "skipped" on a CI without them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { findChromium } from '../helpers/chromium.ts';
import { findDovecot } from '../helpers/dovecot.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Runs one test file the way `npm test` does, with `env` added. */
function runTestFile(file: string, env: Record<string, string>) {
  // Without NODE_TEST_CONTEXT, which would make the inner runner report to this one instead of printing TAP.
  const { NODE_TEST_CONTEXT: _, ...outer } = process.env;
  return spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', file], { cwd: ROOT, env: { ...outer, ...env }, encoding: 'utf8', timeout: 120_000 });
}

for (const [file, env, what] of [
  ['test/connectors/imap.test.ts', { GPTSPAM_DOVECOT: '/nonexistent/dovecot' }, /Dovecot is required .*apt-get install -y dovecot-imapd/],
  ['test/connectors/imap-daemon.test.ts', { GPTSPAM_DOVECOT: '/nonexistent/dovecot' }, /Dovecot is required/],
  ['test/ui/ui.test.ts', { GPTSPAM_CHROMIUM: '/nonexistent/chromium' }, /Chromium is required .*apt-get install -y chromium/],
] as const) {
  test(`${file} fails, not skips, when its server is missing`, () => {
    const r = runTestFile(file, env);
    const out = `${r.stdout}${r.stderr}`;
    assert.notEqual(r.status, 0, `the run must fail:\n${out.slice(-2000)}`);
    assert.match(out, what);
    assert.match(out, /^# skipped 0$/m);
    assert.match(out, /^# pass 0$/m);
  });
}

test('Chromium and Dovecot are found where this platform puts them', () => {
  assert.ok(findDovecot(), 'dovecot on this machine');
  assert.ok(findChromium(), 'chromium on this machine');
});
