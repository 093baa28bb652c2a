/**
 * GPT-2's projections with their weights held constant, for gradients with respect to the input only
 * (`GPT2.withConstantWeights`, used by integrated gradients).
 *
 * Training differentiates every projection with respect to both its input and its weight; the model's matMul
 * computes both eagerly. An input gradient needs neither the weight gradient (half the backward pass) nor
 * `dy · Wᵀ` as a transposed matMul (12-45x slower on wasm): each effective weight is transposed once and kept,
 * so XNNPACK packs it once too. A LoRA adapter is merged into its weight (W + scale · A · B) once.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LoraAdapter } from './gpt2.ts';
import { gradOfA } from './ops.ts';

interface Constant {
  w: tf.Tensor2D;
  /** Wᵀ, kept (or null: made per call, when the copies would not fit). */
  wT: tf.Tensor2D | null;
  b: tf.Tensor1D;
  /** Whether w, b are copies this object owns (merged or sliced), rather than the model's own tensors. */
  ownW: boolean;
  ownB: boolean;
}

export class ConstantProjections {
  private readonly cache = new Map<string, Constant>();

  constructor(
    private readonly weight: (name: string) => tf.Tensor,
    private readonly lora: ReadonlyMap<string, LoraAdapter>,
    private readonly cacheTransposes: boolean,
  ) {}

  /** x · W[:, from..to) + b[from..to), differentiable with respect to x only. */
  project(x: tf.Tensor, prefix: string, cols?: [number, number]): tf.Tensor {
    const c = this.constant(prefix, cols);
    const inDim = x.shape[x.rank - 1]!;
    const flat = x.rank === 2 ? x : tf.reshape(x, [-1, inDim]);
    const y = tf.add(inputOnlyMatMul(flat as tf.Tensor2D, c.w, c.wT), c.b);
    return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), c.w.shape[1]]);
  }

  private constant(prefix: string, cols?: [number, number]): Constant {
    const key = cols ? `${prefix}[${cols[0]},${cols[1]})` : prefix;
    let c = this.cache.get(key);
    if (c) return c;
    // Made once and kept (tf.keep), whatever tidy or gradient scope asked first; freed by dispose().
    const adapter = this.lora.get(`${prefix}.weight`);
    const ownW = Boolean(adapter || cols);
    const ownB = Boolean(cols);
    const [w, b, wT] = tf.tidy(() => {
      let w = this.weight(`${prefix}.weight`) as tf.Tensor2D;
      let b = this.weight(`${prefix}.bias`) as tf.Tensor1D;
      if (adapter) w = tf.add(w, tf.mul(tf.matMul(adapter.a, adapter.b), adapter.scale)) as tf.Tensor2D;
      if (cols) {
        const [from, to] = cols;
        w = tf.slice(w, [0, from], [-1, to - from]);
        b = tf.slice(b, [from], [to - from]);
      }
      const kept = [ownW ? tf.keep(w) : w, ownB ? tf.keep(b) : b];
      return this.cacheTransposes ? [...kept, tf.keep(tf.transpose(w))] : kept;
    }) as [tf.Tensor2D, tf.Tensor1D, tf.Tensor2D | undefined];
    c = { w, b, wT: wT ?? null, ownW, ownB };
    this.cache.set(key, c);
    return c;
  }

  dispose(): void {
    for (const c of this.cache.values()) {
      c.wT?.dispose();
      if (c.ownW) c.w.dispose();
      if (c.ownB) c.b.dispose();
    }
    this.cache.clear();
  }
}

/** x · w with the gradient for x only: dy · wᵀ as a plain product by the kept transpose (or one made now). */
function inputOnlyMatMul(x: tf.Tensor2D, w: tf.Tensor2D, wT: tf.Tensor2D | null): tf.Tensor2D {
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const input = args[0] as tf.Tensor2D;
    return {
      value: tf.matMul(input, w),
      gradFunc: (dy: tf.Tensor) => [wT ? tf.matMul(dy, wT) : gradOfA(dy, w)],
    };
  });
  return f(x) as tf.Tensor2D;
}
