/**
 * The review page in a real headless Chromium against the real daemon: token prompt, live feed, hostile
 * content shown as text, corrections seen in the store and in a second page, keyboard, retraining with
 * progress and a new version, phone width. Screenshots go to test-output/ for a human to look at.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { REPO_ROOT } from '../helpers/fixture.ts';
import { requireChromium } from '../helpers/chromium.ts';
import { startDaemon, TEST_CONFIG, type RunningDaemon } from '../helpers/daemon.ts';
import type { MessageView } from '../../daemon/views.ts';
const OUT = join(REPO_ROOT, 'test-output');


let d: RunningDaemon;
let browser: Browser;
const dialogs: string[] = [];

async function openPage(width = 1200): Promise<Page> {
  const context = await browser.newContext({ viewport: { width, height: 900 } });
  const page = await context.newPage();
  page.on('dialog', async (dialog) => {
    dialogs.push(dialog.message());
    await dialog.dismiss();
  });
  await page.goto(d.url);
  await page.locator('#token').fill(d.token);
  await page.locator('#login-form button[type=submit]').click();
  await page.locator('#conn.live').waitFor({ timeout: 15_000 });
  await page.locator('[data-filter="all"]').click();
  return page;
}

before(async () => {
  const browserPath = requireChromium(); // fails, never skips, without a browser
  mkdirSync(OUT, { recursive: true });
  // Text messages are judged at a fixed 0.5 here, so the tiny test model flags the spam the explanation test opens.
  d = await startDaemon({ config: { ...TEST_CONFIG, verdicts: { thresholds: { sms: 0.5 } } } });
  browser = await chromium.launch({
    executablePath: browserPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
after(async () => {
  await browser?.close();
  if (d && d.proc.exitCode === null) await d.stop();
});

test('token prompt: a wrong token is refused with a message; the right one opens the page and is remembered', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(d.url);
  await page.locator('#token').fill('wrong');
  await page.locator('#login-form button[type=submit]').click();
  await page.locator('#login-error', { hasText: 'not accepted' }).waitFor();
  await page.locator('#token').fill(d.token);
  await page.locator('#login-form button[type=submit]').click();
  await page.locator('#main').waitFor({ state: 'visible' });
  await page.reload();
  await page.locator('#conn.live').waitFor({ timeout: 15_000 });
  assert.equal(await page.locator('#login').isHidden(), true, 'no second prompt after a reload');
  const csp = (await page.goto(d.url))!.headers()['content-security-policy'];
  assert.match(csp!, /script-src 'self'/);
  await context.close();
});

test('live feed, hostile text, corrections in the store and a second page, keyboard, phone width', async () => {
  const page = await openPage();
  const second = await openPage();

  const hostile = '<img src=x onerror=alert(1)>';
  const posted: MessageView[] = [];
  for (const [i, body] of ['Lunch at noon tomorrow?', 'WINNER!! Claim your £900 prize, call 09061701461 now', hostile].entries()) {
    posted.push((await d.api<{ message: MessageView }>('POST', '/api/messages', { body, sender: `sender-${i}@example.org`, externalId: `ui-${i}` })).message);
  }
  // They appear without a reload, newest first.
  for (const m of posted) await page.locator(`li.msg[data-id="${m.id}"]`).waitFor({ timeout: 10_000 });
  const firstRow = await page.locator('li.msg').first().getAttribute('data-id');
  assert.equal(Number(firstRow), posted[2]!.id);

  // The hostile body is shown as its literal text; no element was created from it and no script ran.
  await page.locator('#feed', { hasText: hostile }).waitFor();
  assert.equal(await page.locator('#feed img').count(), 0);
  await page.locator(`li.msg[data-id="${posted[2]!.id}"] .what`).click();
  await page.locator('#detail-text', { hasText: hostile }).waitFor();
  assert.equal(await page.locator('#detail img').count(), 0);
  assert.deepEqual(dialogs, []);

  // One-click correction: stored at once, and the other page shows it.
  const target = posted[1]!;
  const wanted = target.label === 'spam' ? 'ham' : 'spam';
  await page.locator(`li.msg[data-id="${target.id}"] button.${wanted}`).click();
  await second.locator(`li.msg[data-id="${target.id}"] .label.${wanted}`, { hasText: '✓' }).waitFor({ timeout: 10_000 });
  const stored = await d.api<MessageView>('GET', `/api/messages/${target.id}`);
  assert.equal(stored.correction?.label, wanted);
  assert.equal(stored.correction?.origin, 'ui');

  // Undo withdraws it.
  await page.locator('#undo').click();
  await second.locator(`li.msg[data-id="${target.id}"] .label`, { hasNotText: '✓' }).waitFor({ timeout: 10_000 });
  assert.equal((await d.api<MessageView>('GET', `/api/messages/${target.id}`)).correction, null);

  // Keyboard: the cursor starts on the newest message; j moves down one, s labels it spam.
  await page.locator('#detail-close').click();
  await page.locator('li.msg.cursor').focus();
  await page.keyboard.press('j');
  const cursorId = Number(await page.locator('li.msg.cursor').getAttribute('data-id'));
  assert.equal(cursorId, posted[1]!.id);
  await page.keyboard.press('h');
  await page.locator(`li.msg[data-id="${cursorId}"] .label.ham`, { hasText: '✓' }).waitFor({ timeout: 10_000 });
  assert.equal((await d.api<MessageView>('GET', `/api/messages/${cursorId}`)).correction?.label, 'ham');

  await page.screenshot({ path: join(OUT, 'ui-main.png'), fullPage: true });

  const phone = await openPage(375);
  await phone.locator(`li.msg[data-id="${posted[0]!.id}"]`).waitFor();
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `horizontal scroll of ${overflow} px at phone width`);
  await phone.screenshot({ path: join(OUT, 'ui-phone.png'), fullPage: true });
  await Promise.all([page.context().close(), second.context().close(), phone.context().close()]);
});

test('a message scored while the list reloads stays in the list, and rows already shown are left in place', async () => {
  const page = await openPage();
  const { message: earlier } = await d.api<{ message: MessageView }>('POST', '/api/messages', { body: 'Parcel left at the door', sender: 'courier@example.org', externalId: 'ui-race-0' });
  await page.locator(`li.msg[data-id="${earlier.id}"]`).waitFor({ timeout: 10_000 });
  // Hold the next list reload's answer, fetched before the new message exists, until the message is shown live.
  let fetched!: () => void;
  const answered = new Promise<void>((resolve) => (fetched = resolve));
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  await page.route((url) => url.pathname === '/api/messages', async (route) => {
    const response = await route.fetch();
    fetched();
    await held;
    await route.fulfill({ response });
  }, { times: 1 });
  await page.locator('[data-filter="all"]').click();
  await answered;
  const { message } = await d.api<{ message: MessageView }>('POST', '/api/messages', { body: 'Are we still on for Friday?', sender: 'friend@example.org', externalId: 'ui-race' });
  const rowSel = `li.msg[data-id="${message.id}"]`;
  await page.locator(rowSel).waitFor({ timeout: 10_000 });
  const finished = page.waitForEvent('requestfinished', (r) => new URL(r.url()).pathname === '/api/messages');
  release();
  await finished;
  await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 200)));
  assert.equal(await page.locator(rowSel).count(), 1, 'the new message is still listed after the reload');

  // A row arriving leaves the rows already shown in place (one being clicked is not swapped under the pointer).
  const shown = await page.locator(rowSel).elementHandle();
  const { message: next } = await d.api<{ message: MessageView }>('POST', '/api/messages', { body: 'Bring the charger please', sender: 'friend@example.org', externalId: 'ui-race-2' });
  await page.locator(`li.msg[data-id="${next.id}"]`).waitFor({ timeout: 10_000 });
  assert.equal(await shown!.evaluate((node) => node.isConnected), true, 'the rows already shown were not redrawn');
  await page.context().close();
});

test('uncertain messages are listed for review and settled with one click; the model panel says per kind what it does', async () => {
  // Sent without a kind: the model never learned such messages, so the verdict is uncertain.
  const posted = (await d.api<{ message: MessageView & { verdict: { label: string } } }>('POST', '/api/messages', { body: 'Is this the right form for the refund?', externalId: 'ui-uncertain' })).message;
  assert.equal(posted.verdict.label, 'uncertain');
  const page = await openPage();
  await page.locator('[data-filter="uncertain"]').click();
  const rowSel = `li.msg[data-id="${posted.id}"]`;
  await page.locator(`${rowSel} .label.uncertain`).waitFor({ timeout: 10_000 });
  await page.locator(`${rowSel} button.ham`).click();
  await page.locator(`${rowSel} .label.ham`, { hasText: '✓' }).waitFor({ timeout: 10_000 });
  assert.equal((await d.api<MessageView>('GET', `/api/messages/${posted.id}`)).correction?.label, 'ham');
  // The detail says why and with which thresholds.
  await page.locator(`${rowSel} .what`).click();
  await page.locator('#detail-facts', { hasText: 'no training examples of this kind' }).waitFor();

  // One sentence per kind, and the ROC chart of the current model.
  await page.locator('#verdict-kinds li[data-kind="sms"]', { hasText: /it would have flagged \d+ of \d+ ham and caught \d+ of \d+ spam/ }).waitFor();
  await page.locator('#verdict-kinds li[data-kind="other"]', { hasText: 'never called spam' }).waitFor();
  await page.locator('#roc img').waitFor({ timeout: 10_000 });
  assert.match(await page.locator('#verdict-target').innerText(), /at most 0\.5% of real mail flagged/);
  await page.screenshot({ path: join(OUT, 'ui-review.png'), fullPage: true });
  await page.context().close();
});

test('opening a flagged message shows which words pushed towards spam and ham, with a legend; hostile text stays inert', async () => {
  const page = await openPage();
  const cspErrors: string[] = [];
  page.on('console', (msg) => {
    if (/Content Security Policy/i.test(msg.text())) cspErrors.push(msg.text());
  });
  const hostile = '<img src=x onerror=alert(1)>';
  const body = `WINNER!! ${hostile} Claim your £900 prize reward now, call 09061701461 to claim`;
  const { message } = await d.api<{ message: MessageView }>('POST', '/api/messages', { body, sender: 'promo@example.org', externalId: 'ui-explain', kind: 'sms' });
  assert.equal(message.label, 'spam', 'the model flags it');
  await page.locator(`li.msg[data-id="${message.id}"] .what`).click();
  // Highlighted in place once the daemon has computed it (202, then the WebSocket event).
  await page.locator('#detail-text .xw.spam').first().waitFor({ timeout: 120_000 });
  const detail = await d.api<{ text: string }>('GET', `/api/messages/${message.id}`);
  assert.equal(await page.locator('#detail-text').textContent(), detail.text, 'highlighting changed no character of the text');
  await page.locator('#detail-text', { hasText: hostile }).waitFor();
  assert.equal(await page.locator('#detail img').count(), 0, 'the payload stayed text');
  assert.deepEqual(dialogs, []);

  // Strength by intensity: --w on each word, 1 for the strongest, and a tint that grows with it.
  const words = await page.locator('#detail-text .xw').evaluateAll((spans) =>
    spans.map((s) => ({ text: s.textContent, cls: s.className, w: Number(getComputedStyle(s).getPropertyValue('--w')), bg: getComputedStyle(s).backgroundColor })),
  );
  assert.ok(words.length >= 2, `${words.length} words highlighted`);
  assert.ok(words.every((w) => w.w > 0 && w.w <= 1 && /^xw (spam|ham)$/.test(w.cls)), JSON.stringify(words));
  assert.equal(Math.max(...words.map((w) => w.w)), 1);
  const alpha = (bg: string) => Number(/rgba?\([^)]*?,\s*([\d.]+)\)$/.exec(bg)?.[1] ?? 1);
  const [weak, strong] = [...words].sort((a, b) => a.w - b.w).filter((_, i, all) => i === 0 || i === all.length - 1);
  assert.ok(alpha(strong!.bg) > alpha(weak!.bg), `the strongest word is tinted more (${strong!.bg}) than the weakest (${weak!.bg})`);

  // The legend names both colours; the strongest words are also listed as text.
  await page.locator('#detail-explain .explain-legend', { hasText: 'towards spam' }).waitFor();
  assert.match((await page.locator('#detail-explain .explain-legend').textContent())!, /towards ham/);
  const strongest = words.find((w) => w.w === 1)!;
  assert.match((await page.locator('#detail-explain .explain-top').textContent())!, new RegExp(strongest.text!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  assert.match((await page.locator('#detail-explain .explain-note').textContent())!, /integrated gradients/);
  assert.deepEqual(cspErrors, [], 'nothing was refused by the Content-Security-Policy');
  await page.locator('#detail').screenshot({ path: join(OUT, 'ui-explain.png') });
  await page.context().close();
});

test('Retrain now shows live progress, then the new version in the list with its curves', async () => {
  const page = await openPage();
  const before = await d.api<{ models: Array<{ version: number }> }>('GET', '/api/models');
  await page.locator('#retrain').click();
  await page.locator('#train-state', { hasText: /Training run \d+/ }).waitFor({ timeout: 60_000 });
  await page.locator('#train-state', { hasText: /Last run \d+: made v\d+/ }).waitFor({ timeout: 180_000 });
  const after = await d.api<{ models: Array<{ version: number }> }>('GET', '/api/models');
  assert.equal(after.models.length, before.models.length + 1);
  const newest = after.models[0]!.version;
  await page.locator('#versions-box summary').click();
  await page.locator('#versions tbody tr', { hasText: `v${newest}` }).waitFor();
  await page.locator('#curves img').first().waitFor({ timeout: 10_000 });
  await page.screenshot({ path: join(OUT, 'ui-model.png'), fullPage: true });
  await page.context().close();
});
