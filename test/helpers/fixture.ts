/** Paths to the shared reference fixtures and numeric comparison helpers for golden tests. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHARED = resolve(REPO_ROOT, '..', 'shared');
export const TINY_DIR = join(SHARED, 'fixtures', 'gpt2-tiny');
export const TINY_MODEL = join(TINY_DIR, 'model.safetensors');
export const SMS_COLLECTION = join(SHARED, 'data', 'SMSSpamCollection');

export function requireShared(path: string): string {
  if (!existsSync(path)) throw new Error(`reference file ${path} is missing: tests need ../shared beside the repository`);
  return path;
}

export interface Expected {
  texts: string[];
  labels: number[];
  token_ids: number[][];
  lengths: number[];
  input_ids: number[][];
  lm_last_logits_top5: { ids: number[]; logits: number[] }[];
  hidden_last_real: number[][];
  cls_logits_last_real: number[][];
  cls_logits_last_position: number[][];
  cls_logits_first_position: number[][];
  loss_last_real: number;
  loss_last_position: number;
  attention_unmasked: number[][];
  trainable: string[];
  after_adamw_step: { lr: number; weight_decay: number; betas: [number, number]; eps: number };
  cls_logits_last_real_after_step: number[][];
  loss_curve_20: number[];
  cls_logits_after_20: number[][];
  loss_after_20: number;
  gelu_new_probe: { x: number[]; y: number[] };
}

export function loadExpected(): Expected {
  return JSON.parse(readFileSync(requireShared(join(TINY_DIR, 'expected.json')), 'utf8')) as Expected;
}

/** |actual − expected| ≤ atol + rtol·|expected| elementwise (the fixture README's tolerance for logits and losses). */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, atol = 1e-4, rtol = 1e-4): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} != ${expected.length}`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      assert.fail(`${what}[${i}]: got ${a}, expected ${e} (diff ${Math.abs(a - e)})`);
    }
  }
}
