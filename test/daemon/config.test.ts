/** Configuration: embedded defaults, file, environment overrides, and errors that name the bad key. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, smsWatchFolder } from '../../daemon/config.ts';
import { modelText, MODEL_TEXT_CHARS } from '../../daemon/message-text.ts';

const home = () => mkdtempSync(join(tmpdir(), 'gptspam-config-'));

test('no file: the embedded default binds to loopback on 8025 and retrains nightly', async () => {
  const h = home();
  const c = await loadConfig(h, {});
  assert.equal(c.server.host, '127.0.0.1');
  assert.equal(c.server.port, 8025);
  assert.equal(c.training.schedule, '0 3 * * *');
  // Verdicts: thresholds calibrated per kind for 0.5% ham loss at 95% confidence; none fixed.
  assert.deepEqual(c.verdicts, { targetHamLoss: 0.005, confidence: 0.95, reviewHamShare: 0.02, thresholds: {}, knownCorrespondents: true });
  assert.equal(smsWatchFolder(c, h), join(h, 'inbox', 'sms'));
});

test('the file overrides defaults key by key; environment variables override the file', async () => {
  const h = home();
  writeFileSync(join(h, 'config.json'), JSON.stringify({ server: { port: 9000 }, verdicts: { thresholds: { sms: 0.8, email: { spam: 0.9, ham: 0.2 } } } }));
  const c = await loadConfig(h, { GPTSPAM_HOST: '0.0.0.0', GPTSPAM_TRAIN_SCHEDULE: '*/5 * * * *' });
  assert.equal(c.server.port, 9000);
  assert.equal(c.server.host, '0.0.0.0');
  assert.deepEqual(c.verdicts.thresholds, { sms: { spam: 0.8, ham: 0.8 }, email: { spam: 0.9, ham: 0.2 } });
  assert.equal(c.verdicts.targetHamLoss, 0.005);
  assert.equal(c.training.schedule, '*/5 * * * *');
});

test('errors name the file and the key', async () => {
  const h = home();
  const path = join(h, 'config.json');
  const fails = async (content: unknown, pattern: RegExp, env: NodeJS.ProcessEnv = {}) => {
    writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
    await assert.rejects(loadConfig(h, env), (err: Error) => err instanceof ConfigError && pattern.test(err.message) && err.message.includes(path));
  };
  await fails({ verdicts: { thresholds: { sms: 2 } } }, /verdicts\.thresholds\.sms: /);
  await fails({ verdicts: { thresholds: { email: { spam: 0.5, ham: 0.9 } } } }, /verdicts\.thresholds\.email: ham must not be above spam/);
  await fails({ verdicts: { targetHamLoss: 0 } }, /verdicts\.targetHamLoss: /);
  // An earlier version's key says where it went.
  await fails({ thresholds: { sms: 0.8 } }, /thresholds: moved: .*verdicts\.thresholds\.email/);
  await fails({ training: { schedule: 'every night' } }, /training\.schedule: "every night" is not a valid cron expression/);
  await fails({ imap: { accounts: [{ host: 'h', user: 'u', password: 'p', passwordEnv: 'X' }] } }, /imap\.accounts\.0: set exactly one of password/);
  await fails({ imap: { accounts: [{ host: 'h', user: 'u', password: 'p', colour: 'red' }] } }, /imap\.accounts\.0\.colour: unknown key/);
  await fails('[1, 2]', /must be a JSON object/);
  await fails('{"server": {', /not valid JSON/);
  writeFileSync(path, '{}');
  await assert.rejects(loadConfig(h, { GPTSPAM_PORT: 'eighty' }), /GPTSPAM_PORT: "eighty" is not a number/);
});

test('model text: e-mail leads with subject and sender; SMS is the body alone; blank runs collapse; bounded', () => {
  assert.equal(
    modelText({ kind: 'email', sender: '"Bank" <x@y.z>', subject: '  Your   account ', body: 'Hello\r\n\r\n\r\n\r\nClick   here\t now' }),
    'Subject: Your account\nFrom: "Bank" <x@y.z>\n\nHello\n\nClick here now',
  );
  assert.equal(modelText({ kind: 'sms', sender: '+447700900123', body: ' Call me  later ' }), 'Call me later');
  assert.equal(modelText({ kind: 'other', body: 'just text' }), 'just text');
  assert.equal(modelText({ kind: 'sms', body: 'x'.repeat(50_000) }).length, MODEL_TEXT_CHARS);
});
