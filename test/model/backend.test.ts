import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { initBackend } from '../../model/backend.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(import.meta.url);

/** Deterministic values in [-0.5, 0.5). */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

/** a (m x k) @ b (k x n), row-major, in float64. */
function jsMatMul(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let p = 0; p < k; p++) {
      const x = a[i * k + p]!;
      for (let j = 0; j < n; j++) c[i * n + j]! += x * b[p * n + j]!;
    }
  return c;
}

function transposed(x: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = x[i * cols + j]!;
  return out;
}

function maxAbsDiff(x: ArrayLike<number>, y: ArrayLike<number>): number {
  assert.equal(x.length, y.length);
  let d = 0;
  for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i]! - y[i]!));
  return d;
}

/** Runs a fresh node process that initialises wasm with `threads` and prints a checksum of a matMul. */
function child(threads: number): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const script = `
    const { initBackend } = await import('./model/backend.ts');
    const tf = await import('@tensorflow/tfjs-core');
    const info = await initBackend('wasm', { threads: ${threads}, log: () => {} });
    const a = tf.tensor2d(Float32Array.from({ length: 200 * 300 }, (_, i) => Math.sin(i)), [200, 300]);
    const b = tf.tensor2d(Float32Array.from({ length: 300 * 400 }, (_, i) => Math.cos(i)), [300, 400]);
    const c = new Uint32Array(tf.matMul(a, b).dataSync().buffer);
    let h = 0;
    for (const u of c) h = (Math.imul(h, 31) + u) >>> 0;
    console.log(JSON.stringify({ description: info.description, hash: h }));`;
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { cwd: root, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: number }).code ?? null) : 0;
        resolve({ code: typeof code === 'number' ? code : null, stdout, stderr, ms: Date.now() - started });
      },
    );
  });
}

// If wasm worker threads kept the event loop alive, this file would never end: fail it instead.
after(() => {
  setTimeout(() => {
    console.error('the event loop is still alive 10 s after the tests (ref()ed wasm worker threads?)');
    process.exit(1);
  }, 10_000).unref();
});

function installed(pkg: string): boolean {
  try {
    require.resolve(`${pkg}/package.json`);
    return true;
  } catch {
    return false;
  }
}

test('initBackend("wasm") runs multi-threaded and logs one line', async () => {
  const lines: string[] = [];
  const info = await initBackend('wasm', { threads: 2, log: (l) => lines.push(l) });
  assert.equal(info.name, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
  assert.equal(getThreadsCount(), 2, 'the XNNPACK pool must really have 2 threads');
  assert.match(info.description, /\bwasm\b.*\b2 threads\b/);
  assert.deepEqual(lines, [info.description]);
  // A second call reuses the backend and logs again without re-initialising.
  const again = await initBackend('wasm', { log: () => {} });
  assert.deepEqual(again, info);
});

for (const [kind, pkg] of [
  ['gpu', '@tensorflow/tfjs-node-gpu'],
  ['node', '@tensorflow/tfjs-node'],
] as const) {
  test(`initBackend("${kind}") without ${pkg} rejects with a one-line install hint`, { skip: installed(pkg) && `${pkg} is installed` }, async () => {
    await assert.rejects(initBackend(kind, { log: () => {} }), (err: Error) => {
      assert.ok(!err.message.includes('\n'), `one line: ${err.message}`);
      assert.ok(err.message.startsWith(`backend "${kind}" needs ${pkg}: run "npm install ${pkg}@4.22.0"`), err.message);
      return true;
    });
    assert.equal(tf.getBackend(), 'wasm', 'a failed request leaves the current backend alone');
  });
}

test('wasm matMul (plain, transposed, odd sizes) equals the product in plain JS within 1e-4', async () => {
  await initBackend('wasm', { threads: 2, log: () => {} });
  for (const [m, k, n] of [
    [3, 5, 7],
    [64, 96, 130],
    [257, 64, 33],
  ] as const) {
    const a = values(m * k, m), b = values(k * n, n);
    const want = jsMatMul(a, b, m, k, n);
    const ta = tf.tensor2d(a, [m, k]), tb = tf.tensor2d(b, [k, n]);
    const taT = tf.tensor2d(transposed(a, m, k), [k, m]), tbT = tf.tensor2d(transposed(b, k, n), [n, k]);
    const cases: Record<string, tf.Tensor> = {
      plain: tf.matMul(ta, tb),
      transposeA: tf.matMul(taT, tb, true, false),
      transposeB: tf.matMul(ta, tbT, false, true),
      explicitTranspose: tf.matMul(tf.transpose(taT), tb),
    };
    for (const [name, c] of Object.entries(cases)) {
      assert.deepEqual(c.shape, [m, n]);
      const d = maxAbsDiff(c.dataSync(), want);
      assert.ok(d < 1e-4, `${name} ${m}x${k}x${n}: max |diff| ${d}`);
    }
    tf.dispose([ta, tb, taT, tbT, ...Object.values(cases)]);
  }
});

test('a multi-threaded process exits by itself and computes the same bits as a single-threaded one', async () => {
  const [multi, single] = await Promise.all([child(2), child(1)]);
  assert.equal(multi.code, 0, `2 threads: exit ${multi.code} after ${multi.ms} ms\n${multi.stderr}`);
  assert.equal(single.code, 0, `1 thread: exit ${single.code} after ${single.ms} ms\n${single.stderr}`);
  const m = JSON.parse(multi.stdout) as { description: string; hash: number };
  const s = JSON.parse(single.stdout) as { description: string; hash: number };
  assert.match(m.description, /\b2 threads\b/);
  assert.match(s.description, /\b1 thread\b/);
  assert.equal(m.hash, s.hash, 'float32 results must be bit-identical');
});
