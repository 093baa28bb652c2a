// Benchmark of the GPT-2-sized matMul on the wasm backend (a script, not a test):
//   node --import tsx test/bench/matmul.ts [--threads N] [--runs N]
// Prints one JSON line: median milliseconds and GFLOP/s of a 960x768 @ 768x3072 product, computed
// plain, with transposeA, with transposeB, and as explicit tf.transpose + plain matMul.
// (wasm's matMul with transposeA/transposeB leaves XNNPACK for a slow loop; the model transposes
// explicitly instead.) The first call of each variant is a warm-up and is not counted.

import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../model/backend.ts';

const { values } = parseArgs({ options: { threads: { type: 'string' }, runs: { type: 'string', default: '5' } } });
const runs = Math.max(1, Number(values.runs));
const info = await initBackend('wasm', { threads: values.threads ? Number(values.threads) : undefined });
const threads = (await import('@tensorflow/tfjs-backend-wasm')).getThreadsCount();

const [M, K, N] = [960, 768, 3072];
const flop = 2 * M * K * N;

const a = tf.randomUniform([M, K], -1, 1, 'float32', 1) as tf.Tensor2D;
const b = tf.randomUniform([K, N], -1, 1, 'float32', 2) as tf.Tensor2D;
const aT = tf.transpose(a); // [K, M]
const bT = tf.transpose(b); // [N, K]

const variants: Record<string, () => tf.Tensor> = {
  plain: () => tf.matMul(a, b),
  transposeA: () => tf.matMul(aT, b, true, false),
  transposeB: () => tf.matMul(a, bT, false, true),
  explicitTranspose: () => tf.tidy(() => tf.matMul(tf.transpose(aT), b)),
};

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const reference = variants.plain!().dataSync().slice();
const results: Record<string, { ms: number; gflops: number; maxAbsDiff: number }> = {};
for (const [name, run] of Object.entries(variants)) {
  const warm = run();
  const out = warm.dataSync();
  let maxAbsDiff = 0;
  for (let i = 0; i < out.length; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(out[i]! - reference[i]!));
  warm.dispose();
  // The transposed variants take seconds each: fewer runs are enough there.
  const n = name.startsWith('transpose') ? Math.min(runs, 3) : runs;
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const c = run();
    c.dataSync(); // wait for the result
    times.push(performance.now() - t0);
    c.dispose();
  }
  const ms = median(times);
  results[name] = { ms: Math.round(ms * 10) / 10, gflops: Math.round((flop / ms / 1e6) * 10) / 10, maxAbsDiff };
}

console.log(
  JSON.stringify({
    bench: 'matmul',
    backend: info.name,
    description: info.description,
    threads,
    shape: `${M}x${K} @ ${K}x${N}`,
    runs,
    ...results,
  }),
);
