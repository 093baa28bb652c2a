/**
 * The vendored gradient registrations (model/vendor/tfjs-core-gradients.js, bundled from tfjs-core by
 * bin/vendor-tfjs-gradients.mjs) are from the installed tfjs-core and register every gradient tfjs-core
 * defines, into the registry the installed tfjs-core reads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';

const require = createRequire(import.meta.url);
const VENDORED = new URL('../../model/vendor/tfjs-core-gradients.js', import.meta.url);

test('the vendored gradients are from the installed tfjs-core and register all of its gradients', async () => {
  const core = JSON.parse(readFileSync(require.resolve('@tensorflow/tfjs-core/package.json'), 'utf8')) as { version: string };
  const header = /^\/\/ tfjs-core-version: (\S+)$/m.exec(readFileSync(VENDORED, 'utf8'))?.[1];
  assert.equal(header, core.version, 'regenerate it: npm run vendor:gradients');

  // tfjs-core's list of gradient modules, one per kernel, named <Kernel>_grad.
  const list = readFileSync(require.resolve('@tensorflow/tfjs-core/dist/register_all_gradients.js'), 'utf8');
  const kernels = [...list.matchAll(/from '\.\/gradients\/(\w+)_grad'/g)].map((m) => m[1]!);
  assert.ok(kernels.length > 90);
  assert.deepEqual(kernels.filter((k) => tf.getGradient(k) !== undefined), [], 'tfjs-core alone registers none');
  await import(VENDORED.href);
  assert.deepEqual(kernels.filter((k) => tf.getGradient(k) === undefined), []);
});

test('a gradient through the vendored registrations matches the analytic one', async () => {
  await import(VENDORED.href);
  const { initBackend } = await import('../../model/backend.ts');
  await initBackend('wasm', { log: () => {} });
  // d/dx sum(tanh(x) * x) = tanh(x) + x * (1 - tanh(x)^2)
  const x = [-1.5, -0.2, 0.3, 2];
  const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.tanh(t), t)))(tf.tensor1d(x)).dataSync();
  x.forEach((v, i) => assert.ok(Math.abs(g[i]! - (Math.tanh(v) + v * (1 - Math.tanh(v) ** 2))) < 1e-5, `at ${v}`));
});
