/** `gptspam classify --explain`: the explanation in JSON, the marked text otherwise, terminal-safe. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { formatExplanation } from '../../daemon/cli/explain-format.ts';
import type { Explanation } from '../../model/explain.ts';
import { assertClose, loadExpected, REPO_ROOT, TINY_DIR, TINY_MODEL } from '../helpers/fixture.ts';

const run = promisify(execFile);
const BIN = join(REPO_ROOT, 'bin', 'gptspam.js');
const FIXTURE = ['classify', '--weights', TINY_MODEL, '--head', join(TINY_DIR, 'head.safetensors'), '--backend', 'wasm', '--explain'];

test('--explain --json: every text gets its explanation, whose margin is the printed logits\' and whose weights add up', async () => {
  const expected = loadExpected();
  const { stdout } = await run(process.execPath, [BIN, ...FIXTURE, '--json', ...expected.texts.slice(0, 3)], { cwd: REPO_ROOT });
  const rows = stdout.trim().split('\n').map((l) => JSON.parse(l) as { logits: number[]; explanation: Explanation });
  assert.equal(rows.length, 3);
  rows.forEach((r, i) => {
    const x = r.explanation;
    assertClose([x.margin], [r.logits[1]! - r.logits[0]!], `margin ${i}`);
    assert.equal(x.method, 'integrated-gradients');
    assert.equal(x.text, expected.texts[i]);
    const delta = x.margin - x.baselineMargin;
    const total = x.tokens.reduce((s, t) => s + t.weight, 0);
    assert.ok(Math.abs(total - delta) <= Math.max(0.05 * Math.abs(delta), 1e-3), `text ${i}: ${total} vs ${delta}`);
  });
});

test('--explain to a pipe: brackets mark the strongest words, no escape sequence reaches the output, even from the text', async () => {
  const hostile = 'Claim \x1b[2J\x1b]0;pwned\x07 your prize now';
  const { stdout } = await run(process.execPath, [BIN, ...FIXTURE, 'WINNER!! Claim your prize, call now', hostile], { cwd: REPO_ROOT });
  const lines = stdout.trim().split('\n');
  assert.equal(lines.length, 6, stdout);
  assert.match(lines[1]!, /\[[+-]WINNER!!\]|\[[+-]Claim\]|\[[+-]prize,\]/);
  assert.match(lines[2]!, /margin [+-]\d+\.\d\d \(spam - ham logit; [+-]\d+\.\d\d for the empty baseline\), weights sum to [+-]\d+\.\d\d: gap \d+\.\d%/);
  assert.ok(!stdout.includes('\x1b') && !stdout.includes('\x07'), 'no control characters');
  assert.ok(lines[4]!.includes('\uFFFD[2J'), 'the escape is shown as a replacement character');
});

test('on a terminal: red towards spam, green towards ham, the three strongest in bold', () => {
  const words = [
    { text: 'free', weight: 2, start: 0, end: 4 },
    { text: 'lunch', weight: -1, start: 5, end: 10 },
    { text: 'today', weight: 0.01, start: 11, end: 16 },
  ];
  const x: Explanation = {
    method: 'integrated-gradients', baseline: 'zero-token-embeddings', margin: 1.2, baselineMargin: 0.2, completenessGap: 0.01,
    relativeGap: 0.01, converged: true, quadrature: { rule: 'gauss-lobatto-3, composite, adaptive', segments: 1, evaluations: 3, baselineReused: false },
    text: 'free lunch today', truncated: false, padding: 0, seconds: 0,
    tokens: words.map((w, i) => ({ id: i, text: w.text, start: w.start, end: w.end, weight: w.weight })),
    words: words.map((w, i) => ({ ...w, tokens: [i, i] as [number, number] })),
  };
  const [text, summary] = formatExplanation(x, { color: true });
  assert.equal(text, '  \x1b[31m\x1b[1mfree\x1b[0m \x1b[32m\x1b[1mlunch\x1b[0m today');
  assert.match(summary!, /margin \+1\.20 .* weights sum to \+1\.01: gap 1\.0%/);
  const [plain] = formatExplanation(x, { color: false });
  assert.equal(plain, '  [+free] [-lunch] today', 'a word below 15 % of the strongest is not marked');
});
