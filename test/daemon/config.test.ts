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
  assert.deepEqual(c.thresholds, { imap: 0.5, sms: 0.5, api: 0.5 });
  assert.equal(smsWatchFolder(c, h), join(h, 'inbox', 'sms'));
});

test('the file overrides defaults key by key; environment variables override the file', async () => {
  const h = home();
  writeFileSync(join(h, 'config.json'), JSON.stringify({ server: { port: 9000 }, thresholds: { sms: 0.8 } }));
  const c = await loadConfig(h, { GPTSPAM_HOST: '0.0.0.0', GPTSPAM_TRAIN_SCHEDULE: '*/5 * * * *' });
  assert.equal(c.server.port, 9000);
  assert.equal(c.server.host, '0.0.0.0');
  assert.equal(c.thresholds.sms, 0.8);
  assert.equal(c.thresholds.imap, 0.5);
  assert.equal(c.training.schedule, '*/5 * * * *');
});

test('errors name the file and the key', async () => {
  const h = home();
  const path = join(h, 'config.json');
  const fails = async (content: unknown, pattern: RegExp, env: NodeJS.ProcessEnv = {}) => {
    writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
    await assert.rejects(loadConfig(h, env), (err: Error) => err instanceof ConfigError && pattern.test(err.message) && err.message.includes(path));
  };
  await fails({ thresholds: { sms: 2 } }, /thresholds\.sms: .*<=1/);
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
    modelText({ source: 'imap', sender: '"Bank" <x@y.z>', subject: '  Your   account ', body: 'Hello\r\n\r\n\r\n\r\nClick   here\t now' }),
    'Subject: Your account\nFrom: "Bank" <x@y.z>\n\nHello\n\nClick here now',
  );
  assert.equal(modelText({ source: 'sms', sender: '+447700900123', body: ' Call me  later ' }), 'Call me later');
  assert.equal(modelText({ source: 'api', body: 'just text' }), 'just text');
  assert.equal(modelText({ source: 'sms', body: 'x'.repeat(50_000) }).length, MODEL_TEXT_CHARS);
});
