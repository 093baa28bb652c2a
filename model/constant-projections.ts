/**
 * GPT-2's projections with their weights held constant, for gradients with respect to the input only
 * (`GPT2.withConstantWeights`, used by integrated gradients).
 *
 * Training differentiates every projection with respect to both its input and its weight; the model's matMul
 * computes both eagerly. An input gradient needs no weight gradient: that is half the backward pass saved. The
 * input gradient dy · Wᵀ is computed as the training path does for few rows, (W · dyᵀ)ᵀ, never as a transposed
 * matMul (12-45x slower on wasm); measured at 128 rows, it is as fast as multiplying by a kept transpose of W,
 * which would cost another copy of every weight. A LoRA adapter is merged into its weight (W + scale · A · B) once.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LoraAdapter } from './lora.ts';
import { gradOfA } from './ops.ts';

interface Constant {
  w: tf.Tensor2D;
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
  ) {}

  /** x · W[:, from..to) + b[from..to), differentiable with respect to x only. */
  project(x: tf.Tensor, prefix: string, cols?: [number, number]): tf.Tensor {
    const c = this.constant(prefix, cols);
    const inDim = x.shape[x.rank - 1]!;
    const flat = x.rank === 2 ? x : tf.reshape(x, [-1, inDim]);
    const y = tf.add(inputOnlyMatMul(flat as tf.Tensor2D, c.w), c.b);
    return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), c.w.shape[1]]);
  }

  /** The effective weight and bias of a projection: the model's own, or a merged / sliced copy made once. */
  private constant(prefix: string, cols?: [number, number]): Constant {
    const key = cols ? `${prefix}[${cols[0]},${cols[1]})` : prefix;
    let c = this.cache.get(key);
    if (c) return c;
    const adapter = this.lora.get(`${prefix}.weight`);
    const ownW = Boolean(adapter || cols);
    const ownB = Boolean(cols);
    // Copies are kept (tf.keep) whatever tidy or gradient scope asked first; freed by dispose().
    const [w, b] = tf.tidy(() => {
      let w = this.weight(`${prefix}.weight`) as tf.Tensor2D;
      let b = this.weight(`${prefix}.bias`) as tf.Tensor1D;
      if (adapter) w = tf.add(w, tf.mul(tf.matMul(adapter.a, adapter.b), adapter.scale)) as tf.Tensor2D;
      if (cols) {
        const [from, to] = cols;
        w = tf.slice(w, [0, from], [-1, to - from]);
        b = tf.slice(b, [from], [to - from]);
      }
      return [ownW ? tf.keep(w) : w, ownB ? tf.keep(b) : b];
    }) as [tf.Tensor2D, tf.Tensor1D];
    c = { w, b, ownW, ownB };
    this.cache.set(key, c);
    return c;
  }

  dispose(): void {
    for (const c of this.cache.values()) {
      if (c.ownW) c.w.dispose();
      if (c.ownB) c.b.dispose();
    }
    this.cache.clear();
  }
}

/** x · w with a gradient for x only. */
function inputOnlyMatMul(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => ({
    value: tf.matMul(args[0] as tf.Tensor2D, w),
    gradFunc: (dy: tf.Tensor) => [gradOfA(dy, w)],
  }));
  return f(x) as tf.Tensor2D;
}
